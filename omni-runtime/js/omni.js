// omni.js: the browser client for omni's wire protocol v1 (docs/PROTOCOL.md).
//
//   import { connect, mux } from "/omni/omni.js";
//   const client = connect("/omni", { transport: "ws" });
//   client.on("message", (payload) => update(payload));
//   client.on("state", (state) => show(state));
//   const ref = client.send({ kind: "FetchAll" });
//
//   // Elm-style: every message of the page goes through its update; `dispatch` sends the
//   // ones whose kind is a client message's (named in `kinds`) and returns each to apply.
//   const chat = connect("/omni", { kinds: ["Send", "FetchAll"] });
//   update(chat.dispatch({ kind: "Send", data: message }));
//   update(chat.dispatch({ kind: "DraftChanged", data: "" })); // local: not sent
//
//   // Several components, each a session of its own module, over one WebSocket (/omni/mux):
//   const widgets = mux("/omni");
//   const counter = widgets.join("c1", "counter", tokenFromThePage);
//   counter.on("message", (payload) => show(payload));
//   counter.send({ kind: "Increment" });
//
//   // Frames as MessagePack, binary WebSocket messages (bytes in messages as Uint8Array):
//   const packed = connect("/omni", { codec: "msgpack" });
//
//   // Presence: who is on a topic, kept per topic by every client and component.
//   client.on("presence", ({ topic, joins, leaves, list }) => showPeople(list));
//   client.presence("room"); // { ann: [{ ref, meta }, { ref, meta }], bob: [...] }
//
// It behaves like the Rust client: reconnects with backoff and jitter, resumes its session so
// every sequenced server message arrives once and in order, keeps unacknowledged messages in
// a queue (in sessionStorage, so a reloaded page resends them and resumes its session), and
// stops for good when the server refuses its protocol version. A `connect()` client also
// follows sequenced topics: it keeps the last number of each (stored with the session), so
// after a drop or a reload the server replays just what it missed of them. A mux component
// does all of this on its own: its own session, queue, stored resume point, topic cursors
// (sent in its `join`) and transport state. Each also keeps the presence list of every topic
// the server sends one for (not stored: the server sends the whole list again on resume).

const DEFAULTS = {
  transport: "ws",
  backoff: { base: 250, cap: 10000, factor: 2, jitter: 0.5 },
  heartbeat: { interval: 15000, timeout: 10000 },
  queue: 1024,
  connectTimeout: 10000,
  // The server's frame limit (`Limits::max_frame_bytes`), as the Rust client's default.
  maxMessageBytes: 64 * 1024,
};

// Most messages one POST carries, so a long queue never makes a body the server refuses.
const BATCH = 64;

/** Connects to the omni endpoint under `url` (the prefix the server nests its routes under). */
export function connect(url, options = {}) {
  return new Client(url, options);
}

/** Opens the mux socket under `url` (`{url}/mux`), on which components join and leave. */
export function mux(url, options = {}) {
  return new Mux(url, options);
}

/** The delay in ms before reconnection attempt `attempt` (from 1), as the Rust `Backoff`. */
export function backoffDelay(backoff, attempt) {
  const { base, cap, factor, jitter } = { ...DEFAULTS.backoff, ...backoff };
  const full = Math.min(cap, base * factor ** Math.max(0, attempt - 1));
  const share = Math.min(1, Math.max(0, jitter)) * Math.random();
  return Math.round(full * (1 - share));
}

/** The prefix endpoint paths are appended to, relative to the page. */
function baseUrl(url) {
  const base = new URL(String(url), globalThis.location?.href);
  base.pathname = base.pathname.replace(/\/+$/, "");
  base.search = "";
  base.hash = "";
  return base;
}

function withDefaults(options) {
  return {
    ...DEFAULTS,
    ...options,
    backoff: { ...DEFAULTS.backoff, ...options.backoff },
    heartbeat: { ...DEFAULTS.heartbeat, ...options.heartbeat },
  };
}

/** `{base}/{path}`, in the WebSocket scheme if asked. */
function endpointUrl(base, path, websocket) {
  const url = new URL(base.href);
  url.pathname = `${url.pathname}/${path}`;
  if (websocket) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

function pickStorage(options) {
  return options.storage === undefined ? defaultStorage() : options.storage;
}

function defaultStorage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // Access refused (sandboxed frame, privacy settings).
  }
}

/** `{ frame }` when `value` is shaped like a frame, else `{ problem }`. */
function asFrame(value) {
  if (value === null || typeof value !== "object" || typeof value.type !== "string") {
    return { problem: "a frame is an object with a string `type`" };
  }
  return { frame: value };
}

function decodeText(text) {
  try {
    return asFrame(JSON.parse(text));
  } catch (err) {
    return { problem: `not JSON: ${err.message}` };
  }
}

/** The codec a client or mux was asked for: "json" (default) or "msgpack". */
function pickCodec(options) {
  const codec = options.codec ?? "json";
  if (codec !== "json" && codec !== "msgpack") {
    throw new TypeError(`unknown codec "${codec}": use "json" or "msgpack"`);
  }
  return codec;
}

/** The size of an encoded frame as the server counts it: its bytes (text as UTF-8). */
function frameBytes(encoded) {
  return typeof encoded === "string" ? UTF8_OUT.encode(encoded).length : encoded.length;
}

/** One frame as the connection's codec writes it: JSON text, or MessagePack bytes. */
function encodeFrame(codec, frame) {
  return codec === "msgpack" ? encodeMsgpack(frame) : JSON.stringify(frame);
}

/** One WebSocket message in the connection's codec, as `{ frame }` or `{ problem }`. */
function decodeMessage(codec, data) {
  if (codec === "json") {
    if (typeof data !== "string") return { problem: "frames are JSON text; a binary message arrived" };
    return decodeText(data);
  }
  if (typeof data === "string") return { problem: "frames are MessagePack; a text message arrived" };
  try {
    return asFrame(decodeMsgpack(data));
  } catch (err) {
    // A stack overflow on absurd nesting lands here too: a bad frame, not a broken client.
    return { problem: `not MessagePack: ${err.message}` };
  }
}

// MessagePack, as much of it as frames need: every form the server's encoder (rmp-serde)
// writes is read; JSON's data model is written, each value in its smallest form.

const UTF8_OUT = new TextEncoder();
// Fatal, so a string that is not UTF-8 fails the frame as it would fail a JSON text frame;
// a leading U+FEFF is kept, as JSON keeps it inside a string.
const UTF8_IN = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A value already encoded, written as it is: a queued payload is encoded once, when it is
 * sent, and goes into every frame that carries it. */
class Packed {
  constructor(bytes) {
    this.bytes = bytes;
  }
}

/** Encodes `value` as MessagePack, seeing it as `JSON.stringify` would, except that bytes
 * (`Uint8Array`, `ArrayBuffer`, any typed array or `DataView`) are `bin`. Throws a TypeError
 * on what JSON cannot write either: a cycle, a BigInt. */
export function encodeMsgpack(value) {
  const packer = new Packer();
  packer.write(value, "");
  return packer.bytes.slice(0, packer.length);
}

