// What the browser tests share: the chat server as a child process that can be killed and
// started again on the same port, a headless Chromium, and helpers that read the chat page's
// test hooks (#transport, #online, #people li[data-key], .message[data-id][data-status]; for the counter widget
// #counter-value, #counter-transport, #counter-problem and #counter[data-pending]).

import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { decodeMsgpack } from "../../omni-runtime/js/omni.js";

const CHAT_BIN =
  process.env.OMNI_CHAT_BIN ??
  fileURLToPath(new URL("../../target/debug/examples/chat", import.meta.url));

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long a page may take to show what a test waits for. */
const WAIT = 20_000;

/** Waits until `condition()` holds, for what the test sees outside a page (frames it
 * recorded); throws naming `what` after `WAIT`. */
export async function until(condition, what) {
  const deadline = Date.now() + WAIT;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** `target/debug/examples/chat` on a fixed port; `kill` is abrupt (SIGKILL), like a crash. */
export class ChatServer {
  constructor(port) {
    this.port = port;
    this.child = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    // The port was just freed; binding may lose a short race with the kernel, so retry.
    for (let attempt = 1; ; attempt++) {
      try {
        this.child = await launch(this.port);
        return;
      } catch (err) {
        if (attempt >= 20) throw err;
        await sleep(250);
      }
    }
  }

  async kill() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await once(child, "exit");
  }
}

function launch(port) {
  return new Promise((resolve, reject) => {
    // A short grace, so that a closed page leaves the others' lists within the tests' waits.
    const child = spawn(CHAT_BIN, ["--port", String(port), "--grace", "10"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: "warn" },
    });
    let output = "";
    const onData = (chunk) => {
      output += chunk;
      if (output.includes("listening on")) {
        child.stdout.off("data", onData);
        child.stdout.resume();
        resolve(child);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (chunk) => (output += chunk));
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`chat exited with ${code}: ${output}`)));
  });
}

/** A chat server and a browser for the tests of one file: started before its first test and
 * stopped after its last. The returned object's `server` and `browser` are set once started. */
