// Sequenced topics in omni.js. The chat room's messages are published on the topic `room`:
// a page that drops out (its connection cut, or reloaded while it cannot connect) and comes
// back is sent exactly the room messages it missed, numbered on from its stored cursor, and
// no snapshot; a page that holds no cursor yet still gets what it missed; a page whose cursor
// a restarted server cannot continue gets `reset` for the topic, then the snapshot. And omni.js on its own, against a scripted socket: duplicates
// dropped, a gap reconnects from the cursor, `reset` with a topic, the numbers kept exact.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  ChatServer,
  count,
  freePort,
  launchBrowser,
  offlineSwitch,
  openChat,
  say,
  setOffline,
  sleep,
  until,
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

/** The record omni.js stored for the page's chat client: session, lastSeq, topics, queue. */
function stored(page, transport) {
  return page.evaluate((transport) => {
    const entry = Object.entries(sessionStorage).find(
      ([key]) => key.startsWith("omni:") && key.endsWith(`/omni:${transport}`),
    );
    return entry ? JSON.parse(entry[1]) : null;
  }, transport);
}

/** The ids of the messages the page shows, in order. */
function shownIds(page) {
  return page.evaluate(() => [...document.querySelectorAll(".message")].map((li) => li.dataset.id));
}

/** The last connection recorded in `frames` (0 when none). */
function lastConnection(frames) {
  return frames.reduce((last, f) => Math.max(last, f.socket), 0);
}

/** The frames received on connections after `mark`, in order. */
function receivedAfter(frames, mark) {
  return frames.filter((f) => f.socket > mark && f.dir === "received").map((f) => f.frame);
}

for (const transport of ["ws", "sse"]) {
  for (const way of ["reload", "drop"]) {
    const name = `a page that comes back gets only the room messages it missed (${transport}, ${way})`;
    test(name, { timeout: 120_000 }, async () => {
      const server = new ChatServer(await freePort());
      await server.start();
      try {
        const a = await openChat(browser, server, transport);
        const frames = [];
        const b = await openChat(browser, server, transport, { before: offlineSwitch, frames });
        await waitOnline(a, 2);
        await waitOnline(b, 2);

        const first = await say(a, `before the break (${transport}, ${way})`);
        await waitStatus(b, first, "sent");
        const cursor = (await stored(b, transport)).topics.room;
        assert.ok(Number.isSafeInteger(cursor) && cursor > 1e15, `a topic number, stored: ${cursor}`);

        await setOffline(b, true);
        if (way === "reload") {
          // The same tab: its sessionStorage (session, cursor, messages shown) is kept.
          await b.reload();
        } else {
          await b.evaluate(() => window.__dropConnections());
          await waitDown(b);
        }
        const mark = lastConnection(frames);

        const missed = [];
        for (const n of ["one", "two", "three", "four"]) {
          missed.push(await say(a, `missed ${n} (${transport}, ${way})`));
        }
        for (const id of missed) await waitStatus(a, id, "sent");
        await sleep(300);
        assert.equal(await count(b, missed[0]), 0, "b is away");
        assert.equal(await count(b, first), 1, "b still shows what it had");

        await setOffline(b, false);
        await waitTransport(b, "connected");
        for (const id of missed) await waitStatus(b, id, "sent");
        // Late duplicates would show up in this time.
        await sleep(1000);
        assert.deepEqual(await shownIds(b), [first, ...missed], "every message, once, in order");

        const back = receivedAfter(frames, mark);
        const trace = JSON.stringify(back);
        assert.equal(back[0]?.type, "welcome", trace);
        assert.equal(back[0].resumed, true, "the session was resumed");
        const url = new URL(frames.find((f) => f.socket > mark).url);
        assert.equal(url.searchParams.get("session"), back[0].session);
        assert.deepEqual(JSON.parse(url.searchParams.get("topics")), { room: cursor }, "from the stored cursor");
        const topicMsgs = back.filter((f) => f.type === "msg" && f.topic !== undefined);
        assert.ok(topicMsgs.every((f) => f.topic === "room"), trace);
        assert.deepEqual(topicMsgs.map((f) => Object.keys(f.payload.data)).flat(), missed, "exactly the missed ones");
        assert.deepEqual(
          topicMsgs.map((f) => f.seq),
          missed.map((_, i) => cursor + 1 + i),
          "numbered on from the cursor, one by one",
        );
        assert.deepEqual(back.filter((f) => f.type === "reset"), [], "no reset");
        const upserts = back.filter((f) => f.type === "msg" && f.topic === undefined && f.payload.kind === "Upsert");
        assert.deepEqual(upserts, [], "no snapshot, no fetch");
        assert.equal((await stored(b, transport)).topics.room, cursor + missed.length);

        // Live messages follow the replay.
        const live = await say(a, `after the break (${transport}, ${way})`);
        await waitStatus(b, live, "sent");
        await sleep(300);
        assert.equal(await count(b, live), 1);
        const next = receivedAfter(frames, mark).filter((f) => f.type === "msg" && f.topic === "room").at(-1);
        assert.deepEqual(Object.keys(next.payload.data), [live]);
        assert.equal(next.seq, cursor + missed.length + 1);
        await a.context().close();
        await b.context().close();
      } finally {
        await server.kill();
      }
    });
  }
}

