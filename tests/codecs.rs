//! MessagePack against a real server, next to JSON: negotiation on every transport, binary
//! payloads, frames of the wrong kind, a broadcast to subscribers of both codecs (re-encoded
//! once for all its MessagePack subscribers), and resumes of the session log and of a topic
//! log in either codec. Raw sockets, so that every byte the
//! server writes is seen.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{PATIENCE, Socket, serve};
use futures_util::{SinkExt, StreamExt};
use omni::server::{Endpoint, Limits, Mux};
use omni::token::Keys;
use omni::{Bytes, ClientFrame, Codec, Context, ErrorCode, HandlerResult, ServerFrame};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use tokio_tungstenite::tungstenite::Message;

/// Files shared in a room, and a sequenced log of notes.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Share {
    /// Answered with `Stored` (sequenced), and broadcast to the room as `Uploaded`.
    #[client]
    Upload(Bytes),
    /// Published on the sequenced topic `log` as `Noted`.
    #[client]
    Note(u32),
    #[server]
    Stored(u32),
    #[server]
    Uploaded(Bytes),
    #[server]
    Noted(u32),
}

struct Member;

impl ShareHandler for Member {
    async fn connected(&mut self, cx: &mut Context<Share>) -> HandlerResult {
        cx.subscribe("room");
        cx.subscribe("log");
        Ok(())
    }

    async fn upload(&mut self, cx: &mut Context<Share>, file: Bytes) -> HandlerResult {
        cx.send(ShareFromServer::Stored(file.len() as u32));
        cx.broadcast("room", ShareFromServer::Uploaded(file));
        Ok(())
    }

    async fn note(&mut self, cx: &mut Context<Share>, n: u32) -> HandlerResult {
        cx.publish("log", ShareFromServer::Noted(n));
        Ok(())
    }
}

const KEY: &[u8] = b"a test key that is long enough for HMAC-SHA256!";

async fn server() -> (SocketAddr, Mux) {
    // Room for a 64 KiB file in any codec (base64 makes it 87 KiB of JSON).
    let limits = Limits {
        max_frame_bytes: 256 * 1024,
        ..Limits::default()
    };
    let endpoint: Endpoint<Share, Member> =
        Endpoint::builder(|| Member).limits(limits.clone()).build();
    let mux = Mux::builder(Keys::new(KEY).unwrap())
        .module("share", &endpoint)
        .build();
    let router = omni::axum::Router::new()
        .nest("/omni", endpoint.router())
        .nest("/omni", mux.router());
    (serve(router).await, mux)
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A raw WebSocket speaking one codec.
struct Peer {
    socket: Socket,
    codec: Codec,
}

impl Peer {
    async fn connect(addr: SocketAddr, path: &str, codec: Codec) -> Self {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match codec {
            Codec::MsgPack => format!("ws://{addr}{path}{sep}codec=msgpack"),
            _ => format!("ws://{addr}{path}"),
        };
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self { socket, codec }
    }

    async fn send<C: Serialize>(&mut self, frame: ClientFrame<C>) {
        let message = match self.codec {
            Codec::MsgPack => Message::Binary(frame.encode_msgpack().unwrap().into()),
            _ => Message::Text(frame.encode().unwrap().into()),
        };
        self.socket.send(message).await.unwrap();
    }

    async fn msg(&mut self, payload: ShareFromClient, reference: u64) {
        self.send(ClientFrame::Msg {
            payload,
            reference: Some(reference),
            id: None,
        })
        .await;
    }

    /// The next frame's message as it came, text or binary.
    async fn raw(&mut self) -> Message {
        loop {
            match tokio::time::timeout(PATIENCE, self.socket.next()).await {
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(message))) => return message,
                other => panic!("no frame: {other:?}"),
            }
        }
    }

    /// The next frame, which must be of this peer's codec's kind.
    async fn next<S: DeserializeOwned>(&mut self) -> ServerFrame<S> {
        match (self.raw().await, self.codec) {
            (Message::Binary(bytes), Codec::MsgPack) => ServerFrame::decode_msgpack(&bytes)
                .unwrap_or_else(|e| panic!("undecodable MessagePack frame: {e}")),
            (Message::Text(text), Codec::Json) => ServerFrame::decode(text.as_bytes()).unwrap(),
            (other, codec) => panic!("a {codec} connection got {other:?}"),
        }
    }

    /// The `welcome`: its session and codec.
    async fn welcome(&mut self) -> (omni::SessionId, Codec) {
        match self.next::<ShareFromServer>().await {
            ServerFrame::Welcome { session, codec, .. } => (session, codec),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// The next frame that is not an `ack`.
    async fn next_not_ack(&mut self) -> ServerFrame<ShareFromServer> {
        loop {
            match self.next().await {
                ServerFrame::Ack { .. } => continue,
                frame => return frame,
            }
        }
    }

    async fn quiet_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.socket.next())
            .await
            .is_err()
    }
}

