// The mux: components, each a session of its own module, over one WebSocket (`{url}/mux`).

import { baseUrl, endpointUrl, pickStorage, presenceModes, traceparentOf, withDefaults } from "./config.js";
import { backoffDelay, Dialer, NO_CREDENTIALS } from "./dialer.js";
import { rejection, STEP, Stream } from "./stream.js";
import { encodeFrame, pickCodec } from "./wire.js";
import { openWs } from "./websocket.js";

/** @import * as Api from "./omni.d.ts" */
/** @import { End, Fatal, Socket, Timer } from "./dialer.js" */
/** @import { Encoded, Frame, Outgoing } from "./wire.js" */

/**
 * Where a component is. On the current socket: idle (join not sent), joining, joined (welcome
 * not yet received), live (welcomed: its queue may be sent), done (left or refused, for
 * good). Across sockets: refreshing (waiting for a fresh token, then idle).
 *
 * @typedef {"idle" | "joining" | "joined" | "live" | "done" | "refreshing"} Phase
 */

/** Opens the mux socket under `url` (`{url}/mux`), on which components join and leave.
 *
 * @param {string | URL} url
 * @param {Api.MuxOptions} [options]
 * @returns {Mux}
 */
export function mux(url, options = {}) {
  return new Mux(url, options);
}

/**
 * Components over one WebSocket. Each component is a session of its module, as a `Client` is
 * of its endpoint; the socket is shared, so it is reconnected here, and every component
 * re-joins on the new one before anything it queued is sent.
 *
 * @implements {Api.Mux}
 */
