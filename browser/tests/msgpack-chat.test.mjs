// The chat page and omni.js with the MessagePack codec (`?codec=msgpack`), against the chat
// server: every frame a binary message, a message confirmed as over JSON, a MessagePack page
// and a JSON page sharing messages and files byte for byte, a cut connection resumed with
// nothing lost or repeated (a queued file surviving a reload), the counter over a MessagePack
// mux, `POST /http` in MessagePack, and MessagePack over SSE refused.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  ChatServer,
  count,
  counter,
  freePort,
  launchBrowser,
  offlineSwitch,
  openChat,
  openCounter,
  say,
  setOffline,
  sleep,
  statuses,
  waitCounter,
  waitDown,
  waitOnline,
  waitStatus,
  waitTransport,
} from "./support.mjs";

/** The largest file the chat takes (`app::FILE_LIMIT`). */
const FILE_LIMIT = 64 * 1024;
const WAIT = 20_000;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Bytes of every value, in an order that is not a plain ramp. */
function someBytes(length, seed) {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + (i >> 8) + seed) % 256);
}

/** Shares `bytes` as file `name` through the page's file input. */
function shareFile(page, name, bytes) {
  return page.setInputFiles("#share", { name, mimeType: "application/octet-stream", buffer: Buffer.from(bytes) });
}

/** The bytes of the file `name` as the page shows it (its download link), once it does. */
async function fileBytes(page, name) {
  const selector = `#files li[data-name="${name}"] a`;
  await page.waitForSelector(selector, { timeout: WAIT });
  const href = await page.getAttribute(selector, "href");
  return new Uint8Array(Buffer.from(href.slice(href.indexOf(",") + 1), "base64"));
}

function fileCount(page, name) {
  return page.evaluate((name) => document.querySelectorAll(`#files li[data-name="${name}"]`).length, name);
}

/** The record omni.js stored for the page's chat client over ws. */
function stored(page) {
  return page.evaluate(() => {
    const entry = Object.entries(sessionStorage).find(([key]) => key.startsWith("omni:") && key.endsWith("/omni:ws"));
    return entry ? JSON.parse(entry[1]) : null;
  });
}

function shownIds(page) {
  return page.evaluate(() => [...document.querySelectorAll(".message")].map((li) => li.dataset.id));
}

test("a MessagePack page and a JSON page: binary frames, confirmed messages, files byte for byte", { timeout: 120_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const packedFrames = [];
    const jsonFrames = [];
    const a = await openChat(browser, server, "ws", { codec: "msgpack", frames: packedFrames });
    const b = await openChat(browser, server, "ws", { frames: jsonFrames });
    await waitOnline(a, 2);
    await waitOnline(b, 2);
    assert.equal(await a.textContent("#codec"), "msgpack");
    assert.equal(await b.textContent("#codec"), "json");

    const hello = await say(a, "hello in MessagePack");
    assert.ok(hello, "the message is shown at once");
    await waitStatus(a, hello, "sent");
    assert.deepEqual(await statuses(a, hello), ["sending", "sent"]);
    await waitStatus(b, hello, "sent");
    const reply = await say(b, "hello in JSON");
    await waitStatus(b, reply, "sent");
    await waitStatus(a, reply, "sent");
    for (const page of [a, b]) {
      assert.equal(await count(page, hello), 1);
      assert.equal(await count(page, reply), 1);
    }

    // A file from each, the JSON one at the limit (about 88 KiB of base64 in its frame).
    const fromA = someBytes(40_000, 1);
    await shareFile(a, "from-a.bin", fromA);
    for (const page of [a, b]) assert.deepEqual(await fileBytes(page, "from-a.bin"), fromA);
    const fromB = someBytes(FILE_LIMIT, 2);
    await shareFile(b, "from-b.bin", fromB);
    for (const page of [a, b]) assert.deepEqual(await fileBytes(page, "from-b.bin"), fromB);
    assert.equal(await a.getAttribute('#files li[data-name="from-a.bin"]', "data-size"), "40000");

    // Larger: the page says so and sends nothing.
    await shareFile(a, "too-big.bin", someBytes(FILE_LIMIT + 1, 3));
    await a.waitForFunction(() => document.getElementById("problem").textContent.includes("larger than 64 KiB"));
    await sleep(300);
    for (const page of [a, b]) assert.equal(await fileCount(page, "too-big.bin"), 0);

    // On the wire: every frame of the MessagePack page binary, every frame of the other text.
    assert.ok(packedFrames.length > 5 && packedFrames.every((f) => f.binary), "binary frames only");
    assert.ok(jsonFrames.length > 5 && jsonFrames.every((f) => !f.binary), "text frames only");
    assert.equal(new URL(packedFrames[0].url).searchParams.get("codec"), "msgpack");
    assert.equal(new URL(jsonFrames[0].url).searchParams.get("codec"), null, "JSON is not named");
    const welcome = (frames) => frames.find((f) => f.dir === "received" && f.frame.type === "welcome").frame;
    assert.equal(welcome(packedFrames).codec, "msgpack");
    assert.equal(welcome(jsonFrames).codec, undefined, "a JSON welcome is what it was before MessagePack");
    // A `Bytes` field: bin (a Uint8Array once decoded) in MessagePack, base64 in JSON.
    const share = packedFrames.find((f) => f.dir === "sent" && f.frame.payload?.kind === "Share").frame;
    assert.ok(share.payload.data.data instanceof Uint8Array);
    const shared = (frames, name) =>
      frames.find((f) => f.dir === "received" && f.frame.payload?.kind === "Shared" && f.frame.payload.data.file.name === name)
        .frame.payload.data;
    assert.ok(shared(packedFrames, "from-b.bin").file.data instanceof Uint8Array);
    assert.equal(shared(jsonFrames, "from-a.bin").file.data, Buffer.from(fromA).toString("base64"));
    await a.context().close();
    await b.context().close();
  } finally {
    await server.kill();
  }
});

