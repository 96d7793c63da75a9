// Types of omni.js, the browser client. Generic over a protocol's wire enums: pass the
// `...FromClient` and `...FromServer` types that `omni::typescript::declarations` writes.
// Written by hand, and held to the code: `tsc -p browser/typecheck` checks the modules' JSDoc
// against these declarations (browser/typecheck/declarations.ts says how).

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

/** What a connect hook is told about the session the server just welcomed the client into. */
export interface ConnectInfo {
  readonly session: string;
  /** Whether it is the session the client had, resumed with nothing lost; `false` for the
   * first connect and for a new session after the old one was lost (a server restart). */
  readonly resumed: boolean;
}

/** What a credentials provider gives for one connection attempt. Browsers cannot set headers
 * on a WebSocket: there, only `params` go (on the connect URL); on SSE, both go, `headers` on
 * every request. URLs end up in server and proxy logs: put only a short-lived token in
 * `params` (one the page fetched just now, valid for a minute), never a long-lived secret. */
export interface Credentials {
  /** Query parameters added to every URL of the connection. */
  params?: Record<string, string>;
  /** Headers of the SSE transport's requests (ignored by a WebSocket). */
  headers?: Record<string, string>;
}

/** Called before every connection attempt (bounded by the connect timeout; one that does not
 * answer in time counts as a failed attempt, retried). One that throws makes the client report
 * `unauthorized` and wait for `reconnect()`. */
export type CredentialsProvider = () => Credentials | Promise<Credentials>;

/** Called after every `welcome`; the messages it returns go before any queued one, once (not
 * queued: the hook runs again on the next connection). */
export type ConnectHook<C> = (info: ConnectInfo) => readonly C[];

/** How frames are encoded. "json" (the default): text WebSocket messages. "msgpack": binary
 * WebSocket messages, each one frame as a MessagePack map with the keys of its JSON form
 * (asked for with `?codec=msgpack` on the socket's URL): smaller, and bytes travel as bytes.
 *
 * Payloads are the same values in both, but for a protocol's `omni::Bytes` fields: a
 * `Uint8Array` with "msgpack", a base64 string (standard alphabet, padded) with "json", both
 * ways. The declarations `omni::typescript::declarations` writes have the JSON form (`string`);
 * `omni::typescript::generate_for(Codec::MsgPack)` writes `Uint8Array` instead. With
 * "msgpack", a message is encoded when it is sent: one MessagePack cannot write (a cycle, a
 * BigInt) throws from `send`, as JSON would not let it through either. What the client keeps in
 * storage stays text either way. */
export type Codec = "json" | "msgpack";

export interface Options<C = never> {
  /** "ws" (default): one WebSocket. "sse": an event stream down, `POST /http` up. */
  transport?: "ws" | "sse";
  /** "json" (default) or "msgpack" (see `Codec`). "msgpack" needs transport "ws": an event
   * stream carries text, so with "sse" `connect` throws a TypeError. */
  codec?: Codec;
  /** The protocol's name, checked by the server in a `hello`. */
  protocol?: string;
  /** A W3C trace context (`00-<32 hex>-<16 hex>-<2 hex>`) sent in each connection's `hello`,
   * so that the server's spans for the session join the page's trace; or a function called
   * at every connect that returns one (or `undefined` for none). A malformed one is ignored
   * by the server. */
  traceparent?: string | (() => string | undefined);
  /** What the client is shown of each topic's presence: `{ lobby: "count", "*": "none" }`
   * asks for the lobby's count only (`presenceCount`) and nothing of the other topics. By
   * default every topic's whole list. Sent in the connect URL; a server never sends what
   * was not asked for. */
  presence?: PresenceModes;
  /** The protocol's schema as the generated module exports it (`SCHEMA`): its id, sent in the
   * `hello`; the ids of the older builds it still talks to (`compatible`); and its message
   * kinds. The server refuses a build it does not serve (the client enters `incompatible`, for
   * good); a server message of a kind not in `server` (a newer server's) goes to `unknown`
   * listeners. */
  schema?: Schema;
  /** The protocol's schema id alone (without `schema`); a different one is refused, for good. */
  version?: string;
  /** The `kind`s of the protocol's client messages (its `...FromClient` union), which
   * `dispatch` sends. Default: `schema.client`. */
  kinds?: readonly string[];
  backoff?: Partial<Backoff>;
  heartbeat?: Partial<Heartbeat>;
  /** How long (ms) a connection may take to be welcomed by the server. Default 10000. */
  connectTimeout?: number;
  /** How many messages may wait for the server's acknowledgement. Default 1024. */
  queue?: number;
  /** The server's frame limit (`Limits::max_frame_bytes`), in bytes of the encoded frame:
   * `send` refuses a larger message, which the server would never accept. Default 65536. */
  maxMessageBytes?: number;
  /** The storage key of the queue and resume point (the session's and each sequenced
   * topic's). Default: from the URL and transport. */
  queueKey?: string;
  /** Where the queue and resume point are kept across reloads. Default `sessionStorage`;
   * `null` keeps them in memory only. */
  storage?: Pick<Storage, "getItem" | "setItem"> | null;
  /** Credentials for every connection attempt. */
  credentials?: CredentialsProvider;
  /** Messages to send first after every welcome, before the queue: to introduce the client
   * again to a session the server has just made. */
  onConnect?: ConnectHook<C>;
}