/** Decodes one MessagePack value from `data` (an ArrayBuffer or a view of one), as
 * `JSON.parse` would give it: maps are objects (integer keys as strings), integers past 2^53
 * rounded Numbers, `bin` a Uint8Array of its own. Throws a SyntaxError on input that is not
 * one value, and on extension types. */
export function decodeMsgpack(data) {
  let bytes;
  if (data instanceof Uint8Array) bytes = data;
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  else throw new TypeError("MessagePack is read from an ArrayBuffer or a typed array");
  const unpacker = new Unpacker(bytes);
  const value = unpacker.read();
  if (unpacker.pos !== bytes.length) {
    throw new SyntaxError(`${bytes.length - unpacker.pos} bytes follow the value`);
  }
  return value;
}

/** What `JSON.stringify` writes for `value` under `key`: its `toJSON()` if it has one, except
 * for bytes (node's Buffer has a `toJSON`, but is bytes). */
function jsonView(value, key) {
  if (value === null || typeof value !== "object" || isBytes(value)) return value;
  return typeof value.toJSON === "function" ? value.toJSON(key) : value;
}

function isBytes(value) {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/** Values an object property is left out for, as `JSON.stringify` leaves it out. */
function isSkipped(value) {
  return value === undefined || typeof value === "function" || typeof value === "symbol";
}

class Packer {
  constructor() {
    this.bytes = new Uint8Array(256);
    this.view = new DataView(this.bytes.buffer);
    this.length = 0;
    // The arrays and objects being written: a cycle is refused, as JSON refuses it, rather
    // than recursing until the stack runs out.
    this.open = new Set();
  }

  /** Makes room for `n` more bytes. */
  reserve(n) {
    const need = this.length + n;
    if (need <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < need) size *= 2;
    const bytes = new Uint8Array(size);
    bytes.set(this.bytes.subarray(0, this.length));
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer);
  }

  byte(b) {
    this.reserve(1);
    this.bytes[this.length++] = b;
  }

  raw(bytes) {
    this.reserve(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** A type byte, then `n` in `size` bytes, big-endian, signed or not. */
  head(type, size, n, signed = false) {
    this.reserve(1 + size);
    this.bytes[this.length++] = type;
    const at = this.length;
    if (size === 1) signed ? this.view.setInt8(at, n) : this.view.setUint8(at, n);
    else if (size === 2) signed ? this.view.setInt16(at, n) : this.view.setUint16(at, n);
    else if (size === 4) signed ? this.view.setInt32(at, n) : this.view.setUint32(at, n);
    else signed ? this.view.setBigInt64(at, BigInt(n)) : this.view.setBigUint64(at, BigInt(n));
    this.length += size;
  }

  /** The header of an array or map of `n` entries: fix form, 16 or 32 bits. */
  count(fix, type16, n) {
    if (n < 0x10) this.byte(fix | n);
    else if (n < 0x10000) this.head(type16, 2, n);
    else this.head(type16 + 1, 4, n);
  }

  write(value, key) {
    value = jsonView(value, key);
    switch (typeof value) {
      case "number":
        return this.number(value);
      case "string":
        return this.string(value);
      case "boolean":
        return this.byte(value ? 0xc3 : 0xc2);
      case "bigint":
        throw new TypeError("a BigInt has no MessagePack form here (nor a JSON one)");
      case "object":
        if (value === null) return this.byte(0xc0);
        if (value instanceof Packed) return this.raw(value.bytes);
        if (isBytes(value)) return this.binary(value);
        return this.container(value);
      default:
        // undefined, a function, a symbol: in an array, JSON writes null.
        return this.byte(0xc0);
    }
  }

  number(n) {
    if (!Number.isSafeInteger(n)) {
      this.reserve(9);
      this.bytes[this.length++] = 0xcb;
      this.view.setFloat64(this.length, n);
      this.length += 8;
    } else if (n >= 0) {
      if (n < 0x80) this.byte(n);
      else if (n < 0x100) this.head(0xcc, 1, n);
      else if (n < 0x10000) this.head(0xcd, 2, n);
      else if (n < 0x100000000) this.head(0xce, 4, n);
      else this.head(0xcf, 8, n);
    } else if (n >= -0x20) {
      this.byte(n & 0xff);
    } else if (n >= -0x80) {
      this.head(0xd0, 1, n, true);
    } else if (n >= -0x8000) {
      this.head(0xd1, 2, n, true);
    } else if (n >= -0x80000000) {
      this.head(0xd2, 4, n, true);
    } else {
      this.head(0xd3, 8, n, true);
    }
  }

  string(s) {
    const bytes = UTF8_OUT.encode(s);
    const n = bytes.length;
    if (n < 0x20) this.byte(0xa0 | n);
    else if (n < 0x100) this.head(0xd9, 1, n);
    else if (n < 0x10000) this.head(0xda, 2, n);
    else this.head(0xdb, 4, n);
    this.raw(bytes);
  }

  binary(value) {
    const bytes =
      value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const n = bytes.length;
    if (n < 0x100) this.head(0xc4, 1, n);
    else if (n < 0x10000) this.head(0xc5, 2, n);
    else this.head(0xc6, 4, n);
    this.raw(bytes);
  }

  container(value) {
    if (this.open.has(value)) throw new TypeError("a cyclic value has no MessagePack form");
    this.open.add(value);
    if (Array.isArray(value)) {
      this.count(0x90, 0xdc, value.length);
      for (let i = 0; i < value.length; i++) this.write(value[i], String(i));
    } else {
      // Own enumerable string keys, as JSON; a property JSON would leave out is left out.
      const entries = [];
      for (const key of Object.keys(value)) {
        const inner = jsonView(value[key], key);
        if (!isSkipped(inner)) entries.push([key, inner]);
      }
      this.count(0x80, 0xde, entries.length);
      for (const [key, inner] of entries) {
        this.string(key);
        this.write(inner, key);
      }
    }
    this.open.delete(value);
  }
}

class Unpacker {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  /** Moves past `n` bytes and returns where they start; throws if the input ends first. */
  take(n) {
    const at = this.pos;
    if (n > this.bytes.length - at) throw new SyntaxError(`the input ends inside a value (at byte ${at})`);
    this.pos = at + n;
    return at;
  }

  /** An unsigned big-endian number of `size` bytes; past 2^53, rounded as JSON would. */
  uint(size) {
    const at = this.take(size);
    if (size === 1) return this.bytes[at];
    if (size === 2) return this.view.getUint16(at);
    if (size === 4) return this.view.getUint32(at);
    // Exact high half times 2^32 plus the low half: one rounding, to the nearest Number.
    return this.view.getUint32(at) * 2 ** 32 + this.view.getUint32(at + 4);
  }

  read() {
    const type = this.bytes[this.take(1)];
    if (type < 0x80) return type;
    if (type < 0x90) return this.map(type & 0x0f);
    if (type < 0xa0) return this.array(type & 0x0f);
    if (type < 0xc0) return this.string(type & 0x1f);
    if (type >= 0xe0) return type - 0x100;
    switch (type) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.binary(this.uint(1));
      case 0xc5:
        return this.binary(this.uint(2));
      case 0xc6:
        return this.binary(this.uint(4));
      case 0xca:
        return this.view.getFloat32(this.take(4));
      case 0xcb:
        return this.view.getFloat64(this.take(8));
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        return this.uint(8);
      case 0xd0:
        return this.view.getInt8(this.take(1));
      case 0xd1:
        return this.view.getInt16(this.take(2));
      case 0xd2:
        return this.view.getInt32(this.take(4));
      case 0xd3: {
        const at = this.take(8);
        return this.view.getInt32(at) * 2 ** 32 + this.view.getUint32(at + 4);
      }
      case 0xd9:
        return this.string(this.uint(1));
      case 0xda:
        return this.string(this.uint(2));
      case 0xdb:
        return this.string(this.uint(4));
      case 0xdc:
        return this.array(this.uint(2));
      case 0xdd:
        return this.array(this.uint(4));
      case 0xde:
        return this.map(this.uint(2));
      case 0xdf:
        return this.map(this.uint(4));
      case 0xc1:
        throw new SyntaxError(`0xc1 is no MessagePack type (at byte ${this.pos - 1})`);
      default:
        throw new SyntaxError(`extension types are not read (0x${type.toString(16)} at byte ${this.pos - 1})`);
    }
  }

  string(n) {
    const at = this.take(n);
    // Keys and most short values are ASCII: read by hand, they skip a call to the decoder.
    if (n <= 16) {
      let text = "";
      for (let i = at; i < at + n; i++) {
        const b = this.bytes[i];
        if (b >= 0x80) return this.utf8(at, n);
        text += String.fromCharCode(b);
      }
      return text;
    }
    return this.utf8(at, n);
  }

  utf8(at, n) {
    try {
      return UTF8_IN.decode(this.bytes.subarray(at, at + n));
    } catch {
      throw new SyntaxError(`a string that is not UTF-8 (at byte ${at})`);
    }
  }

  binary(n) {
    const at = this.take(n);
    // A copy: a page keeping a file does not keep the whole frame's buffer alive with it.
    return this.bytes.slice(at, at + n);
  }

  /** Checks that `n` entries of at least `size` bytes each can be there, so that a forged
   * length cannot make a huge allocation. */
  expect(n, size) {
    if (n * size > this.bytes.length - this.pos) {
      throw new SyntaxError(`the input ends inside a value (at byte ${this.pos})`);
    }
  }

  array(n) {
    this.expect(n, 1);
    const items = new Array(n);
    for (let i = 0; i < n; i++) items[i] = this.read();
    return items;
  }

  map(n) {
    this.expect(n, 2);
    const object = {};
    for (let i = 0; i < n; i++) {
      const key = this.key();
      const value = this.read();
      // Defined, not assigned: a key named `__proto__` is data, as in JSON.parse's objects.
      if (key === "__proto__") {
        Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        object[key] = value;
      }
    }
    return object;
  }

  /** A map key: a string, or an integer (a Rust `HashMap<u32, _>`), read as JSON names it. */
  key() {
    const type = this.bytes[this.pos];
    const text = (type >= 0xa0 && type < 0xc0) || (type >= 0xd9 && type <= 0xdb);
    const integer = type < 0x80 || type >= 0xe0 || (type >= 0xcc && type <= 0xd3);
    // At the end of the input (`type` undefined), `read` says so.
    if (!text && !integer && type !== undefined) {
      throw new SyntaxError(`a map key is a string or an integer, not 0x${type.toString(16)} (at byte ${this.pos})`);
    }
    return String(this.read());
  }
}

/** Bytes as base64, for storage, which keeps text. */
function toBase64(bytes) {
  let binary = "";
  // In slices: one call with a whole file's bytes as arguments would pass the engine's limit.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const STEP = { continue: "continue", welcomed: "welcomed", gap: "gap" };

/**
 * One session as a client holds it: the resume point, the queue of messages the server has
 * not acknowledged (stored, so a reloaded page resends them), the listeners, and what each
 * server frame does to them. A `Client` is one over a connection of its own; a mux
 * `Component` is one per join, sharing the mux's socket.
 */
class Stream {
  constructor({ storage, key, queue, maxBytes, id, noun, kinds, onConnect, codec }) {
    this._listeners = { message: new Set(), state: new Set(), ack: new Set(), presence: new Set() };
    this._storage = storage;
    this._key = key;
    this._limit = queue;
    this._maxBytes = maxBytes;
    this._id = id;
    this._noun = noun;
    this._codec = codec;
    // The protocol's client message kinds, which `dispatch` sends; JavaScript cannot tell
    // them from the page's own messages by itself.
    this._kinds = kinds === undefined ? null : new Set(Array.from(kinds, String));
    this._session = null;
    this._lastSeq = 0;
    // The last number held of each sequenced topic. A Map, so that no topic name can collide
    // with an Object property; independent of the session, so kept when the session is lost.
    this._topics = new Map();
    // Topics reset to a number whose snapshot may not have arrived yet. The stored cursor
    // moves only with the first message after the reset, so a connection (or page) lost
    // before the snapshot came asks for the reset, and the snapshot, again.
    this._resets = new Map();
    // Each topic's presence list, frozen as `presence()` hands it out: replaced on a change.
    this._presence = new Map();
    this._nextRef = 1;
    this._queue = [];
    // The connect hook, and the frames it made for the current connection: they go before
    // the queue, once (the hook runs again on the next connection).
    this._onConnect = onConnect ?? null;
    this._greeting = [];
    this._closed = false;
    this._state = { state: "connecting" };
    this._load();
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
    if (this._closed) throw new Error(`omni: the ${this._noun} is closed`);
    if (this._queue.length >= this._limit) {
      const message = `${this._limit} messages are already waiting for the server`;
      this._emitState({ state: "error", error: "send", message });
      throw new Error(`omni: ${message}`);
    }
    // Encoded now with MessagePack: a payload it cannot write is refused here, not when a
    // connection flushes; and the bytes are what is stored and sent, however often.
    const packed = this._codec === "msgpack" ? encodeMsgpack(payload) : null;
    // A frame over the server's limit would close the connection each time it was sent, and
    // be sent again on the next one, for ever: it is refused here, as the Rust client does.
    const frame = this._msgFrame(payload, packed, this._nextRef);
    const size = frameBytes(frame);
    if (size > this._maxBytes) {
      const message = `the message is ${size} bytes; the server accepts at most ${this._maxBytes}`;
      this._emitState({ state: "error", error: "send", message });
      throw new Error(`omni: ${message}`);
    }
    const ref = this._nextRef++;
    // The frame as measured is the frame sent, however often: encoded once.
    this._queue.push({ ref, payload, packed, frame, sent: false });
    this._save();
    this._wake();
    return ref;
  }

  /** Sends `msg` when its `kind` is one of the `kinds` given at connect (or join), and
   * returns it in every case, so that the page's update applies what it dispatched. Throws
   * as `send` does. */
  dispatch(msg) {
    if (this._kinds === null) {
      throw new TypeError(`omni: dispatch needs the ${this._noun}'s client message kinds: pass { kinds: [...] }`);
    }
    if (this._kinds.has(msg?.kind)) this.send(msg);
    return msg;
  }

  /** Messages sent but not yet acknowledged, oldest first: `[{ ref, payload }]`. */
  pending() {
    return this._queue.map(({ ref, payload }) => ({ ref, payload }));
  }

  /** The presence list of `topic`, `{ key: [{ ref, meta }, ...] }`, frozen (a change
   * replaces it); `{}` for a topic with no one, or none heard of. */
  presence(topic) {
    return this._presence.get(String(topic)) ?? EMPTY;
  }

  /** Adds a listener for "message", "state", "ack" or "presence"; returns a function that
   * removes it. */
  on(event, fn) {
    const set = this._listeners[event];
    if (!set) throw new TypeError(`unknown event "${event}": use message, state, ack or presence`);
    set.add(fn);
    return () => set.delete(fn);
  }

  /** A message was queued: the owner of the connection sends it if it can. */
  _wake() {}

  _decodeError(message) {
    this._emitState({ state: "error", error: "decode", message });
    return STEP.continue;
  }

  _onFrame(frame) {
    switch (frame.type) {
      case "welcome": {
        const fresh = this._session !== frame.session;
        if (fresh) {
          // A session of its own (first connect, or the old one is gone: `reset` follows).
          this._session = frame.session;
          this._lastSeq = frame.seq;
          this._save();
        }
        this._emitState({ state: "connected", session: frame.session });
        this._greet({ session: frame.session, resumed: !fresh });
        // The new session's subscriptions bring their own lists: what was held was the old
        // one's, and leaves.
        if (fresh) this._dropPresence();
        return STEP.welcomed;
      }
      case "msg":
        if (typeof frame.topic === "string") return this._onTopicMsg(frame);
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
        const error = rejection(frame);
        if (frame.code === "version_mismatch") return { fatal: error };
        this._emitState(error);
        return STEP.continue;
      }
      case "reset":
        if (typeof frame.topic === "string") {
          if (!Number.isSafeInteger(frame.seq)) {
            return this._decodeError(`topic \`${frame.topic}\` reset to ${frame.seq}`);
          }
          // Only that topic's resume point is gone; its snapshot follows, then messages
          // numbered from `seq` on. The connection itself is as it was, so `state` keeps
          // reporting it: the listeners hear of the reset, `this._state` does not change.
          this._resets.set(frame.topic, frame.seq);
          this._emit("state", { state: "topic_reset", topic: frame.topic });
          return STEP.continue;
        }
        this._lastSeq = frame.seq;
        this._save();
        this._emitState({ state: "reset" });
        return STEP.continue;
      case "presence_state":
        return this._onPresenceState(frame);
      case "presence_diff":
        return this._onPresenceDiff(frame);
      case "joined":
      case "left":
        return STEP.continue;
      default:
        return this._decodeError(`unknown frame type \`${frame.type}\``);
    }
  }

  /** A message of a sequenced topic: numbered by the topic, so the session's `lastSeq` is
   * not touched, and ordered against the topic's cursor instead. */
  _onTopicMsg(frame) {
    // Past 2^53 a number would no longer be exact, and ordering by it would go wrong.
    if (!Number.isSafeInteger(frame.seq)) {
      return this._decodeError(`topic \`${frame.topic}\` sent seq ${frame.seq}`);
    }
    const held = this._resets.get(frame.topic) ?? this._topics.get(frame.topic);
    if (held !== undefined) {
      if (frame.seq <= held) return STEP.continue; // a replay overlapping the live stream
      // A message was lost (a server missed a moment of its pub/sub): reconnecting sends
      // the cursor, and the server replays from there. Numbers are around 1.7e15, well
      // inside exact integers, so `held + 1` is exact.
      if (frame.seq > held + 1) return STEP.gap;
    }
    // Without a cursor, the first message starts the topic's numbering for this client.
    this._resets.delete(frame.topic);
    this._topics.set(frame.topic, frame.seq);
    this._save();
    this._emit("message", frame.payload, frame);
    return STEP.continue;
  }

  /** A topic's whole list: it replaces the one held, and only what changed is news (after a
   * resume the server sends the list again, most often unchanged). */
  _onPresenceState(frame) {
    const state = readList(frame.state);
    if (typeof frame.topic !== "string" || state === null) {
      return this._decodeError("a `presence_state` frame needs a `topic` and a `state` of entry lists");
    }
    const held = this._heldList(frame.topic);
    const joins = missing(state, held);
    const leaves = missing(held, state);
    if (joins.size > 0 || leaves.size > 0) this._setPresence(frame.topic, state, joins, leaves);
    return STEP.continue;
  }

  /** What changed in a topic: leaves removed by `ref` (a key left empty goes), then joins
   * added (a `ref` held already is skipped). Reported as it came, even when it changed
   * nothing held. */
  _onPresenceDiff(frame) {
    const joins = frame.joins === undefined ? new Map() : readList(frame.joins);
    const leaves = frame.leaves === undefined ? new Map() : readList(frame.leaves);
    if (typeof frame.topic !== "string" || joins === null || leaves === null) {
      return this._decodeError("a `presence_diff` frame needs a `topic`, and `joins` and `leaves` of entry lists");
    }
    const list = this._heldList(frame.topic);
    for (const [key, gone] of leaves) {
      const entries = list.get(key);
      if (!entries) continue;
      const kept = entries.filter((e) => !gone.some((g) => g.ref === e.ref));
      if (kept.length > 0) list.set(key, kept);
      else list.delete(key);
    }
    for (const [key, joined] of joins) {
      const entries = [...(list.get(key) ?? [])];
      for (const entry of joined) {
        if (!entries.some((e) => e.ref === entry.ref)) entries.push(entry);
      }
      list.set(key, entries);
    }
    this._setPresence(frame.topic, list, joins, leaves);
    return STEP.continue;
  }

  /** A topic's list as a Map from key to entries, to change without touching the frozen one. */
  _heldList(topic) {
    return new Map(Object.entries(this._presence.get(topic) ?? EMPTY));
  }

  _setPresence(topic, list, joins, leaves) {
    const frozen = freezeList(list);
    if (list.size > 0) this._presence.set(topic, frozen);
    else this._presence.delete(topic);
    this._emit("presence", { topic, joins: freezeList(joins), leaves: freezeList(leaves), list: frozen });
  }

  /** Every list held leaves: they belonged to a session that is gone. */
  _dropPresence() {
    const lists = [...this._presence];
    this._presence.clear();
    for (const [topic, list] of lists) this._emit("presence", { topic, joins: EMPTY, leaves: list, list: EMPTY });
  }

  /** The topic cursors as the JSON object the server reads: `{"room": 1763791200000017}`. */
  _cursors() {
    return JSON.stringify(Object.fromEntries(this._topics));
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

  /** Runs the connect hook for a connection just welcomed into `info.session`. */
  _greet(info) {
    this._greeting = [];
    if (!this._onConnect) return;
    let payloads;
    const greeting = [];
    try {
      payloads = Array.from(this._onConnect(info) ?? []);
      for (const payload of payloads) {
        // A ref of its own, so the server's memory of handled refs never mistakes it for a
        // queued message; not queued, so not resent.
        const frame = { type: "msg" };
        if (this._id !== undefined) frame.id = this._id;
        frame.payload = payload;
        frame.ref = this._nextRef + greeting.length;
        greeting.push(encodeFrame(this._codec, frame));
      }
    } catch (err) {
      // The hook threw, or gave a message the codec cannot write: nothing of it goes.
      this._emitState({ state: "error", error: "send", message: `the connect hook failed: ${err?.message ?? err}` });
      return;
    }
    this._greeting = greeting;
    this._nextRef += greeting.length;
    if (payloads.length > 0) this._save();
  }

  /** The connect hook's frames, then up to `limit` queued frames not yet sent on this
   * connection, marked sent. */
  _takeUnsent(limit) {
    const frames = this._greeting;
    this._greeting = [];
    for (const entry of this._queue) {
      if (frames.length >= limit) break;
      if (entry.sent) continue;
      entry.sent = true;
      // A restored entry is encoded when first sent again.
      entry.frame ??= this._msgFrame(entry.payload, entry.packed, entry.ref);
      frames.push(entry.frame);
    }
    return frames;
  }

  /** The `msg` frame of a queued message, encoded: text, or MessagePack bytes. */
  _msgFrame(payload, packed, ref) {
    const frame = { type: "msg" };
    if (this._id !== undefined) frame.id = this._id;
    frame.payload = packed ? new Packed(packed) : payload;
    frame.ref = ref;
    return encodeFrame(this._codec, frame);
  }

  /** The session cannot be resumed (another page took it, or it ended): the next welcome
   * starts a new one. The topic cursors stay: the new session resumes the topics from them. */
  _forgetSession() {
    this._session = null;
    this._lastSeq = 0;
    this._save();
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
      this._topics = loadCursors(saved.topics);
      this._nextRef = Number.isSafeInteger(saved.nextRef) ? saved.nextRef : 1;
      this._queue = Array.isArray(saved.queue) ? saved.queue.flatMap((entry) => this._restore(entry)) : [];
    } catch {
      // Unreadable state is dropped: the client starts a new session.
    }
  }

  _save() {
    if (!this._storage) return;
    const saved = {
      session: this._session,
      lastSeq: this._lastSeq,
      topics: Object.fromEntries(this._topics),
      nextRef: this._nextRef,
      queue: this._queue.map((entry) => {
        if (!entry.packed) return { ref: entry.ref, payload: entry.payload };
        // JSON has no bytes: a MessagePack payload is kept as its encoding, whose `bin` values
        // come back as Uint8Array.
        entry.stored ??= toBase64(entry.packed);
        return { ref: entry.ref, packed: entry.stored };
      }),
    };
    try {
      this._storage.setItem(this._key, JSON.stringify(saved));
    } catch {
      // Storage full or disabled: the client still works, only a reload loses the queue.
    }
  }

  /** A stored queue entry as this client queues it (in its codec), or none if unreadable. */
  _restore(saved) {
    try {
      const { ref } = saved;
      let { payload } = saved;
      let packed = null;
      if (typeof saved.packed === "string") {
        packed = fromBase64(saved.packed);
        payload = decodeMsgpack(packed);
      }
      if (this._codec === "msgpack") packed ??= encodeMsgpack(payload);
      else packed = null;
      return [{ ref, payload, packed, sent: false }];
    } catch {
      return [];
    }
  }

  /** Drops what is stored: nothing of this session is worth resuming or resending. */
  _unstore() {
    if (!this._storage) return;
    try {
      if (typeof this._storage.removeItem === "function") this._storage.removeItem(this._key);
      else this._storage.setItem(this._key, "null");
    } catch {
      // Nothing more can be done; a later page finds a session the server no longer has.
    }
  }
}

/** Stored topic cursors; an entry that is not a plain count is dropped (the topic then
 * counts as never seen). */
function loadCursors(saved) {
  const cursors = new Map();
  if (saved === null || typeof saved !== "object" || Array.isArray(saved)) return cursors;
  for (const [topic, seq] of Object.entries(saved)) {
    if (Number.isSafeInteger(seq) && seq >= 0) cursors.set(topic, seq);
  }
  return cursors;
}

const EMPTY = Object.freeze({});

/** A wire presence list (`{ key: [{ ref, meta }] }`) as a Map from key to frozen entries, or
 * null when it is not shaped like one. */
function readList(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const list = new Map();
  for (const [key, entries] of Object.entries(value)) {
    if (!Array.isArray(entries)) return null;
    const read = [];
    for (const entry of entries) {
      if (entry === null || typeof entry !== "object" || typeof entry.ref !== "string") return null;
      read.push(Object.freeze({ ref: entry.ref, meta: deepFreeze(entry.meta ?? null) }));
    }
    if (read.length > 0) list.set(key, read);
  }
  return list;
}

/** The entries of `from` whose `ref` is not under the same key in `to`, by key (as the Rust
 * `Diff::between`: a key in both with the same refs is no change). */
function missing(from, to) {
  const gone = new Map();
  for (const [key, entries] of from) {
    const others = to.get(key) ?? [];
    const absent = entries.filter((e) => !others.some((o) => o.ref === e.ref));
    if (absent.length > 0) gone.set(key, absent);
  }
  return gone;
}

/** A Map of key to entries as the frozen plain object handed to the page. `fromEntries`
 * defines each key as its own property, so even a key named `__proto__` is kept as data. */
function freezeList(list) {
  return Object.freeze(
    Object.fromEntries([...list].map(([key, entries]) => [key, Object.freeze([...entries])])),
  );
}

function deepFreeze(value) {
  // A typed array with elements cannot be frozen (a `bin` meta, over MessagePack).
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** The transport state for a server's `error` frame. */
function rejection(frame) {
  const error = { state: "error", error: "rejected", code: frame.code, message: frame.message ?? "" };
  if (frame.ref !== undefined) error.ref = frame.ref;
  return error;
}

/** What a connection carries when the application registered no credentials provider. */
const NO_CREDENTIALS = Object.freeze({ params: {}, headers: {} });

/** A credentials provider that did not answer within the connect timeout. */
class Timeout extends Error {}

/** The provider's answer as `{ params, headers }` of strings. */
function readCredentials(value) {
  const strings = (object) =>
    Object.fromEntries(Object.entries(object ?? {}).map(([name, v]) => [name, String(v)]));
  return { params: strings(value?.params), headers: strings(value?.headers) };
}

/**
 * Keeps one connection up: opens it, and when it ends opens another after a backoff (at once
 * when the browser comes back online), until closed or a fatal end. What a connection is and
 * who hears about it is the owner's: `open()` returns a connection, `report(state)` passes on
 * a transport state, `lost(code)` runs after a connection ended, `fatal(state)` on the end
 * that stops everything.
 */
class Dialer {
  constructor(options, hooks) {
    this._options = options;
    this._backoff = options.backoff;
    this._waiting = false;
    this._hooks = hooks;
    this.conn = null;
    this.closed = false;
    this._attempt = 0;
    this._timer = null;
    this._onOnline = () => {
      // Back online: retry at once, but a refusal still waits for the application.
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

  /** Asks the credentials provider (bounded by the connect timeout), then opens a connection
   * with what it gave. */
  _start() {
    if (this.closed) return;
    this._hooks.report({ state: "connecting" });
    const provider = this._options.credentials;
    if (!provider) {
      this.conn = this._hooks.open(NO_CREDENTIALS);
      return;
    }
    // Stands for the connection while the provider works, so that `ended` applies to it.
    const pending = { connected: false, done: false, send() {}, flush() {}, end() {} };
    this.conn = pending;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Timeout()), this._options.connectTimeout);
    });
    Promise.race([Promise.resolve().then(() => provider()), timeout]).then(
      (credentials) => {
        clearTimeout(timer);
        if (this.conn !== pending || this.closed) return;
        this.conn = this._hooks.open(readCredentials(credentials));
      },
      (err) => {
        clearTimeout(timer);
        const end =
          err instanceof Timeout
            ? { code: 1006, reason: `the credentials provider gave nothing within ${this._options.connectTimeout} ms` }
            : { code: 0, reason: `the credentials provider failed: ${err?.message ?? err}`, unauthorized: true };
        this.ended(pending, { ...end, connected: false });
      },
    );
  }

  /** A connection ended: report it and retry after a backoff, unless retrying cannot help
   * (then stop), or the attempt's credentials were refused (then wait for `reconnect`). */
  ended(conn, { code, reason, connected, fatal, unauthorized }) {
    if (conn !== this.conn) return;
    this.conn = null;
    if (connected || code !== 0) this._hooks.report({ state: "disconnected", code, reason });
    if (!this.closed) this._hooks.lost(code);
    if (fatal) {
      this._stop();
      this._hooks.fatal(fatal);
      return;
    }
    if (this.closed) return;
    // Refused on a connection they had opened (an SSE uplink), the credentials most likely
    // expired: the next attempt asks the provider again. Refused on the way in, they are wrong.
    if (unauthorized && !connected) {
      this._attempt = 0;
      this._waiting = true;
      this._hooks.report({ state: "unauthorized", reason });
      return;
    }
    this._attempt = connected ? 1 : this._attempt + 1;
    const delay = backoffDelay(this._backoff, this._attempt);
    this._hooks.report({ state: "reconnecting", attempt: this._attempt, delay });
    this._timer = setTimeout(() => {
      this._timer = null;
      this._start();
    }, delay);
  }

  /** Connects now if waiting: after `unauthorized`, or during a backoff delay. */
  reconnect() {
    if (this.closed || this.conn) return;
    clearTimeout(this._timer);
    this._timer = null;
    this._waiting = false;
    this._start();
  }

  /** Closes the connection and stops reconnecting. */
  close(reason) {
    if (this.closed) return;
    this._stop();
    this.conn?.end({ code: 1000, reason });
  }

  _stop() {
    this.closed = true;
    clearTimeout(this._timer);
    this._timer = null;
    globalThis.removeEventListener?.("online", this._onOnline);
  }
}

