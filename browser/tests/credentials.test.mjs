// omni.js credentials and connect hook, in the chat page's origin: the provider is asked before
// every connect and what it gives goes on the connection; a provider that throws, or a 401,
// is `unauthorized` and waits for `reconnect()` with the queue intact; the hook's messages
// reach the server before the queued ones after a server restart.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ChatServer, freePort, launchBrowser, sleep, until } from "./support.mjs";

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

/** A page of the chat's origin (for its `/omni/omni.js`), with nothing of its own running. */
async function blankPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  await page.goto(`${server.url}/omni/omni.js`);
  return { context, page };
}

/** Waits in the page until `window.client`'s state is `state`. */
async function waitState(page, state) {
  await page.waitForFunction((state) => window.client.state.state === state, state, {
    timeout: 20_000,
    polling: 50,
  });
}

/** Restarts the chat server: every connection drops, and its sessions are gone. */
async function restart() {
  await server.kill();
  await server.start();
}

for (const transport of ["ws", "sse"]) {
  test(`the provider is asked before every connect (${transport})`, { timeout: 90_000 }, async () => {
    const { context, page } = await blankPage();
    // What each connection attempt carried: the token in its URL, and its header if any.
    const seen = [];
    page.on("websocket", (ws) => {
      if (ws.url().includes("/omni/ws")) seen.push({ token: new URL(ws.url()).searchParams.get("token") });
    });
    page.on("request", (request) => {
      if (!request.url().includes("/omni/sse")) return;
      const token = new URL(request.url()).searchParams.get("token");
      seen.push({ token, header: request.headers().authorization });
    });
    await page.evaluate(async (transport) => {
      const { connect } = await import("/omni/omni.js");
      let issued = 0;
      window.client = connect("/omni", {
        transport,
        storage: null,
        backoff: { base: 50, cap: 200 },
        credentials: async () => {
          const token = `t${++issued}`;
          return { params: { token }, headers: { authorization: `Bearer ${token}` } };
        },
      });
      window.connects = 0;
      window.client.on("state", (state) => state.state === "connected" && window.connects++);
    }, transport);
    for (let round = 1; round <= 3; round++) {
      // (A new session's `reset` follows its `connected`: count the connects instead.)
      await page.waitForFunction((round) => window.connects === round, round, { timeout: 20_000, polling: 50 });
      if (round < 3) await restart();
    }
    assert.ok(seen.length >= 3, JSON.stringify(seen));
    const numbers = seen.map((s) => Number(s.token.slice(1)));
    assert.deepEqual(numbers, numbers.map((_, i) => i + 1), `a fresh token each time: ${JSON.stringify(seen)}`);
    if (transport === "sse") {
      for (const s of seen) assert.equal(s.header, `Bearer ${s.token}`);
    }
    await page.evaluate(() => window.client.close());
    await context.close();
  });

  test(`a provider that throws waits for reconnect() and keeps the queue (${transport})`, { timeout: 60_000 }, async () => {
    const { context, page } = await blankPage();
    let attempts = 0;
    page.on("websocket", (ws) => ws.url().includes("/omni/ws") && attempts++);
    page.on("request", (request) => request.url().includes("/omni/sse") && attempts++);
    await page.evaluate(async (transport) => {
      const { connect } = await import("/omni/omni.js");
      window.signedIn = false;
      window.states = [];
      window.acks = [];
      window.client = connect("/omni", {
        transport,
        storage: null,
        backoff: { base: 50, cap: 200 },
        credentials: () => {
          if (!window.signedIn) throw new Error("signed out");
          return { params: { token: "fresh" } };
        },
      });
      window.client.on("state", (state) => window.states.push(state));
      window.client.on("ack", (ref) => window.acks.push(ref));
      window.client.send({ kind: "FetchAll" });
    }, transport);
    await waitState(page, "unauthorized");
    await sleep(1000);
    const states = await page.evaluate(() => window.states);
    assert.deepEqual(
      states.map((s) => s.state),
      ["connecting", "unauthorized"],
      "no retry while signed out",
    );
    assert.match(states[1].reason, /signed out/);
    assert.equal(attempts, 0, "nothing reached the server");

    await page.evaluate(() => {
      window.client.send({ kind: "FetchAll" });
      window.signedIn = true;
      window.client.reconnect();
    });
    await waitState(page, "connected");
    await page.waitForFunction(() => window.acks.length >= 2, null, { timeout: 20_000 });
    await sleep(300);
    assert.deepEqual(await page.evaluate(() => window.acks), [1, 2], "the queue went once");
    assert.deepEqual(await page.evaluate(() => window.client.pending()), []);
    await page.evaluate(() => window.client.close());
    await context.close();
  });

  test(`the connect hook's messages go before the queue after a restart (${transport})`, { timeout: 90_000 }, async () => {
    const { context, page } = await blankPage();
    await page.evaluate(async (transport) => {
      const { connect } = await import("/omni/omni.js");
      const message = (id) => ({ kind: "Send", data: { id, author: "hook-test", text: id, status: "Sending", sent_at: 0 } });
      let greeted = 0;
      window.told = [];
      // The order the server handled this client's messages in: each `Send` is answered,
      // in handling order, by an `Upsert` of that one message.
      window.handled = [];
      window.client = connect("/omni", {
        transport,
        storage: null,
        backoff: { base: 50, cap: 200 },
        onConnect: (info) => {
          window.told.push(info);
          return [message(`hook-${++greeted}`)];
        },
      });
      window.client.on("message", (payload) => {
        if (payload.kind !== "Upsert") return;
        const ids = Object.keys(payload.data);
        if (ids.length === 1 && !window.handled.includes(ids[0])) window.handled.push(ids[0]);
      });
      window.send = (id) => window.client.send(message(id));
    }, transport);
    await waitState(page, "connected");
    await page.waitForFunction(() => window.handled.includes("hook-1"), null, { timeout: 20_000 });

    await server.kill();
    await page.waitForFunction(() => window.client.state.state !== "connected", null, { timeout: 20_000 });
    await page.evaluate(() => ["q-1", "q-2", "q-3"].forEach((id) => window.send(id)));
    await server.start();
    await page.waitForFunction(() => window.handled.includes("q-3"), null, { timeout: 20_000 });
    const handled = await page.evaluate(() => window.handled);
    const told = await page.evaluate(() => window.told);
    const hook = `hook-${told.length}`;
    assert.deepEqual(handled.slice(-4), [hook, "q-1", "q-2", "q-3"], JSON.stringify(handled));
    assert.equal(told[0].resumed, false);
    assert.equal(told.at(-1).resumed, false, "a restarted server has a new session");
    await page.evaluate(() => window.client.close());
    await context.close();
  });
}

