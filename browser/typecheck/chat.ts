// Type-checks the chat demo's generated declarations (protocol.d.ts, counter.d.ts) against
// omni.d.ts the way a page uses them: `tsc --noEmit --strict -p browser/typecheck`.

import {
  backoffDelay,
  connect,
  decodeMsgpack,
  encodeMsgpack,
  mux,
  type Backoff,
  type Client,
  type Codec,
  type Component,
  type ConnectHook,
  type ConnectInfo,
  type Credentials,
  type CredentialsProvider,
  type Heartbeat,
  type JoinOptions,
  type MessageFrame,
  type Mux,
  type MuxOptions,
  type Options,
  type Pending,
  type PresenceEntry,
  type PresenceEvent,
  type PresenceList,
  type Stream,
  type TransportError,
  type TransportState,
} from "../../omni-runtime/js/omni.js";
import type {
  ChatMessage,
  ClientFrame,
  MsgFromClient,
  MsgFromServer,
  ServerFrame,
} from "../../examples/chat/static/protocol.js";
import type { CounterFromClient, CounterFromServer } from "../../examples/chat/static/counter.js";

const client = connect<MsgFromClient, MsgFromServer>("/omni", {
  transport: "sse",
  protocol: "Msg",
  backoff: { cap: 4000 },
  // A short-lived token, fetched before every connect; headers go on SSE requests only.
  credentials: async () => {
    const token = await (await fetch("/token")).text();
    return { params: { token }, headers: { authorization: `Bearer ${token}` } };
  },
  // Introduce ourselves to a session the server just made, before the queue goes.
  onConnect: ({ resumed }) => (resumed ? [] : [{ kind: "SetName", data: "ada" }]),
});

const messages = new Map<string, ChatMessage>();
let online = 0;

client.on("message", (payload, frame) => {
  switch (payload.kind) {
    case "Upsert":
      for (const [id, m] of Object.entries(payload.data)) messages.set(id, m);
      break;
    case "Presence":
      online = payload.data.online;
      break;
    case "Shared":
      // A `Bytes` field, declared in its JSON form: base64.
      console.log(payload.data.from, payload.data.file.name, atob(payload.data.file.data).length);
      break;
  }
  const seq: number | undefined = frame.type === "msg" ? frame.seq : undefined;
  // A sequenced topic's message: `seq` is its number in the topic.
  const topic: string | undefined = frame.type === "msg" ? frame.topic : undefined;
  void seq;
  void topic;
});

function label(state: TransportState): string {
  switch (state.state) {
    case "connected":
      return `connected to ${state.session}`;
    case "disconnected":
      return `closed ${state.code}: ${state.reason}`;
    case "reconnecting":
      return `retry ${state.attempt} in ${state.delay} ms`;
    case "error":
      return state.error === "rejected" ? `refused: ${state.code}` : state.message;
    case "topic_reset":
      return `${state.topic} starts over`;
    case "unauthorized":
      return `signed out: ${state.reason}`;
    default:
      return state.state;
  }
}

const off = client.on("state", (state) => {
  if (state.state === "reset") messages.clear();
  // Once the user signed in again, the queue waiting meanwhile goes.
  if (state.state === "unauthorized") client.reconnect();
  if (state.state === "topic_reset" && state.topic === "room") messages.clear();
  console.log(label(state), online);
});

const message: ChatMessage = {
  id: "m1",
  author: "ada",
  text: "hi",
  status: "Sending",
  sent_at: 0,
};
const ref: number = client.send({ kind: "Send", data: message });
client.send({ kind: "FetchAll" });
for (const { ref: r, payload } of client.pending()) {
  if (payload.kind === "Send" && r === ref) messages.set(payload.data.id, payload.data);
}
client.on("ack", (acked) => console.log(acked === ref));
client.send({ kind: "SetName", data: "ada" });

// Presence: who is in the room, by name, with how many tabs each.
const people = new Map<string, number>();
client.on("presence", (event: PresenceEvent) => {
  if (event.topic !== "room") return;
  people.clear();
  for (const [key, entries] of Object.entries(event.list)) people.set(key, entries.length);
  const came: string[] = Object.keys(event.joins);
  const went: string[] = Object.values(event.leaves).flatMap((entries) => entries.map((e) => e.ref));
  console.log(came, went);
});
const room: PresenceList = client.presence("room");
const first: PresenceEntry | undefined = room["ada"]?.[0];
console.log(first?.ref, first?.meta);
// @ts-expect-error: the list is frozen.
room["ada"] = [];
// @ts-expect-error: so are its entries.
room["ada"]?.push({ ref: "r", meta: null });

// The wire frames omni.js writes and reads, as the protocol declares them.
const hello: ClientFrame<MsgFromClient> = { type: "hello", protocol: "Msg" };
const up: ClientFrame<MsgFromClient> = { type: "msg", payload: { kind: "FetchAll" }, ref };
const down: ServerFrame<MsgFromServer> = { type: "reset", seq: 0 };
console.log(hello, up, down, client.session, client.state.state);

// @ts-expect-error: only a topic reset names a topic.
console.log(client.state.topic);

// @ts-expect-error: a server message is not something a client sends.
client.send({ kind: "Presence", data: { online: 1 } });

off();
client.close();

// MessagePack frames. These declarations have `Bytes` fields in their JSON form (base64);
// `omni::typescript::generate_for(Codec::MsgPack)` declares them as Uint8Array.
const codec: Codec = "msgpack";
const packed = connect<MsgFromClient, MsgFromServer>("/omni", { codec, storage: null });
packed.send({ kind: "Share", data: { name: "hi.txt", data: "aGk=" } });
packed.close();
// @ts-expect-error: not a codec omni.js speaks.
connect("/omni", { codec: "cbor" });
const encoded: Uint8Array = encodeMsgpack({ type: "hello", after: 3 });
const decoded: unknown = decodeMsgpack(new Uint8Array([0x2a]).buffer);
console.log(decodeMsgpack(encoded), decoded);

