// One session as a client holds it, whatever carries it: the resume point, the queue, the
// topic cursors, presence, the listeners, and what each server frame does to them.

import { decodeMsgpack, encodeMsgpack, Packed } from "./msgpack.js";
import { EMPTY, PresenceLists, readList } from "./presence.js";
import { encodeFrame, frameBytes } from "./wire.js";

/** @import * as Api from "./omni.d.ts" */
/** @import { Codec, ConnectHook, MessageFrame, PresenceCount, PresenceEvent, Refusal, TransportState } from "./omni.d.ts" */
/** @import { Store } from "./config.js" */
/** @import { Conn, End, Fatal } from "./dialer.js" */
/** @import { Encoded, Frame, Outgoing } from "./wire.js" */

/**
 * What each event hands its listeners.
 *
 * @template S
 * @typedef {{
 *   message: [payload: S, frame: MessageFrame<S>],
 *   state: [state: TransportState],
 *   ack: [ref: number],
 *   rejected: [refusal: Refusal],
 *   unknown: [payload: unknown, frame: MessageFrame<unknown>],
 *   presence: [event: PresenceEvent],
 * }} Events
 */

/**
 * A message waiting for the server's `ack`: its payload, its MessagePack encoding (with that
 * codec), its frame once encoded, whether it went on this connection, and its stored form.
 *
 * @template C
 * @typedef {{
 *   ref: number,
 *   payload: C,
 *   packed: Uint8Array | null,
 *   frame?: Encoded,
 *   sent: boolean,
 *   stored?: string,
 * }} Entry
 */

/**
 * The `error` state of a server's refusal.
 *
 * @typedef {Extract<TransportState, { error: "rejected" }>} Rejection
 */

/**
 * What a frame asks of the connection: nothing, the flush of a welcomed one, a resume after a
 * gap, or its end for good.
 *
 * @typedef {typeof STEP[keyof typeof STEP] | { fatal: Fatal }} Step
 */

/** Bytes as base64, for storage, which keeps text.
 *
 * @param {Uint8Array} bytes
 */