#[tokio::test]
async fn welcome_names_the_codec_and_frames_are_of_its_kind() {
    let (addr, _mux) = server().await;
    let mut packed = Peer::connect(addr, "/omni/ws", Codec::MsgPack).await;
    assert!(matches!(packed.raw().await, Message::Binary(_)));
    let mut packed = Peer::connect(addr, "/omni/ws", Codec::MsgPack).await;
    assert_eq!(packed.welcome().await.1, Codec::MsgPack);
    let mut json = Peer::connect(addr, "/omni/ws", Codec::Json).await;
    assert!(matches!(json.raw().await, Message::Text(_)));
    let mut json = Peer::connect(addr, "/omni/ws?codec=json", Codec::Json).await;
    assert_eq!(json.welcome().await.1, Codec::Json);
}

#[tokio::test]
async fn bytes_travel_as_bin_and_a_broadcast_reaches_both_codecs() {
    let (addr, _mux) = server().await;
    let mut packed = Peer::connect(addr, "/omni/ws", Codec::MsgPack).await;
    let mut json = Peer::connect(addr, "/omni/ws", Codec::Json).await;
    packed.welcome().await;
    json.welcome().await;

    let file = Bytes((0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect());
    packed.msg(ShareFromClient::Upload(file.clone()), 1).await;
    // The broadcast as each codec carries it: `bin` within 5 % of the bytes' own size, and
    // base64 text.
    let (mut stored, mut wire) = (false, None);
    while !stored || wire.is_none() {
        let Message::Binary(bytes) = packed.raw().await else {
            panic!("binary")
        };
        match ServerFrame::<ShareFromServer>::decode_msgpack(&bytes).unwrap() {
            ServerFrame::Msg {
                payload: ShareFromServer::Stored(65536),
                reference: Some(1),
                ..
            } => stored = true,
            ServerFrame::Push { .. } => wire = Some(bytes),
            ServerFrame::Ack { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let wire = wire.unwrap();
    assert!(
        wire.len() as f64 <= file.len() as f64 * 1.05,
        "{} bytes on the wire for {}",
        wire.len(),
        file.len()
    );
    assert!(
        wire.windows(5).any(|w| w == [0xc6, 0, 1, 0, 0]),
        "a bin 32 header for 65,536 bytes"
    );
    let ServerFrame::Push {
        payload: ShareFromServer::Uploaded(got),
        ..
    } = ServerFrame::decode_msgpack(&wire).unwrap()
    else {
        panic!("the upload, pushed")
    };
    assert_eq!(got, file);
    let Message::Text(text) = json.raw().await else {
        panic!("text")
    };
    assert!(text.contains(r#""payload":{"kind":"Uploaded","data":""#));
    let ServerFrame::Push {
        payload: ShareFromServer::Uploaded(got),
        ..
    } = ServerFrame::decode(text.as_bytes()).unwrap()
    else {
        panic!("the upload, pushed")
    };
    assert_eq!(got, file);
}

#[tokio::test]
async fn a_frame_of_the_wrong_kind_gets_bad_frame_and_the_connection_survives() {
    let (addr, _mux) = server().await;
    for codec in [Codec::MsgPack, Codec::Json] {
        let mut peer = Peer::connect(addr, "/omni/ws", codec).await;
        peer.welcome().await;
        let wrong = match codec {
            Codec::MsgPack => {
                Message::Text(r#"{"type":"msg","payload":{"kind":"Note","data":1}}"#.into())
            }
            _ => Message::Binary(ClientFrame::msg(1u8).encode_msgpack().unwrap().into()),
        };
        peer.socket.send(wrong).await.unwrap();
        match peer.next::<ShareFromServer>().await {
            ServerFrame::Error { code, message, .. } => {
                assert_eq!(code, ErrorCode::BadFrame, "{message}");
            }
            other => panic!("expected bad_frame, got {other:?}"),
        }
        if codec == Codec::MsgPack {
            // Garbage in a binary frame: a precise error, and the connection goes on.
            peer.socket
                .send(Message::Binary(vec![0x82, 0xa4, b't'].into()))
                .await
                .unwrap();
            let ServerFrame::Error { code, .. } = peer.next::<ShareFromServer>().await else {
                panic!("an error")
            };
            assert_eq!(code, ErrorCode::BadFrame);
            // A payload that is not a message of the protocol: `bad_payload`, naming the ref.
            peer.send(ClientFrame::Msg {
                payload: "not a message",
                reference: Some(9),
                id: None,
            })
            .await;
            let ServerFrame::Error {
                code, reference, ..
            } = peer.next::<ShareFromServer>().await
            else {
                panic!("an error")
            };
            assert_eq!((code, reference), (ErrorCode::BadPayload, Some(9)));
        }
        peer.msg(ShareFromClient::Upload(Bytes(vec![1, 2, 3])), 2)
            .await;
        assert!(matches!(
            peer.next_not_ack().await,
            ServerFrame::Msg {
                payload: ShareFromServer::Stored(3),
                ..
            }
        ));
    }
}

#[tokio::test]
async fn an_unknown_codec_and_msgpack_over_sse_are_refused_with_a_reason() {
    let (addr, _mux) = server().await;
    let err = tokio_tungstenite::connect_async(format!("ws://{addr}/omni/ws?codec=xml"))
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("refused at the handshake: {err}")
    };
    assert_eq!(response.status(), 400);
    let http = http_client();
    let sse = http
        .get(format!("http://{addr}/omni/sse?codec=msgpack"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 400);
    let why = sse.text().await.unwrap();
    assert!(why.contains("always JSON"), "{why}");
    let mux = tokio_tungstenite::connect_async(format!("ws://{addr}/omni/mux?codec=cbor")).await;
    assert!(mux.is_err());
}

#[tokio::test]
async fn http_answers_msgpack_in_kind() {
    let (addr, _mux) = server().await;
    let http = http_client();
    // An array of two frames: an upload and a note.
    let mut body = vec![0x92];
    body.extend(
        ClientFrame::Msg {
            payload: ShareFromClient::Upload(Bytes(vec![9; 10])),
            reference: Some(1),
            id: None,
        }
        .encode_msgpack()
        .unwrap(),
    );
    body.extend(
        ClientFrame::msg(ShareFromClient::Note(5))
            .encode_msgpack()
            .unwrap(),
    );
    let response = http
        .post(format!("http://{addr}/omni/http"))
        .header("content-type", "application/msgpack")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/msgpack");
    let got = frames(&response.bytes().await.unwrap());
    assert!(matches!(
        &got[0],
        ServerFrame::Welcome {
            codec: Codec::MsgPack,
            ..
        }
    ));
    assert!(got.iter().any(|f| matches!(
        f,
        ServerFrame::Msg {
            payload: ShareFromServer::Stored(10),
            reference: Some(1),
            ..
        }
    )));

    // A body that is no frame at all: 422 with the error, in MessagePack.
    let response = http
        .post(format!("http://{addr}/omni/http"))
        .header("content-type", "application/msgpack")
        .body(vec![0xc1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let got = frames(&response.bytes().await.unwrap());
    assert!(matches!(
        got[..],
        [ServerFrame::Error {
            code: ErrorCode::BadFrame,
            ..
        }]
    ));
}

/// The frames of a MessagePack response body (an array of frame maps).
fn frames(body: &[u8]) -> Vec<ServerFrame<ShareFromServer>> {
    let mut cursor = std::io::Cursor::new(body);
    let len = rmp::decode::read_array_len(&mut cursor).expect("an array");
    let mut out = Vec::new();
    for _ in 0..len {
        let start = cursor.position() as usize;
        rmpv::decode::read_value(&mut cursor).unwrap();
        let end = cursor.position() as usize;
        out.push(ServerFrame::decode_msgpack(&body[start..end]).unwrap());
    }
    out
}

#[tokio::test]
async fn a_mux_component_speaks_msgpack_with_its_id() {
    let (addr, mux) = server().await;
    let mut peer = Peer::connect(addr, "/omni/mux", Codec::MsgPack).await;
    let token = mux.sign("share", &serde_json::json!({}), Duration::from_secs(60));
    peer.send(ClientFrame::<()>::Join {
        id: "files".into(),
        module: "share".into(),
        token,
        session: None,
        after: None,
        version: None,
        compatible: None,
        topics: None,
        traceparent: None,
        presence: None,
        client: None,
    })
    .await;
    assert!(matches!(
        peer.next::<ShareFromServer>().await,
        ServerFrame::Joined { .. }
    ));
    assert!(matches!(
        peer.next::<ShareFromServer>().await,
        ServerFrame::Welcome { id: Some(id), codec: Codec::MsgPack, .. } if id == "files"
    ));
    peer.send(ClientFrame::Msg {
        payload: ShareFromClient::Upload(Bytes(vec![7; 300])),
        reference: Some(4),
        id: Some("files".into()),
    })
    .await;
    let mut stored = false;
    let mut pushed = false;
    while !(stored && pushed) {
        match peer.next::<ShareFromServer>().await {
            ServerFrame::Msg {
                payload: ShareFromServer::Stored(300),
                id: Some(id),
                ..
            } if id == "files" => stored = true,
            ServerFrame::Push {
                payload: ShareFromServer::Uploaded(bytes),
                id: Some(id),
                ..
            } if id == "files" => {
                assert_eq!(bytes, Bytes(vec![7; 300]));
                pushed = true;
            }
            ServerFrame::Ack { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // A payload the module cannot read: `bad_payload`, naming the ref and the component.
    peer.send(ClientFrame::Msg {
        payload: 17u8,
        reference: Some(5),
        id: Some("files".into()),
    })
    .await;
    match peer.next_not_ack().await {
        ServerFrame::Error {
            code,
            reference,
            id,
            ..
        } => assert_eq!(
            (code, reference, id.as_deref()),
            (ErrorCode::BadPayload, Some(5), Some("files"))
        ),
        other => panic!("expected bad_payload, got {other:?}"),
    }
}

/// The `Noted` numbers of the `log` topic `peer` receives until it has `until`.
async fn notes(peer: &mut Peer, until: u32) -> Vec<(u64, u32)> {
    let mut got = Vec::new();
    while got.last().map(|(_, n)| *n) != Some(until) {
        match peer.next::<ShareFromServer>().await {
            ServerFrame::Msg {
                topic: Some(topic),
                seq,
                payload: ShareFromServer::Noted(n),
                ..
            } if topic == "log" => got.push((seq, n)),
            ServerFrame::Msg { topic: None, .. } | ServerFrame::Ack { .. } => {}
            ServerFrame::Push { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    got
}

/// Reads `peer`'s frames up to the `ack` of `reference`. The ack follows the handler's
/// effects: a note it published is in the topic's log by then.
async fn acked(peer: &mut Peer, reference: u64) {
    loop {
        match peer.next::<ShareFromServer>().await {
            ServerFrame::Ack { reference: r, .. } if r == reference => return,
            ServerFrame::Ack { .. } | ServerFrame::Msg { .. } | ServerFrame::Push { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_topic_log_and_a_session_log_replay_exactly_to_either_codec() {
    let (addr, _mux) = server().await;
    let mut poster = Peer::connect(addr, "/omni/ws", Codec::Json).await;
    poster.welcome().await;
    let mut followers = Vec::new();
    for codec in [Codec::Json, Codec::MsgPack] {
        let mut peer = Peer::connect(addr, "/omni/ws?topics=%7B%7D", codec).await;
        let (session, _) = peer.welcome().await;
        // A sequenced reply of the session's own, for the session log's resume.
        peer.msg(ShareFromClient::Upload(Bytes(vec![1])), 1).await;
        followers.push((peer, session, codec));
    }
    for n in 1..=3 {
        poster.msg(ShareFromClient::Note(n), u64::from(n)).await;
        acked(&mut poster, u64::from(n)).await;
    }
    let mut cursors = Vec::new();
    for (peer, _, _) in &mut followers {
        let got = notes(peer, 3).await;
        assert_eq!(got.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [1, 2, 3]);
        cursors.push(got[2].0);
    }
    // Both go away; three more notes are published, each acked (so in the topic's log)
    // before either comes back: they can only reach the resumed connections from the log.
    let sessions: Vec<_> = followers
        .into_iter()
        .map(|(peer, session, codec)| {
            drop(peer);
            (session, codec)
        })
        .collect();
    for n in 4..=6 {
        poster.msg(ShareFromClient::Note(n), u64::from(n)).await;
        acked(&mut poster, u64::from(n)).await;
    }
    // Each comes back in the other codec: the logs hold frames that replay to either.
    let mut resumed = Vec::new();
    for ((session, codec), cursor) in sessions.into_iter().zip(cursors) {
        let other = match codec {
            Codec::Json => Codec::MsgPack,
            _ => Codec::Json,
        };
        let path = format!("/omni/ws?session={session}&after=0&topics=%7B%22log%22%3A{cursor}%7D");
        let mut peer = Peer::connect(addr, &path, other).await;
        match peer.next::<ShareFromServer>().await {
            ServerFrame::Welcome {
                resumed: true,
                codec,
                ..
            } => assert_eq!(codec, other),
            other => panic!("expected the resumed welcome, got {other:?}"),
        }
        resumed.push((peer, other, cursor));
    }
    // One note published live, once both are back: it comes after the replay.
    poster.msg(ShareFromClient::Note(7), 7).await;
    acked(&mut poster, 7).await;
    for (mut peer, codec, cursor) in resumed {
        // The session log's one reply (after 0), and the topic exactly after the cursor:
        // the replayed notes, then the live one; no gap, no duplicate.
        let (mut replies, mut got) = (Vec::new(), Vec::new());
        while got.last().map(|(_, n)| *n) != Some(7) || replies.is_empty() {
            match peer.next::<ShareFromServer>().await {
                ServerFrame::Msg {
                    topic: Some(topic),
                    seq,
                    payload: ShareFromServer::Noted(n),
                    ..
                } if topic == "log" => got.push((seq, n)),
                ServerFrame::Msg {
                    topic: None,
                    seq,
                    payload,
                    ..
                } => replies.push((seq, payload)),
                ServerFrame::Push { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(replies, [(1, ShareFromServer::Stored(1))], "{codec}");
        assert_eq!(
            got,
            [
                (cursor + 1, 4),
                (cursor + 2, 5),
                (cursor + 3, 6),
                (cursor + 4, 7)
            ],
            "{codec}: the notes after the cursor"
        );
        assert!(
            peer.quiet_for(Duration::from_millis(200)).await,
            "{codec}: nothing more"
        );
    }
}

/// How many times a [`Counted`] was read back from JSON. The server writes payloads and never
/// reads its own, except to re-encode a frame it holds as JSON for a MessagePack connection:
/// this counts those re-encodings.
static COUNTED_READS: AtomicUsize = AtomicUsize::new(0);

/// Held by a test while it counts: the counters are shared by the tests running in parallel.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many times a [`Counted`] was written, in either codec: a reply to a MessagePack client
/// is written once, as MessagePack, not once per codec.
static COUNTED_WRITES: AtomicUsize = AtomicUsize::new(0);

/// A number whose every read is counted in [`COUNTED_READS`], and every write in
/// [`COUNTED_WRITES`].
#[derive(Debug, Clone, PartialEq)]
struct Counted(u32);

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        COUNTED_WRITES.fetch_add(1, Ordering::SeqCst);
        self.0.serialize(serializer)
    }
}

/// Written as the number it holds, for the protocol's schema.
impl omni::schema::Describe for Counted {
    fn describe(_: &mut omni::schema::Registry) -> omni::schema::Shape {
        omni::schema::Shape::U32
    }
}

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        COUNTED_READS.fetch_add(1, Ordering::SeqCst);
        u32::deserialize(deserializer).map(Counted)
    }
}

/// One topic that every client may listen to and shout on.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Fan {
    /// Subscribes to topic `fan`: once acked, the client hears every shout.
    #[client]
    Listen,
    /// Broadcast on topic `fan` as `Heard`.
    #[client]
    Shout(u32),
    /// Answered to its sender alone, as `Heard`.
    #[client]
    Echo(u32),
    #[server]
    Heard(Counted),
}

struct Crowd;

impl FanHandler for Crowd {
    async fn listen(&mut self, cx: &mut Context<Fan>) -> HandlerResult {
        cx.subscribe("fan");
        Ok(())
    }

    async fn shout(&mut self, cx: &mut Context<Fan>, n: u32) -> HandlerResult {
        cx.broadcast("fan", FanFromServer::Heard(Counted(n)));
        Ok(())
    }

    async fn echo(&mut self, cx: &mut Context<Fan>, n: u32) -> HandlerResult {
        cx.send(FanFromServer::Heard(Counted(n)));
        Ok(())
    }
}

/// Connects a client in `codec` that listens to the topic, and returns once it does.
async fn listener(addr: SocketAddr, codec: Codec) -> Peer {
    let mut peer = Peer::connect(addr, "/omni/ws", codec).await;
    peer.welcome().await;
    peer.send(ClientFrame::Msg {
        payload: FanFromClient::Listen,
        reference: Some(1),
        id: None,
    })
    .await;
    // Read as plain values: the test's own reading of a `Counted` is not counted.
    match peer.next::<serde_json::Value>().await {
        ServerFrame::Ack { reference: 1, .. } => peer,
        other => panic!("expected the ack of Listen, got {other:?}"),
    }
}

#[tokio::test]
async fn a_broadcast_is_re_encoded_once_for_all_its_msgpack_subscribers() {
    let endpoint: Endpoint<Fan, Crowd> = Endpoint::builder(|| Crowd).build();
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    const PACKED: usize = 8;
    let mut packed = Vec::new();
    for _ in 0..PACKED {
        packed.push(listener(addr, Codec::MsgPack).await);
    }
    let mut json = listener(addr, Codec::Json).await;
    // The shouter speaks JSON and does not listen: nothing but the broadcast is re-encoded.
    let mut shouter = Peer::connect(addr, "/omni/ws", Codec::Json).await;
    shouter.welcome().await;

    let _alone = ALONE.lock().await;
    let before = COUNTED_READS.load(Ordering::SeqCst);
    shouter
        .send(ClientFrame::Msg {
            payload: FanFromClient::Shout(42),
            reference: Some(1),
            id: None,
        })
        .await;
    // Every subscriber gets the broadcast in its codec: its writer made (or took) the
    // MessagePack form before the frame reached it.
    let heard = serde_json::json!({"kind": "Heard", "data": 42});
    for peer in packed.iter_mut().chain([&mut json]) {
        match peer.next::<serde_json::Value>().await {
            ServerFrame::Push { payload, .. } => assert_eq!(payload, heard, "{}", peer.codec),
            other => panic!("expected the broadcast, got {other:?}"),
        }
    }
    assert_eq!(
        COUNTED_READS.load(Ordering::SeqCst) - before,
        1,
        "re-encodings of one broadcast to {PACKED} MessagePack subscribers"
    );
}

#[tokio::test]
async fn a_reply_to_a_msgpack_client_is_encoded_once_and_resumes_as_json() {
    let endpoint: Endpoint<Fan, Crowd> = Endpoint::builder(|| Crowd).build();
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    let mut peer = Peer::connect(addr, "/omni/ws", Codec::MsgPack).await;
    let (session, _) = peer.welcome().await;
    let _alone = ALONE.lock().await;
    let (writes, reads) = (
        COUNTED_WRITES.load(Ordering::SeqCst),
        COUNTED_READS.load(Ordering::SeqCst),
    );
    peer.send(ClientFrame::Msg {
        payload: FanFromClient::Echo(7),
        reference: Some(1),
        id: None,
    })
    .await;
    let heard = serde_json::json!({"kind": "Heard", "data": 7});
    let mut seq = None;
    while seq.is_none() {
        match peer.next::<serde_json::Value>().await {
            ServerFrame::Msg {
                seq: n, payload, ..
            } if payload == heard => seq = Some(n),
            ServerFrame::Ack { .. } => {}
            other => panic!("expected the reply, got {other:?}"),
        }
    }
    assert_eq!(
        (
            COUNTED_WRITES.load(Ordering::SeqCst) - writes,
            COUNTED_READS.load(Ordering::SeqCst) - reads
        ),
        (1, 0),
        "writes and reads of one reply to a MessagePack client"
    );
    // The log holds it as MessagePack; a resume on JSON gets the same frame as JSON text.
    drop(peer);
    let path = format!("/omni/ws?session={session}&after=0");
    let mut json = Peer::connect(addr, &path, Codec::Json).await;
    assert!(matches!(
        json.next::<serde_json::Value>().await,
        ServerFrame::Welcome { resumed: true, .. }
    ));
    match json.next::<serde_json::Value>().await {
        ServerFrame::Msg {
            seq: n,
            payload,
            reference,
            ..
        } => {
            assert_eq!((Some(n), payload, reference), (seq, heard, Some(1)));
        }
        other => panic!("expected the replayed reply, got {other:?}"),
    }
    // Read back once, to be written as JSON, on the resume alone.
    assert_eq!(COUNTED_READS.load(Ordering::SeqCst) - reads, 1);
}