export function chatAndBrowser() {
  const env = { server: null, browser: null };
  before(async () => {
    env.browser = await launchBrowser();
    env.server = new ChatServer(await freePort());
    await env.server.start();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.kill();
  });
  return env;
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.OMNI_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Records, in every page of `context`, each status a message shows, each transport state and
 * each list of who is online, so a test sees a state even when it lasted less than a poll. */
function recordHistory() {
  window.__statuses = {};
  window.__transport = [];
  window.__counter = [];
  window.__people = [];
  const record = () => {
    for (const li of document.querySelectorAll(".message")) {
      const seen = (window.__statuses[li.dataset.id] ??= []);
      if (seen.at(-1) !== li.dataset.status) seen.push(li.dataset.status);
    }
    const transport = document.getElementById("transport")?.textContent;
    if (transport && window.__transport.at(-1) !== transport) window.__transport.push(transport);
    const value = document.getElementById("counter-value")?.textContent;
    if (value !== undefined && window.__counter.at(-1) !== value) window.__counter.push(value);
    const people = document.getElementById("people");
    if (people) {
      const shown = [...people.children].map((li) => li.textContent).join(", ");
      if (window.__people.at(-1) !== shown) window.__people.push(shown);
    }
  };
  new MutationObserver(record).observe(document, {
    subtree: true,
    childList: true,
    characterData: true,
    attributes: true,
  });
}

/** A chat page in a context of its own (its own sessionStorage). `before` (a script, or a list
 * of them) runs in the page before its scripts do; `frames`, if given, receives the frames of the page's chat
 * connections: its `/omni/ws` sockets (see `recordFrames`) or its `/omni/sse` streams (see
 * `recordEventStreams`); `codec` ("json" or "msgpack") goes in the page's URL. */
export async function openChat(browser, server, transport, { before, frames, codec } = {}) {
  const context = await browser.newContext();
  await context.addInitScript(recordHistory);
  for (const script of [before ?? []].flat()) await context.addInitScript(script);
  if (frames && transport === "sse") await recordEventStreams(context, frames);
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  if (frames && transport !== "sse") recordFrames(page, "/omni/ws", frames);
  await page.goto(`${server.url}/?transport=${transport}${codec ? `&codec=${codec}` : ""}`);
  await waitTransport(page, "connected");
  return page;
}

export async function waitTransport(page, state) {
  await page.waitForFunction(
    (state) => document.getElementById("transport").textContent === state,
    state,
    { timeout: WAIT, polling: 50 },
  );
}

export async function waitDown(page) {
  await page.waitForFunction(
    () => document.getElementById("transport").textContent !== "connected",
    null,
    { timeout: WAIT, polling: 50 },
  );
}

export async function waitOnline(page, online) {
  await page.waitForFunction(
    (online) => document.getElementById("online").textContent === String(online),
    online,
    { timeout: WAIT, polling: 50 },
  );
}

export async function waitStatus(page, id, status) {
  await page.waitForFunction(
    ([id, status]) =>
      document.querySelector(`.message[data-id="${id}"]`)?.dataset.status === status,
    [id, status],
    { timeout: WAIT, polling: 50 },
  );
}

/** Types `text` and sends it; returns the new message's id. */
export async function say(page, text) {
  await page.fill("#draft", text);
  await page.click("#send");
  return page.evaluate((text) => {
    const li = [...document.querySelectorAll(".message")].find((li) => li.textContent.includes(text));
    return li?.dataset.id;
  }, text);
}

/** How many elements show message `id`. */
export function count(page, id) {
  return page.evaluate((id) => document.querySelectorAll(`.message[data-id="${id}"]`).length, id);
}

/** Every status message `id` showed, in order. */
export function statuses(page, id) {
  return page.evaluate((id) => window.__statuses[id] ?? [], id);
}

/** Every transport state the page showed, in order. */
export function transportHistory(page) {
  return page.evaluate(() => window.__transport);
}

/** Who the page shows online (`#people`), as shown: `["ann ×2", "bob"]`. */
export function people(page) {
  return page.evaluate(() => [...document.querySelectorAll("#people li")].map((li) => li.textContent));
}

/** Waits until the page shows exactly `expected` online, as `people` reads it. */
export async function waitPeople(page, expected) {
  await page
    .waitForFunction(
      (expected) =>
        [...document.querySelectorAll("#people li")].map((li) => li.textContent).join(", ") === expected.join(", "),
      expected,
      { timeout: WAIT, polling: 50 },
    )
    .catch(async (err) => {
      throw new Error(`waiting for [${expected}], the page shows [${await people(page)}]: ${err.message}`);
    });
}

/** Every list of who is online the page showed, in order, each joined with ", ". */
export function peopleHistory(page) {
  return page.evaluate(() => window.__people);
}

/** An init script that names the page's author `name` (the chat stores it per tab). */
export function named(name) {
  return `sessionStorage.setItem("chat:author", ${JSON.stringify(name)});`;
}

/** A chat page in a context of its own whose counter widget is connected (unless
 * `connected` is false). `before` (a script, or a list of them) runs in the page before its scripts do; `frames`, if
 * given, receives the page's mux frames (see `recordMuxFrames`); `codec` goes in the page's URL. */
export async function openCounter(browser, server, { before, connected = true, frames, codec } = {}) {
  const context = await browser.newContext();
  await context.addInitScript(recordHistory);
  for (const script of [before ?? []].flat()) await context.addInitScript(script);
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  if (frames) recordMuxFrames(page, frames);
  await page.goto(`${server.url}/${codec ? `?codec=${codec}` : ""}`);
  if (connected) await waitCounterTransport(page, "connected");
  return page;
}

/** Every join and message frame the page sent on mux sockets, and every frame it received on
 * them, parsed, in order: `[{ socket, dir: "sent" | "received", frame }]`. */
export function recordMuxFrames(page, frames = []) {
  return recordFrames(page, "/mux", frames);
}

/** Every frame the page sent and received on sockets whose path ends with `path`, parsed, in
 * order: `[{ socket, url, dir: "sent" | "received", frame, binary }]`, `socket` counting such
 * sockets from 1 (across reloads: the page is the same); a binary message is read as
 * MessagePack, a text one as JSON. */
export function recordFrames(page, path, frames = []) {
  let sockets = 0;
  page.on("websocket", (ws) => {
    if (!new URL(ws.url()).pathname.endsWith(path)) return;
    const socket = ++sockets;
    const url = ws.url();
    const push = (dir) => ({ payload }) => {
      const binary = typeof payload !== "string";
      try {
        frames.push({ socket, url, dir, binary, frame: binary ? decodeMsgpack(payload) : JSON.parse(payload) });
      } catch {
        frames.push({ socket, url, dir, binary, frame: { unparsed: String(payload) } });
      }
    };
    ws.on("framesent", push("sent"));
    ws.on("framereceived", push("received"));
  });
  return frames;
}

/** Every frame the pages of `context` received on `/omni/sse` streams, parsed, in order, as
 * `recordFrames` has them (`socket` counts the streams, `dir` is always "received"). Each
 * stream's body is teed in the page: one branch for omni.js, one read for the test. */
export async function recordEventStreams(context, frames = []) {
  const urls = [];
  await context.exposeBinding("__omniStreamOpened", (_source, url) => urls.push(url));
  await context.exposeBinding("__omniStreamFrame", (_source, socket, data) => {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      frame = { unparsed: data };
    }
    frames.push({ socket, url: urls[socket - 1], dir: "received", frame });
  });
  await context.addInitScript(teeEventStreams);
  return frames;
}