class Client extends Stream {
  constructor(url, options) {
    const base = baseUrl(url);
    const merged = withDefaults(options);
    if (!["ws", "sse"].includes(merged.transport)) {
      throw new TypeError(`unknown transport "${merged.transport}": use "ws" or "sse"`);
    }
    const codec = pickCodec(options);
    if (codec === "msgpack" && merged.transport === "sse") {
      // An event stream carries text: the server refuses MessagePack on it.
      throw new TypeError('codec "msgpack" needs transport "ws": SSE carries JSON only');
    }
    super({
      codec,
      storage: pickStorage(options),
      key: options.queueKey ?? `omni:${base.href}:${merged.transport}`,
      queue: merged.queue,
      maxBytes: merged.maxMessageBytes,
      noun: "client",
      kinds: options.kinds,
      onConnect: options.onConnect,
    });
    this._base = base;
    this._options = merged;
    // What the credentials provider gave for the current connection.
    this._credentials = NO_CREDENTIALS;
    this._dialer = new Dialer(merged, {
      open: (credentials) => {
        this._credentials = credentials;
        return (merged.transport === "sse" ? openSse : openWs)(this);
      },
      report: (state) => this._emitState(state),
      lost: (code) => {
        if (code !== 4000) return;
        // Another page (a duplicated tab) took this session over: start one of our own.
        this._forgetSession();
        this._emitState({ state: "reset" });
      },
      fatal: (state) => {
        this._closed = true;
        this._emitState(state);
      },
    });
  }

