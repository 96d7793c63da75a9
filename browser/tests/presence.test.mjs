// Presence in the chat demo: each page shows who is in the room by name (`#people`), two tabs
// under one name as one name ×2; a page whose connection drops and resumes its session keeps
// its list and hears no one leave; a closed page says goodbye and leaves the others' lists
// within the server's linger (2 s), long before its session's grace (10 s, as the tests start
// the demo) would run out, while a reloaded page resumes within it and never leaves, over
// WebSocket and SSE. And omni.js on its own: against the real server (a cut
// socket that resumes makes no presence event), and against a scripted socket (a list from a
// state, then diffs, idempotent; only changes reported; a new session drops every list; a
// mux component's lists; `rejected` answers a message).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  ChatServer,
  freePort,
  launchBrowser,
  named,
  openChat,
  people,
  peopleHistory,
  sleep,
  until,
  waitDown,
  waitOnline,
  waitPeople,
  waitTransport,
} from "./support.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Runs in the page before its scripts: `window.__dropConnections()` cuts the page's omni
 * connections that are up (its `/omni/ws` sockets, its `/omni/sse` streams), as a network
 * would; the client then reconnects and resumes its session. */
function dropSwitch() {
  const live = new Set();
  const RealWebSocket = window.WebSocket;
  window.WebSocket = class extends RealWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      if (new URL(url, location.href).pathname === "/omni/ws") {
        live.add(this);
        this.addEventListener("close", () => live.delete(this));
      }
    }
  };
  const realFetch = window.fetch;
  window.fetch = function (input, init = {}) {
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    if (url.pathname !== "/omni/sse") return realFetch.call(this, input, init);
    const cut = new AbortController();
    init.signal?.addEventListener("abort", () => cut.abort(init.signal.reason));
    const entry = { abort: () => cut.abort(new TypeError("dropped (test)")) };
    live.add(entry);
    return realFetch.call(this, input, { ...init, signal: cut.signal });
  };
  window.__dropConnections = () => {
    for (const connection of [...live]) {
      if (connection instanceof RealWebSocket) connection.close();
      else connection.abort();
    }
    live.clear();
  };
}

test("names in #people, two tabs under one name, a rename, a closed page leaves", { timeout: 120_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const a = await openChat(browser, server, "ws", { before: named("ann") });
    const b = await openChat(browser, server, "ws", { before: named("bob") });
    await waitPeople(a, ["ann", "bob"]);
    await waitPeople(b, ["ann", "bob"]);

    const c = await openChat(browser, server, "ws", { before: named("ann") });
    for (const page of [a, b, c]) await waitPeople(page, ["ann ×2", "bob"]);
    assert.equal(await a.evaluate(() => document.querySelector('#people li[data-key="ann"]').dataset.count), "2");
    await waitOnline(a, 3);

    // Within the grace the session may come back, so it is still listed; then it leaves.
    await c.context().close();
    await waitPeople(a, ["ann", "bob"]);
    await waitPeople(b, ["ann", "bob"]);

    // A new name replaces the old one.
    await b.fill("#author", "bea");
    await b.dispatchEvent("#author", "change");
    await waitPeople(a, ["ann", "bea"]);
    await waitPeople(b, ["ann", "bea"]);

    await b.context().close();
    await waitPeople(a, ["ann"]);
    await waitOnline(a, 1);
    await a.context().close();
  } finally {
    await server.kill();
  }
});

