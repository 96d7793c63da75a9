// omni.js names its client to the server (the connect URL's `client`, a mux join's `client`)
// with an id kept beside its queue, so that a message it sends again after a reload or into a
// new session has the same key for the handler (`Context::message_key`).

import assert from "node:assert/strict";
import { test } from "node:test";

import { chatAndBrowser, recordFrames, until } from "./support.mjs";

const env = chatAndBrowser();

test("the chat page's client id is sent on every connect and survives a reload", { timeout: 60_000 }, async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const sockets = recordFrames(page, "/omni/ws");
  const joins = recordFrames(page, "/omni/mux");
  await page.goto(env.server.url);
  const idOf = (frame) => new URL(frame.url).searchParams.get("client");
  await until(() => sockets.some((f) => f.socket === 1), "the first socket");
  const first = idOf(sockets.find((f) => f.socket === 1));
  assert.match(first, /^[0-9a-f]{32}$/);

  await page.reload();
  await until(() => sockets.some((f) => f.socket === 2), "the socket after the reload");
  assert.equal(idOf(sockets.find((f) => f.socket === 2)), first, "the same id after a reload");

  // The page's counter component names itself in its join, with an id of its own.
  await until(() => joins.some((f) => f.dir === "sent" && f.frame.type === "join"), "a join");
  const join = joins.find((f) => f.dir === "sent" && f.frame.type === "join").frame;
  assert.match(join.client, /^[0-9a-f]{32}$/);
  await context.close();
});
