// The chat page's counter widget, a component joined over the mux socket (/omni/mux) with
// the token the server signed into the page: two pages show one counter; a click made while
// the server is down is delivered once, after the component re-joined the restarted server;
// a click queued on a page that is then reloaded is delivered once into the resumed session;
// a duplicated tab takes the component's session over and the original starts its own; a
// refused token is replaced once by a fresh one from the demo's `/token/counter`, with the
// queued click delivered once; when that fails too, it ends in a `bad_token` error, without
// retrying.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  ChatServer,
  counter,
  counterHistory,
  freePort,
  launchBrowser,
  openCounter,
  sleep,
  until,
  waitCounter,
  waitCounterDown,
  waitCounterTransport,
  waitPending,
  waitTransport,
} from "./support.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Clicks the counter's button and waits until the server's answer shows `value`. */
async function increment(page, value) {
  await page.click("#increment");
  await waitCounter(page, value);
}

/** The session the page stored for its counter component. */
function storedSession(page) {
  return page.evaluate(() => {
    const [, saved] = Object.entries(sessionStorage).find(([key]) => key.includes(":mux:counter:")) ?? [];
    return saved ? JSON.parse(saved).session : null;
  });
}

/** The frames of the last socket in `frames` (`recordMuxFrames`), liveness probes left out. */
function lastSocket(frames) {
  const last = Math.max(...frames.map((f) => f.socket));
  return frames.filter((f) => f.socket === last && f.frame.type !== "hello");
}

/** Checks the order on a socket: the component's join goes first, resuming `session`, and
 * its one queued message only after the server welcomed it. */
function assertJoinedThenSent(onSocket, session) {
  const trace = JSON.stringify(onSocket);
  const sent = onSocket.filter((f) => f.dir === "sent").map((f) => f.frame);
  assert.equal(sent[0]?.type, "join", trace);
  assert.equal(sent[0].module, "counter");
  assert.equal(sent[0].session, session, "the join resumes the stored session");
  assert.ok(sent[0].after > 0, "from the last value it saw");
  const msgs = sent.filter((f) => f.type === "msg");
  assert.deepEqual(msgs.map((f) => [f.id, f.payload]), [[sent[0].id, { kind: "Increment" }]], "sent once");
  const welcome = onSocket.findIndex((f) => f.dir === "received" && f.frame.type === "welcome");
  const msg = onSocket.findIndex((f) => f.dir === "sent" && f.frame.type === "msg");
  assert.ok(welcome >= 0 && welcome < msg, `welcomed before the message is sent: ${trace}`);
  return onSocket[welcome].frame;
}

test("two pages show one counter", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const a = await openCounter(browser, server);
    const b = await openCounter(browser, server);
    // A fresh server counts from 0.
    await waitCounter(a, 0);
    await waitCounter(b, 0);

    await increment(a, 1);
    await waitCounter(b, 1);
    await increment(b, 2);
    await waitCounter(a, 2);
    await increment(a, 3);
    await waitCounter(b, 3);
    // A click handled twice would show up in this time.
    await sleep(500);
    const settled = { value: "3", pending: 0, transport: "connected", problem: "" };
    assert.deepEqual(await counter(a), settled);
    assert.deepEqual(await counter(b), settled);
    assert.deepEqual(await counterHistory(a), ["", "0", "1", "2", "3"]);
    await a.context().close();
    await b.context().close();
  } finally {
    await server.kill();
  }
});

