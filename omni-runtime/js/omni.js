// omni.js: the browser client for omni's wire protocol v1 (docs/PROTOCOL.md).
//
//   import { connect, mux } from "/omni/omni.js";
//   const client = connect("/omni", { transport: "ws" });
//   client.on("message", (payload) => update(payload));
//   client.on("state", (state) => show(state));
//   const ref = client.send({ kind: "FetchAll" });
//
//   // Elm-style: every message of the page goes through its update; `dispatch` sends the
//   // ones whose kind is a client message's (named in `kinds`) and returns each to apply.
//   const chat = connect("/omni", { kinds: ["Send", "FetchAll"] });
//   update(chat.dispatch({ kind: "Send", data: message }));
//   update(chat.dispatch({ kind: "DraftChanged", data: "" })); // local: not sent
//
//   // Several components, each a session of its own module, over one WebSocket (/omni/mux):
//   const widgets = mux("/omni");
//   const counter = widgets.join("c1", "counter", tokenFromThePage);
//   counter.on("message", (payload) => show(payload));
//   counter.send({ kind: "Increment" });
//
//   // Frames as MessagePack, binary WebSocket messages (bytes in messages as Uint8Array):
//   const packed = connect("/omni", { codec: "msgpack" });
//
//   // Presence: who is on a topic, kept per topic by every client and component.
//   client.on("presence", ({ topic, joins, leaves, list }) => showPeople(list));
//   client.presence("room"); // { ann: [{ ref, meta }, { ref, meta }], bob: [...] }
//
// It behaves like the Rust client: reconnects with backoff and jitter, resumes its session so
// every sequenced server message arrives once and in order, keeps unacknowledged messages in
// a queue (in sessionStorage, so a reloaded page resends them and resumes its session), and
// stops for good when the server refuses its protocol version. A `connect()` client also
// follows sequenced topics: it keeps the last number of each (stored with the session), so
// after a drop or a reload the server replays just what it missed of them. A mux component
// does all of this on its own: its own session, queue, stored resume point, topic cursors
// (sent in its `join`) and transport state. Each also keeps the presence list of every topic
// the server sends one for (not stored: the server sends the whole list again on resume).
//
// This file is the entry point: it re-exports what the modules beside it define, and they
// import each other by relative path, so a page importing `{prefix}/omni.js` loads them from
// the same place. Their types are in omni.d.ts.

export { connect } from "./client.js";
export { backoffDelay } from "./dialer.js";
export { decodeMsgpack, encodeMsgpack } from "./msgpack.js";
export { mux } from "./multiplex.js";
