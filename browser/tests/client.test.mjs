// omni.js on its own, in the chat page's origin: a client built from another version of the
// protocol is refused once, for good (no retry loop), over each transport.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ChatServer, freePort, launchBrowser } from "./support.mjs";

let browser;
let server;
before(async () => {
  browser = await launchBrowser();
  server = new ChatServer(await freePort());
  await server.start();
});
after(async () => {
  await browser?.close();
  await server?.kill();
});

for (const transport of ["ws", "sse"]) {
  test(`version_mismatch is fatal: the incompatible state (${transport})`, { timeout: 60_000 }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/?transport=${transport}`);
    const outcome = await page.evaluate(async (transport) => {
      const { connect } = await import("/omni/omni.js");
      const client = connect("/omni", { transport, version: "0000000000000000", storage: null });
      const states = [];
      const refused = new Promise((resolve, reject) => {
        client.on("state", (state) => {
          states.push(state);
          if (state.state === "incompatible") resolve();
        });
        setTimeout(() => reject(new Error(`not refused within 20 s: ${JSON.stringify(states)}`)), 20_000);
      });
      // SSE sends `hello` with its first POST, so give it something to post.
      client.send({ kind: "FetchAll" });
      await refused;
      // A retry would start within 375 ms (backoff base 250 ms, jitter 0.5): give it longer.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      let sendAfter = "accepted";
      try {
        client.send({ kind: "FetchAll" });
      } catch (err) {
        sendAfter = err.message;
      }
      return { states, sendAfter };
    }, transport);
    const kinds = outcome.states.map((s) => s.state);
    // A build the server does not serve: the `incompatible` state, with the server's reason.
    const refused = outcome.states.findIndex((s) => s.state === "incompatible");
    assert.ok(refused >= 0, `refused: ${JSON.stringify(outcome.states)}`);
    assert.match(outcome.states[refused].reason, /does not know client schema 0000000000000000/);
    assert.equal(refused, kinds.length - 1, "nothing follows the refusal");
    assert.equal(kinds.filter((k) => k === "connecting").length, 1, "no retry");
    assert.match(outcome.sendAfter, /closed/);
    await context.close();
  });
}