  /** Closes the connection and stops reconnecting. The queue stays stored for a later page. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._dialer.close("closed by the client");
  }

  /** Connects now: after the `unauthorized` state (the credentials provider is asked again),
   * or instead of waiting out a backoff delay. Does nothing while connected or connecting. */
  reconnect() {
    this._dialer.reconnect();
  }

  _wake() {
    this._dialer.conn?.flush();
  }

  _ended(conn, end) {
    this._dialer.ended(conn, end);
  }

  /** `{base}/{path}`, in the WebSocket scheme if asked, with the resume point if asked. */
  _url(path, { websocket = false, resume = false } = {}) {
    const url = endpointUrl(this._base, path, websocket);
    for (const [name, value] of Object.entries(this._credentials.params)) url.searchParams.set(name, value);
    // Named only when it is not the default, so that a JSON client's URLs stay as they were.
    if (this._codec !== "json") url.searchParams.set("codec", this._codec);
    if (resume && this._session) {
      url.searchParams.set("session", this._session);
      url.searchParams.set("after", String(this._lastSeq));
    }
    // Always, even `{}`: it is what makes the server send topic messages as numbered `msg`s
    // and replay them. Only here, never in `hello` as well, or a topic would be replayed
    // twice.
    if (resume) url.searchParams.set("topics", this._cursors());
    return url.href;
  }