for (const transport of ["ws", "sse"]) {
  test(`a dropped connection that resumes keeps the list, with no one leaving (${transport})`, { timeout: 120_000 }, async () => {
    const server = new ChatServer(await freePort());
    await server.start();
    try {
      const frames = [];
      const a = await openChat(browser, server, transport, { before: [dropSwitch, named("ann")], frames });
      const b = await openChat(browser, server, transport, { before: named("bob") });
      await waitPeople(a, ["ann", "bob"]);
      await waitPeople(b, ["ann", "bob"]);
      const mark = frames.reduce((last, f) => Math.max(last, f.socket), 0);
      const shownBefore = [(await peopleHistory(a)).length, (await peopleHistory(b)).length];

      await a.evaluate(() => window.__dropConnections());
      await waitDown(a);
      await waitTransport(a, "connected");
      // The list comes again on the new connection; a diff would follow within 50 ms.
      const back = () => frames.filter((f) => f.socket > mark && f.dir === "received").map((f) => f.frame);
      for (let i = 0; i < 100 && !back().some((f) => f.type === "presence_state"); i++) await sleep(50);
      await sleep(1000);

      const trace = JSON.stringify(back());
      assert.equal(back()[0]?.type, "welcome", trace);
      assert.equal(back()[0].resumed, true, "the session was resumed");
      assert.ok(back().some((f) => f.type === "presence_state" && f.topic === "room"), `the list came again: ${trace}`);
      for (const [i, page] of [a, b].entries()) {
        const shown = await peopleHistory(page);
        assert.deepEqual(shown.slice(shownBefore[i] - 1), ["ann, bob"], "no one left or came back, not even for a moment");
      }
      await a.context().close();
      await b.context().close();
    } finally {
      await server.kill();
    }
  });
}

for (const transport of ["ws", "sse"]) {
  test(`a closed page leaves at once, a reloaded one not at all (${transport})`, { timeout: 120_000 }, async () => {
    const server = new ChatServer(await freePort());
    await server.start();
    try {
      const frames = [];
      const a = await openChat(browser, server, transport, { before: named("ann") });
      const b = await openChat(browser, server, transport, { before: named("bob"), frames });
      await waitPeople(a, ["ann", "bob"]);
      await waitPeople(b, ["ann", "bob"]);
      const shown = (await peopleHistory(a)).length;
      const welcomes = () => frames.filter((f) => f.frame.type === "welcome").map((f) => f.frame);

      // A reload: the old page goes away saying so, the new one resumes its session within
      // the linger. Past the linger (when a session it had let go would have ended) ann's
      // page has still seen nobody leave or come back.
      await b.reload();
      await waitTransport(b, "connected");
      await until(() => welcomes().length === 2, "the reloaded page's welcome");
      const [first, again] = welcomes();
      assert.equal(again.session, first.session, "the reloaded page resumed its session");
      assert.equal(again.resumed, true);
      await waitPeople(b, ["ann", "bob"]);
      await sleep(3000);
      assert.deepEqual((await peopleHistory(a)).slice(shown - 1), ["ann, bob"], "no one left or came back");

      // Closed, the page leaves within the linger and the time to notice its connection go;
      // only a dropped connection waits out the grace (10 s).
      const closed = Date.now();
      await b.close();
      await a
        .waitForFunction(
          () => [...document.querySelectorAll("#people li")].map((li) => li.textContent).join(", ") === "ann",
          null,
          { timeout: 5000, polling: 50 },
        )
        .catch(async () => {
          throw new Error(`bob still listed 5 s after his page closed: [${await people(a)}]`);
        });
      const took = Date.now() - closed;
      assert.deepEqual((await peopleHistory(a)).slice(shown - 1), ["ann, bob", "ann"], `left after ${took} ms`);
      await a.context().close();
      await b.context().close();
    } finally {
      await server.kill();
    }
  });
}