test("a click while the server is down is delivered once, after the re-join", { timeout: 90_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const frames = [];
    const a = await openCounter(browser, server, { frames });
    await waitCounter(a, 0);
    for (const value of [1, 2, 3]) await increment(a, value);
    const session = await storedSession(a);
    assert.match(session, /^[0-9a-f]{32}$/, "the component's session is stored");

    await server.kill();
    await waitCounterDown(a);
    await a.click("#increment");
    await waitPending(a, 1);
    const waiting = await counter(a);
    assert.equal(waiting.value, "3", "the value shown is the server's, not a guess");
    assert.equal(waiting.pending, 1, "the click is shown as waiting");
    assert.notEqual(waiting.transport, "connected");

    // The restarted server has forgotten the counter and the session: it counts from 0, so
    // the click, delivered once, makes it 1 (lost: 0; twice: 2).
    await server.start();
    await waitCounterTransport(a, "connected");
    await waitCounter(a, 1);
    await sleep(1000);
    assert.deepEqual(await counter(a), { value: "1", pending: 0, transport: "connected", problem: "" });
    const shown = await counterHistory(a);
    // "": the old session's value is dropped when the server says it has no such session.
    assert.deepEqual(shown.slice(shown.lastIndexOf("3")), ["3", "", "0", "1"], `shown: ${shown}`);

    const c = await openCounter(browser, server);
    await waitCounter(c, 1);

    const welcome = assertJoinedThenSent(lastSocket(frames), session);
    assert.equal(welcome.resumed, false, "the restarted server had no such session");
    assert.notEqual(await storedSession(a), session);
    await a.context().close();
    await c.context().close();
  } finally {
    await server.kill();
  }
});

test("a click queued before a reload is delivered once into the resumed session", { timeout: 90_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const context = await browser.newContext();
    // This context's mux sockets go through here: their frames are recorded, and while
    // `blocked` none reaches the server (the page itself still loads).
    let blocked = false;
    const frames = [];
    const open = [];
    await context.routeWebSocket(/\/omni\/mux/, (ws) => {
      if (blocked) {
        ws.close({ code: 1013, reason: "blocked by the test" });
        return;
      }
      const socket = open.length + 1;
      const upstream = ws.connectToServer();
      open.push({ ws, upstream });
      ws.onMessage((text) => {
        frames.push({ socket, dir: "sent", frame: JSON.parse(text) });
        upstream.send(text);
      });
      upstream.onMessage((text) => {
        frames.push({ socket, dir: "received", frame: JSON.parse(text) });
        ws.send(text);
      });
    });
    const a = await context.newPage();
    a.on("pageerror", (err) => console.error(`page error: ${err.message}`));
    await a.goto(`${server.url}/`);
    await waitCounter(a, 0);
    await increment(a, 1);
    const session = await storedSession(a);
    assert.match(session, /^[0-9a-f]{32}$/);

    blocked = true;
    for (const { ws, upstream } of open) {
      upstream.close();
      ws.close({ code: 1001, reason: "dropped by the test" });
    }
    await waitCounterDown(a);
    await a.click("#increment");
    await waitPending(a, 1);

    await a.reload();
    await waitPending(a, 1);
    await sleep(500);
    const reloaded = await counter(a);
    assert.equal(reloaded.pending, 1, "the reloaded page still has the click waiting");
    assert.equal(reloaded.value, "", "and no value from a server it has not reached");
    assert.notEqual(reloaded.transport, "connected");

    // Another page sees that the server has not had the click.
    const b = await openCounter(browser, server);
    await waitCounter(b, 1);

    const before = frames.length;
    blocked = false;
    await waitCounterTransport(a, "connected");
    await waitCounter(a, 2);
    await waitCounter(b, 2);
    await sleep(1000);
    assert.equal((await counter(a)).value, "2");
    assert.equal((await counter(b)).value, "2");

    const welcome = assertJoinedThenSent(lastSocket(frames.slice(before)), session);
    assert.equal(welcome.resumed, true, "the server resumed the component's session");
    assert.equal(welcome.session, session);
    await context.close();
    await b.context().close();
  } finally {
    await server.kill();
  }
});