export class Mux {
  /**
   * @param {string | URL} url
   * @param {Api.MuxOptions} options
   */
  constructor(url, options) {
    this._base = baseUrl(url);
    this._options = withDefaults(options);
    this._codec = pickCodec(options);
    this._storage = pickStorage(options);
    /** @type {Map<string, Component<any, any>>} */
    this._components = new Map();
    // Ids whose `leave` is unanswered on this socket, with how many: frames for them are the
    // old component's until its `left`, even if a new one joined under the same id.
    /** @type {Map<string, number>} */
    this._leaving = new Map();
    this._closed = false;
    this._credentials = NO_CREDENTIALS;
    /** @type {Dialer<Socket>} */
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

  /** Starts component `id` of `module` with the token the server issued for it.
   *
   * @template C, S the module protocol's client and server messages
   * @param {string} id
   * @param {string} module
   * @param {string} token
   * @param {Api.JoinOptions<C>} [options]
   * @returns {Component<C, S>}
   */
  join(id, module, token, options = {}) {
    if (this._closed) throw new Error("omni: the mux is closed");
    if (typeof id !== "string" || id === "") throw new TypeError("omni: a component id is a non-empty string");
    if (this._components.has(id)) throw new Error(`omni: component "${id}" is already joined`);
    /** @type {Component<C, S>} */
    const component = new Component(this, {
      id,
      module: String(module),
      token: String(token),
      version: options.schema?.id ?? options.version,
      compatible: options.schema?.compatible,
      kinds: options.kinds ?? options.schema?.client,
      serverKinds: options.schema?.server,
      onConnect: options.onConnect,
      refreshToken: options.refreshToken,
      traceparent: options.traceparent,
      presence: presenceModes(options.presence),
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

  /**
   * @param {Component<any, any>} component
   * @param {Socket} conn
   */
  _join(component, conn) {
    /** @type {Outgoing} */
    const frame = { type: "join", id: component.id, module: component.module, token: component._token };
    if (component._session) {
      frame.session = component._session;
      frame.after = component._lastSeq;
    }
    if (component._version !== undefined) frame.version = component._version;
    if (component._compatible?.length) frame.compatible = [...component._compatible];
    const traceparent = traceparentOf(component._traceparent);
    if (traceparent !== undefined) frame.traceparent = traceparent;
    if (component._presenceModes !== undefined) frame.presence = JSON.parse(component._presenceModes);
    frame.client = component._clientId;
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

  /** @param {Component<any, any>} component */
  _leave(component) {
    this._components.delete(component.id);
    const conn = this._dialer.conn;
    if (component._phase === "idle" || !conn?.connected || conn.done) return;
    conn.send(encodeFrame(this._codec, { type: "leave", id: component.id }));
    this._leaving.set(component.id, (this._leaving.get(component.id) ?? 0) + 1);
  }

  /** One more leave of `id` answered (by `left`, or `unknown_id` when its join had failed).
   *
   * @param {string} id
   */
  _leaveAnswered(id) {
    const left = /** @type {number} */ (this._leaving.get(id)) - 1;
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

  /** @param {Socket} conn */
  _opened(conn) {
    // The server speaks only when spoken to: the socket is up once it opens.
    conn.connected = true;
    for (const component of this._components.values()) {
      if (component._phase === "idle") this._join(component, conn);
    }
  }

  /**
   * @param {Frame} frame
   * @param {Socket} conn
   * @returns {End | null}
   */
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
    } else if (typeof step === "object") {
      component._stop(step.fatal);
    }
    return null;
  }

  /** @param {string} message */
  _decodeError(message) {
    for (const component of this._components.values()) component._decodeError(message);
    return null;
  }

  _unsent() {
    /** @type {Encoded[]} */
    const frames = [];
    for (const component of this._components.values()) {
      if (component._phase === "live") frames.push(...component._takeUnsent(Infinity));
    }
    return frames;
  }

  /**
   * @param {Socket} conn
   * @param {End & { connected: boolean }} end
   */
  _ended(conn, end) {
    this._dialer.ended(conn, end);
  }
}

/** One joined component of a `Mux`: a session of its module, with a queue of its own.
 *
 * @template C, S the module protocol's client and server messages
 * @extends {Stream<C, S>}
 * @implements {Api.Component<C, S>}
 */
export class Component extends Stream {
  /**
   * @param {Mux} mux
   * @param {object} options
   * @param {string} options.id
   * @param {string} options.module
   * @param {string} options.token
   * @param {string | undefined} options.version
   * @param {readonly string[] | undefined} [options.compatible]
   * @param {Iterable<unknown> | ArrayLike<unknown> | undefined} [options.serverKinds]
   * @param {readonly string[] | undefined} options.kinds
   * @param {string} options.key
   * @param {Api.ConnectHook<C> | undefined} options.onConnect
   * @param {(() => string | Promise<string>) | undefined} options.refreshToken
   * @param {string | (() => string | undefined) | undefined} options.traceparent
   * @param {string | undefined} options.presence the presence modes' JSON, if any
   */
  constructor(mux, { id, module, token, version, compatible, kinds, serverKinds, key, onConnect, refreshToken, traceparent, presence }) {
    const codec = mux._codec;
    super({
      storage: mux._storage,
      key,
      queue: mux._options.queue,
      maxBytes: mux._options.maxMessageBytes,
      id,
      noun: "component",
      kinds,
      serverKinds,
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
    this._compatible = compatible;
    this._traceparent = traceparent;
    this._presenceModes = presence;
    /** @type {Phase} */
    this._phase = "idle";
    /** @type {Timer} */
    this._timer = null;
    this._attempt = 0;
  }

  /** The id it joined under. */
  get id() {
    return /** @type {string} */ (this._id);
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
  /** @returns {boolean} */
  _refresh() {
    if (!this._refreshToken || this._refreshed) return false;
    this._refreshed = true;
    this._phase = "refreshing";
    clearTimeout(this._timer);
    const mux = this._mux;
    /** @type {Timer | undefined} */
    let timer;
    /** @type {Promise<never>} */
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no token within ${mux._options.connectTimeout} ms`)), mux._options.connectTimeout);
    });
    Promise.race([
      // Set: checked above (the cast is for the type checker).
      Promise.resolve().then(() => (/** @type {() => string | Promise<string>} */ (this._refreshToken))()),
      timeout,
    ]).then(
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
   * for a later page.
   *
   * @param {Fatal | null} state
   */
  _stop(state) {
    if (this._closed) return;
    this._mux._components.delete(this.id);
    this._finish();
    if (state) this._emitState(state);
  }

  _finish() {
    this._closed = true;
    this._settleAll();
    this._phase = "done";
    clearTimeout(this._timer);
    this._timer = null;
  }

  /** The server stopped the component without being asked (its handler closed it, or
   * another page resumed its session): start a session of its own, after a backoff so a
   * handler that always closes is not hammered.
   *
   * @param {Socket} conn
   */
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
