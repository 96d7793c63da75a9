// What the browser tests share: the chat server as a child process that can be killed and
// started again on the same port, a headless Chromium, and helpers that read the chat page's
// test hooks (#transport, #online, .message[data-id][data-status]; for the counter widget
// #counter-value, #counter-transport, #counter-problem and #counter[data-pending]).

import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const CHAT_BIN =
  process.env.OMNI_CHAT_BIN ??
  fileURLToPath(new URL("../../target/debug/examples/chat", import.meta.url));

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long a page may take to show what a test waits for. */
const WAIT = 20_000;

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
    const child = spawn(CHAT_BIN, ["--port", String(port)], {
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

/** Records, in every page of `context`, each status a message shows and each transport
 * state, so a test sees a state even when it lasted less than a poll. */
function recordHistory() {
  window.__statuses = {};
  window.__transport = [];
  window.__counter = [];
  const record = () => {
    for (const li of document.querySelectorAll(".message")) {
      const seen = (window.__statuses[li.dataset.id] ??= []);
      if (seen.at(-1) !== li.dataset.status) seen.push(li.dataset.status);
    }
    const transport = document.getElementById("transport")?.textContent;
    if (transport && window.__transport.at(-1) !== transport) window.__transport.push(transport);
    const value = document.getElementById("counter-value")?.textContent;
    if (value !== undefined && window.__counter.at(-1) !== value) window.__counter.push(value);
  };
  new MutationObserver(record).observe(document, {
    subtree: true,
    childList: true,
    characterData: true,
    attributes: true,
  });
}

/** A chat page in a context of its own (its own sessionStorage). */
export async function openChat(browser, server, transport) {
  const context = await browser.newContext();
  await context.addInitScript(recordHistory);
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  await page.goto(`${server.url}/?transport=${transport}`);
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

/** A chat page in a context of its own whose counter widget is connected (unless
 * `connected` is false). `before` runs in the page before its scripts do; `frames`, if
 * given, receives the page's mux frames (see `recordMuxFrames`). */
export async function openCounter(browser, server, { before, connected = true, frames } = {}) {
  const context = await browser.newContext();
  await context.addInitScript(recordHistory);
  if (before) await context.addInitScript(before);
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  if (frames) recordMuxFrames(page, frames);
  await page.goto(`${server.url}/`);
  if (connected) await waitCounterTransport(page, "connected");
  return page;
}

/** Every join and message frame the page sent on mux sockets, and every frame it received on
 * them, parsed, in order: `[{ socket, dir: "sent" | "received", frame }]`. */
export function recordMuxFrames(page, frames = []) {
  let sockets = 0;
  page.on("websocket", (ws) => {
    if (!new URL(ws.url()).pathname.endsWith("/mux")) return;
    const socket = ++sockets;
    const push = (dir) => ({ payload }) => {
      try {
        frames.push({ socket, dir, frame: JSON.parse(payload) });
      } catch {
        frames.push({ socket, dir, frame: { unparsed: String(payload) } });
      }
    };
    ws.on("framesent", push("sent"));
    ws.on("framereceived", push("received"));
  });
  return frames;
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
