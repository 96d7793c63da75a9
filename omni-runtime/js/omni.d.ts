// Types of omni.js, the browser client. Generic over a protocol's wire enums: pass the
// `...FromClient` and `...FromServer` types that `omni::typescript::declarations` writes.

/** Exponential backoff with jitter between reconnection attempts (times in ms). */
export interface Backoff {
  /** The first delay. Default 250. */
  base: number;
  /** The longest delay. Default 10000. */
  cap: number;
  /** Growth per attempt. Default 2. */
  factor: number;
  /** The largest share of a delay taken off at random, from 0 to 1. Default 0.5. */
  jitter: number;
}

/** Liveness checking (times in ms). */
export interface Heartbeat {
  /** How often to check, and how long a WebSocket may be idle before it is probed. Default 15000. */
  interval: number;
  /** How long past an interval to wait for a sign of life. Default 10000. */
  timeout: number;
}

export interface Options {
  /** "ws" (default): one WebSocket. "sse": an event stream down, `POST /http` up. */
  transport?: "ws" | "sse";
  /** The protocol's name, checked by the server in a `hello`. */
  protocol?: string;
  /** The protocol's schema hash; a different one is refused with `version_mismatch`, for good. */
  version?: string;
  backoff?: Partial<Backoff>;
  heartbeat?: Partial<Heartbeat>;
  /** How long (ms) a connection may take to be welcomed by the server. Default 10000. */
  connectTimeout?: number;
  /** How many messages may wait for the server's acknowledgement. Default 1024. */
  queue?: number;
  /** The storage key of the queue and resume point. Default: from the URL and transport. */
  queueKey?: string;
  /** Where the queue and resume point are kept across reloads. Default `sessionStorage`;
   * `null` keeps them in memory only. */
  storage?: Pick<Storage, "getItem" | "setItem"> | null;
}

/** Why a transport reports an error: `init` (could not connect), `decode` (a server frame
 * did not decode), `send` (the queue is full), `rejected` (the server's `error` frame). */
export type TransportError =
  | { error: "init" | "decode" | "send"; message: string }
  | { error: "rejected"; code: string; message: string; ref?: number };

/** A change in the connection, with the meaning of the Rust client's `TransportState`. */
export type TransportState =
  | { state: "connecting" }
  | { state: "connected"; session: string }
  /** `code`: the WebSocket close code (1006 when dropped without one) or the HTTP status. */
  | { state: "disconnected"; code: number; reason: string }
  /** `delay` in ms, with backoff and jitter applied. */
  | { state: "reconnecting"; attempt: number; delay: number }
  /** The server no longer held the resume point: drop state derived from earlier messages. */
  | { state: "reset" }
  | ({ state: "error" } & TransportError);

/** The server frame a message arrived in: sequenced (`msg`) or ephemeral (`push`). */
export type MessageFrame<S> =
  | { type: "msg"; seq: number; payload: S; ref?: number }
  | { type: "push"; payload: S; topic?: string };

/** A message sent but not yet acknowledged. */
export interface Pending<C> {
  ref: number;
  payload: C;
}

export interface Client<C, S> {
  /** The session the server assigned (or the one being resumed), or null. */
  readonly session: string | null;
  /** The latest transport state. */
  readonly state: TransportState;
  /** Queues a message and returns its `ref`; sent when connected, again until acknowledged.
   * Throws when the client is closed or the queue is full. */
  send(payload: C): number;
  /** Unacknowledged messages, oldest first (they survive a reload). */
  pending(): Pending<C>[];
  /** Every server message, exactly once and in order for sequenced ones. */
  on(event: "message", fn: (payload: S, frame: MessageFrame<S>) => void): () => void;
  on(event: "state", fn: (state: TransportState) => void): () => void;
  /** The server handled the message `ref`. */
  on(event: "ack", fn: (ref: number) => void): () => void;
  /** Closes the connection and stops reconnecting. */
  close(): void;
}

/** Connects to the endpoint under `url` (the prefix the server nests its routes under). */
export function connect<C, S>(url: string | URL, options?: Options): Client<C, S>;

/** The delay in ms before reconnection attempt `attempt` (from 1). */
export function backoffDelay(backoff: Partial<Backoff>, attempt: number): number;