// Components over the mux socket: the demo's counter (its generated counter.d.ts) and the
// chat as a module.

const muxOptions: MuxOptions = { codec: "msgpack", backoff: { base: 100 }, heartbeat: { interval: 5000 }, storage: null };
const widgets: Mux = mux("/omni", muxOptions);
const joinOptions: JoinOptions = { version: "0000000000000000", queueKey: "counter:1" };
const counter: Component<CounterFromClient, CounterFromServer> = widgets.join(
  "counter",
  "counter",
  "token-from-the-page",
  joinOptions,
);
let value = 0;
counter.on("message", (payload, frame) => {
  value = payload.data;
  const from: string | undefined = frame.id;
  void from;
});
counter.on("state", (state) => {
  if (state.state === "error" && state.error === "rejected" && state.code === "bad_token") {
    console.log(`refused: ${state.message}`);
  }
});
const increment: number = counter.send({ kind: "Increment" });
const waiting: number = counter.pending().filter(({ payload }) => payload.kind === "Increment").length;
console.log(counter.id, counter.module, counter.session, counter.state.state, increment, waiting, value);
// @ts-expect-error: the counter's server message is not something its client sends.
counter.send({ kind: "Value", data: 1 });

const chat = widgets.join<MsgFromClient, MsgFromServer>("room", "chat", "another-token");
chat.send({ kind: "FetchAll" });
chat.on("presence", ({ list }) => console.log(Object.keys(list).length, chat.presence("room") === list));
chat.leave();
// @ts-expect-error: a component leaves; closing is the mux's.
chat.close();
widgets.close();

// The rest of the API, every option spelled out, as a page that sets them all would.

const backoff: Backoff = { base: 100, cap: 2000, factor: 3, jitter: 0 };
const firstRetry: number = backoffDelay(backoff, 1);
const laterRetry: number = backoffDelay({ cap: 500 }, 4);
const heartbeat: Heartbeat = { interval: 5000, timeout: 2000 };
const signedIn: Credentials = { params: { token: "t" } };
const provider: CredentialsProvider = async () => signedIn;
const introduce: ConnectHook<MsgFromClient> = (info: ConnectInfo) =>
  info.resumed ? [] : [{ kind: "SetName", data: info.session }];
const options: Options<MsgFromClient> = {
  transport: "ws",
  codec: "json",
  protocol: "Msg",
  version: "0000000000000000",
  kinds: ["Send", "FetchAll", "SetName", "Share"],
  backoff,
  heartbeat,
  connectTimeout: 5000,
  queue: 16,
  maxMessageBytes: 128 * 1024,
  queueKey: "omni:chat",
  storage: sessionStorage,
  credentials: provider,
  onConnect: introduce,
};
const elm: Client<MsgFromClient, MsgFromServer> = connect(new URL("https://chat.example/omni"), options);

// Elm-style: every message of the page goes through `dispatch` and comes back, typed as it went.
type Draft = { kind: "DraftChanged"; data: string };
const draft: Draft = elm.dispatch({ kind: "DraftChanged", data: "" });
const fetchAll: MsgFromClient = elm.dispatch<MsgFromClient>({ kind: "FetchAll" });
const unanswered: Pending<MsgFromClient>[] = elm.pending();

// A client and a component are both a `Stream`: code written for one takes either.
function follow(stream: Stream<MsgFromClient, MsgFromServer>): () => void {
  const offMessage = stream.on("message", (payload: MsgFromServer, frame: MessageFrame<MsgFromServer>) => {
    const sequenced: number | undefined = frame.type === "msg" ? frame.seq : undefined;
    console.log(payload.kind, sequenced, frame.id, frame.topic);
  });
  const offAck = stream.on("ack", (ref: number) => console.log(ref));
  const offState = stream.on("state", (state: TransportState) => {
    const failure: TransportError | null = state.state === "error" ? state : null;
    if (failure?.error === "rejected") console.log(failure.code, failure.ref);
    else if (failure) console.log(failure.error, failure.message);
  });
  return () => {
    offMessage();
    offAck();
    offState();
  };
}
const unfollow = follow(elm);
elm.reconnect();
// @ts-expect-error: `on` takes only the four events.
elm.on("closed", () => {});
// @ts-expect-error: an `ack` listener is given a ref, a number.
elm.on("ack", (ref: string) => console.log(ref));
// @ts-expect-error: a client connects over "ws" or "sse", nothing else.
connect("/omni", { transport: "longpoll" });

const muxed: Mux = mux("/omni", {
  codec: "json",
  backoff,
  heartbeat,
  connectTimeout: 5000,
  queue: 16,
  maxMessageBytes: 128 * 1024,
  storage: null,
  credentials: () => ({ params: { token: "t" } }),
});
const refreshing: Component<MsgFromClient, MsgFromServer> = muxed.join("room2", "chat", "token", {
  kinds: ["Send", "FetchAll", "SetName", "Share"],
  queueKey: "omni:mux:room2",
  onConnect: ({ resumed }) => (resumed ? [] : [{ kind: "FetchAll" }]),
  refreshToken: async () => (await fetch("/token/chat")).text(),
});
const unfollowComponent = follow(refreshing);
refreshing.dispatch({ kind: "FetchAll" });
console.log(firstRetry, laterRetry, draft, fetchAll, unanswered, refreshing.id, refreshing.module);
muxed.reconnect();
// @ts-expect-error: a mux has one transport, the WebSocket.
mux("/omni", { transport: "sse" });
unfollow();
unfollowComponent();
refreshing.leave();
muxed.close();
elm.close();
