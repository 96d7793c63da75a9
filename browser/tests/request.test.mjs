// omni.js's acked and request, in the chat page's origin: a message's reply, its refusal and
// its lack of a reply are the outcome of the call, on every transport.

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
  test(`request resolves with the reply, rejects with the refusal or no reply (${transport})`, { timeout: 60_000 }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/?transport=${transport}`);
    const outcome = await page.evaluate(async (transport) => {
      const { connect } = await import("/omni/omni.js");
      const client = connect("/omni", { transport, storage: null });
      const id = `request-${transport}-${Math.random()}`;
      const within = (promise) =>
        Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 20 s")), 20_000))]);
      const outcomeOf = (promise) => within(promise).then(
        (value) => ({ ok: value }),
        (error) => ({ code: error.code, reason: error.reason }),
      );

      const reply = await outcomeOf(client.request({
        kind: "Send",
        data: { id, author: "page", text: "hello", status: "Sending", sent_at: 0 },
      }));
      const refused = await outcomeOf(client.request({ kind: "SetName", data: "" }));
      const silent = await outcomeOf(client.request({ kind: "SetName", data: "ann" }));
      const ref = client.send({ kind: "SetName", data: "bob" });
      const acked = await outcomeOf(client.acked(ref));
      const again = await outcomeOf(client.acked(ref)); // answered before it was asked
      const unknown = await outcomeOf(client.acked(ref + 1000));
      const pending = client.request({ kind: "FetchAll" });
      client.close();
      const closed = await outcomeOf(pending);
      return {
        reply: reply.ok?.kind === "Upsert" ? reply.ok.data[id]?.status : reply,
        refused,
        silent,
        acked,
        again,
        unknown: unknown.code,
        closed: "ok" in closed ? "answered" : closed.code,
      };
    }, transport);
    assert.equal(outcome.reply, "Sent", JSON.stringify(outcome.reply));
    assert.equal(outcome.refused.code, "rejected");
    assert.match(outcome.refused.reason, /1 to 40 characters/);
    assert.equal(outcome.silent.code, "no_reply");
    assert.deepEqual(outcome.acked, { ok: undefined });
    assert.deepEqual(outcome.again, { ok: undefined });
    assert.equal(outcome.unknown, "unknown");
    // Closed before its answer came, or answered first: either way the promise settled.
    assert.ok(["closed", "answered"].includes(outcome.closed), outcome.closed);
    await context.close();
  });
}