test("omni.js against the server: a cut socket that resumes makes no presence event", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
    // A document of the server's origin that runs no client of its own.
    await page.goto(`${server.url}/omni/omni.js`);
    const run = await page.evaluate(async () => {
      const sockets = [];
      const RealWebSocket = window.WebSocket;
      window.WebSocket = class extends RealWebSocket {
        constructor(url, protocols) {
          super(url, protocols);
          sockets.push(this);
        }
      };
      const { connect } = await import("/omni/omni.js");
      const until = async (condition, what) => {
        const deadline = Date.now() + 20_000;
        while (!condition()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      const client = connect("/omni", { storage: null, backoff: { base: 50, cap: 50 } });
      const events = [];
      const states = [];
      client.on("presence", (event) => events.push(event));
      client.on("state", (state) => states.push(state.state));
      await until(() => states.includes("connected"), "connected");
      client.send({ kind: "SetName", data: "cy" });
      await until(() => client.presence("room").cy?.length === 1, "cy in the list");
      await until(() => client.presence("room").anonymous === undefined, "anonymous gone");
      const session = client.session;
      const listBefore = client.presence("room");
      const seen = events.length;
      const statesSeen = states.length;

      sockets.at(-1).close();
      await until(() => states.slice(statesSeen).includes("connected"), "reconnected");
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const result = {
        sockets: sockets.length,
        session,
        sessionAfter: client.session,
        eventsBefore: events.slice(0, seen),
        eventsAfter: events.slice(seen),
        listBefore,
        listAfter: client.presence("room"),
        sameList: client.presence("room") === listBefore,
        states,
      };
      client.close();
      return result;
    });
    const trace = JSON.stringify(run);
    assert.equal(run.sockets, 2, trace);
    assert.equal(run.sessionAfter, run.session, "the session was resumed");
    assert.deepEqual(run.eventsAfter, [], trace);
    assert.ok(run.sameList, "the list held is the same object");
    assert.deepEqual(Object.keys(run.listBefore), ["cy"]);
    assert.deepEqual(run.listAfter, run.listBefore);
    assert.equal(run.eventsBefore.filter((e) => e.joins.cy).length, 1, trace);
  } finally {
    await context.close();
    await server.kill();
  }
});

