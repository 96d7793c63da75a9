// The SSE transport of a client: an event stream down, `POST {url}/http` up. JSON only: an
// event stream carries text.

import { welcomeWithin } from "./dialer.js";
import { afterFrame } from "./stream.js";

/** @import { Client } from "./client.js" */
/** @import { Conn, End } from "./dialer.js" */
/** @import { Encoded } from "./wire.js" */

// Most messages one POST carries, so a long queue never makes a body the server refuses.
const BATCH = 64;

/** One event stream (fetched, so its status and end are seen) and its POST uplink.
 *
 * @param {Client<any, any>} client
 * @returns {Conn}
 */
export function openSse(client) {
  const { interval, timeout } = client._options.heartbeat;
  const abort = new AbortController();
  /** @type {Conn} */
  const conn = { connected: false, done: false, flush() {}, end() {} };
  let uplink = false;
  const welcome = welcomeWithin(client, conn);
  let heard = Date.now();
  const ticks = setInterval(() => {
    // The server sends keep-alive comments every second, so silence means a dead stream.
    if (Date.now() - heard > interval + timeout) conn.end({ code: 1006, reason: "heartbeat timed out" });
  }, Math.min(interval, 1000));

  conn.end = ({ code, reason, fatal, unauthorized }) => {
    if (conn.done) return;
    conn.done = true;
    clearInterval(ticks);
    clearTimeout(welcome);
    // An event stream has no close frame: a client leaving (closed, or its page going away)
    // says so, and the server lets the session go within a short linger.
    if (code === 1000) goodbye(client);
    abort.abort();
    client._ended(conn, { code, reason, connected: conn.connected, fatal, unauthorized });
  };
  const apply = (/** @type {string} */ text) => {
    const end = afterFrame(client, client._onText(text), conn);
    if (end) conn.end(end);
  };

  // One POST at a time, so messages reach the server in order.
  conn.flush = () => {
    if (!conn.connected || conn.done || uplink) return;
    const frames = client._takeUnsent(BATCH);
    if (frames.length === 0) return;
    const hello = client._hello();
    if (hello) frames.unshift(hello);
    uplink = true;
    post(client, frames, client._session, abort.signal).then(
      async (response) => {
        if (conn.done) return;
        if (![200, 202, 413, 422].includes(response.status)) {
          conn.end(refused(response.status, `uplink HTTP ${response.status}`));
          return;
        }
        // 200: the stream was not attached at that moment, so the frames came back here.
        const body = await response.text();
        if (body) {
          let replies;
          try {
            replies = JSON.parse(body);
          } catch (err) {
            conn.end({ code: 1006, reason: `bad response body: ${/** @type {Error} */ (err).message}` });
            return;
          }
          for (const reply of Array.isArray(replies) ? replies : []) {
            if (conn.done) return;
            const end = afterFrame(client, client._onValue(reply), conn);
            if (end) conn.end(end);
          }
        }
        uplink = false;
        conn.flush();
      },
      (err) => conn.end({ code: 1006, reason: String(err.message ?? err) }),
    );
  };

  fetch(client._url("sse", { resume: true }), {
    headers: { ...client._credentials.headers, accept: "text/event-stream" },
    cache: "no-store",
    signal: abort.signal,
  })
    .then(async (response) => {
      if (conn.done) return;
      if (response.status !== 200 || !response.body) {
        conn.end(refused(response.status, `HTTP ${response.status}`));
        return;
      }
      heard = Date.now();
      await readEvents(response.body, () => (heard = Date.now()), (data) => {
        if (!conn.done) apply(data);
      });
      conn.end({ code: 1006, reason: "event stream ended" });
    })
    .catch((err) => conn.end({ code: 1006, reason: String(err.message ?? err) }));
  return conn;
}

/**
 * @param {Client<any, any>} client
 * @param {Encoded[]} frames
 * @param {string | null} session
 * @param {AbortSignal} signal
 */
function post(client, frames, session, signal) {
  /** @type {Record<string, string>} */
  const headers = { ...client._credentials.headers, "content-type": "application/json" };
  if (session) headers["omni-session"] = session;
  return fetch(client._url("http"), {
    method: "POST",
    headers,
    body: `[${frames.join(",")}]`,
    signal,
  });
}

/** Tells the server the session is leaving: `POST {url}/http` with `omni-leave`, which
 * handles no frames. `keepalive`, so that it goes even while the page unloads; nothing waits
 * for the answer. A server from before it answers the empty batch with 422, and does nothing.
 *
 * @param {Client<any, any>} client
 */
function goodbye(client) {
  if (!client._session) return;
  /** @type {Record<string, string>} */
  const headers = {
    ...client._credentials.headers,
    "content-type": "application/json",
    "omni-session": client._session,
    "omni-leave": "1",
  };
  fetch(client._url("http"), { method: "POST", headers, body: "[]", keepalive: true }).catch(() => {});
}

/** An HTTP refusal that retrying will not change (403, 404) is fatal; 401 waits for the
 * application to sign in again.
 *
 * @param {number} status
 * @param {string} reason
 */
function refused(status, reason) {
  /** @type {End} */
  const end = { code: status, reason };
  if (status === 401) end.unauthorized = true;
  if ([403, 404].includes(status)) end.fatal = { state: "error", error: "init", message: reason };
  return end;
}

/** Reads a `text/event-stream` body, calling `onData` with each event's data. Only `data`
 * matters: a frame names its own type, and the resume point is kept by the client.
 *
 * @param {ReadableStream<Uint8Array<ArrayBuffer>>} body
 * @param {() => void} onBytes
 * @param {(data: string) => void} onData
 */
async function readEvents(body, onBytes, onData) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  /** @type {string[]} */
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onBytes();
    buffer += value;
    // A chunk may end inside a line, or between a \r and its \n: keep the tail for the next.
    const cut = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
    const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
    buffer = lines.pop() + buffer.slice(cut);
    for (const line of lines) {
      if (line === "") {
        if (data.length > 0) onData(data.join("\n"));
        data = [];
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
      // `event:`, `id:`, `retry:` and `:` comments need nothing here.
    }
  }
}
