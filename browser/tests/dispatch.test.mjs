// omni.js's dispatch, in the chat page's origin: a page's update gets back every message it
// dispatches, and only the protocol's client messages reach the server.

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
  test(`dispatch sends client messages and returns every message (${transport})`, { timeout: 60_000 }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/?transport=${transport}`);
    const outcome = await page.evaluate(async (transport) => {
      const { connect } = await import("/omni/omni.js");
      const client = connect("/omni", { transport, kinds: ["Send", "FetchAll"], storage: null });
      const id = `dispatch-${transport}-${Math.random()}`;
      const stored = new Promise((resolve, reject) => {
        client.on("message", (payload) => {
          if (payload.kind === "Upsert" && payload.data[id]?.status === "Sent") resolve(payload.data[id]);
        });
        setTimeout(() => reject(new Error("the message was not stored within 20 s")), 20_000);
      });

      const draft = { kind: "DraftChanged", data: "hel" };
      const send = {
        kind: "Send",
        data: { id, author: "page", text: "hello", status: "Sending", sent_at: 0 },
      };
      const draftBack = client.dispatch(draft);
      const queuedAfterDraft = client.pending().length;
      const sendBack = client.dispatch(send);
      const pending = client.pending().map(({ payload }) => payload.kind);
      const confirmed = await stored;
      client.close();
      return {
        draftSame: draftBack === draft,
        sendSame: sendBack === send,
        queuedAfterDraft,
        pending,
        confirmed: { author: confirmed.author, text: confirmed.text },
      };
    }, transport);
    assert.ok(outcome.draftSame, "a local message comes back as it went in");
    assert.ok(outcome.sendSame, "a client message comes back as it went in");
    assert.equal(outcome.queuedAfterDraft, 0, "a local message is not sent");
    assert.deepEqual(outcome.pending, ["Send"]);
    assert.deepEqual(outcome.confirmed, { author: "page", text: "hello" });
    await context.close();
  });
}

test("dispatch without kinds says what it needs", { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(server.url);
  const message = await page.evaluate(async () => {
    const { connect } = await import("/omni/omni.js");
    const client = connect("/omni", { storage: null });
    try {
      client.dispatch({ kind: "FetchAll" });
      return "dispatched";
    } catch (err) {
      return err.message;
    } finally {
      client.close();
    }
  });
  assert.match(message, /kinds/);
  await context.close();
});