  /** The `hello` to send first on a connection, or null when there is nothing to check. */
  _hello() {
    const { protocol, version } = this._options;
    if (protocol === undefined && version === undefined) return null;
    const hello = { type: "hello" };
    if (protocol !== undefined) hello.protocol = protocol;
    if (version !== undefined) hello.version = version;
    return encodeFrame(this._codec, hello);
  }

  /** Decodes and applies one server frame; returns what it asks of the transport. */
  _onText(text) {
    const { frame, problem } = decodeText(text);
    return problem ? this._decodeError(problem) : this._onFrame(frame);
  }

  /** Applies one decoded server frame. */
  _onValue(value) {
    const { frame, problem } = asFrame(value);
    return problem ? this._decodeError(problem) : this._onFrame(frame);
  }

  // What `openWs` asks of the connection's owner.

  _socketUrl() {
    return this._url("ws", { websocket: true, resume: true });
  }

  _opened(conn) {
    // The server refuses a client built from another version of the protocol.
    const hello = this._hello();
    if (hello) conn.send(hello);
  }

  _receive(frame, conn) {
    return afterFrame(this, this._onFrame(frame), conn);
  }

  _unsent() {
    return this._takeUnsent(Infinity);
  }
}

/**
 * Components over one WebSocket. Each component is a session of its module, as a `Client` is
 * of its endpoint; the socket is shared, so it is reconnected here, and every component
 * re-joins on the new one before anything it queued is sent.
 */