/** Why a transport reports an error: `init` (could not connect), `decode` (a server frame
 * did not decode), `send` (the queue is full), `rejected` (the server's `error` frame that
 * answers no message, with its code: e.g. `handler_failed` when a hook panicked; an `error`
 * answering a message goes to `acked`, `request` and the `rejected` listeners instead). */
export type TransportError =
  | { error: "init" | "decode" | "send"; message: string }
  | { error: "rejected"; code: string; message: string; ref?: number };

/** A change in the connection, with the meaning of the Rust client's `TransportState`. */
export type TransportState =
  | { state: "connecting" }
  | { state: "connected"; session: string }
  /** `code`: the WebSocket close code (1006 when dropped without one) or the HTTP status; a
   * mux component that left reports 1000, "left". */
  | { state: "disconnected"; code: number; reason: string }
  /** `delay` in ms, with backoff and jitter applied. */
  | { state: "reconnecting"; attempt: number; delay: number }
  /** The server no longer held the resume point: drop state derived from earlier messages. */
  | { state: "reset" }
  /** The server no longer held what was missed of sequenced `topic`: drop state derived from
   * that topic's messages; the server's snapshot of it follows. It concerns one topic, not
   * the connection: listeners hear it, but `state` keeps reporting the connection. */
  | { state: "topic_reset"; topic: string }
  /** The server does not serve this build of the protocol (`version_mismatch`): `reason`
   * names what changed. Not retried: a page offers a reload, which brings the server's build. */
  | { state: "incompatible"; reason: string }
  /** The credentials provider threw, or the server answered 401 (seen on SSE only: a browser
   * cannot see a refused WebSocket handshake's status, which looks like a drop and is retried,
   * asking the provider again) to a connection attempt. Not retried: the queue waits for
   * `reconnect()`. A 401 to an uplink of a stream that was up means the credentials expired:
   * the client reconnects, asking the provider again, and reports no `unauthorized`. */
  | { state: "unauthorized"; reason: string }
  | ({ state: "error" } & TransportError);

/** The server frame a message arrived in: sequenced (`msg`) or ephemeral (`push`); `id`
 * names the component on a mux. A `msg` with `topic` was published on that sequenced topic
 * and `seq` is its number there (about 1.7e15, still exact), not in the session. */
export type MessageFrame<S> =
  | { type: "msg"; seq: number; payload: S; ref?: number; topic?: string; id?: string }
  | { type: "push"; payload: S; topic?: string; id?: string };

/** One session tracked under a key of a topic's presence. */
export interface PresenceEntry {
  /** Opaque and unique: tells two tabs of one key apart. Not the session id. */
  readonly ref: string;
  /** What the server's handler tracked it with. */
  readonly meta: unknown;
}

/** A topic's presence: for each key, its entries, oldest first; a key has at least one.
 * Handed out frozen. */
export type PresenceList = Readonly<Record<string, readonly PresenceEntry[]>>;

/** A change in a topic's presence: the entries that joined and left (an update of an entry's
 * meta is a leave and a join), and the whole list after it. */
export interface PresenceEvent {
  readonly topic: string;
  readonly joins: PresenceList;
  readonly leaves: PresenceList;
  readonly list: PresenceList;
  /** For a topic the client asked only to count: the new count (the lists are then empty). */
  readonly count?: PresenceCount;
}

/** How many are in a topic's presence: keys (users, say) and entries over all keys (their
 * tabs, say). */
export interface PresenceCount {
  readonly keys: number;
  readonly entries: number;
}

/** What a client is shown of a topic's presence: the whole list (the default), only the
 * count, or nothing. */
export type PresenceMode = "list" | "count" | "none";

/** A mode per topic; the key `"*"` stands for every topic not named. */
export type PresenceModes = Readonly<Record<string, PresenceMode>>;

/** A protocol's schema, as `omni::typescript` writes it into the generated module
 * (`export const SCHEMA`). */