test("omni.js against a scripted socket: the list, its changes, a new session, a component", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
    await page.goto(`${server.url}/omni/omni.js`);
    const run = await page.evaluate(async () => {
      const sockets = [];
      // Stands in for the server: the test says what arrives, and reads what was sent.
      class ScriptedSocket {
        static CONNECTING = 0;
        static OPEN = 1;
        static CLOSING = 2;
        static CLOSED = 3;
        constructor(url) {
          this.url = url;
          this.sent = [];
          this.readyState = 0;
          this.bufferedAmount = 0;
          sockets.push(this);
          setTimeout(() => {
            this.readyState = 1;
            this.onopen?.();
          }, 0);
        }
        send(text) {
          this.sent.push(JSON.parse(text));
        }
        close() {
          if (this.readyState === 3) return;
          this.readyState = 3;
          setTimeout(() => this.onclose?.({ code: 1000, reason: "" }), 0);
        }
        frame(frame) {
          this.onmessage?.({ data: JSON.stringify(frame) });
        }
        drop() {
          this.readyState = 3;
          this.onclose?.({ code: 1006, reason: "" });
        }
      }
      globalThis.WebSocket = ScriptedSocket;
      const { connect, mux } = await import("/omni/omni.js");
      const until = async (condition) => {
        for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
        if (!condition()) throw new Error(`timed out: ${condition}`);
      };
      const e = (ref, meta = {}) => ({ ref, meta });
      const S1 = "5f0c1a2b3c4d5e6f708192a3b4c5d6e7";
      const S2 = "90aa1a2b3c4d5e6f708192a3b4c5d6e7";

      const client = connect("/omni", { storage: null, backoff: { base: 10, cap: 10, jitter: 0 } });
      const events = [];
      const states = [];
      client.on("presence", (event) => events.push(structuredClone(event)));
      client.on("state", (state) => states.push(state));
      const marks = {};
      const mark = (name) => (marks[name] = events.length);

      await until(() => sockets[0]?.readyState === 1);
      const s1 = sockets[0];
      s1.frame({ type: "welcome", session: S1, seq: 0, resumed: false });
      mark("state");
      s1.frame({ type: "presence_state", topic: "room", state: { ann: [e("a1", { tab: 1 })], bob: [e("b1")] } });
      mark("diff");
      s1.frame({ type: "presence_diff", topic: "room", joins: { ann: [e("a2", { tab: 2 })] }, leaves: { bob: [e("b1")] } });
      const afterDiff = client.presence("room");
      mark("again");
      s1.frame({ type: "presence_diff", topic: "room", joins: { ann: [e("a2", { tab: 2 })] }, leaves: { bob: [e("b1")] } });
      const afterAgain = client.presence("room");
      s1.frame({ type: "presence_state", topic: "lobby", state: { cy: [e("c1")], ["__proto__"]: [e("p1")] } });
      const frozen = [
        Object.isFrozen(afterDiff),
        Object.isFrozen(afterDiff.ann),
        Object.isFrozen(afterDiff.ann[0]),
        Object.isFrozen(afterDiff.ann[0].meta),
      ];
      const lobbyKeys = Object.keys(client.presence("lobby"));
      const nowhere = client.presence("nowhere");
      mark("bad");
      s1.frame({ type: "presence_state", topic: "room" });
      s1.frame({ type: "presence_diff", topic: "room", joins: { ann: [{ meta: 1 }] } });
      const errors = states.filter((s) => s.state === "error").map((s) => s.error);

      // A rejected message is answered: it leaves the queue, and `rejected` says why; the
      // connection's state is not touched.
      const refusals = [];
      client.on("rejected", (refusal) => refusals.push(refusal));
      const statesBefore = states.length;
      const ref = client.send({ kind: "SetName", data: "" });
      s1.frame({ type: "error", code: "rejected", message: "a name is 1 to 40 characters", ref });
      const rejected = refusals.at(-1);
      const statesOnRefusal = states.length - statesBefore;
      const pendingAfterRejected = client.pending().length;

      // A resumed session is sent the lists again: unchanged, nothing is reported.
      s1.drop();
      await until(() => sockets[1]?.readyState === 1);
      const s2 = sockets[1];
      mark("resumed");
      s2.frame({ type: "welcome", session: S1, seq: 0, resumed: true });
      s2.frame({ type: "presence_state", topic: "room", state: { ann: [e("a1", { tab: 1 }), e("a2", { tab: 2 })] } });
      s2.frame({ type: "presence_state", topic: "lobby", state: { ["__proto__"]: [e("p1")], cy: [e("c1")] } });
      const sameObject = client.presence("room") === afterAgain;
      mark("changed");
      s2.frame({ type: "presence_state", topic: "room", state: { ann: [e("a2", { tab: 2 })], dee: [e("d1")] } });

      // A new session: every list held leaves.
      s2.drop();
      await until(() => sockets[2]?.readyState === 1);
      mark("fresh");
      sockets[2].frame({ type: "welcome", session: S2, seq: 0, resumed: false });
      const afterFresh = { room: client.presence("room"), lobby: client.presence("lobby") };
      client.close();

      // A mux component keeps lists of its own, from the frames that name it.
      const widgets = mux("/omni", { storage: null });
      const component = widgets.join("c1", "chat", "token");
      const other = widgets.join("c2", "chat", "token");
      const componentEvents = [];
      component.on("presence", (event) => componentEvents.push(structuredClone(event)));
      const componentStates = [];
      component.on("state", (state) => componentStates.push(state));
      await until(() => sockets[3]?.sent.length === 2);
      const m = sockets[3];
      m.frame({ type: "joined", id: "c1" });
      m.frame({ type: "welcome", id: "c1", session: S1, seq: 0, resumed: false });
      m.frame({ type: "joined", id: "c2" });
      m.frame({ type: "welcome", id: "c2", session: S2, seq: 0, resumed: false });
      m.frame({ type: "presence_state", id: "c1", topic: "room", state: { ann: [e("a1")] } });
      m.frame({ type: "presence_diff", id: "c1", topic: "room", joins: { bob: [e("b1")] } });
      const componentRefusals = [];
      component.on("rejected", (refusal) => componentRefusals.push(refusal));
      const componentRef = component.send({ kind: "SetName", data: "" });
      m.frame({ type: "error", id: "c1", code: "rejected", message: "no", ref: componentRef });
      const result = {
        events,
        marks,
        afterDiff,
        afterAgain,
        frozen,
        lobbyKeys,
        nowhere,
        errors,
        rejected,
        statesOnRefusal,
        pendingAfterRejected,
        sameObject,
        afterFresh,
        componentEvents,
        componentList: component.presence("room"),
        otherList: other.presence("room"),
        componentRejected: componentRefusals.at(-1),
        componentStatesAfter: componentStates.at(-1),
        componentPending: component.pending().length,
      };
      widgets.close();
      return result;
    });

    const { events, marks } = run;
    const between = (from, to) => events.slice(marks[from], marks[to] ?? events.length);
    const trace = JSON.stringify(events);
    const e = (ref, meta = {}) => ({ ref, meta });
    assert.equal(marks.state, 0, "a first welcome drops nothing");
    assert.deepEqual(between("state", "diff"), [
      {
        topic: "room",
        joins: { ann: [e("a1", { tab: 1 })], bob: [e("b1")] },
        leaves: {},
        list: { ann: [e("a1", { tab: 1 })], bob: [e("b1")] },
      },
    ]);
    assert.deepEqual(between("diff", "again"), [
      {
        topic: "room",
        joins: { ann: [e("a2", { tab: 2 })] },
        leaves: { bob: [e("b1")] },
        list: { ann: [e("a1", { tab: 1 }), e("a2", { tab: 2 })] },
      },
    ]);
    // Applied twice, the same diff changes nothing; it is still reported.
    assert.equal(between("again", "bad").filter((ev) => ev.topic === "room").length, 1, trace);
    assert.deepEqual(run.afterAgain, run.afterDiff);
    assert.deepEqual(run.frozen, [true, true, true, true]);
    assert.deepEqual(run.lobbyKeys.sort(), ["__proto__", "cy"], "a key is data, whatever its name");
    assert.deepEqual(run.nowhere, {});
    assert.deepEqual(run.errors, ["decode", "decode"], "malformed presence frames are decode errors");
    assert.deepEqual(run.rejected, { code: "rejected", message: "a name is 1 to 40 characters", ref: 1 });
    assert.equal(run.statesOnRefusal, 0, "a refusal answers the message; the connection's state is untouched");
    assert.equal(run.pendingAfterRejected, 0, "a rejected message is answered");

    assert.deepEqual(between("resumed", "changed"), [], "the same lists again are no news");
    assert.ok(run.sameObject, "and the list held is kept");
    assert.deepEqual(between("changed", "fresh"), [
      {
        topic: "room",
        joins: { dee: [e("d1")] },
        leaves: { ann: [e("a1", { tab: 1 })] },
        list: { ann: [e("a2", { tab: 2 })], dee: [e("d1")] },
      },
    ]);
    const dropped = between("fresh");
    assert.deepEqual(
      dropped.map((ev) => ev.topic),
      ["room", "lobby"],
      `a new session: every list leaves: ${trace}`,
    );
    assert.deepEqual(dropped[0], {
      topic: "room",
      joins: {},
      leaves: { ann: [e("a2", { tab: 2 })], dee: [e("d1")] },
      list: {},
    });
    assert.deepEqual(run.afterFresh, { room: {}, lobby: {} });

    assert.deepEqual(run.componentEvents.map((ev) => ev.list), [{ ann: [e("a1")] }, { ann: [e("a1")], bob: [e("b1")] }]);
    assert.deepEqual(run.componentList, { ann: [e("a1")], bob: [e("b1")] });
    assert.deepEqual(run.otherList, {}, "another component's frames are not its");
    assert.equal(run.componentRejected.code, "rejected");
    assert.equal(run.componentRejected.message, "no");
    assert.notEqual(run.componentStatesAfter?.state, "error", "a component's refusal is not a state");
    assert.equal(run.componentPending, 0);
  } finally {
    await context.close();
    await server.kill();
  }
});