class Mux {
  constructor(url, options) {
    this._base = baseUrl(url);
    this._options = withDefaults(options);
    this._codec = pickCodec(options);
    this._storage = pickStorage(options);
    this._components = new Map();
    // Ids whose `leave` is unanswered on this socket, with how many: frames for them are the
    // old component's until its `left`, even if a new one joined under the same id.
    this._leaving = new Map();
    this._closed = false;
    this._credentials = NO_CREDENTIALS;
    this._dialer = new Dialer(this._options, {
      open: (credentials) => {
        this._credentials = credentials;
        return openWs(this);
      },
      report: (state) => {
        for (const component of this._components.values()) component._emitState(state);
      },
      lost: () => {
        this._leaving.clear();
        for (const component of this._components.values()) component._unjoined();
      },
      fatal: (state) => {
        this._closed = true;
        for (const component of [...this._components.values()]) component._stop(state);
      },
    });
  }

  /** Starts component `id` of `module` with the token the server issued for it. */
  join(id, module, token, options = {}) {
    if (this._closed) throw new Error("omni: the mux is closed");
    if (typeof id !== "string" || id === "") throw new TypeError("omni: a component id is a non-empty string");
    if (this._components.has(id)) throw new Error(`omni: component "${id}" is already joined`);
    const component = new Component(this, {
      id,
      module: String(module),
      token: String(token),
      version: options.version,
      kinds: options.kinds,
      onConnect: options.onConnect,
      refreshToken: options.refreshToken,
      key: options.queueKey ?? `omni:${this._base.href}:mux:${module}:${id}`,
    });
    this._components.set(id, component);
    const conn = this._dialer.conn;
    if (conn?.connected) {
      // The socket is up already; its listeners, attached after join() returns, still see
      // `connecting` first.
      setTimeout(() => {
        if (component._phase !== "idle" || this._dialer.conn !== conn || conn.done) return;
        component._emitState({ state: "connecting" });
        this._join(component, conn);
      }, 0);
    }
    return component;
  }

