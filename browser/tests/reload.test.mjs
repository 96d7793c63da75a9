// A message queued while the server is down survives a reload of the page (omni.js keeps its
// queue and resume point in sessionStorage) and is delivered once when the server returns.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  ChatServer,
  count,
  freePort,
  launchBrowser,
  openChat,
  say,
  sleep,
  statuses,
  waitDown,
  waitStatus,
  waitTransport,
} from "./support.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

for (const transport of ["ws", "sse"]) {
  test(`queued message survives a reload (${transport})`, { timeout: 120_000 }, async () => {
    const server = new ChatServer(await freePort());
    await server.start();
    try {
      const a = await openChat(browser, server, transport);
      const b = await openChat(browser, server, transport);

      // Page a's omni traffic is refused until `blocked` is lifted; its page still loads.
      // (Serving the page itself from a route instead would make Chromium refuse the page's
      // requests to loopback: Local Network Access checks.)
      let blocked = true;
      await a.routeWebSocket(/\/omni\/ws/, (ws) =>
        blocked ? ws.close({ code: 1013, reason: "blocked by the test" }) : ws.connectToServer(),
      );
      await a.route(/\/omni\/(sse|http)/, (route) => (blocked ? route.abort() : route.continue()));

      // Killing the server drops the open connections; the blocks keep a's new ones out.
      await server.kill();
      await waitDown(a);
      await waitDown(b);
      await server.start();
      await waitTransport(b, "connected");

      const id = await say(a, `queued before a reload (${transport})`);
      assert.ok(id);
      await sleep(500);
      assert.deepEqual(await statuses(a, id), ["sending"]);
      await a.reload();
      await waitStatus(a, id, "sending");
      assert.equal(await count(a, id), 1, "the reloaded page shows the queued message");
      await sleep(500);
      assert.equal(await count(b, id), 0);

      blocked = false;
      await waitTransport(a, "connected");
      await waitStatus(a, id, "sent");
      await waitStatus(b, id, "sent");
      // Late duplicates would show up in this time.
      await sleep(1000);
      assert.equal(await count(a, id), 1);
      assert.equal(await count(b, id), 1);
      assert.deepEqual(await statuses(a, id), ["sending", "sent"]);
      await a.context().close();
      await b.context().close();
    } finally {
      await server.kill();
    }
  });
}