test("omni.js with MessagePack: a rejected message, a message it cannot encode, the socket's contract", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const page = await openChat(browser, server, "ws");
    const outcome = await page.evaluate(async (size) => {
      const { connect } = await import("/omni/omni.js");
      const client = connect("/omni", { codec: "msgpack", storage: null, maxMessageBytes: 128 * 1024 });
      let unencodable = "sent";
      try {
        client.send({ kind: "SetName", data: 1n });
      } catch (err) {
        unencodable = `${err.name}: ${err.message}`;
      }
      // Over the server's frame limit: refused by send, never queued (the server would close
      // the socket on it, and it would be sent again on every connection).
      let oversize = "sent";
      try {
        client.send({ kind: "Share", data: { name: "huge.bin", data: new Uint8Array(128 * 1024) } });
      } catch (err) {
        oversize = err.message;
      }
      const queuedAfterOversize = client.pending().length;
      // JSON counts the frame's text: the same file is a third larger in base64.
      const json = connect("/omni", { storage: null, maxMessageBytes: 128 * 1024 });
      let jsonOversize = "sent";
      try {
        json.send({ kind: "Share", data: { name: "b64.bin", data: btoa("x".repeat(100 * 1024)) } });
      } catch (err) {
        jsonOversize = err.message;
      }
      json.close();
      const ref = client.send({ kind: "Share", data: { name: "big.bin", data: new Uint8Array(size) } });
      const refusal = await new Promise((resolve, reject) => {
        client.on("rejected", resolve);
        setTimeout(() => reject(new Error("no answer within 20 s")), 20_000);
      });
      const pending = client.pending().length;
      client.close();
      return { unencodable, oversize, queuedAfterOversize, jsonOversize, ref, refusal, pending };
    }, FILE_LIMIT + 1);
    assert.match(outcome.unencodable, /^TypeError: .*BigInt/, "refused by send, before it is queued");
    assert.match(outcome.oversize, /^omni: the message is 131\d{3} bytes; the server accepts at most 131072$/);
    assert.equal(outcome.queuedAfterOversize, 0);
    assert.match(outcome.jsonOversize, /the server accepts at most 131072/);
    assert.equal(outcome.refusal.code, "rejected", JSON.stringify(outcome.refusal));
    assert.equal(outcome.refusal.ref, outcome.ref);
    assert.match(outcome.refusal.message, /64 KiB/);
    assert.equal(outcome.pending, 0, "answered, so no longer queued");

    // The socket itself: binary frames both ways; a text frame is a `bad_frame`, and the
    // socket stays open.
    const frames = await page.evaluate(async () => {
      const { decodeMsgpack, encodeMsgpack } = await import("/omni/omni.js");
      const socket = new WebSocket(`ws://${location.host}/omni/ws?codec=msgpack`);
      socket.binaryType = "arraybuffer";
      const seen = [];
      let waiting = null;
      socket.onmessage = ({ data }) => {
        seen.push(typeof data === "string" ? { text: data } : decodeMsgpack(data));
        waiting?.();
      };
      const until = (test) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`waited for a frame: ${JSON.stringify(seen)}`)), 10_000);
          waiting = () => {
            if (seen.some(test)) {
              clearTimeout(timer);
              resolve();
            }
          };
          waiting();
        });
      await until((f) => f.type === "welcome");
      socket.send('{"type":"msg","payload":{"kind":"FetchAll"},"ref":1}');
      await until((f) => f.type === "error");
      socket.send(encodeMsgpack({ type: "msg", payload: { kind: "FetchAll" }, ref: 2 }));
      await until((f) => f.type === "ack" && f.ref === 2);
      const open = socket.readyState === WebSocket.OPEN;
      socket.close();
      return { seen, open };
    });
    const types = frames.seen.map((f) => f.type ?? "text");
    assert.ok(!types.includes("text"), `no text frame: ${types}`);
    assert.equal(frames.seen.find((f) => f.type === "error").code, "bad_frame");
    assert.ok(types.indexOf("ack") > types.indexOf("error"), `${types}`);
    assert.ok(frames.open, "the socket stayed open");
    await page.context().close();
  } finally {
    await server.kill();
  }
});

