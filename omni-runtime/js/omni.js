// omni.js: the browser client for omni's wire protocol v1 (docs/PROTOCOL.md).
//
//   import { connect } from "/omni/omni.js";
//   const client = connect("/omni", { transport: "ws" });
//   client.on("message", (payload) => update(payload));
//   client.on("state", (state) => show(state));
//   const ref = client.send({ kind: "FetchAll" });
//
// It behaves like the Rust client: reconnects with backoff and jitter, resumes its session so
// every sequenced server message arrives once and in order, keeps unacknowledged messages in
// a queue (in sessionStorage, so a reloaded page resends them and resumes its session), and
// stops for good when the server refuses its protocol version.

const DEFAULTS = {
  transport: "ws",
  backoff: { base: 250, cap: 10000, factor: 2, jitter: 0.5 },
  heartbeat: { interval: 15000, timeout: 10000 },
  queue: 1024,
  connectTimeout: 10000,
};

// Most messages one POST carries, so a long queue never makes a body the server refuses.
const BATCH = 64;

/** Connects to the omni endpoint under `url` (the prefix the server nests its routes under). */
export function connect(url, options = {}) {
  return new Client(url, options);
}

/** The delay in ms before reconnection attempt `attempt` (from 1), as the Rust `Backoff`. */
export function backoffDelay(backoff, attempt) {
  const { base, cap, factor, jitter } = { ...DEFAULTS.backoff, ...backoff };
  const full = Math.min(cap, base * factor ** Math.max(0, attempt - 1));
  const share = Math.min(1, Math.max(0, jitter)) * Math.random();
  return Math.round(full * (1 - share));
}

class Client {
  constructor(url, options) {
    const base = new URL(String(url), globalThis.location?.href);
    base.pathname = base.pathname.replace(/\/+$/, "");
    base.search = "";
    base.hash = "";
    this._base = base;
    this._options = {
      ...DEFAULTS,
      ...options,
      backoff: { ...DEFAULTS.backoff, ...options.backoff },
      heartbeat: { ...DEFAULTS.heartbeat, ...options.heartbeat },
    };
    if (!["ws", "sse"].includes(this._options.transport)) {
      throw new TypeError(`unknown transport "${this._options.transport}": use "ws" or "sse"`);
    }
    this._listeners = { message: new Set(), state: new Set(), ack: new Set() };
    this._storage = options.storage === undefined ? defaultStorage() : options.storage;
    this._key = options.queueKey ?? `omni:${base.href}:${this._options.transport}`;
    this._session = null;
    this._lastSeq = 0;
    this._nextRef = 1;
    this._queue = [];
    this._load();
    this._conn = null;
    this._attempt = 0;
    this._timer = null;
    this._closed = false;
    this._state = { state: "connecting" };
    // Back online: retry now rather than at the end of a long backoff.
    this._onOnline = () => {
      if (this._timer !== null) {
        clearTimeout(this._timer);
        this._timer = null;
        this._start();
      }
    };
    globalThis.addEventListener?.("online", this._onOnline);
    // Listeners are attached synchronously after connect(): start on the next task so
    // they see the first `connecting`.
    this._timer = setTimeout(() => {
      this._timer = null;
      this._start();
    }, 0);
  }

  /** The session the server assigned (or the one being resumed), or null. */
  get session() {
    return this._session;
  }

  /** The latest transport state. */
  get state() {
    return this._state;
  }

  /** Queues `payload` for the server and returns its `ref`; resent until acknowledged. */
  send(payload) {
    if (this._closed) throw new Error("omni: the client is closed");
    if (this._queue.length >= this._options.queue) {
      const message = `${this._options.queue} messages are already waiting for the server`;
      this._emitState({ state: "error", error: "send", message });
      throw new Error(`omni: ${message}`);
    }
    const ref = this._nextRef++;
    this._queue.push({ ref, payload, sent: false });
    this._save();
    this._conn?.flush();
    return ref;
  }

  /** Messages sent but not yet acknowledged, oldest first: `[{ ref, payload }]`. */
  pending() {
    return this._queue.map(({ ref, payload }) => ({ ref, payload }));
  }

