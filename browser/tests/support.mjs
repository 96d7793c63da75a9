// What the browser tests share: the chat server as a child process that can be killed and
// started again on the same port, a headless Chromium, and helpers that read the chat page's
// test hooks (#transport, #online, .message[data-id][data-status]).

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
  const record = () => {
    for (const li of document.querySelectorAll(".message")) {
      const seen = (window.__statuses[li.dataset.id] ??= []);
      if (seen.at(-1) !== li.dataset.status) seen.push(li.dataset.status);
    }
    const transport = document.getElementById("transport")?.textContent;
    if (transport && window.__transport.at(-1) !== transport) window.__transport.push(transport);
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
