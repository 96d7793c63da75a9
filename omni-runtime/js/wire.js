// Frames in a connection's codec: JSON text or MessagePack bytes, out and in. Nothing else in
// the client knows which of the two a frame is.

import { UTF8_OUT, decodeMsgpack, encodeMsgpack } from "./msgpack.js";

/** @import { Codec } from "./omni.d.ts" */

/**
 * A server frame as decoded: an object with a string `type`, its other fields as
 * docs/PROTOCOL.md names them, read where they are used.
 *
 * @typedef {{ type: string, [field: string]: any }} Frame
 */

/**
 * A client frame being written: its `type`, and the fields it needs.
 *
 * @typedef {{ type: string, [field: string]: unknown }} Outgoing
 */

/**
 * A frame in a connection's codec: JSON text, or MessagePack bytes.
 *
 * @typedef {string | Uint8Array} Encoded
 */

/**
 * A message read as a frame, or why it is not one.
 *
 * @typedef {{ frame: Frame, problem?: undefined } | { frame?: undefined, problem: string }} Decoded
 */

/** `{ frame }` when `value` is shaped like a frame, else `{ problem }`.
 *
 * @param {unknown} value
 * @returns {Decoded}
 */
export function asFrame(value) {
  if (value === null || typeof value !== "object" || typeof (/** @type {Frame} */ (value).type) !== "string") {
    return { problem: "a frame is an object with a string `type`" };
  }
  return { frame: /** @type {Frame} */ (value) };
}

/**
 * @param {string} text
 * @returns {Decoded}
 */
export function decodeText(text) {
  try {
    return asFrame(JSON.parse(text));
  } catch (err) {
    return { problem: `not JSON: ${/** @type {Error} */ (err).message}` };
  }
}

/** The codec a client or mux was asked for: "json" (default) or "msgpack".
 *
 * @param {{ codec?: Codec }} options
 * @returns {Codec}
 */
export function pickCodec(options) {
  const codec = options.codec ?? "json";
  if (codec !== "json" && codec !== "msgpack") {
    throw new TypeError(`unknown codec "${codec}": use "json" or "msgpack"`);
  }
  return codec;
}

/** The size of an encoded frame as the server counts it: its bytes (text as UTF-8).
 *
 * @param {Encoded} encoded
 */
export function frameBytes(encoded) {
  return typeof encoded === "string" ? UTF8_OUT.encode(encoded).length : encoded.length;
}

/** One frame as the connection's codec writes it: JSON text, or MessagePack bytes.
 *
 * @param {Codec} codec
 * @param {object} frame
 * @returns {Encoded}
 */
export function encodeFrame(codec, frame) {
  return codec === "msgpack" ? encodeMsgpack(frame) : JSON.stringify(frame);
}

/** One WebSocket message in the connection's codec, as `{ frame }` or `{ problem }`.
 *
 * @param {Codec} codec
 * @param {unknown} data a text message's string, or a binary one's ArrayBuffer
 * @returns {Decoded}
 */
export function decodeMessage(codec, data) {
  if (codec === "json") {
    if (typeof data !== "string") return { problem: "frames are JSON text; a binary message arrived" };
    return decodeText(data);
  }
  if (typeof data === "string") return { problem: "frames are MessagePack; a text message arrived" };
  try {
    return asFrame(decodeMsgpack(/** @type {ArrayBuffer} */ (data)));
  } catch (err) {
    // A stack overflow on absurd nesting lands here too: a bad frame, not a broken client.
    return { problem: `not MessagePack: ${/** @type {Error} */ (err).message}` };
  }
}
