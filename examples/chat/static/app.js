// The chat demo page's script: a file of its own, so the page's policy allows no inline script.
import { connect, mux } from "/omni/omni.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const transport = params.get("transport") === "sse" ? "sse" : "ws";
// `?codec=msgpack`: frames are MessagePack, binary WebSocket messages, and a shared file's
// bytes travel as bytes; JSON text otherwise.
const codec = params.get("codec") === "msgpack" ? "msgpack" : "json";
$("codec").textContent = codec;
const backoff = { base: 250, cap: 4000, factor: 2, jitter: 0.5 };
// The demo server's frame limit (twice the 64 KiB file limit, for a file's base64 in JSON).
const maxMessageBytes = 128 * 1024;
let client;
try {
  client = connect("/omni", { transport, codec, protocol: "Msg", backoff, maxMessageBytes });
} catch (err) {
  // MessagePack over SSE: omni.js refuses it (an event stream carries text), and says why.
  $("problem").textContent = err.message;
  $("transport").textContent = $("transport").dataset.state = "refused";
  throw err;
}

// Every message we know of, by id: the server's, and ours still waiting for it.
const messages = new Map();
// Our unacknowledged messages, from the client's queue (it survives a reload).
const ownPending = () => client.pending()
  .filter(({ payload }) => payload.kind === "Send")
  .map(({ payload }) => payload.data);
const fetchAll = () => {
  // One fetch in flight is enough.
  if (!client.pending().some(({ payload }) => payload.kind === "FetchAll")) client.send({ kind: "FetchAll" });
};

// The server's messages are kept across reloads as well: the client stores where it is in
// the room and resumes from there, so a reloaded page is sent only what it missed.
const SHOWN = "chat:messages";
function loadShown() {
  const raw = sessionStorage.getItem(SHOWN);
  // The first page in this tab: the client has no place in the room either, so the server
  // sends its snapshot.
  if (raw === null) return [];
  try {
    const shown = JSON.parse(raw);
    if (Array.isArray(shown)) return shown;
  } catch {
    // Unreadable: as lost.
  }
  return null;
}
function saveShown() {
  const shown = [...messages.values()].filter((m) => m.status === "Sent");
  try {
    sessionStorage.setItem(SHOWN, JSON.stringify(shown));
  } catch {
    // Too much to store. A reload then resumes the room with less than it had: mark it, so
    // that page fetches everything instead.
    try {
      sessionStorage.setItem(SHOWN, "lost");
    } catch {
      // Nothing more to do.
    }
  }
}
// Whether the client holds a place in the room (it had a message of it, or a reset of it).
// Until it does, a resumed session is sent nothing of what the room had meanwhile (the server
// replays only from a cursor, and sends a snapshot only on a new subscription), so the page
// fetches everything on connect instead. Per transport, as the client's own record is.
const FOLLOWING = `chat:following:${transport}`;
let following = sessionStorage.getItem(FOLLOWING) === "1";
const follow = () => {
  if (following) return;
  following = true;
  sessionStorage.setItem(FOLLOWING, "1");
};
const kept = loadShown();
for (const m of kept ?? []) messages.set(m.id, m);
for (const m of ownPending()) if (!messages.has(m.id)) messages.set(m.id, m);
if (kept === null) fetchAll();

const author = sessionStorage.getItem("chat:author") ?? "guest" + Math.floor(Math.random() * 1000);
sessionStorage.setItem("chat:author", author);
$("author").value = author;

// The room's presence shows each session under the name it gave (`anonymous` until then).
// The name belongs to the session: a session the server resumes keeps it, a new one is told
// it. Which session was told which name is stored, so a reloaded page does not say it again.
const NAMED = `chat:named:${transport}`;
const named = () => {
  try {
    return JSON.parse(sessionStorage.getItem(NAMED) ?? "null") ?? {};
  } catch {
    return {};
  }
};
function sayName() {
  const name = $("author").value.trim();
  const session = client.session;
  // The server takes 1 to 40 characters; the field allows no more.
  if (!name || !session) return;
  const told = named();
  if (told.session === session && told.name === name) return;
  client.send({ kind: "SetName", data: name });
  sessionStorage.setItem(NAMED, JSON.stringify({ session, name }));
}
$("author").onchange = () => {
  sessionStorage.setItem("chat:author", $("author").value);
  sayName();
};