/** Runs in the page: hands a copy of each `/omni/sse` event's data to the test. */
function teeEventStreams() {
  const inner = window.fetch;
  window.fetch = async function (input, init) {
    const response = await inner.call(this, input, init);
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    if (!url.pathname.endsWith("/omni/sse") || response.status !== 200 || !response.body) return response;
    const [theirs, ours] = response.body.tee();
    read(url.href, ours);
    const { status, statusText, headers } = response;
    return new Response(theirs, { status, statusText, headers });
  };
  async function read(url, body) {
    // The binding answers with the stream's number; frames wait for it, in order.
    const socket = await window.__omniStreamOpened(url);
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value.replace(/\r\n?/g, "\n");
        const events = buffer.split("\n\n");
        buffer = events.pop();
        for (const event of events) {
          const data = event
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5));
          if (data.length > 0) window.__omniStreamFrame(socket, data.join("\n"));
        }
      }
    } catch {
      // The page ended the stream (a reconnect, an unload).
    }
  }
}

/**
 * Runs in the page before its scripts: while `sessionStorage["test:offline"]` is "1" the
 * page's omni connections fail (its `/omni/ws` sockets go to a path that refuses them, its
 * `/omni/sse` and `/omni/http` requests are rejected); `window.__dropConnections()` cuts
 * the ones that are up. A flag in sessionStorage, so that it holds across a reload.
 */
export function offlineSwitch() {
  const offline = () => sessionStorage.getItem("test:offline") === "1";
  const live = new Set();
  const RealWebSocket = window.WebSocket;
  window.WebSocket = class extends RealWebSocket {
    constructor(url, protocols) {
      const target = new URL(url, location.href);
      if (offline() && target.pathname === "/omni/ws") target.pathname = "/offline";
      super(target.href, protocols);
      if (target.pathname === "/omni/ws") {
        live.add(this);
        this.addEventListener("close", () => live.delete(this));
      }
    }
  };
  const realFetch = window.fetch;
  window.fetch = function (input, init = {}) {
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    if (!/^\/omni\/(sse|http)$/.test(url.pathname)) return realFetch.call(this, input, init);
    if (offline()) return Promise.reject(new TypeError("offline (test)"));
    // A signal of our own, so that the test can cut the event stream as a network would.
    const cut = new AbortController();
    init.signal?.addEventListener("abort", () => cut.abort(init.signal.reason));
    const entry = { abort: () => cut.abort(new TypeError("dropped (test)")) };
    live.add(entry);
    const done = () => live.delete(entry);
    return realFetch.call(this, input, { ...init, signal: cut.signal }).then(
      (response) => {
        if (url.pathname === "/omni/http") done();
        return response;
      },
      (err) => {
        done();
        throw err;
      },
    );
  };
  window.__dropConnections = () => {
    for (const connection of [...live]) {
      if (connection instanceof RealWebSocket) connection.close();
      else connection.abort();
    }
    live.clear();
  };
}

export function setOffline(page, offline) {
  return page.evaluate((offline) => {
    if (offline) sessionStorage.setItem("test:offline", "1");
    else sessionStorage.removeItem("test:offline");
  }, offline);
}

export async function waitCounterTransport(page, state) {
  await page.waitForFunction(
    (state) => document.getElementById("counter-transport").textContent === state,
    state,
    { timeout: WAIT, polling: 50 },
  );
}

export async function waitCounterDown(page) {
  await page.waitForFunction(
    () => document.getElementById("counter-transport").textContent !== "connected",
    null,
    { timeout: WAIT, polling: 50 },
  );
}

/** Waits until the counter shows `value` with no click waiting for the server. */
export async function waitCounter(page, value) {
  await page.waitForFunction(
    (value) =>
      document.getElementById("counter-value").textContent === String(value) &&
      document.getElementById("counter").dataset.pending === "0",
    value,
    { timeout: WAIT, polling: 50 },
  );
}

/** Waits until the counter shows `pending` clicks waiting for the server. */
export async function waitPending(page, pending) {
  await page.waitForFunction(
    (pending) => document.getElementById("counter").dataset.pending === String(pending),
    pending,
    { timeout: WAIT, polling: 50 },
  );
}

/** What the counter shows: its value, clicks waiting for the server, transport, problem. */
export function counter(page) {
  return page.evaluate(() => ({
    value: document.getElementById("counter-value").textContent,
    pending: Number(document.getElementById("counter").dataset.pending),
    transport: document.getElementById("counter-transport").textContent,
    problem: document.getElementById("counter-problem").textContent,
  }));
}

/** Every value the counter showed, in order ("" while it had none). */
export function counterHistory(page) {
  return page.evaluate(() => window.__counter);
}