export interface Schema {
  /** The schema id (16 hex characters). */
  readonly id: string;
  /** The ids of the older released schemas this build still talks to. */
  readonly compatible?: readonly string[];
  /** The kinds of the client messages. */
  readonly client?: readonly string[];
  /** The kinds of the server messages. */
  readonly server?: readonly string[];
}

/** The server's refusal of message `ref`, as `rejected` listeners hear it (`acked` and
 * `request` reject with it too): `code` is `rejected` when the handler returned an error,
 * `handler_failed` when it panicked, `bad_payload` when the message did not decode. */
export interface Refusal {
  ref: number;
  code: string;
  message: string;
}

/** Why `acked` or `request` got no answer: a server error code, "closed", "unknown" or
 * "no_reply", and the reason. */
export interface AnswerError extends Error {
  /** The server's error code (`rejected`, `handler_failed`, `bad_payload`, …), or "closed",
   * "unknown", "no_reply". */
  code: string;
  reason: string;
}

/** A message sent but not yet acknowledged. */
export interface Pending<C> {
  ref: number;
  payload: C;
}

/** What a `Client` and a mux `Component` share: one session's messages, queue and state. */
export interface Stream<C, S> {
  /** The session the server assigned (or the one being resumed), or null. */
  readonly session: string | null;
  /** The latest transport state of the connection (never `topic_reset`). */
  readonly state: TransportState;
  /** Queues a message and returns its `ref`; sent when connected, again until acknowledged.
   * Throws when the client (or component) is closed or the queue is full, when its frame
   * is larger than `maxMessageBytes`, and with the "msgpack" codec when the message has no
   * MessagePack form (a cycle, a BigInt). */
  send(payload: C): number;
  /** Sends `msg` when its `kind` is one of the `kinds` option's, and returns it in every
   * case, for the page's own update to apply (Elm-style: one `update` over the page's whole
   * message union, client messages, server messages and local ones alike). Throws as `send`
   * does, and without `kinds`. */
  dispatch<M extends { kind: string }>(msg: M): M;
  /** Unacknowledged messages, oldest first (they survive a reload). */
  pending(): Pending<C>[];
  /** Resolves once the server handled the message `ref` (its `ack`). Rejects with an
   * `AnswerError`: the server's refusal (`code` "rejected" when the handler returned an
   * error, "handler_failed", "bad_payload"), "closed" when the client is closed first,
   * "unknown" for a `ref` never given out or answered too long ago. */
  acked(ref: number): Promise<void>;
  /** Sends `payload` and resolves with the server's reply: the first sequenced message its
   * handler sent while handling it. Rejects as `acked` does, and with `code` "no_reply" when
   * the handler handled it without replying. Throws as `send` does. */
  request(payload: C): Promise<S>;
  /** The presence list of `topic` as last heard, frozen (a change replaces it, so it can be
   * compared by identity); `{}` for a topic with no one, or none heard of. */
  presence(topic: string): PresenceList;
  /** How many are on `topic`, for a topic the client asked only to count; `undefined`
   * before the first count. */
  presenceCount(topic: string): PresenceCount | undefined;
  /** Every server message, exactly once and in order for sequenced ones (a sequenced
   * topic's messages too, on a `connect()` client). */
  on(event: "message", fn: (payload: S, frame: MessageFrame<S>) => void): () => void;
  on(event: "state", fn: (state: TransportState) => void): () => void;
  /** The server handled the message `ref`. */
  on(event: "ack", fn: (ref: number) => void): () => void;
  /** The server refused the message `ref` (it is answered, and leaves the queue). A refusal
   * is not a change of the connection: `state` listeners do not hear of it. */
  on(event: "rejected", fn: (refusal: Refusal) => void): () => void;
  /** A server message of a kind this build does not know (`schema.server`): a newer server's,
   * during a deploy. It is counted as received (and its number kept), not handed to
   * `message` listeners. */
  on(event: "unknown", fn: (payload: unknown, frame: MessageFrame<unknown>) => void): () => void;
  /** A topic's presence changed: on every `presence_diff`; on a `presence_state` (the whole
   * list, sent on subscribing and again after each reconnect) only when it differs from the
   * list held, by `ref`, so a resumed session hears nothing when no one came or went; and
   * when a new session replaces the old one, every list held leaves. */
  on(event: "presence", fn: (event: PresenceEvent) => void): () => void;
}

export interface Client<C, S> extends Stream<C, S> {
  /** Connects now: after `unauthorized` (asking the credentials provider again), or instead
   * of waiting out a backoff delay. Does nothing while connected or connecting. */
  reconnect(): void;
  /** Closes the connection and stops reconnecting, saying so: the server lets the session
   * (and its presence) go within a short linger. A page going away (`pagehide`) ends the
   * connection the same way; a reload resumes the session within the linger. */
  close(): void;
}