  /** Adds a listener for "message", "state" or "ack"; returns a function that removes it. */
  on(event, fn) {
    const set = this._listeners[event];
    if (!set) throw new TypeError(`unknown event "${event}": use message, state or ack`);
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Closes the connection and stops reconnecting. The queue stays stored for a later page. */
  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._timer);
    this._timer = null;
    globalThis.removeEventListener?.("online", this._onOnline);
    this._conn?.end({ code: 1000, reason: "closed by the client" });
  }

  _start() {
    if (this._closed) return;
    this._emitState({ state: "connecting" });
    const open = this._options.transport === "sse" ? openSse : openWs;
    this._conn = open(this);
  }

  /** A connection ended: report it and retry after a backoff, unless retrying cannot help. */
  _ended(conn, { code, reason, connected, fatal }) {
    if (conn !== this._conn) return;
    this._conn = null;
    if (connected || code !== 0) this._emitState({ state: "disconnected", code, reason });
    if (code === 4000 && !this._closed) {
      // Another page (a duplicated tab) took this session over: start one of our own.
      this._session = null;
      this._lastSeq = 0;
      this._save();
      this._emitState({ state: "reset" });
    }
    if (fatal) {
      this._closed = true;
      globalThis.removeEventListener?.("online", this._onOnline);
      this._emitState(fatal);
      return;
    }
    if (this._closed) return;
    this._attempt = connected ? 1 : this._attempt + 1;
    const delay = backoffDelay(this._options.backoff, this._attempt);
    this._emitState({ state: "reconnecting", attempt: this._attempt, delay });
    this._timer = setTimeout(() => {
      this._timer = null;
      this._start();
    }, delay);
  }

  /** `{base}/{path}`, in the WebSocket scheme if asked, with the resume point if asked. */
  _url(path, { websocket = false, resume = false } = {}) {
    const url = new URL(this._base.href);
    url.pathname = `${url.pathname}/${path}`;
    if (websocket) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (resume && this._session) {
      url.searchParams.set("session", this._session);
      url.searchParams.set("after", String(this._lastSeq));
    }
    return url.href;
  }

  /** The `hello` to send first on a connection, or null when there is nothing to check. */
  _hello() {
    const { protocol, version } = this._options;
    if (protocol === undefined && version === undefined) return null;
    const hello = { type: "hello" };
    if (protocol !== undefined) hello.protocol = protocol;
    if (version !== undefined) hello.version = version;
    return JSON.stringify(hello);
  }

  /** Decodes and applies one server frame; returns what it asks of the transport. */
  _onText(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (err) {
      return this._decodeError(`not JSON: ${err.message}`);
    }
    return this._onValue(frame);
  }

  /** Applies one decoded server frame. */
  _onValue(frame) {
    if (frame === null || typeof frame !== "object" || typeof frame.type !== "string") {
      return this._decodeError("a frame is an object with a string `type`");
    }
    return this._onFrame(frame);
  }

  _decodeError(message) {
    this._emitState({ state: "error", error: "decode", message });
    return STEP.continue;
  }

  _onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        if (this._session !== frame.session) {
          // A session of its own (first connect, or the old one is gone: `reset` follows).
          this._session = frame.session;
          this._lastSeq = frame.seq;
          this._save();
        }
        this._emitState({ state: "connected", session: frame.session });
        return STEP.welcomed;
      case "msg":
        if (frame.seq <= this._lastSeq) return STEP.continue; // a replay overlapping what we hold
        // A frame ahead of one that never came (lost with an earlier connection): resume
        // from the last one held, so nothing is skipped.
        if (frame.seq > this._lastSeq + 1) return STEP.gap;
        this._lastSeq = frame.seq;
        this._save();
        this._emit("message", frame.payload, frame);
        return STEP.continue;
      case "push":
        this._emit("message", frame.payload, frame);
        return STEP.continue;
      case "ack":
        this._answered(frame.ref);
        this._emit("ack", frame.ref);
        return STEP.continue;
      case "error": {
        if (frame.ref !== undefined) this._answered(frame.ref);
        const error = {
          state: "error",
          error: "rejected",
          code: frame.code,
          message: frame.message ?? "",
        };
        if (frame.ref !== undefined) error.ref = frame.ref;
        if (frame.code === "version_mismatch") return { fatal: error };
        this._emitState(error);
        return STEP.continue;
      }
      case "reset":
        this._lastSeq = frame.seq;
        this._save();
        this._emitState({ state: "reset" });
        return STEP.continue;
      case "joined":
      case "left":
        return STEP.continue;
      default:
        return this._decodeError(`unknown frame type \`${frame.type}\``);
    }
  }

  _answered(ref) {
    const i = this._queue.findIndex((entry) => entry.ref === ref);
    if (i >= 0) {
      this._queue.splice(i, 1);
      this._save();
    }
  }

  /** A new connection was welcomed: everything unanswered goes again (the server
   * acknowledges a `ref` it already handled without handling it twice). */
  _reconnected() {
    for (const entry of this._queue) entry.sent = false;
  }

  /** Up to `limit` queued frames not yet sent on this connection, marked sent. */
  _takeUnsent(limit) {
    const frames = [];
    for (const entry of this._queue) {
      if (frames.length >= limit) break;
      if (entry.sent) continue;
      entry.sent = true;
      frames.push(JSON.stringify({ type: "msg", payload: entry.payload, ref: entry.ref }));
    }
    return frames;
  }

  _emit(event, ...args) {
    for (const fn of [...this._listeners[event]]) {
      try {
        fn(...args);
      } catch (err) {
        // One failing listener must not stop the others or the connection.
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }

  _emitState(state) {
    this._state = state;
    this._emit("state", state);
  }

  _load() {
    if (!this._storage) return;
    try {
      const saved = JSON.parse(this._storage.getItem(this._key) ?? "null");
      if (!saved) return;
      this._session = typeof saved.session === "string" ? saved.session : null;
      this._lastSeq = Number.isSafeInteger(saved.lastSeq) ? saved.lastSeq : 0;
      this._nextRef = Number.isSafeInteger(saved.nextRef) ? saved.nextRef : 1;
      this._queue = Array.isArray(saved.queue)
        ? saved.queue.map(({ ref, payload }) => ({ ref, payload, sent: false }))
        : [];
    } catch {
      // Unreadable state is dropped: the client starts a new session.
    }
  }

  _save() {
    if (!this._storage) return;
    const saved = {
      session: this._session,
      lastSeq: this._lastSeq,
      nextRef: this._nextRef,
      queue: this._queue.map(({ ref, payload }) => ({ ref, payload })),
    };
    try {
      this._storage.setItem(this._key, JSON.stringify(saved));
    } catch {
      // Storage full or disabled: the client still works, only a reload loses the queue.
    }
  }
}

const STEP = { continue: "continue", welcomed: "welcomed", gap: "gap" };

function defaultStorage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // Access refused (sandboxed frame, privacy settings).
  }
}

