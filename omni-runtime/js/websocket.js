// One WebSocket connection, for a client or for the mux: the transport `connect` uses by
// default, and the only one of a mux.

import { welcomeWithin } from "./dialer.js";
import { decodeMessage, encodeFrame } from "./wire.js";

/** @import { Codec } from "./omni.d.ts" */
/** @import { Settings } from "./config.js" */
/** @import { End, Fatal, Socket } from "./dialer.js" */
/** @import { Encoded, Frame } from "./wire.js" */

/**
 * What `openWs` asks of a connection's owner (a `Client` or a `Mux`).
 *
 * @typedef {object} Owner
 * @property {Settings} _options
 * @property {Codec} _codec
 * @property {() => string} _socketUrl
 * @property {(conn: Socket) => void} _opened
 * @property {(frame: Frame, conn: Socket) => End | null} _receive
 * @property {() => Encoded[]} _unsent
 * @property {(message: string) => unknown} _decodeError
 * @property {(conn: Socket, end: End & { connected: boolean }) => void} _ended
 */

/**
 * One WebSocket connection, from connect to its end, for a `Client` or a `Mux`. The owner
 * gives the URL (`_socketUrl`) and the codec (`_codec`: frames are text messages in JSON,
 * binary ones in MessagePack), speaks first (`_opened`), applies each decoded frame
 * (`_receive`, returning an end or null), hands over what to flush (`_unsent`, encoded) and
 * hears of problems and the end (`_decodeError`, `_ended`).
 *
 * @param {Owner} owner
 * @returns {Socket}
 */
export function openWs(owner) {
  const { interval, timeout } = owner._options.heartbeat;
  /** @type {Socket} */
  const conn = { connected: false, done: false, send() {}, flush() {}, end() {} };
  /** @type {WebSocket} */
  let socket;
  try {
    socket = new WebSocket(owner._socketUrl());
  } catch (err) {
    /** @type {Fatal} */
    const error = { state: "error", error: "init", message: String(/** @type {Error} */ (err).message ?? err) };
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
  /** @type {number | null} */
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
      // 1000 only when the owner is leaving (closed, or the page going away): the server
      // then lets the session go within a short linger. Without a code, it keeps the
      // session for its whole grace, as the client means to resume it.
      if (code === 1000) socket.close(1000);
      else socket.close();
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
    const end = owner._receive(/** @type {Frame} */ (frame), conn);
    if (end) conn.end(end);
  };
  socket.onclose = (event) => {
    // 1006: dropped without a close frame (a refused handshake looks the same to a page).
    const reason = event.reason || (event.code === 1006 ? "connection closed" : "");
    conn.end({ code: event.code, reason });
  };
  return conn;
}
