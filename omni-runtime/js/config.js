// What a client or mux connects with: its options over the defaults, and the URLs it derives.

/** @import { Options } from "./omni.d.ts" */

/**
 * Where a session's queue and resume point are kept (`removeItem` is used when there).
 *
 * @typedef {Pick<Storage, "getItem" | "setItem"> & { removeItem?: Storage["removeItem"] }} Store
 */

export const DEFAULTS = {
  transport: "ws",
  backoff: { base: 250, cap: 10000, factor: 2, jitter: 0.5 },
  heartbeat: { interval: 15000, timeout: 10000 },
  queue: 1024,
  connectTimeout: 10000,
  // The server's frame limit (`Limits::max_frame_bytes`), as the Rust client's default.
  maxMessageBytes: 64 * 1024,
};

/** The prefix endpoint paths are appended to, relative to the page.
 *
 * @param {string | URL} url
 */
export function baseUrl(url) {
  const base = new URL(String(url), globalThis.location?.href);
  base.pathname = base.pathname.replace(/\/+$/, "");
  base.search = "";
  base.hash = "";
  return base;
}

/**
 * A client's options (a mux's are a part of them) over the defaults.
 *
 * @param {Options<any>} options
 */
export function withDefaults(options) {
  return {
    ...DEFAULTS,
    ...options,
    backoff: { ...DEFAULTS.backoff, ...options.backoff },
    heartbeat: { ...DEFAULTS.heartbeat, ...options.heartbeat },
  };
}

/** What `withDefaults` gives. @typedef {ReturnType<typeof withDefaults>} Settings */

/** `{base}/{path}`, in the WebSocket scheme if asked.
 *
 * @param {URL} base
 * @param {string} path
 * @param {boolean} websocket
 */
export function endpointUrl(base, path, websocket) {
  const url = new URL(base.href);
  url.pathname = `${url.pathname}/${path}`;
  if (websocket) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

/**
 * @param {{ storage?: Store | null }} options
 * @returns {Store | null}
 */
export function pickStorage(options) {
  return options.storage === undefined ? defaultStorage() : options.storage;
}

function defaultStorage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // Access refused (sandboxed frame, privacy settings).
  }
}

/** The `presence` option as the wire has it (a JSON object of topic to mode), or undefined
 * when it asks for nothing but the default.
 *
 * @param {Readonly<Record<string, string>> | undefined} option
 * @returns {string | undefined}
 */
export function presenceModes(option) {
  if (option === undefined || option === null) return undefined;
  const entries = Object.entries(option);
  for (const [topic, mode] of entries) {
    if (mode !== "list" && mode !== "count" && mode !== "none") {
      throw new TypeError(`omni: presence mode "${mode}" for "${topic}": use "list", "count" or "none"`);
    }
  }
  return entries.length === 0 ? undefined : JSON.stringify(Object.fromEntries(entries));
}

/** A connect's W3C trace context from a `traceparent` option: the string, or what the
 * function returns now (a new one per connect, say). The server checks it and ignores a
 * malformed one, so it is only checked for being a non-empty string here.
 *
 * @param {string | (() => string | undefined) | undefined} option
 * @returns {string | undefined}
 */
export function traceparentOf(option) {
  const value = typeof option === "function" ? option() : option;
  return typeof value === "string" && value !== "" ? value : undefined;
}
