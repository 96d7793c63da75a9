// omni.js asks per topic what it is shown of presence: a page that asks for the chat room's
// count holds the count (and an event says when it changes), and no list; its frames from the
// server carry no presence list at all.

import assert from "node:assert/strict";
import { test } from "node:test";

import { chatAndBrowser, recordFrames } from "./support.mjs";

const env = chatAndBrowser();

test("a client that asks for the room's count holds a count and no list", { timeout: 60_000 }, async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const frames = recordFrames(page, "/omni/ws");
  await page.goto(env.server.url);
  const seen = await page.evaluate(async () => {
    const { connect } = await import("/omni/omni.js");
    const client = connect("/omni", { presence: { "*": "count" }, storage: null });
    const events = [];
    client.on("presence", (event) => events.push(event));
    // The chat handler tracks every session in the room: this one makes at least one.
    const deadline = Date.now() + 20_000;
    while (!(client.presenceCount("room")?.keys >= 1)) {
      if (Date.now() > deadline) throw new Error(`no count: ${JSON.stringify(events)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { count: client.presenceCount("room"), list: client.presence("room"), events };
  });
  assert.ok(seen.count.keys >= 1 && seen.count.entries >= seen.count.keys, JSON.stringify(seen));
  assert.deepEqual(seen.list, {});
  assert.ok(seen.events.length >= 1);
  assert.deepEqual(seen.events.at(-1).count, seen.count);
  assert.deepEqual(seen.events.at(-1).list, {});

  // The socket that asked: its URL names the modes, and no list came down it.
  const asked = frames.filter((f) => new URL(f.url).searchParams.get("presence") === '{"*":"count"}');
  assert.ok(asked.length > 0, "a socket asked for counts");
  const types = asked.filter((f) => f.dir === "received").map((f) => f.frame.type);
  assert.ok(types.includes("presence_count"), types.join());
  assert.ok(!types.includes("presence_state") && !types.includes("presence_diff"), types.join());
  await context.close();
});

test("an unknown presence mode is refused when the client is made", { timeout: 60_000 }, async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await page.goto(env.server.url);
  const message = await page.evaluate(async () => {
    const { connect } = await import("/omni/omni.js");
    try {
      connect("/omni", { presence: { room: "most" }, storage: null });
      return "accepted";
    } catch (err) {
      return err.message;
    }
  });
  assert.match(message, /presence mode "most"/);
  await context.close();
});
