// A client: one session of an endpoint over a connection of its own, WebSocket or SSE.

import { baseUrl, endpointUrl, pickStorage, presenceModes, traceparentOf, withDefaults } from "./config.js";
import { Dialer, NO_CREDENTIALS } from "./dialer.js";
import { openSse } from "./eventstream.js";
import { afterFrame, Stream } from "./stream.js";
import { asFrame, decodeText, encodeFrame, pickCodec } from "./wire.js";
import { openWs } from "./websocket.js";

/** @import * as Api from "./omni.d.ts" */
/** @import { Conn, End, Socket } from "./dialer.js" */
/** @import { Frame, Outgoing } from "./wire.js" */

/** Connects to the omni endpoint under `url` (the prefix the server nests its routes under).
 *
 * @template C, S
 * @param {string | URL} url
 * @param {Api.Options<C>} [options]
 * @returns {Client<C, S>}
 */
export function connect(url, options = {}) {
  return new Client(url, options);
}

/**
 * @template C, S the protocol's client and server messages
 * @extends {Stream<C, S>}
 * @implements {Api.Client<C, S>}
 */
export class Client extends Stream {
  /**
   * @param {string | URL} url
   * @param {Api.Options<C>} options
   */
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
    // Checked now: a mode the server does not know would be a connect that never works.
    const presence = presenceModes(merged.presence);
    super({
      codec,
      storage: pickStorage(options),
      key: options.queueKey ?? `omni:${base.href}:${merged.transport}`,
      queue: merged.queue,
      maxBytes: merged.maxMessageBytes,
      noun: "client",
      kinds: options.kinds ?? options.schema?.client,
      serverKinds: options.schema?.server,
      onConnect: options.onConnect,
    });
    this._base = base;
    this._options = merged;
    this._presenceModes = presence;
    // What the credentials provider gave for the current connection.
    this._credentials = NO_CREDENTIALS;
    /** @type {Dialer<Conn>} */
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
        globalThis.removeEventListener?.("pagehide", this._onPageHide);
        this._emitState(state);
      },
    });
    // A page going away (closed, reloaded, left) ends its connection saying so: the server
    // then lets the session, and its presence, go within a short linger rather than the
    // grace it keeps for a dropped connection; a reload resumes the session within it. A
    // page that comes back from the back/forward cache reconnects.
    this._onPageHide = () => this._dialer.conn?.end({ code: 1000, reason: "the page is going away" });
    globalThis.addEventListener?.("pagehide", this._onPageHide);
  }

  /** Closes the connection and stops reconnecting; the server lets the session go within a
   * short linger. The queue stays stored for a later page. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._settleAll();
    globalThis.removeEventListener?.("pagehide", this._onPageHide);
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

  /**
   * @param {Conn} conn
   * @param {End & { connected: boolean }} end
   */
  _ended(conn, end) {
    this._dialer.ended(conn, end);
  }

  /** `{base}/{path}`, in the WebSocket scheme if asked, with the resume point if asked.
   *
   * @param {string} path
   * @param {{ websocket?: boolean, resume?: boolean }} [options]
   */
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
    // Only when asked: a client that says nothing is shown every topic's list.
    if (resume && this._presenceModes) url.searchParams.set("presence", this._presenceModes);
    // Who this client is, so that a message sent again to a new session keeps its key.
    if (resume) url.searchParams.set("client", this._clientId);
    return url.href;
  }

  /** The `hello` to send first on a connection, or null when there is nothing to say. */
  _hello() {
    const { protocol, schema } = this._options;
    const version = schema?.id ?? this._options.version;
    const traceparent = traceparentOf(this._options.traceparent);
    if (protocol === undefined && version === undefined && traceparent === undefined) {
      return null;
    }
    /** @type {Outgoing} */
    const hello = { type: "hello" };
    if (protocol !== undefined) hello.protocol = protocol;
    if (version !== undefined) hello.version = version;
    if (traceparent !== undefined) hello.traceparent = traceparent;
    // The older builds this one still talks to: a server of one of them serves it too.
    if (schema?.compatible?.length) hello.compatible = [...schema.compatible];
    return encodeFrame(this._codec, hello);
  }

  /** Decodes and applies one server frame; returns what it asks of the transport.
   *
   * @param {string} text
   */
  _onText(text) {
    const { frame, problem } = decodeText(text);
    return problem ? this._decodeError(problem) : this._onFrame(/** @type {Frame} */ (frame));
  }

  /** Applies one decoded server frame.
   *
   * @param {unknown} value
   */
  _onValue(value) {
    const { frame, problem } = asFrame(value);
    return problem ? this._decodeError(problem) : this._onFrame(/** @type {Frame} */ (frame));
  }

  // What `openWs` asks of the connection's owner.

  _socketUrl() {
    return this._url("ws", { websocket: true, resume: true });
  }

  /** @param {Socket} conn */
  _opened(conn) {
    // The server refuses a client built from another version of the protocol.
    const hello = this._hello();
    if (hello) conn.send(hello);
  }

  /**
   * @param {Frame} frame
   * @param {Conn} conn
   */
  _receive(frame, conn) {
    return afterFrame(this, this._onFrame(frame), conn);
  }

  _unsent() {
    return this._takeUnsent(Infinity);
  }
}