for (const transport of ["ws", "sse"]) {
  // The server resumes a session's topics only from a cursor: a page that has had nothing
  // of the room yet holds none, and its resumed session is sent nothing of what it missed.
  // The page fetches on connect until it holds one.
  test(`a page with no place in the room yet still gets what it missed (${transport})`, { timeout: 120_000 }, async () => {
    const server = new ChatServer(await freePort());
    await server.start();
    try {
      const a = await openChat(browser, server, transport);
      const frames = [];
      const b = await openChat(browser, server, transport, { before: offlineSwitch, frames });
      // Cut as soon as it is connected, often before its first fetch is answered: that fetch,
      // resent, is then only acknowledged (the server handled it, before the message below
      // existed), so the page must fetch anew.
      await b.evaluate(() => {
        sessionStorage.setItem("test:offline", "1");
        window.__dropConnections();
      });
      assert.deepEqual((await stored(b, transport)).topics, {}, "no room message yet");
      await waitDown(b);
      const mark = lastConnection(frames);
      const id = await say(a, `while b holds no cursor (${transport})`);
      await waitStatus(a, id, "sent");
      await setOffline(b, false);
      await waitTransport(b, "connected");
      await waitStatus(b, id, "sent");
      await sleep(500);
      assert.equal(await count(b, id), 1);
      const back = receivedAfter(frames, mark);
      assert.equal(back[0]?.resumed, true, `the session was resumed: ${JSON.stringify(back)}`);

      // Now it holds one: the next time it comes back, the room is replayed, not fetched.
      const later = await say(a, `b follows the room now (${transport})`);
      await waitStatus(b, later, "sent");
      const cursor = (await stored(b, transport)).topics.room;
      assert.ok(cursor > 1e15);
      await setOffline(b, true);
      await b.reload();
      const again = lastConnection(frames);
      const missed = await say(a, `missed after following (${transport})`);
      await waitStatus(a, missed, "sent");
      await setOffline(b, false);
      await waitStatus(b, missed, "sent");
      await sleep(500);
      assert.deepEqual(await shownIds(b), [id, later, missed]);
      const replayed = receivedAfter(frames, again).filter((f) => f.type === "msg");
      assert.deepEqual(
        replayed.map((f) => [f.topic, f.seq, Object.keys(f.payload.data)]),
        [["room", cursor + 1, [missed]]],
      );
      await a.context().close();
      await b.context().close();
    } finally {
      await server.kill();
    }
  });

  test(`a cursor a restarted server cannot continue: reset for the topic, then the snapshot (${transport})`, { timeout: 120_000 }, async () => {
    const server = new ChatServer(await freePort());
    await server.start();
    try {
      const a = await openChat(browser, server, transport);
      const frames = [];
      const b = await openChat(browser, server, transport, { frames });
      await waitOnline(b, 2);
      const old = [];
      for (const n of ["one", "two"]) old.push(await say(a, `before the restart ${n} (${transport})`));
      for (const id of old) await waitStatus(b, id, "sent");
      const cursor = (await stored(b, transport)).topics.room;
      const mark = lastConnection(frames);

      // The new process has lost the room's log and its messages (they are kept in memory),
      // and numbers the room afresh, above every number it gave before.
      await server.kill();
      await waitDown(b);
      await server.start();
      await waitTransport(a, "connected");
      await waitTransport(b, "connected");
      await until(
        () => receivedAfter(frames, mark).some((f) => f.type === "reset" && f.topic === "room"),
        "reset for the room",
      );
      const back = receivedAfter(frames, mark);
      const trace = JSON.stringify(back);
      const reset = back.findIndex((f) => f.type === "reset" && f.topic === "room");
      assert.ok(back[reset].seq > cursor, `the new numbering is above the old: ${trace}`);
      assert.ok(back.some((f) => f.type === "reset" && f.topic === undefined), "the session is gone too");
      const snapshot = back.slice(reset + 1).find((f) => f.type === "msg" && f.payload.kind === "Upsert");
      assert.equal(snapshot?.topic, undefined, `the snapshot follows, as a session message: ${trace}`);
      assert.deepEqual(snapshot.payload.data, {}, "the restarted server holds no message");

      // The page dropped what came from the old room: the server has none of it now.
      await b.waitForFunction(() => document.querySelectorAll(".message").length === 0, null, { timeout: 20_000 });
      // The stored cursor moves with the first message after the reset, not with the reset:
      // a page lost before the snapshot arrived asks for the reset, and the snapshot, again.
      assert.equal((await stored(b, transport)).topics.room, cursor);

      const fresh = await say(a, `after the restart (${transport})`);
      await waitStatus(b, fresh, "sent");
      await sleep(500);
      assert.deepEqual(await shownIds(b), [fresh]);
      const msg = receivedAfter(frames, mark).find((f) => f.type === "msg" && f.topic === "room");
      assert.equal(msg.seq, back[reset].seq + 1, "numbered on from the reset");
      assert.equal((await stored(b, transport)).topics.room, msg.seq);
      await a.context().close();
      await b.context().close();
    } finally {
      await server.kill();
    }
  });
}