function toBase64(bytes) {
  let binary = "";
  // In slices: one call with a whole file's bytes as arguments would pass the engine's limit.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** @param {string} text */
function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export const STEP = /** @type {const} */ ({ continue: "continue", welcomed: "welcomed", gap: "gap" });

/**
 * One session as a client holds it: the resume point, the queue of messages the server has
 * not acknowledged (stored, so a reloaded page resends them), the listeners, and what each
 * server frame does to them. A `Client` is one over a connection of its own; a mux
 * `Component` is one per join, sharing the mux's socket.
 *
 * @template C, S the protocol's client and server messages
 * @implements {Api.Stream<C, S>}
 */
export class Stream {
  /**
   * @param {object} options
   * @param {Store | null} options.storage
   * @param {string} options.key
   * @param {number} options.queue
   * @param {number} options.maxBytes
   * @param {string} [options.id]
   * @param {string} options.noun
   * @param {Iterable<unknown> | ArrayLike<unknown> | undefined} options.kinds
   * @param {Iterable<unknown> | ArrayLike<unknown> | undefined} [options.serverKinds]
   * @param {ConnectHook<C> | undefined} options.onConnect
   * @param {Codec} options.codec
   */
  constructor({ storage, key, queue, maxBytes, id, noun, kinds, serverKinds, onConnect, codec }) {
    /** @type {{ [E in keyof Events<S>]: Set<(...args: Events<S>[E]) => void> }} */
    this._listeners = {
      message: new Set(),
      state: new Set(),
      ack: new Set(),
      rejected: new Set(),
      unknown: new Set(),
      presence: new Set(),
    };
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
    // The server message kinds this page was built with (its schema's): a message of another
    // kind comes from a newer server, and goes to `unknown` listeners, not `message` ones.
    this._serverKinds = serverKinds === undefined ? null : new Set(Array.from(serverKinds, String));
    /** @type {string | null} */
    this._session = null;
    this._lastSeq = 0;
    // The last number held of each sequenced topic. A Map, so that no topic name can collide
    // with an Object property; independent of the session, so kept when the session is lost.
    /** @type {Map<string, number>} */
    this._topics = new Map();
    // Topics reset to a number whose snapshot may not have arrived yet. The stored cursor
    // moves only with the first message after the reset, so a connection (or page) lost
    // before the snapshot came asks for the reset, and the snapshot, again.
    /** @type {Map<string, number>} */
    this._resets = new Map();
    this._presence = new PresenceLists();
    // The count of each topic this client asked only to count (`presence_count` frames).
    /** @type {Map<string, PresenceCount>} */
    this._counts = new Map();
    this._nextRef = 1;
    // This client's id, kept with its queue: with a message's ref it is the message's key on
    // the server, the same for a message sent again to a new session.
    this._clientId = newClientId();
    /** @type {Entry<C>[]} */
    this._queue = [];
    // The connect hook, and the frames it made for the current connection: they go before
    // the queue, once (the hook runs again on the next connection).
    this._onConnect = onConnect ?? null;
    /** @type {Encoded[]} */
    this._greeting = [];
    this._closed = false;
    /** Who waits for the answer to a `ref` (`acked`, `request`), and the replies kept for
     * requests until their `ack`.
     * @type {Map<number, { resolve: (value: any) => void, reject: (error: Error) => void, reply: boolean }[]>} */
    this._waiting = new Map();
    /** @type {Map<number, S>} */
    this._replies = new Map();
    /** The latest answers, for an `acked` asked after its answer came: `null` for an ack.
     * @type {Map<number, Error | null>} */
    this._answers = new Map();
    /** @type {TransportState} */
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

  /** Queues `payload` for the server and returns its `ref`; resent until acknowledged.
   *
   * @param {C} payload
   * @returns {number}
   */
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
   * as `send` does.
   *
   * @template {{ kind: string }} M
   * @param {M} msg
   * @returns {M}
   */
  dispatch(msg) {
    if (this._kinds === null) {
      throw new TypeError(`omni: dispatch needs the ${this._noun}'s client message kinds: pass { kinds: [...] }`);
    }
    if (this._kinds.has(msg?.kind)) this.send(/** @type {any} */ (msg));
    return msg;
  }

  /** Messages sent but not yet acknowledged, oldest first: `[{ ref, payload }]`.
   *
   * @returns {Api.Pending<C>[]}
   */
  pending() {
    return this._queue.map(({ ref, payload }) => ({ ref, payload }));
  }

  /** Resolves once the server has handled the message `ref` (its `ack`); rejects with the
   * server's refusal (an Error with the `code` and the server's `reason`: `rejected` when
   * its handler returned an error), with `code` "closed" when the client is closed first, and
   * with `code` "unknown" for a `ref` this client never gave out or answered too long ago.
   *
   * @param {number} ref
   * @returns {Promise<void>}
   */
  acked(ref) {
    return this._wait(ref, false);
  }

  /** Sends `payload` and resolves with the server's reply: the first sequenced message its
   * handler sent while handling it. Rejects as `acked` does, and with `code` "no_reply" when
   * the handler handled it without replying. Throws as `send` does.
   *
   * @param {C} payload
   * @returns {Promise<S>}
   */
  request(payload) {
    return this._wait(this.send(payload), true);
  }

  /**
   * @param {number} ref
   * @param {boolean} reply
   * @returns {Promise<any>}
   */
  _wait(ref, reply) {
    if (this._answers.has(ref)) {
      const error = this._answers.get(ref);
      if (error) return Promise.reject(error);
      if (!reply) return Promise.resolve();
    }
    if (!this._queue.some((entry) => entry.ref === ref)) {
      return Promise.reject(answerError("unknown", `no message with ref ${ref} is waiting`));
    }
    if (this._closed) return Promise.reject(answerError("closed", `the ${this._noun} is closed`));
    return new Promise((resolve, reject) => {
      const waiting = this._waiting.get(ref) ?? [];
      waiting.push({ resolve, reject, reply });
      this._waiting.set(ref, waiting);
    });
  }

  /** The message `ref` was answered: by its `ack` (`error` null) or an `error` frame.
   *
   * @param {number} ref
   * @param {Error | null} error
   */
  _settle(ref, error) {
    this._answers.set(ref, error);
    const oldest = this._answers.keys().next().value;
    if (this._answers.size > this._limit && oldest !== undefined) this._answers.delete(oldest);
    const reply = this._replies.get(ref);
    const replied = this._replies.has(ref);
    this._replies.delete(ref);
    for (const waiter of this._waiting.get(ref) ?? []) {
      if (error) waiter.reject(error);
      else if (!waiter.reply) waiter.resolve(undefined);
      else if (replied) waiter.resolve(reply);
      else waiter.reject(answerError("no_reply", "the server handled the message without replying"));
    }
    this._waiting.delete(ref);
  }

  /** Rejects whatever still waits for an answer: the client (or component) is closed. */
  _settleAll() {
    for (const [ref, waiting] of this._waiting) {
      for (const waiter of waiting) {
        waiter.reject(answerError("closed", `the ${this._noun} was closed before ref ${ref} was answered`));
      }
    }
    this._waiting.clear();
    this._replies.clear();
  }

  /** The presence list of `topic`, `{ key: [{ ref, meta }, ...] }`, frozen (a change
   * replaces it); `{}` for a topic with no one, or none heard of.
   *
   * @param {string} topic
   */
  presence(topic) {
    return this._presence.get(String(topic));
  }

  /** How many are on `topic`, `{ keys, entries }`, for a topic this client asked only to
   * count (the `presence` option); `undefined` before the first count.
   *
   * @param {string} topic
   */
  presenceCount(topic) {
    return this._counts.get(String(topic));
  }

  /** Hands a message's payload to the `message` listeners, or to the `unknown` ones when its
   * kind is not one this page knows (a newer server's): its number still counts.
   *
   * @param {Frame} frame
   */
  _deliver(frame) {
    const kind = /** @type {{ kind?: unknown } | null} */ (frame.payload)?.kind;
    if (this._serverKinds && !this._serverKinds.has(String(kind))) {
      this._emit("unknown", frame.payload, /** @type {MessageFrame<unknown>} */ (frame));
      return;
    }
    this._emit("message", frame.payload, /** @type {MessageFrame<S>} */ (frame));
  }

  /** Adds a listener for "message", "state", "ack", "rejected", "unknown" or "presence"; returns a function that
   * removes it.
   *
   * @template {keyof Events<S>} E
   * @param {E} event
   * @param {(...args: Events<S>[E]) => void} fn
   * @returns {() => void}
   */
  on(event, fn) {
    const set = this._listeners[event];
    if (!set) throw new TypeError(`unknown event "${event}": use message, state, ack, rejected, unknown or presence`);
    set.add(fn);
    return () => set.delete(fn);
  }

  /** A message was queued: the owner of the connection sends it if it can. */
  _wake() {}

  /**
   * @param {string} message
   * @returns {Step}
   */
  _decodeError(message) {
    this._emitState({ state: "error", error: "decode", message });
    return STEP.continue;
  }

  /**
   * @param {Frame} frame
   * @returns {Step}
   */
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
        // The first reply to a request's message is its answer.
        if (typeof frame.ref === "number" && !this._replies.has(frame.ref)) {
          if (this._waiting.get(frame.ref)?.some((waiter) => waiter.reply)) {
            this._replies.set(frame.ref, frame.payload);
          }
        }
        this._deliver(frame);
        return STEP.continue;
      case "push":
        this._deliver(frame);
        return STEP.continue;
      case "ack":
        this._answered(frame.ref);
        this._settle(frame.ref, null);
        this._emit("ack", frame.ref);
        return STEP.continue;
      case "error": {
        if (frame.ref !== undefined) {
          // The answer to one message, not news of the connection: the call that sent it
          // (`acked`, `request`) and the `rejected` listeners hear of it, the state does not.
          this._answered(frame.ref);
          this._settle(frame.ref, answerError(frame.code, frame.message));
          this._emit("rejected", { ref: frame.ref, code: frame.code, message: frame.message ?? "" });
          return STEP.continue;
        }
        const error = rejection(frame);
        // A build the server does not serve: retrying cannot help, a reload (of a newer page)
        // can.
        if (frame.code === "version_mismatch") {
          return { fatal: { state: "incompatible", reason: frame.message ?? "" } };
        }
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
      case "presence_count":
        return this._onPresenceCount(frame);
      case "joined":
      case "left":
        return STEP.continue;
      default:
        return this._decodeError(`unknown frame type \`${frame.type}\``);
    }
  }

  /** A message of a sequenced topic: numbered by the topic, so the session's `lastSeq` is
   * not touched, and ordered against the topic's cursor instead.
   *
   * @param {Frame} frame
   * @returns {Step}
   */
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
    this._deliver(frame);
    return STEP.continue;
  }

  /** A topic's whole list, reported only when it differs from the one held.
   *
   * @param {Frame} frame
   * @returns {Step}
   */
  _onPresenceState(frame) {
    const state = readList(frame.state);
    if (typeof frame.topic !== "string" || state === null) {
      return this._decodeError("a `presence_state` frame needs a `topic` and a `state` of entry lists");
    }
    const event = this._presence.replace(frame.topic, state);
    if (event) this._emit("presence", event);
    return STEP.continue;
  }

  /** What changed in a topic, reported as it came.
   *
   * @param {Frame} frame
   * @returns {Step}
   */
  _onPresenceDiff(frame) {
    const joins = frame.joins === undefined ? new Map() : readList(frame.joins);
    const leaves = frame.leaves === undefined ? new Map() : readList(frame.leaves);
    if (typeof frame.topic !== "string" || joins === null || leaves === null) {
      return this._decodeError("a `presence_diff` frame needs a `topic`, and `joins` and `leaves` of entry lists");
    }
    this._emit("presence", this._presence.change(frame.topic, joins, leaves));
    return STEP.continue;
  }

  /** A counted topic's new count, reported when it differs from the one held.
   *
   * @param {Frame} frame
   * @returns {Step}
   */
  _onPresenceCount(frame) {
    const { topic, keys, entries } = frame;
    if (typeof topic !== "string" || !Number.isSafeInteger(keys) || !Number.isSafeInteger(entries)) {
      return this._decodeError("a `presence_count` frame needs a `topic`, and `keys` and `entries` counts");
    }
    const held = this._counts.get(topic);
    if (held?.keys === keys && held?.entries === entries) return STEP.continue;
    const count = Object.freeze({ keys, entries });
    this._counts.set(topic, count);
    this._emit("presence", Object.freeze({ topic, joins: EMPTY, leaves: EMPTY, list: EMPTY, count }));
    return STEP.continue;
  }

  /** Every list held leaves: they belonged to a session that is gone. */
  _dropPresence() {
    for (const event of this._presence.clear()) this._emit("presence", event);
    this._counts.clear();
  }

  /** The topic cursors as the JSON object the server reads: `{"room": 1763791200000017}`. */
  _cursors() {
    return JSON.stringify(Object.fromEntries(this._topics));
  }

  /** @param {number} ref */
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

  /** Runs the connect hook for a connection just welcomed into `info.session`.
   *
   * @param {Api.ConnectInfo} info
   */
  _greet(info) {
    this._greeting = [];
    if (!this._onConnect) return;
    /** @type {C[]} */
    let payloads;
    /** @type {Encoded[]} */
    const greeting = [];
    try {
      payloads = Array.from(this._onConnect(info) ?? []);
      for (const payload of payloads) {
        // A ref of its own, so the server's memory of handled refs never mistakes it for a
        // queued message; not queued, so not resent.
        /** @type {Outgoing} */
        const frame = { type: "msg" };
        if (this._id !== undefined) frame.id = this._id;
        frame.payload = payload;
        frame.ref = this._nextRef + greeting.length;
        greeting.push(encodeFrame(this._codec, frame));
      }
    } catch (err) {
      // The hook threw, or gave a message the codec cannot write: nothing of it goes.
      this._emitState({
        state: "error",
        error: "send",
        message: `the connect hook failed: ${/** @type {any} */ (err)?.message ?? err}`,
      });
      return;
    }
    this._greeting = greeting;
    this._nextRef += greeting.length;
    if (payloads.length > 0) this._save();
  }

  /** The connect hook's frames, then up to `limit` queued frames not yet sent on this
   * connection, marked sent.
   *
   * @param {number} limit
   */
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

  /** The `msg` frame of a queued message, encoded: text, or MessagePack bytes.
   *
   * @param {C} payload
   * @param {Uint8Array | null} packed
   * @param {number} ref
   */
  _msgFrame(payload, packed, ref) {
    /** @type {Outgoing} */
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

  /**
   * @template {keyof Events<S>} E
   * @param {E} event
   * @param {Events<S>[E]} args
   */
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

  /** @param {TransportState} state */
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
      if (typeof saved.client === "string" && CLIENT_ID.test(saved.client)) this._clientId = saved.client;
      this._queue = Array.isArray(saved.queue)
        ? saved.queue.flatMap((/** @type {unknown} */ entry) => this._restore(entry))
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
      topics: Object.fromEntries(this._topics),
      nextRef: this._nextRef,
      client: this._clientId,
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

  /** A stored queue entry as this client queues it (in its codec), or none if unreadable.
   *
   * @param {any} saved what `_save` wrote, or anything a page left under the key
   * @returns {Entry<C>[]}
   */
  _restore(saved) {
    try {
      const { ref } = saved;
      let { payload } = saved;
      /** @type {Uint8Array | null} */
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
 * counts as never seen).
 *
 * @param {unknown} saved
 */
function loadCursors(saved) {
  /** @type {Map<string, number>} */
  const cursors = new Map();
  if (saved === null || typeof saved !== "object" || Array.isArray(saved)) return cursors;
  for (const [topic, seq] of Object.entries(saved)) {
    if (Number.isSafeInteger(seq) && seq >= 0) cursors.set(topic, /** @type {number} */ (seq));
  }
  return cursors;
}

/** The transport state for a server's `error` frame.
 *
 * @param {Frame} frame
 * @returns {Rejection}
 */
export function rejection(frame) {
  /** @type {Rejection} */
  const error = { state: "error", error: "rejected", code: frame.code, message: frame.message ?? "" };
  if (frame.ref !== undefined) error.ref = frame.ref;
  return error;
}

/** Applies what a frame asked; returns an end to report, or null to go on.
 *
 * @param {Stream<any, any>} client
 * @param {Step} step
 * @param {Conn} conn
 * @returns {End | null}
 */
export function afterFrame(client, step, conn) {
  if (step === STEP.welcomed) {
    conn.connected = true;
    client._reconnected();
    conn.flush();
    return null;
  }
  if (step === STEP.gap) return { code: 1006, reason: "missed frames; resuming" };
  if (typeof step === "object") {
    const fatal = step.fatal;
    const why =
      fatal.state === "incompatible"
        ? fatal.reason
        : `${"code" in fatal ? fatal.code : fatal.error}: ${fatal.message}`;
    return { code: 1008, reason: `server refused (${why})`, fatal: step.fatal };
  }
  return null;
}

/** An Error for a message's answer, with its `code` and the server's `reason`.
 *
 * @param {string} code
 * @param {string} reason
 * @returns {Error & { code: string, reason: string }}
 */
function answerError(code, reason) {
  return Object.assign(new Error(`omni: ${code}: ${reason}`), { code, reason });
}

/** What the server reads as a client id (`wire::connect::client_id`). */
const CLIENT_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A fresh client id: 128 random bits in hex. */
function newClientId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