test("a 401 on the event stream waits for reconnect() (sse)", { timeout: 60_000 }, async () => {
  const { context, page } = await blankPage();
  let refused = true;
  let streams = 0;
  await page.route((url) => url.pathname === "/omni/sse", (route) => {
    streams++;
    return refused ? route.fulfill({ status: 401, body: "sign in" }) : route.continue();
  });
  await page.evaluate(async () => {
    const { connect } = await import("/omni/omni.js");
    window.states = [];
    window.client = connect("/omni", { transport: "sse", storage: null, backoff: { base: 50, cap: 200 } });
    window.client.on("state", (state) => window.states.push(state.state));
  });
  await waitState(page, "unauthorized");
  await sleep(1000);
  assert.deepEqual(await page.evaluate(() => window.states), ["connecting", "disconnected", "unauthorized"]);
  assert.equal(streams, 1, "no retry storm");
  refused = false;
  await page.evaluate(() => window.client.reconnect());
  await waitState(page, "connected");
  await until(() => streams === 2, "one more stream");
  await page.evaluate(() => window.client.close());
  await context.close();
});

test("a mux component's hook goes between its join and its queue", { timeout: 60_000 }, async () => {
  const { context, page } = await blankPage();
  const sent = [];
  page.on("websocket", (ws) => {
    if (ws.url().includes("/omni/mux")) ws.on("framesent", ({ payload }) => sent.push(JSON.parse(payload)));
  });
  await page.evaluate(async () => {
    const { mux } = await import("/omni/omni.js");
    const token = await (await fetch("/token/counter")).text();
    window.widgets = mux("/omni", { storage: null });
    window.told = [];
    window.counter = window.widgets.join("c", "counter", token, {
      onConnect: (info) => {
        window.told.push(info.resumed);
        return [{ kind: "Increment" }];
      },
    });
    window.acks = [];
    window.counter.on("ack", (ref) => window.acks.push(ref));
    // Queued before the socket is up.
    window.counter.send({ kind: "Increment" });
  });
  await page.waitForFunction(() => window.acks.length === 2, null, { timeout: 20_000 });
  const frames = sent.filter((f) => f.type !== "hello").map((f) => [f.type, f.ref]);
  // The queued message took ref 1; the hook's, made at the welcome, ref 2 but goes first.
  assert.deepEqual(frames, [["join", undefined], ["msg", 2], ["msg", 1]]);
  assert.deepEqual(await page.evaluate(() => window.told), [false]);
  await page.evaluate(() => window.widgets.close());
  await context.close();
});