test("omni.js against a scripted socket: topic order, gap, reset with a topic", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
    // Any document of the server's origin can import the client; this one runs no client.
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
      }
      globalThis.WebSocket = ScriptedSocket;
      const { connect } = await import("/omni/omni.js");

      const until = async (condition) => {
        for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
        if (!condition()) throw new Error(`timed out: ${condition}`);
      };
      const store = new Map();
      const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
      const saved = () => JSON.parse(store.get("k"));
      // A topic number as the server makes them: microseconds since the epoch.
      const T = 1763791200000017;
      const session = "5f0c1a2b3c4d5e6f708192a3b4c5d6e7";
      store.set("k", JSON.stringify({ session, lastSeq: 3, topics: { room: T }, nextRef: 1, queue: [] }));
      const options = { storage, queueKey: "k", protocol: "Msg", backoff: { base: 10, cap: 10, jitter: 0 } };
      const client = connect("/omni", options);
      const got = [];
      const states = [];
      client.on("message", (payload, frame) => got.push({ payload, frame }));
      client.on("state", (state) => states.push(state));

      await until(() => sockets[0]?.readyState === 1);
      const s1 = sockets[0];
      s1.frame({ type: "welcome", session, seq: 3, resumed: true });
      s1.frame({ type: "msg", seq: T + 1, payload: "a", topic: "room" });
      s1.frame({ type: "msg", seq: 4, payload: "s" });
      s1.frame({ type: "msg", seq: T + 1, payload: "duplicate", topic: "room" });
      s1.frame({ type: "msg", seq: T, payload: "older", topic: "room" });
      s1.frame({ type: "msg", seq: 900, payload: "x", topic: "other" });
      const beforeGap = saved();
      s1.frame({ type: "msg", seq: T + 3, payload: "past a gap", topic: "room" });

      await until(() => sockets[1]?.readyState === 1);
      const s2 = sockets[1];
      s2.frame({ type: "welcome", session, seq: 4, resumed: true });
      s2.frame({ type: "msg", seq: T + 2, payload: "b", topic: "room" });
      s2.frame({ type: "msg", seq: T + 3, payload: "c", topic: "room" });
      s2.frame({ type: "reset", seq: T + 100, topic: "room" });
      const stateAfterTopicReset = client.state;
      s2.frame({ type: "msg", seq: T + 101, payload: "d", topic: "room" });
      s2.frame({ type: "reset", seq: 0 });
      const afterSessionReset = saved();
      s2.frame({ type: "msg", seq: 1, payload: "e" });
      // Beyond 2^53 a number is no longer exact: refused, not taken as a cursor.
      s2.frame({ type: "msg", seq: 2 ** 53 + 2, payload: "inexact", topic: "room" });
      client.close();

      // A page loaded again with the same storage.
      const again = connect("/omni", options);
      await until(() => sockets.length === 3);
      again.close();
      return {
        T,
        session,
        urls: sockets.map((s) => s.url),
        sent: sockets.map((s) => s.sent),
        got,
        states,
        beforeGap,
        stateAfterTopicReset,
        afterSessionReset,
        final: saved(),
      };
    });

    const { T, session } = run;
    const [first, second, third] = run.urls.map((u) => new URL(u).searchParams);
    assert.equal(first.get("session"), session);
    assert.equal(first.get("after"), "3");
    assert.equal(first.get("topics"), `{"room":${T}}`, "the stored cursor, digit for digit");
    assert.deepEqual(run.sent[0], [{ type: "hello", protocol: "Msg" }], "no topics in hello: the URL has them");

    assert.deepEqual(run.got.map((g) => g.payload), ["a", "s", "x", "b", "c", "d", "e"]);
    assert.deepEqual(run.got[0].frame, { type: "msg", seq: T + 1, payload: "a", topic: "room" });
    assert.deepEqual(run.beforeGap.topics, { room: T + 1, other: 900 }, "the first of a topic starts it");
    assert.equal(run.beforeGap.lastSeq, 4, "topic messages leave the session's number alone");

    assert.equal(second.get("after"), "4");
    assert.equal(second.get("topics"), `{"room":${T + 1},"other":900}`, "the gap resumed from the cursor");
    const kinds = run.states.map((s) => s.state);
    assert.deepEqual(kinds, [
      "connecting",
      "connected",
      "disconnected",
      "reconnecting",
      "connecting",
      "connected",
      "topic_reset",
      "reset",
      "error",
      "disconnected",
    ]);
    assert.equal(run.states[8].error, "decode");
    assert.deepEqual(run.states[6], { state: "topic_reset", topic: "room" });
    assert.equal(run.stateAfterTopicReset.state, "connected", "the connection's state is unchanged");

    assert.equal(run.afterSessionReset.lastSeq, 0);
    assert.deepEqual(run.afterSessionReset.topics, { room: T + 101, other: 900 }, "kept through a session reset");
    assert.equal(run.final.lastSeq, 1);
    assert.equal(third.get("session"), session);
    assert.equal(third.get("after"), "1");
    assert.equal(third.get("topics"), `{"room":${T + 101},"other":900}`);
  } finally {
    await context.close();
    await server.kill();
  }
});
