// The dialer: keeps one connection up, reconnecting with backoff, for a client and for a mux.
// What one connection is (a WebSocket, an event stream) is the owner's business.

import { DEFAULTS } from "./config.js";

/** @import { Backoff, Credentials, TransportState } from "./omni.d.ts" */
/** @import { Settings } from "./config.js" */
/** @import { Encoded } from "./wire.js" */

/**
 * The transport state that ends a client (or component) for good: an `error`, or
 * `incompatible` when the server does not serve this build's protocol version.
 *
 * @typedef {Extract<TransportState, { state: "error" } | { state: "incompatible" }>} Fatal
 */

/**
 * How a connection ended: its WebSocket close code (or HTTP status; 0 when no connection was
 * made), why, and whether retrying cannot help (`fatal`, the state to report) or waits for the
 * application (`unauthorized`).
 *
 * @typedef {{
 *   code: number,
 *   reason: string,
 *   fatal?: Fatal | undefined,
 *   unauthorized?: boolean | undefined,
 * }} End
 */

/**
 * One connection as its owner and dialer hold it: whether the server welcomed it, whether it
 * ended, and how to flush the queue on it and end it.
 *
 * @typedef {{ connected: boolean, done: boolean, flush(): void, end(end: End): void }} Conn
 */

/**
 * A WebSocket connection, on which frames are also sent one by one.
 *
 * @typedef {Conn & { send(frame: Encoded): void }} Socket
 */

/**
 * What the credentials provider gave, as strings.
 *
 * @typedef {{ params: Record<string, string>, headers: Record<string, string> }} Given
 */

/**
 * A timer id, or null for none (`clearTimeout` ignores it).
 *
 * @typedef {ReturnType<typeof setTimeout> | null} Timer
 */

/** The delay in ms before reconnection attempt `attempt` (from 1), as the Rust `Backoff`.
 *
 * @param {Partial<Backoff>} backoff
 * @param {number} attempt
 * @returns {number}
 */
export function backoffDelay(backoff, attempt) {
  const { base, cap, factor, jitter } = { ...DEFAULTS.backoff, ...backoff };
  const full = Math.min(cap, base * factor ** Math.max(0, attempt - 1));
  const share = Math.min(1, Math.max(0, jitter)) * Math.random();
  return Math.round(full * (1 - share));
}

/** What a connection carries when the application registered no credentials provider.
 *
 * @type {Readonly<Given>}
 */
export const NO_CREDENTIALS = Object.freeze({ params: {}, headers: {} });

/** A credentials provider that did not answer within the connect timeout. */
class Timeout extends Error {}

/** The provider's answer as `{ params, headers }` of strings.
 *
 * @param {Credentials | undefined} value
 * @returns {Given}
 */
function readCredentials(value) {
  /** @param {Record<string, unknown> | undefined} object */
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
 *
 * @template {Conn} C the owner's connection
 */
export class Dialer {
  /**
   * @param {Settings} options
   * @param {{
   *   open(given: Given): C,
   *   report(state: TransportState): void,
   *   lost(code: number): void,
   *   fatal(state: Fatal): void,
   * }} hooks
   */
  constructor(options, hooks) {
    this._options = options;
    this._backoff = options.backoff;
    this._waiting = false;
    this._hooks = hooks;
    /** @type {C | null} */
    this.conn = null;
    this.closed = false;
    this._attempt = 0;
    /** @type {Timer} */
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
    // Never connected, so nothing is sent on it.
    const pending = /** @type {C} */ (
      /** @type {unknown} */ ({ connected: false, done: false, send() {}, flush() {}, end() {} })
    );
    this.conn = pending;
    /** @type {Timer | undefined} */
    let timer;
    /** @type {Promise<never>} */
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
   * (then stop), or the attempt's credentials were refused (then wait for `reconnect`).
   *
   * @param {Conn} conn
   * @param {End & { connected: boolean }} end
   */
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

  /** Closes the connection and stops reconnecting.
   *
   * @param {string} reason
   */
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

/** Ends `conn` unless the server welcomes it within the connect timeout (a handshake that
 * hangs, or a socket that opens but never speaks).
 *
 * @param {{ _options: Settings }} owner
 * @param {Conn} conn
 */
export function welcomeWithin(owner, conn) {
  return setTimeout(() => {
    if (!conn.connected) conn.end({ code: 1006, reason: "connect timed out" });
  }, owner._options.connectTimeout);
}