  /** Connects the socket now: after `unauthorized`, or instead of waiting out a backoff. */
  reconnect() {
    this._dialer.reconnect();
  }

  /** Closes the socket and stops every component. Their queues stay stored for a later page. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._dialer.close("closed by the client");
    for (const component of [...this._components.values()]) component._stop(null);
  }

  _join(component, conn) {
    const frame = { type: "join", id: component.id, module: component.module, token: component._token };
    if (component._session) {
      frame.session = component._session;
      frame.after = component._lastSeq;
    }
    if (component._version !== undefined) frame.version = component._version;
    // The component follows sequenced topics like a single client: its cursors resume them.
    frame.topics = Object.fromEntries(component._topics);
    component._phase = "joining";
    conn.send(encodeFrame(this._codec, frame));
    // A join that is never answered means a socket that is not really there.
    component._timer = setTimeout(() => {
      if (component._phase === "joining" || component._phase === "joined") {
        conn.end({ code: 1006, reason: `no welcome for component "${component.id}"` });
      }
    }, this._options.connectTimeout);
  }

  _leave(component) {
    this._components.delete(component.id);
    const conn = this._dialer.conn;
    if (component._phase === "idle" || !conn?.connected || conn.done) return;
    conn.send(encodeFrame(this._codec, { type: "leave", id: component.id }));
    this._leaving.set(component.id, (this._leaving.get(component.id) ?? 0) + 1);
  }

  /** One more leave of `id` answered (by `left`, or `unknown_id` when its join had failed). */
  _leaveAnswered(id) {
    const left = this._leaving.get(id) - 1;
    if (left > 0) this._leaving.set(id, left);
    else this._leaving.delete(id);
  }

  // What `openWs` asks of the connection's owner.

  _socketUrl() {
    const url = endpointUrl(this._base, "mux", true);
    for (const [name, value] of Object.entries(this._credentials.params)) url.searchParams.set(name, value);
    if (this._codec !== "json") url.searchParams.set("codec", this._codec);
    return url.href;
  }

  _opened(conn) {
    // The server speaks only when spoken to: the socket is up once it opens.
    conn.connected = true;
    for (const component of this._components.values()) {
      if (component._phase === "idle") this._join(component, conn);
    }
  }

  _receive(frame, conn) {
    if (typeof frame.id !== "string") {
      // Only a frame about the socket itself has no component (an unreadable `id` included).
      if (frame.type === "error") {
        for (const component of this._components.values()) component._emitState(rejection(frame));
        return null;
      }
      return this._decodeError(`a \`${frame.type}\` frame on the mux names no component`);
    }
    if (this._leaving.has(frame.id)) {
      if (frame.type === "left" || (frame.type === "error" && frame.code === "unknown_id")) {
        this._leaveAnswered(frame.id);
      }
      return null;
    }
    const component = this._components.get(frame.id);
    if (!component || component._phase === "idle" || component._phase === "refreshing") return null;
    switch (frame.type) {
      case "joined":
        component._phase = "joined";
        return null;
      case "left":
        component._dropped(conn);
        return null;
      case "error":
        if (frame.ref === undefined && component._phase === "joining") {
          // An expired token, say: join again with a fresh one, queue and all.
          if (frame.code === "bad_token" && component._refresh()) return null;
          // The join was refused; the same join would be refused again (an expired token
          // stays expired), so the component stops here.
          component._stop(rejection(frame));
          return null;
        }
        // An answer to a message sent before the component's latest join: the message
        // stays queued and goes again once the component is welcomed.
        if (frame.ref !== undefined && component._phase !== "live") return null;
        if (frame.code === "unknown_id" && component._phase === "live") {
          // The server no longer has the component on this socket: join again rather than
          // drop what it refused, since a join is what it was missing.
          clearTimeout(component._timer);
          component._reconnected();
          this._join(component, conn);
          return null;
        }
        break;
    }
    const step = component._onFrame(frame);
    if (step === STEP.welcomed) {
      clearTimeout(component._timer);
      component._phase = "live";
      component._attempt = 0;
      component._refreshed = false;
      component._reconnected();
      conn.flush();
    } else if (step === STEP.gap) {
      // Every component re-joins from what it holds; the others lose nothing by it.
      return { code: 1006, reason: `component "${component.id}" missed frames; resuming` };
    } else if (step?.fatal) {
      component._stop(step.fatal);
    }
    return null;
  }

  _decodeError(message) {
    for (const component of this._components.values()) component._decodeError(message);
    return null;
  }

  _unsent() {
    const frames = [];
    for (const component of this._components.values()) {
      if (component._phase === "live") frames.push(...component._takeUnsent(Infinity));
    }
    return frames;
  }

  _ended(conn, end) {
    this._dialer.ended(conn, end);
  }
}

/** One joined component of a `Mux`: a session of its module, with a queue of its own. */
class Component extends Stream {
  constructor(mux, { id, module, token, version, kinds, key, onConnect, refreshToken }) {
    const codec = mux._codec;
    super({
      storage: mux._storage,
      key,
      queue: mux._options.queue,
      maxBytes: mux._options.maxMessageBytes,
      id,
      noun: "component",
      kinds,
      onConnect,
      codec,
    });
    this._mux = mux;
    this._module = module;
    this._token = token;
    // Asked once for a fresh token when a join is refused with `bad_token`; once more only
    // after a welcome.
    this._refreshToken = refreshToken ?? null;
    this._refreshed = false;
    this._version = version;
    // On the current socket: idle (join not sent), joining, joined (welcome not yet
    // received), live (welcomed: its queue may be sent), done (left or refused, for good).
    // Across sockets: refreshing (waiting for a fresh token, then idle).
    this._phase = "idle";
    this._timer = null;
    this._attempt = 0;
  }

