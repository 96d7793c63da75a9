// Two chat pages against the chat server, over each transport: a message goes from
// `sending` to `sent` and reaches the other page; the server is killed and restarted, and a
// message typed meanwhile is delivered once; `#online` follows pages opening and closing.

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
  transportHistory,
  waitDown,
  waitOnline,
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
  test(`chat over ${transport}: send, presence, server restart`, { timeout: 120_000 }, async () => {
    const server = new ChatServer(await freePort());
    await server.start();
    try {
      const a = await openChat(browser, server, transport);
      const b = await openChat(browser, server, transport);
      await waitOnline(a, 2);
      await waitOnline(b, 2);

      const hello = await say(a, `hello over ${transport}`);
      assert.ok(hello, "the message is shown at once");
      await waitStatus(a, hello, "sent");
      assert.deepEqual(await statuses(a, hello), ["sending", "sent"]);
      await waitStatus(b, hello, "sent");
      assert.equal(await count(b, hello), 1);

      const c = await openChat(browser, server, transport);
      await waitOnline(a, 3);
      await waitOnline(b, 3);
      await waitOnline(c, 3);
      await c.context().close();
      await waitOnline(a, 2);
      await waitOnline(b, 2);

      await server.kill();
      await waitDown(a);
      await waitDown(b);
      const offline = await say(a, `typed while the server was down (${transport})`);
      await sleep(500);
      assert.deepEqual(await statuses(a, offline), ["sending"], "it waits while the server is down");
      assert.equal(await count(b, offline), 0);

      await server.start();
      await waitTransport(a, "connected");
      await waitTransport(b, "connected");
      await waitStatus(a, offline, "sent");
      await waitStatus(b, offline, "sent");
      // Late duplicates would show up in this time.
      await sleep(1000);
      assert.equal(await count(a, offline), 1);
      assert.equal(await count(b, offline), 1);
      assert.deepEqual(await statuses(a, offline), ["sending", "sent"]);
      await waitOnline(a, 2);
      await waitOnline(b, 2);

      for (const page of [a, b]) {
        const history = await transportHistory(page);
        const down = history.indexOf("connected") + 1;
        assert.ok(down > 0 && down < history.length, `went down: ${history}`);
        assert.notEqual(history[down], "connected");
        assert.equal(history.at(-1), "connected", `came back: ${history}`);
      }
      await a.context().close();
      await waitOnline(b, 1);
      await b.context().close();
    } finally {
      await server.kill();
    }
  });
}