test("a duplicated tab takes the session over; the original starts its own", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const framesA = [];
    const a = await openCounter(browser, server, { frames: framesA });
    await waitCounter(a, 0);
    const session = await storedSession(a);
    // A duplicated tab starts with a copy of the original's sessionStorage.
    const copy = await a.evaluate(() => JSON.stringify(Object.entries(sessionStorage)));
    const framesB = [];
    const b = await openCounter(browser, server, {
      frames: framesB,
      before: `for (const [key, value] of ${copy}) sessionStorage.setItem(key, value);`,
    });
    await waitCounter(b, 0);
    await waitCounterTransport(a, "connected");
    // Two tabs that kept taking one session from each other would show up in this time.
    await sleep(2000);

    const joins = (frames) => frames.filter((f) => f.dir === "sent" && f.frame.type === "join").map((f) => f.frame);
    assert.deepEqual(joins(framesB).map((f) => f.session), [session], "the copy resumes the session");
    assert.deepEqual(joins(framesA).map((f) => f.session), [undefined, undefined], "the original starts a new one, once");
    assert.equal(framesA.filter((f) => f.frame.type === "left").length, 1);
    assert.equal(await storedSession(b), session);
    assert.notEqual(await storedSession(a), session);

    await increment(a, 1);
    await waitCounter(b, 1);
    await increment(b, 2);
    await waitCounter(a, 2);
    for (const page of [a, b]) {
      assert.deepEqual(await counter(page), { value: "2", pending: 0, transport: "connected", problem: "" });
    }
    await a.context().close();
    await b.context().close();
  } finally {
    await server.kill();
  }
});

/** Runs in the page before its scripts: breaks the counter's token (the claims part, so the
 * signature no longer matches) and keeps the original in `window.__token`. */
function tamperToken() {
  new MutationObserver((_, observer) => {
    const root = document.querySelector('[data-omni-module="counter"]');
    if (!root) return;
    observer.disconnect();
    const token = root.dataset.omniToken;
    window.__token = token;
    root.dataset.omniToken = (token[0] === "x" ? "y" : "x") + token.slice(1);
  }).observe(document, { childList: true, subtree: true });
}

/** Runs in the page before its scripts: the demo's token endpoint refuses, so a refused join
 * cannot be refreshed. Counts the page's asks in `window.__tokenAsks`. */
function refuseFreshTokens() {
  const fetch = window.fetch;
  window.__tokenAsks = 0;
  window.fetch = (url, ...rest) => {
    if (!String(url).startsWith("/token/")) return fetch(url, ...rest);
    window.__tokenAsks++;
    return Promise.resolve(new Response("", { status: 503 }));
  };
}

test("a refused token is refreshed once from the demo's token endpoint", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const frames = [];
    const page = await openCounter(browser, server, { before: tamperToken, connected: false, frames });
    // A click made before the join goes through waits in the queue.
    await page.click("#increment");
    await waitCounterTransport(page, "connected");
    await waitCounter(page, 1);
    const joins = frames.filter((f) => f.dir === "sent" && f.frame.type === "join").map((f) => f.frame.token);
    const tampered = await page.evaluate(() => document.getElementById("counter").dataset.omniToken);
    assert.equal(joins.length, 2, "the refused join, then one with a fresh token");
    assert.equal(joins[0], tampered);
    assert.notEqual(joins[1], tampered);
    const increments = frames.filter((f) => f.dir === "sent" && f.frame.type === "msg");
    assert.equal(increments.length, 1, "the queued click went once, after the second join");
    assert.ok(frames.indexOf(increments[0]) > frames.findLastIndex((f) => f.frame.type === "join"));
    await page.context().close();
  } finally {
    await server.kill();
  }
});