function renderPeople() {
  const list = client.presence("room");
  $("people").replaceChildren(...Object.keys(list).sort().map((key) => {
    const li = document.createElement("li");
    li.dataset.key = key;
    li.dataset.count = String(list[key].length);
    li.textContent = list[key].length > 1 ? `${key} ×${list[key].length}` : key;
    return li;
  }));
}
client.on("presence", ({ topic }) => {
  if (topic === "room") renderPeople();
});

// randomUUID needs a secure context; a page served over plain http on a LAN address is not one.
function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function render() {
  // Stored messages in the server's order, then ours not yet stored, in the order typed.
  const shown = [...messages.values()];
  const rank = (m) => (m.status === "Sent" ? m.sent_at : Infinity);
  shown.sort((a, b) => (rank(a) === rank(b) ? 0 : rank(a) < rank(b) ? -1 : 1));
  $("messages").replaceChildren(...shown.map((m) => {
    const li = document.createElement("li");
    li.className = "message";
    li.dataset.id = m.id;
    li.dataset.status = m.status === "Sent" ? "sent" : "sending";
    const who = document.createElement("span");
    who.className = "author";
    who.textContent = m.author;
    li.append(who, document.createTextNode(m.text));
    return li;
  }));
}

// A message can arrive more than once: the sender gets its own both as the answer to its
// `Send` and on the room, and a snapshot may repeat what the room brought. Keyed by id, each
// is shown once.
client.on("message", (payload, frame) => {
  if (frame.topic === "room" && frame.type === "msg") follow();
  if (payload.kind === "Upsert") {
    for (const [id, m] of Object.entries(payload.data)) messages.set(id, m);
    saveShown();
    render();
  } else if (payload.kind === "Presence") {
    $("online").textContent = payload.data.online;
  } else if (payload.kind === "Shared") {
    const { from, file } = payload.data;
    files.push({ from, name: file.name, base64: asBase64(file.data) });
    renderFiles();
  }
});

// The server refused one of our messages (a name too long, a file too large): it is
// answered, and the page says why.
client.on("rejected", ({ code, message }) => {
  $("problem").textContent = `${code}: ${message}`;
});

client.on("state", (state) => {
  if (state.state === "error") {
    $("problem").textContent = `${state.code ?? state.error}: ${state.message}`;
    return;
  }
  if (state.state === "topic_reset") {
    // The messages come from the room, and the server can no longer say what we missed of
    // it: keep only our own unsent messages; its snapshot of the room follows.
    if (state.topic === "room") {
      follow();
      messages.clear();
      for (const m of ownPending()) messages.set(m.id, m);
      saveShown();
      render();
    }
    return;
  }
  if (state.state === "reset") {
    // The session is gone, but the room's cursor is not: the room resumes from it, so what
    // is shown stays. A snapshot the old session had on its way may be lost with it, so ask
    // for everything once.
    fetchAll();
    return;
  }
  $("transport").textContent = state.state;
  $("transport").dataset.state = state.state;
  if (state.state === "connected") {
    $("problem").textContent = "";
    sayName();
    // Once the client follows the room, no fetch: a page coming back is sent exactly the
    // room messages it missed. Until then a fetch of its own: one still waiting from an
    // earlier connection may have been answered there already, before what was missed.
    if (!following) client.send({ kind: "FetchAll" });
  }
});

$("form").onsubmit = (event) => {
  event.preventDefault();
  const text = $("draft").value.trim();
  if (!text) return;
  const message = {
    id: newId(),
    author: $("author").value.trim() || "guest",
    text,
    status: "Sending",
    sent_at: 0,
  };
  messages.set(message.id, message);
  render();
  $("draft").value = "";
  client.send({ kind: "Send", data: message });
};