/** Options of a mux socket; as for `connect`, and per component where it says so. */
export interface MuxOptions {
  /** "json" (default) or "msgpack" (see `Codec`), for the socket and every component on it. */
  codec?: Codec;
  backoff?: Partial<Backoff>;
  heartbeat?: Partial<Heartbeat>;
  /** How long (ms) the socket may take to open, and a join to be welcomed. Default 10000. */
  connectTimeout?: number;
  /** How many messages each component may have waiting for acknowledgement. Default 1024. */
  queue?: number;
  /** The server's frame limit, in bytes of an encoded frame: a component's `send` refuses a
   * larger message. Default 65536. */
  maxMessageBytes?: number;
  /** Where each component's queue and resume point are kept across reloads. Default
   * `sessionStorage`; `null` keeps them in memory only. */
  storage?: Pick<Storage, "getItem" | "setItem"> | null;
  /** Credentials for every connection attempt of the socket (`params` only). */
  credentials?: CredentialsProvider;
}

export interface JoinOptions<C = never> {
  /** The module protocol's schema (`SCHEMA` of its generated module): as `Options.schema`. */
  schema?: Schema;
  /** The module protocol's schema id alone; a build the server does not serve is refused. */
  version?: string;
  /** The `kind`s of the module protocol's client messages, which `dispatch` sends. */
  kinds?: readonly string[];
  /** The storage key of the component's queue and resume point. Default: from the mux URL,
   * the module and the id. */
  queueKey?: string;
  /** Messages to send after every welcome of the component, before its queue. */
  onConnect?: ConnectHook<C>;
  /** Asked for a fresh token when the server refuses the join with `bad_token` (an expired
   * token, say): the component joins again with it, resuming its session and queue, instead
   * of stopping. Asked once, and again only after the component was welcomed since; one that
   * throws or takes longer than the connect timeout stops the component with `bad_token`. */
  refreshToken?: () => string | Promise<string>;
  /** A W3C trace context sent in each of the component's `join`s, as `Options.traceparent`
   * is in a connection's `hello`: the server's spans for the component's session join that
   * trace. */
  traceparent?: string | (() => string | undefined);
  /** What the component is shown of each topic's presence, as `Options.presence`. */
  presence?: PresenceModes;
}

/** One component on a mux socket: a session of its module, with its own messages, queue and
 * transport state. A refused join (`bad_token`, `unknown_module`, `version_mismatch`, ...)
 * ends in an `error` state and is not retried, except `bad_token` once with `refreshToken`. */
export interface Component<C, S> extends Stream<C, S> {
  /** The id it joined under, unique on its mux. */
  readonly id: string;
  /** The module it is a session of. */
  readonly module: string;
  /** Stops the component and ends its session for good; unsent messages are dropped. */
  leave(): void;
}

/** One WebSocket (`{url}/mux`) carrying many components. On every (re)connect each component
 * joins again, resuming its session, before any message it queued is sent. */
export interface Mux {
  /** Starts component `id` of `module` with the token the server issued for it. Throws when
   * the mux is closed or `id` is already joined. */
  join<C, S>(id: string, module: string, token: string, options?: JoinOptions<NoInfer<C>>): Component<C, S>;
  /** Connects the socket now: after `unauthorized`, or instead of waiting out a backoff. */
  reconnect(): void;
  /** Closes the socket and stops every component; their queues stay stored. */
  close(): void;
}

/** Connects to the endpoint under `url` (the prefix the server nests its routes under). */
export function connect<C, S>(url: string | URL, options?: Options<NoInfer<C>>): Client<C, S>;

/** Opens the mux socket under `url` (the prefix the server nests its routes under). */
export function mux(url: string | URL, options?: MuxOptions): Mux;

/** The delay in ms before reconnection attempt `attempt` (from 1). */
export function backoffDelay(backoff: Partial<Backoff>, attempt: number): number;

/** `value` as MessagePack, the codec "msgpack" writes it: as `JSON.stringify` sees the value
 * (`toJSON`, properties that are `undefined` left out), integers in their smallest form, other
 * numbers as float64, and bytes (`Uint8Array`, `ArrayBuffer`, any view) as `bin`. Throws a
 * TypeError for a cycle or a BigInt. For an app's own `POST {url}/http` with
 * `Content-Type: application/msgpack`, say. */
export function encodeMsgpack(value: unknown): Uint8Array;

/** One MessagePack value, as `JSON.parse` would give it: maps as objects (integer keys as
 * strings), integers past 2^53 as rounded Numbers, `bin` as a `Uint8Array`. Throws a
 * SyntaxError for anything but exactly one value, and for extension types. */
export function decodeMsgpack(data: ArrayBuffer | ArrayBufferView): unknown;