/** Applies what a frame asked; returns an end to report, or null to go on. */
function afterFrame(client, step, conn) {
  if (step === STEP.welcomed) {
    conn.connected = true;
    client._reconnected();
    conn.flush();
    return null;
  }
  if (step === STEP.gap) return { code: 1006, reason: "missed frames; resuming" };
  if (step?.fatal) {
    return { code: 1008, reason: `server refused (${step.fatal.code}): ${step.fatal.message}`, fatal: step.fatal };
  }
  return null;
}

/** Ends `conn` unless the server welcomes it within the connect timeout (a handshake that
 * hangs, or a socket that opens but never speaks). */
function welcomeWithin(client, conn) {
  return setTimeout(() => {
    if (!conn.connected) conn.end({ code: 1006, reason: "connect timed out" });
  }, client._options.connectTimeout);
}

/** One WebSocket connection, from connect to its end. */
function openWs(client) {
  const { interval, timeout } = client._options.heartbeat;
  const conn = { connected: false, done: false, flush() {}, end() {} };
  let socket;
  try {
    socket = new WebSocket(client._url("ws", { websocket: true, resume: true }));
  } catch (err) {
    const error = { state: "error", error: "init", message: String(err.message ?? err) };
    setTimeout(() => client._ended(conn, { code: 0, reason: error.message, connected: false, fatal: error }), 0);
    return conn;
  }
  const welcome = welcomeWithin(client, conn);
  let heard = Date.now();
  // A page cannot send WebSocket pings; an idle connection gets a small frame the server
  // ignores, and one whose bytes do not leave within `timeout` is treated as dead.
  let probe = null;
  const ticks = setInterval(() => {
    if (probe !== null && Date.now() - probe > timeout && socket.bufferedAmount > 0) {
      conn.end({ code: 1006, reason: "heartbeat timed out" });
    } else if (Date.now() - heard >= interval && socket.readyState === WebSocket.OPEN) {
      socket.send('{"type":"hello"}');
      probe = Date.now();
      heard = Date.now();
    } else if (socket.bufferedAmount === 0) {
      probe = null;
    }
  }, Math.min(interval, 1000));

  conn.end = ({ code, reason, fatal }) => {
    if (conn.done) return;
    conn.done = true;
    clearInterval(ticks);
    clearTimeout(welcome);
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close(1000);
    } catch {
      // Already closing.
    }
    client._ended(conn, { code, reason, connected: conn.connected, fatal });
  };
  conn.flush = () => {
    if (!conn.connected || conn.done || socket.readyState !== WebSocket.OPEN) return;
    for (const text of client._takeUnsent(Infinity)) socket.send(text);
  };
  socket.onopen = () => {
    // The server refuses a client built from another version of the protocol.
    const hello = client._hello();
    if (hello) socket.send(hello);
  };
  socket.onmessage = (event) => {
    heard = Date.now();
    if (typeof event.data !== "string") {
      client._decodeError("frames are JSON text; a binary message arrived");
      return;
    }
    const end = afterFrame(client, client._onText(event.data), conn);
    if (end) conn.end(end);
  };
  socket.onclose = (event) => {
    // 1006: dropped without a close frame (a refused handshake looks the same to a page).
    const reason = event.reason || (event.code === 1006 ? "connection closed" : "");
    conn.end({ code: event.code, reason });
  };
  return conn;
}