render();

// Files shared with the room, in the order they came. Like the server, the page keeps them
// only while it is open.
const FILE_LIMIT = 64 * 1024;
const files = [];

// A file's bytes as base64, the form JSON gives them in (a `Bytes` field), and the one a
// download link takes.
function asBase64(data) {
  if (typeof data === "string") return data;
  let binary = "";
  // In slices, so that no call gets more arguments than the engine takes.
  for (let i = 0; i < data.length; i += 0x8000) binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
  return btoa(binary);
}

function renderFiles() {
  $("files").replaceChildren(...files.map(({ from, name, base64 }) => {
    const size = atob(base64).length;
    const li = document.createElement("li");
    li.dataset.name = name;
    li.dataset.size = String(size);
    const link = document.createElement("a");
    link.href = `data:application/octet-stream;base64,${base64}`;
    link.download = name;
    link.textContent = name;
    const about = document.createElement("span");
    about.className = "size";
    about.textContent = `${size < 1024 ? `${size} B` : `${(size / 1024).toFixed(1)} KiB`}, from ${from}`;
    li.append(link, about);
    return li;
  }));
}

$("share").onchange = async () => {
  const file = $("share").files?.[0];
  $("share").value = "";
  if (!file) return;
  if (file.size > FILE_LIMIT) {
    // The server would refuse it; and a frame far over its limit would close the socket.
    $("problem").textContent = `${file.name} is larger than 64 KiB: not shared`;
    return;
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  // A `Bytes` field: bytes over MessagePack, base64 in JSON.
  const data = codec === "msgpack" ? bytes : asBase64(bytes);
  client.send({ kind: "Share", data: { name: file.name, data } });
};

// Counters: every element that asks for one becomes a component on one shared mux socket.
const widgets = mux("/omni", { codec, backoff, maxMessageBytes });
const counters = [...document.querySelectorAll('[data-omni-module="counter"]')];
counters.forEach((root, i) => mountCounter(root, root.id || `counter-${i}`));

function mountCounter(root, id) {
  const part = (name) => root.querySelector(`[data-part="${name}"]`);
  // A page open longer than its token lives gets a fresh one when the rejoin is refused.
  const refreshToken = async () => {
    const response = await fetch("/token/counter", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.text();
  };
  const counter = widgets.join(id, "counter", root.dataset.omniToken ?? "", { refreshToken });
  // Clicks the server has not acknowledged yet: the value shown is always the server's.
  const showPending = () => {
    const waiting = counter.pending().filter(({ payload }) => payload.kind === "Increment").length;
    root.dataset.pending = String(waiting);
    part("pending").textContent = waiting ? `+${waiting} waiting for the server` : "";
  };
  counter.on("message", (payload) => {
    if (payload.kind === "Value") part("value").textContent = String(payload.data);
  });
  counter.on("ack", showPending);
  counter.on("rejected", ({ code, message }) => {
    showPending();
    root.dataset.error = code;
    part("problem").textContent = `${code}: ${message}`;
  });
  counter.on("state", (state) => {
    showPending();
    if (state.state === "reset") {
      // The value shown came from a session the server no longer has; a fresh one follows.
      part("value").textContent = "";
      return;
    }
    part("transport").textContent = state.state;
    part("transport").dataset.state = state.state;
    if (state.state === "error") {
      root.dataset.error = state.code ?? state.error;
      part("problem").textContent = `${state.code ?? state.error}: ${state.message}`;
    } else if (state.state === "connected") {
      delete root.dataset.error;
      part("problem").textContent = "";
    }
  });
  part("increment").onclick = () => {
    try {
      counter.send({ kind: "Increment" });
    } catch (err) {
      // Refused for good (a bad token) or too many clicks waiting: the state says which.
      console.warn(err.message);
    }
    showPending();
  };
  showPending();
}