test("a MessagePack page cut off resumes: nothing missed, nothing twice, its queue kept across a reload", { timeout: 120_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const a = await openChat(browser, server, "ws");
    const frames = [];
    const b = await openChat(browser, server, "ws", { codec: "msgpack", before: offlineSwitch, frames });
    await waitOnline(a, 2);
    await waitOnline(b, 2);
    const first = await say(a, "before the cut");
    await waitStatus(b, first, "sent");
    const cursor = (await stored(b)).topics.room;

    await setOffline(b, true);
    await b.evaluate(() => window.__dropConnections());
    await waitDown(b);
    const mark = frames.reduce((last, f) => Math.max(last, f.socket), 0);
    const missed = [];
    for (const n of ["one", "two", "three"]) missed.push(await say(a, `missed ${n}`));
    for (const id of missed) await waitStatus(a, id, "sent");

    // Cut off, b queues a message and a file; reloaded, the page still has them to send.
    const queued = await say(b, "typed while cut off");
    const file = someBytes(30_000, 4);
    await shareFile(b, "queued.bin", file);
    await b.waitForFunction(() => {
      const entry = Object.entries(sessionStorage).find(([key]) => key.endsWith("/omni:ws"));
      return entry && JSON.parse(entry[1]).queue.length === 2;
    });
    const queue = (await stored(b)).queue;
    assert.equal(typeof queue[1].packed, "string", "stored as its MessagePack, which keeps bytes");
    assert.equal(queue[1].payload, undefined);
    await b.reload();
    await sleep(300);
    assert.equal(await count(a, queued), 0, "b is away");

    await setOffline(b, false);
    await waitTransport(b, "connected");
    for (const id of [...missed, queued]) await waitStatus(b, id, "sent");
    await waitStatus(a, queued, "sent");
    for (const page of [a, b]) assert.deepEqual(await fileBytes(page, "queued.bin"), file);
    // Late duplicates would show up in this time.
    await sleep(1000);
    assert.deepEqual(await shownIds(b), [first, ...missed, queued], "every message, once, in order");
    for (const page of [a, b]) {
      assert.equal(await count(page, queued), 1);
      assert.equal(await fileCount(page, "queued.bin"), 1);
    }

    const back = frames.filter((f) => f.socket > mark);
    assert.ok(back.every((f) => f.binary), "binary frames after the reload too");
    const received = back.filter((f) => f.dir === "received").map((f) => f.frame);
    assert.equal(received[0]?.type, "welcome");
    assert.equal(received[0].resumed, true, "the session was resumed");
    assert.equal(received[0].codec, "msgpack");
    const topicMsgs = received.filter((f) => f.type === "msg" && f.topic === "room");
    const missedMsgs = topicMsgs.filter((f) => missed.some((id) => id in f.payload.data));
    assert.deepEqual(missedMsgs.map((f) => Object.keys(f.payload.data)).flat(), missed, "each missed one, once");
    assert.deepEqual(
      topicMsgs.map((f) => f.seq),
      topicMsgs.map((_, i) => cursor + 1 + i),
      "numbered on from the cursor, no gap",
    );
    assert.deepEqual(received.filter((f) => f.type === "reset"), [], "no reset");
    const sent = back.filter((f) => f.dir === "sent" && f.frame.type === "msg").map((f) => f.frame.payload.kind);
    assert.equal(sent.filter((kind) => kind === "Share").length, 1, "the file went once");
    await a.context().close();
    await b.context().close();
  } finally {
    await server.kill();
  }
});

test("the counter over a MessagePack mux, beside a JSON one", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const frames = [];
    const a = await openCounter(browser, server, { codec: "msgpack", frames });
    const b = await openCounter(browser, server);
    await a.waitForFunction(() => document.getElementById("counter-value").textContent !== "");
    const start = Number((await counter(a)).value);
    for (let i = 0; i < 3; i++) await a.click("#increment");
    await waitCounter(a, start + 3);
    await waitCounter(b, start + 3);
    await b.click("#increment");
    await waitCounter(a, start + 4);

    assert.ok(frames.length > 3 && frames.every((f) => f.binary), "binary frames only");
    assert.equal(new URL(frames[0].url).searchParams.get("codec"), "msgpack");
    const sent = frames.filter((f) => f.dir === "sent").map((f) => f.frame);
    assert.equal(sent[0].type, "join");
    assert.equal(sent.filter((f) => f.type === "msg" && f.payload.kind === "Increment").length, 3);
    const received = frames.filter((f) => f.dir === "received").map((f) => f.frame);
    const welcome = received.find((f) => f.type === "welcome");
    assert.equal(welcome.id, "counter");
    assert.equal(welcome.codec, "msgpack");
    assert.ok(received.some((f) => f.payload?.kind === "Value" && f.payload.data === start + 4));
    await a.context().close();
    await b.context().close();
  } finally {
    await server.kill();
  }
});