/** One event stream (fetched, so its status and end are seen) and its POST uplink. */
function openSse(client) {
  const { interval, timeout } = client._options.heartbeat;
  const abort = new AbortController();
  const conn = { connected: false, done: false, flush() {}, end() {} };
  let uplink = false;
  const welcome = welcomeWithin(client, conn);
  let heard = Date.now();
  const ticks = setInterval(() => {
    // The server sends keep-alive comments every second, so silence means a dead stream.
    if (Date.now() - heard > interval + timeout) conn.end({ code: 1006, reason: "heartbeat timed out" });
  }, Math.min(interval, 1000));

  conn.end = ({ code, reason, fatal }) => {
    if (conn.done) return;
    conn.done = true;
    clearInterval(ticks);
    clearTimeout(welcome);
    abort.abort();
    client._ended(conn, { code, reason, connected: conn.connected, fatal });
  };
  const apply = (text) => {
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
            conn.end({ code: 1006, reason: `bad response body: ${err.message}` });
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
    headers: { accept: "text/event-stream" },
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

function post(client, frames, session, signal) {
  const headers = { "content-type": "application/json" };
  if (session) headers["omni-session"] = session;
  return fetch(client._url("http"), {
    method: "POST",
    headers,
    body: `[${frames.join(",")}]`,
    signal,
  });
}

/** An HTTP refusal that retrying will not change (401, 403, 404) is fatal. */
function refused(status, reason) {
  const end = { code: status, reason };
  if ([401, 403, 404].includes(status)) end.fatal = { state: "error", error: "init", message: reason };
  return end;
}

/** Reads a `text/event-stream` body, calling `onData` with each event's data. Only `data`
 * matters: a frame names its own type, and the resume point is kept by the client. */
async function readEvents(body, onBytes, onData) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
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