  /** The id it joined under. */
  get id() {
    return this._id;
  }

  /** The module it is a session of. */
  get module() {
    return this._module;
  }

  /** Stops the component and ends its session for good; unsent messages are dropped. */
  leave() {
    if (this._closed) return;
    this._mux._leave(this);
    this._finish();
    this._unstore();
    this._emitState({ state: "disconnected", code: 1000, reason: "left" });
  }

  _wake() {
    if (this._phase === "live") this._mux._dialer.conn?.flush();
  }

  /** The socket went away: the component joins again on the next one. */
  _unjoined() {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._phase !== "done" && this._phase !== "refreshing") this._phase = "idle";
  }

  /** The join was refused with `bad_token`: asks the provider (once per welcome, within the
   * connect timeout) and joins again with what it gives. Whether a refresh started. */
  _refresh() {
    if (!this._refreshToken || this._refreshed) return false;
    this._refreshed = true;
    this._phase = "refreshing";
    clearTimeout(this._timer);
    const mux = this._mux;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no token within ${mux._options.connectTimeout} ms`)), mux._options.connectTimeout);
    });
    Promise.race([Promise.resolve().then(() => this._refreshToken()), timeout]).then(
      (token) => {
        clearTimeout(timer);
        if (this._phase !== "refreshing") return;
        this._token = String(token);
        this._phase = "idle";
        const conn = mux._dialer.conn;
        // Otherwise the next socket joins it.
        if (conn?.connected && !conn.done) mux._join(this, conn);
      },
      (err) => {
        clearTimeout(timer);
        if (this._phase !== "refreshing") return;
        const message = `could not get a fresh token: ${err?.message ?? err}`;
        this._stop({ state: "error", error: "rejected", code: "bad_token", message });
      },
    );
    return true;
  }

  /** Stops the component for good with `state` (or silently, for null); what is stored stays
   * for a later page. */
  _stop(state) {
    if (this._closed) return;
    this._mux._components.delete(this.id);
    this._finish();
    if (state) this._emitState(state);
  }

  _finish() {
    this._closed = true;
    this._phase = "done";
    clearTimeout(this._timer);
    this._timer = null;
  }

  /** The server stopped the component without being asked (its handler closed it, or
   * another page resumed its session): start a session of its own, after a backoff so a
   * handler that always closes is not hammered. */
  _dropped(conn) {
    clearTimeout(this._timer);
    this._phase = "idle";
    this._emitState({ state: "disconnected", code: 1000, reason: "the server ended the component" });
    this._forgetSession();
    this._emitState({ state: "reset" });
    this._attempt += 1;
    const delay = backoffDelay(this._mux._options.backoff, this._attempt);
    this._emitState({ state: "reconnecting", attempt: this._attempt, delay });
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this._phase !== "idle" || this._mux._dialer.conn !== conn || conn.done) return;
      this._emitState({ state: "connecting" });
      this._mux._join(this, conn);
    }, delay);
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
function welcomeWithin(owner, conn) {
  return setTimeout(() => {
    if (!conn.connected) conn.end({ code: 1006, reason: "connect timed out" });
  }, owner._options.connectTimeout);
}

/**
 * One WebSocket connection, from connect to its end, for a `Client` or a `Mux`. The owner
 * gives the URL (`_socketUrl`) and the codec (`_codec`: frames are text messages in JSON,
 * binary ones in MessagePack), speaks first (`_opened`), applies each decoded frame
 * (`_receive`, returning an end or null), hands over what to flush (`_unsent`, encoded) and
 * hears of problems and the end (`_decodeError`, `_ended`).
 */
function openWs(owner) {
  const { interval, timeout } = owner._options.heartbeat;
  const conn = { connected: false, done: false, send() {}, flush() {}, end() {} };
  let socket;
  try {
    socket = new WebSocket(owner._socketUrl());
  } catch (err) {
    const error = { state: "error", error: "init", message: String(err.message ?? err) };
    setTimeout(() => owner._ended(conn, { code: 0, reason: error.message, connected: false, fatal: error }), 0);
    return conn;
  }
  // Binary messages as ArrayBuffers, which decode at once (a Blob would need a promise, and
  // frames could be applied out of order).
  socket.binaryType = "arraybuffer";
  const ping = encodeFrame(owner._codec, { type: "hello" });
  const welcome = welcomeWithin(owner, conn);
  let heard = Date.now();
  // A page cannot send WebSocket pings; an idle connection gets a small frame the server
  // ignores, and one whose bytes do not leave within `timeout` is treated as dead.
  let probe = null;
  const ticks = setInterval(() => {
    if (probe !== null && Date.now() - probe > timeout && socket.bufferedAmount > 0) {
      conn.end({ code: 1006, reason: "heartbeat timed out" });
    } else if (Date.now() - heard >= interval && socket.readyState === WebSocket.OPEN) {
      socket.send(ping);
      probe = Date.now();
      heard = Date.now();
    } else if (socket.bufferedAmount === 0) {
      probe = null;
    }
  }, Math.min(interval, 1000));

  conn.end = ({ code, reason, fatal, unauthorized }) => {
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
    owner._ended(conn, { code, reason, connected: conn.connected, fatal, unauthorized });
  };
  conn.send = (frame) => {
    if (!conn.done && socket.readyState === WebSocket.OPEN) socket.send(frame);
  };
  conn.flush = () => {
    if (!conn.connected || conn.done || socket.readyState !== WebSocket.OPEN) return;
    for (const frame of owner._unsent()) socket.send(frame);
  };
  socket.onopen = () => owner._opened(conn);
  socket.onmessage = (event) => {
    heard = Date.now();
    const { frame, problem } = decodeMessage(owner._codec, event.data);
    if (problem) {
      owner._decodeError(problem);
      return;
    }
    const end = owner._receive(frame, conn);
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

  conn.end = ({ code, reason, fatal, unauthorized }) => {
    if (conn.done) return;
    conn.done = true;
    clearInterval(ticks);
    clearTimeout(welcome);
    abort.abort();
    client._ended(conn, { code, reason, connected: conn.connected, fatal, unauthorized });
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

function post(client, frames, session, signal) {
  const headers = { ...client._credentials.headers, "content-type": "application/json" };
  if (session) headers["omni-session"] = session;
  return fetch(client._url("http"), {
    method: "POST",
    headers,
    body: `[${frames.join(",")}]`,
    signal,
  });
}

/** An HTTP refusal that retrying will not change (403, 404) is fatal; 401 waits for the
 * application to sign in again. */
function refused(status, reason) {
  const end = { code: status, reason };
  if (status === 401) end.unauthorized = true;
  if ([403, 404].includes(status)) end.fatal = { state: "error", error: "init", message: reason };
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
