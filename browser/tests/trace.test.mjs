// omni.js carries the page's W3C trace context to the server: in a connection's `hello`, and
// in every `join` of a mux component, so the server's spans for those sessions join the
// page's trace. The server side (the session's span adopting it) is tested in Rust.

import assert from "node:assert/strict";
import { test } from "node:test";

import { chatAndBrowser, recordFrames, until } from "./support.mjs";

const env = chatAndBrowser();

const PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/** The socket whose first sent frame carries `traceparent`, with that frame and whether the
 * server welcomed it after. */
function traced(frames, traceparent) {
  const sockets = new Set(frames.map((f) => f.socket));
  for (const socket of sockets) {
    const on = frames.filter((f) => f.socket === socket);
    const first = on.find((f) => f.dir === "sent")?.frame;
    if (first?.traceparent === traceparent) {
      const welcomed = on.some((f) => f.dir === "received" && f.frame.type === "welcome");
      return { first, welcomed };
    }
  }
  return null;
}

test("a client sends its traceparent in the hello, and is welcomed", { timeout: 60_000 }, async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const frames = recordFrames(page, "/omni/ws");
  await page.goto(env.server.url);
  await page.evaluate(async (traceparent) => {
    const { connect } = await import("/omni/omni.js");
    connect("/omni", { traceparent, storage: null });
  }, PARENT);
  await until(() => traced(frames, PARENT)?.welcomed, "a welcomed socket with the traceparent");
  const { first } = traced(frames, PARENT);
  assert.equal(first.type, "hello");
  await context.close();
});

test("a mux component asks its traceparent function at each join", { timeout: 60_000 }, async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const frames = recordFrames(page, "/omni/mux");
  await page.goto(env.server.url);
  await page.evaluate(async (traceparent) => {
    const { mux } = await import("/omni/omni.js");
    const token = await (await fetch("/token/counter", { cache: "no-store" })).text();
    const widgets = mux("/omni", { storage: null });
    widgets.join("traced", "counter", token, { traceparent: () => traceparent });
  }, PARENT);
  await until(() => traced(frames, PARENT)?.welcomed, "a welcomed join with the traceparent");
  const { first } = traced(frames, PARENT);
  assert.equal(first.type, "join");
  assert.equal(first.id, "traced");
  await context.close();
});