test("POST /http in MessagePack: frames in, frames out, the session kept", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    // A JSON page in the room sees what the HTTP exchange shares.
    const page = await openChat(browser, server, "ws");
    const outcome = await page.evaluate(async () => {
      const { decodeMsgpack, encodeMsgpack } = await import("/omni/omni.js");
      const post = async (body, session) => {
        const headers = { "content-type": "application/msgpack" };
        if (session) headers["omni-session"] = session;
        const response = await fetch("/omni/http", { method: "POST", headers, body });
        const bytes = new Uint8Array(await response.arrayBuffer());
        return {
          status: response.status,
          type: response.headers.get("content-type"),
          session: response.headers.get("omni-session"),
          frames: bytes.length ? decodeMsgpack(bytes) : null,
        };
      };
      const first = await post(encodeMsgpack([{ type: "hello" }, { type: "msg", payload: { kind: "FetchAll" }, ref: 1 }]));
      // One frame, not in an array, is a body too.
      const file = { name: "over-http.bin", data: new Uint8Array([0, 1, 2, 253, 254, 255]) };
      const second = await post(encodeMsgpack({ type: "msg", payload: { kind: "Share", data: file }, ref: 2 }), first.session);
      const garbage = await post(new Uint8Array([0xc1]), first.session);
      return { first, second, garbage };
    });
    const { first, second, garbage } = outcome;
    assert.equal(first.status, 200, JSON.stringify(first));
    assert.match(first.type, /^application\/msgpack/);
    assert.match(first.session, /^[0-9a-f]{32}$/);
    const types = first.frames.map((f) => f.type);
    assert.equal(types[0], "welcome", `${types}`);
    assert.equal(first.frames[0].session, first.session);
    assert.equal(first.frames[0].codec, "msgpack");
    assert.ok(first.frames.some((f) => f.type === "msg" && f.ref === 1 && f.payload.kind === "Upsert"), `${types}`);
    assert.ok(first.frames.some((f) => f.type === "ack" && f.ref === 1), `${types}`);
    assert.equal(second.status, 200, JSON.stringify(second));
    assert.equal(second.session, first.session, "the same session");
    assert.ok(second.frames.some((f) => f.type === "ack" && f.ref === 2), JSON.stringify(second.frames));
    assert.deepEqual(await fileBytes(page, "over-http.bin"), new Uint8Array([0, 1, 2, 253, 254, 255]));
    assert.equal(garbage.status, 422, JSON.stringify(garbage));
    assert.match(garbage.type, /^application\/msgpack/);
    assert.equal(garbage.frames[0].code, "bad_frame");
    await page.context().close();
  } finally {
    await server.kill();
  }
});

test("MessagePack over SSE is refused, by omni.js and by the server", { timeout: 60_000 }, async () => {
  const server = new ChatServer(await freePort());
  await server.start();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/?transport=sse&codec=msgpack`);
    await page.waitForFunction(() => document.getElementById("transport").textContent === "refused", null, {
      timeout: WAIT,
    });
    assert.match(await page.textContent("#problem"), /msgpack.*SSE|SSE.*msgpack/);
    const thrown = await page.evaluate(async () => {
      const { connect, mux } = await import("/omni/omni.js");
      const attempt = (open) => {
        try {
          open().close();
          return "opened";
        } catch (err) {
          return `${err.name}: ${err.message}`;
        }
      };
      return {
        sse: attempt(() => connect("/omni", { transport: "sse", codec: "msgpack", storage: null })),
        unknown: attempt(() => connect("/omni", { codec: "cbor", storage: null })),
        muxUnknown: attempt(() => mux("/omni", { codec: "cbor", storage: null })),
      };
    });
    assert.match(thrown.sse, /^TypeError: .*SSE/);
    assert.match(thrown.unknown, /^TypeError: unknown codec "cbor"/);
    assert.match(thrown.muxUnknown, /^TypeError: unknown codec "cbor"/);
    const response = await fetch(`${server.url}/omni/sse?codec=msgpack`);
    assert.equal(response.status, 400);
    await response.body?.cancel();
    await context.close();
  } finally {
    await server.kill();
  }
});