test("a tampered token shows bad_token, and is not retried", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const frames = [];
    const page = await openCounter(browser, server, {
      before: [tamperToken, refuseFreshTokens],
      connected: false,
      frames,
    });
    await waitCounterTransport(page, "error");
    const refused = await counter(page);
    assert.match(refused.problem, /^bad_token: /);
    assert.equal(refused.value, "", "no value from a refused join");
    assert.equal(await page.evaluate(() => document.getElementById("counter").dataset.error), "bad_token");

    // The chat beside it, on its own socket, is untouched.
    await waitTransport(page, "connected");

    await page.click("#increment");
    await sleep(3000);
    assert.deepEqual(await counter(page), refused, "nothing changes after the refusal");
    const sent = frames.filter((f) => f.dir === "sent" && f.frame.type !== "hello").map((f) => f.frame);
    const token = await page.evaluate(() => document.getElementById("counter").dataset.omniToken);
    assert.equal(sent.length, 1, "one join, no retry");
    const { client, ...join } = sent[0];
    assert.deepEqual(join, { type: "join", id: "counter", module: "counter", token, topics: {} });
    assert.match(client, /^[0-9a-f]{32}$/, "the component names itself");
    assert.equal(await page.evaluate(() => window.__tokenAsks), 1, "one fresh token asked for");

    // The token as the server signed it works, and only for its own module.
    const joins = await page.evaluate(async () => {
      const { mux } = await import("/omni/omni.js");
      const widgets = mux("/omni", { storage: null });
      const until = async (condition, what) => {
        const deadline = Date.now() + 20_000;
        while (!condition()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      const watch = (component) => {
        const seen = { states: [], values: [] };
        component.on("state", (state) => seen.states.push(state.state === "error" ? state.code : state.state));
        component.on("message", (payload) => seen.values.push(payload.data));
        return seen;
      };
      const component = widgets.join("good", "counter", window.__token);
      const good = watch(component);
      const otherModule = watch(widgets.join("other", "chat", window.__token));
      const noModule = watch(widgets.join("none", "no-such-module", window.__token));
      await until(() => good.values.length > 0, "the good join's value");
      await until(() => otherModule.states.length > 1, "the answer to the join of another module");
      await until(() => noModule.states.length > 1, "the answer to the join of no module");
      // Leaving ends the session: the same id joined again gets a new one.
      const first = component.session;
      component.leave();
      let sendAfterLeave = "accepted";
      try {
        component.send({ kind: "Increment" });
      } catch (err) {
        sendAfterLeave = err.message;
      }
      window.__widgets = { widgets, until, watch };
      return { good, otherModule, noModule, sendAfterLeave, first };
    });
    // The server may answer a join of an id before its `left` for the leave of that id that
    // came first, and omni.js takes frames for an id as the left component's until that
    // `left`: join again only once it arrived.
    await until(
      () => frames.some((f) => f.dir === "received" && f.frame.type === "left" && f.frame.id === "good"),
      "the server's `left` for the good component",
    );
    const rejoin = await page.evaluate(async () => {
      const { widgets, until, watch } = window.__widgets;
      const again = widgets.join("good", "counter", window.__token);
      const rejoined = watch(again);
      await until(() => rejoined.values.length > 0, "the rejoined component's value");
      // A refused join retried would show here: the first retry starts within 375 ms.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      widgets.close();
      return { rejoined, session: again.session };
    });
    const outcome = {
      ...joins,
      rejoined: rejoin.rejoined,
      sessions: { first: joins.first, again: rejoin.session },
    };
    const trace = JSON.stringify(outcome);
    assert.deepEqual(outcome.good.states, ["connecting", "connected", "disconnected"], trace);
    assert.deepEqual(outcome.good.values, [0]);
    assert.match(outcome.sendAfterLeave, /closed/);
    assert.deepEqual(outcome.rejoined.states.slice(0, 2), ["connecting", "connected"], trace);
    assert.deepEqual(outcome.rejoined.values, [0]);
    assert.match(outcome.sessions.again, /^[0-9a-f]{32}$/);
    assert.notEqual(outcome.sessions.again, outcome.sessions.first, "a left session is not resumed");
    assert.deepEqual(outcome.otherModule, { states: ["connecting", "bad_token"], values: [] });
    assert.deepEqual(outcome.noModule, { states: ["connecting", "unknown_module"], values: [] });
    await page.context().close();
  } finally {
    await server.kill();
  }
});
