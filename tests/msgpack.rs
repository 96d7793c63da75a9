//! The Rust client with `Codec::MsgPack` against a real server: byte-exact round trips of an
//! `omni::Bytes` field on ws, http and mux, resume after cuts with nothing lost or doubled, a
//! broadcast and a published topic message reaching MessagePack and JSON clients alike, and
//! the codec refused clearly where it cannot work (SSE, a server that does not offer it).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::Proxy;
use common::{PATIENCE, serve};
use omni::axum::extract::{Request, State};
use omni::axum::middleware::{self, Next};
use omni::axum::response::Response;
use omni::client::{Backoff, Client, Heartbeat, Messages, Mux as MuxClient, SendError, Transport};
use omni::server::{Endpoint, Mux};
use omni::token::Keys;
use omni::wire::Codec;
use omni::{Bytes, Context, HandlerResult, TransportError, TransportState};

/// Blobs stored and shared.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Blobs {
    /// Answered with a sequenced `Stored` carrying the same bytes.
    #[client]
    Put { n: u32, data: Bytes },
    /// Broadcast to the `room` topic as `Heard`.
    #[client]
    Shout(Bytes),
    /// Published on the sequenced `feed` topic as `Posted`.
    #[client]
    Post(Bytes),
    /// Sent once the session is subscribed to `room` and `feed`.
    #[server]
    Ready,
    #[server]
    Stored { n: u32, data: Bytes },
    #[server]
    Heard(Bytes),
    #[server]
    Posted(Bytes),
}

/// Every `Put` a server's handlers handled, in order.
type Handled = Arc<Mutex<Vec<u32>>>;

struct Store(Handled);

impl BlobsHandler for Store {
    async fn put(&mut self, cx: &mut Context<Blobs>, n: u32, data: Bytes) -> HandlerResult {
        self.0.lock().unwrap().push(n);
        cx.send(BlobsFromServer::Stored { n, data });
        Ok(())
    }

    async fn shout(&mut self, cx: &mut Context<Blobs>, data: Bytes) -> HandlerResult {
        cx.broadcast("room", BlobsFromServer::Heard(data));
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context<Blobs>, data: Bytes) -> HandlerResult {
        cx.publish("feed", BlobsFromServer::Posted(data));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Blobs>) -> HandlerResult {
        cx.subscribe("room");
        cx.subscribe("feed");
        cx.send(BlobsFromServer::Ready);
        Ok(())
    }
}

const KEY: &[u8] = b"the msgpack tests' key, thirty-two bytes or more";

/// What reached the server: `METHOD path?query content-type` of every request.
type Seen = Arc<Mutex<Vec<String>>>;

async fn record(State(seen): State<Seen>, request: Request, next: Next) -> Response {
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let line = format!(
        "{} {}?{} {content_type}",
        request.method(),
        request.uri().path(),
        request.uri().query().unwrap_or("")
    );
    seen.lock().unwrap().push(line);
    next.run(request).await
}

struct Server {
    addr: SocketAddr,
    handled: Handled,
    mux: Mux,
    seen: Seen,
}

impl Server {
    /// `/omni/ws`, `/omni/http`, `/omni/sse` and `/omni/mux` (module `blobs`, the same
    /// endpoint), recording every request.
    async fn start() -> Self {
        let handled = Handled::default();
        let h = handled.clone();
        let endpoint = Endpoint::<Blobs, _>::builder(move || Store(h.clone())).build();
        let mux = Mux::builder(Keys::new(KEY).unwrap())
            .module("blobs", &endpoint)
            .build();
        let seen = Seen::default();
        let router = omni::axum::Router::new()
            .nest("/omni", endpoint.router().merge(mux.router()))
            .layer(middleware::from_fn_with_state(seen.clone(), record));
        let addr = serve(router).await;
        Self {
            addr,
            handled,
            mux,
            seen,
        }
    }

    fn token(&self) -> String {
        self.mux
            .sign("blobs", &serde_json::json!({}), Duration::from_secs(600))
    }

    fn saw(&self, what: impl Fn(&str) -> bool) -> bool {
        self.seen.lock().unwrap().iter().any(|line| what(line))
    }
}

/// A short heartbeat and backoff, so that a cut is noticed and mended in a moment.
const HEARTBEAT: Heartbeat = Heartbeat {
    interval: Duration::from_millis(250),
    timeout: Duration::from_millis(500),
};

fn quick() -> Backoff {
    Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
        ..Backoff::default()
    }
}

fn client(
    addr: SocketAddr,
    transport: Transport,
    codec: Codec,
) -> (Client<Blobs>, Messages<Blobs>) {
    Client::<Blobs>::builder(format!("http://{addr}/omni"))
        .transport(transport)
        .codec(codec)
        .backoff(quick())
        .heartbeat(HEARTBEAT)
        .poll_interval(Duration::from_millis(50))
        .connect()
}

fn mux_client(addr: SocketAddr) -> MuxClient {
    MuxClient::builder(format!("http://{addr}/omni"))
        .codec(Codec::MsgPack)
        .backoff(quick())
        .heartbeat(HEARTBEAT)
        .connect_timeout(Duration::from_millis(500))
        .connect()
}

/// `len` bytes that differ with `n`, every byte value among them once `len` reaches 256.
fn blob(n: u32, len: usize) -> Bytes {
    Bytes(
        (0..len)
            .map(|i| {
                (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(n)
                    .rotate_right(13) as u8
            })
            .chain(0..=255)
            .take(len)
            .collect(),
    )
}

async fn next(messages: &mut Messages<Blobs>) -> Blobs {
    tokio::time::timeout(PATIENCE, messages.recv())
        .await
        .expect("a message in time")
        .expect("the client is running")
}

/// The next message that is not a transport state; an error state fails the test.
async fn next_message(messages: &mut Messages<Blobs>) -> Blobs {
    loop {
        match next(messages).await {
            Blobs::Transport(TransportState::Error(error)) => panic!("{error}"),
            Blobs::Transport(_) => {}
            msg => return msg,
        }
    }
}

/// The next transport state, skipping messages.
async fn next_state(messages: &mut Messages<Blobs>) -> TransportState {
    loop {
        if let Blobs::Transport(state) = next(messages).await {
            return state;
        }
    }
}

/// Sends `Put`s and checks each comes back `Stored`, byte for byte, in order.
async fn round_trips(client: &Client<Blobs>, messages: &mut Messages<Blobs>, what: &str) {
    // Every byte value; 60,000 bytes (80,000 in base64, past the server's 64 KiB frame
    // limit in JSON); nothing.
    let sent = [
        (1, blob(1, 256)),
        (2, blob(2, 60_000)),
        (3, Bytes::default()),
    ];
    for (n, data) in &sent {
        client
            .send(BlobsFromClient::Put {
                n: *n,
                data: data.clone(),
            })
            .unwrap_or_else(|err| panic!("{what}: {err}"));
    }
    for (n, data) in sent {
        match next_message(messages).await {
            Blobs::Stored { n: got, data: back } => {
                assert_eq!(got, n, "{what}");
                assert!(back == data, "{what}: the bytes of {n} came back changed");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(client.unacknowledged(), 0, "{what}");
}

#[tokio::test]
async fn ws_and_http_round_trip_bytes_exactly_in_msgpack() {
    let server = Server::start().await;
    for transport in [Transport::Ws, Transport::Http] {
        let (client, mut messages) = client(server.addr, transport, Codec::MsgPack);
        if transport == Transport::Ws {
            // HTTP has no `connected` hook: nothing but the round trips arrives.
            assert_eq!(next_message(&mut messages).await, Blobs::Ready);
        }
        round_trips(&client, &mut messages, &format!("{transport:?}")).await;
        client.close();
    }
    assert!(
        server.saw(|l| l.starts_with("GET /omni/ws?") && l.contains("codec=msgpack")),
        "{:?}",
        server.seen.lock().unwrap()
    );
    assert!(
        server.saw(|l| l.starts_with("POST /omni/http?") && l.ends_with(" application/msgpack")),
        "{:?}",
        server.seen.lock().unwrap()
    );
    assert!(
        !server.saw(|l| l.ends_with(" application/json")),
        "a MessagePack client posted JSON: {:?}",
        server.seen.lock().unwrap()
    );

    // The same message is past the frame limit in JSON: refused before it is queued.
    let (json, _messages) = client(server.addr, Transport::Ws, Codec::Json);
    let big = BlobsFromClient::Put {
        n: 9,
        data: blob(9, 60_000),
    };
    assert!(
        matches!(json.send(big), Err(SendError::TooLarge { size, .. }) if size > 80_000),
        "base64 makes 60,000 bytes 80,000"
    );
    json.close();
}

#[tokio::test]
async fn a_mux_component_round_trips_bytes_exactly_in_msgpack() {
    let server = Server::start().await;
    let mux = mux_client(server.addr);
    let (blobs, mut messages) = mux.join::<Blobs>("b", "blobs", server.token());
    assert_eq!(next_message(&mut messages).await, Blobs::Ready);
    round_trips(&blobs, &mut messages, "mux").await;
    assert!(
        server.saw(|l| l.starts_with("GET /omni/mux?codec=msgpack")),
        "{:?}",
        server.seen.lock().unwrap()
    );
    mux.close();
}

/// Puts 1..=COUNT while a proxy cuts every connection every few dozen milliseconds: each
/// comes back once, in order, byte-exact, and the server handled each once, in one session.
const COUNT: u32 = 150;

/// The size of Put `n`'s bytes in the cut tests: up to half a KiB, so that what a cut loses in
/// flight stays well inside the server's default resume log (64 KiB), which a `reset` would
/// otherwise rightly report.
fn cut_size(n: u32) -> usize {
    64 + (n as usize * 37) % 512
}

async fn survives_cuts(
    server: &Server,
    proxy: &Arc<Proxy>,
    client: &Client<Blobs>,
    messages: &mut Messages<Blobs>,
    what: &str,
) {
    let session = loop {
        match next_state(messages).await {
            TransportState::Connected { session } => break session,
            TransportState::Error(error) => panic!("{what}: {error}"),
            _ => {}
        }
    };
    let cutting = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let cutter = {
        let (cutting, proxy) = (cutting.clone(), proxy.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while cutting.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(40 + n % 5 * 15)).await;
                proxy.cut();
                n += 1;
            }
        })
    };
    let sender = {
        let client = client.clone();
        tokio::spawn(async move {
            for n in 1..=COUNT {
                let data = blob(n, cut_size(n));
                client.send(BlobsFromClient::Put { n, data }).unwrap();
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        })
    };
    let mut stored = Vec::new();
    let mut drops = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stored.len() < COUNT as usize {
        let msg = tokio::time::timeout_at(deadline, messages.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: {} of {COUNT} stored", stored.len()))
            .expect("the client is running");
        match msg {
            Blobs::Stored { n, data } => {
                assert!(
                    data == blob(n, cut_size(n)),
                    "{what}: the bytes of {n} came back changed"
                );
                stored.push(n);
            }
            Blobs::Transport(TransportState::Disconnected { .. }) => drops += 1,
            Blobs::Transport(state @ (TransportState::Reset | TransportState::Error(_))) => {
                panic!("{what}: {state:?}")
            }
            _ => {}
        }
    }
    cutting.store(false, std::sync::atomic::Ordering::SeqCst);
    cutter.await.unwrap();
    sender.await.unwrap();
    assert_eq!(stored, (1..=COUNT).collect::<Vec<_>>(), "{what}: stored");
    assert_eq!(
        client.session(),
        Some(session),
        "{what}: resumed, never anew"
    );
    let handled = server.handled.lock().unwrap().clone();
    assert_eq!(handled, (1..=COUNT).collect::<Vec<_>>(), "{what}: handled");
    // Between HTTP requests a cut goes unseen.
    if what != "Http" {
        assert!(drops >= 3, "{what}: only {drops} drops");
    }
    assert!(proxy.severed() >= 3, "{what}: {} cuts", proxy.severed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_resumes_after_cuts_without_gap_or_duplicate_in_msgpack() {
    let server = Server::start().await;
    let proxy = Arc::new(Proxy::start(server.addr).await);
    let (client, mut messages) = client(proxy.addr, Transport::Ws, Codec::MsgPack);
    survives_cuts(&server, &proxy, &client, &mut messages, "Ws").await;
    client.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_resumes_after_cuts_without_gap_or_duplicate_in_msgpack() {
    let server = Server::start().await;
    let proxy = Arc::new(Proxy::start(server.addr).await);
    let (client, mut messages) = client(proxy.addr, Transport::Http, Codec::MsgPack);
    survives_cuts(&server, &proxy, &client, &mut messages, "Http").await;
    client.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mux_component_resumes_after_cuts_without_gap_or_duplicate_in_msgpack() {
    let server = Server::start().await;
    let proxy = Arc::new(Proxy::start(server.addr).await);
    let mux = mux_client(proxy.addr);
    let (blobs, mut messages) = mux.join::<Blobs>("b", "blobs", server.token());
    survives_cuts(&server, &proxy, &blobs, &mut messages, "mux").await;
    mux.close();
}

#[tokio::test]
async fn msgpack_and_json_clients_on_one_topic_hear_the_same_bytes() {
    let server = Server::start().await;
    let (packed, mut packed_msgs) = client(server.addr, Transport::Ws, Codec::MsgPack);
    let (json, mut json_msgs) = client(server.addr, Transport::Ws, Codec::Json);
    let (_sse, mut sse_msgs) = client(server.addr, Transport::Sse, Codec::Json);
    let mux = mux_client(server.addr);
    let (_component, mut mux_msgs) = mux.join::<Blobs>("b", "blobs", server.token());
    let mut listeners = [
        ("ws msgpack", &mut packed_msgs),
        ("ws json", &mut json_msgs),
        ("sse json", &mut sse_msgs),
        ("mux msgpack", &mut mux_msgs),
    ];
    for (what, messages) in &mut listeners {
        assert_eq!(next_message(messages).await, Blobs::Ready, "{what}");
    }

    let shout = blob(7, 3000);
    packed.send(BlobsFromClient::Shout(shout.clone())).unwrap();
    for (what, messages) in &mut listeners {
        match next_message(messages).await {
            Blobs::Heard(data) => assert!(data == shout, "{what}: the broadcast changed"),
            other => panic!("{what}: {other:?}"),
        }
    }

    // A sequenced topic's message, numbered for each recipient, from the JSON side.
    let post = blob(8, 5000);
    json.send(BlobsFromClient::Post(post.clone())).unwrap();
    for (what, messages) in &mut listeners {
        match next_message(messages).await {
            Blobs::Posted(data) => assert!(data == post, "{what}: the publication changed"),
            other => panic!("{what}: {other:?}"),
        }
    }
    mux.close();
}

#[tokio::test]
async fn sse_refuses_msgpack_at_connect() {
    // Nothing listens there: the refusal comes before any attempt.
    let (client, mut messages) = client(
        SocketAddr::from(([127, 0, 0, 1], 9)),
        Transport::Sse,
        Codec::MsgPack,
    );
    match next(&mut messages).await {
        Blobs::Transport(TransportState::Error(TransportError::Init { message })) => {
            assert!(
                message.contains("Server-Sent Events carry text"),
                "{message}"
            );
            assert!(
                message.contains("Transport::Ws and Transport::Http"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let end = tokio::time::timeout(PATIENCE, messages.recv()).await;
    assert!(matches!(end, Ok(None)), "the stream ends");
    client.close();
}

/// Hand-written servers that get the codec wrong.
///
/// `/old/…` is a server from before MessagePack, as far as a client can tell: it ignores
/// `codec=msgpack`, welcomes in JSON text on `/ws` (on `/mux` it says nothing first), answers
/// binary frames with a text `bad_frame`, and its HTTP route reads the body as JSON and refuses
/// it with 422. `/mixed/ws` welcomes in MessagePack, then slips in one text frame.
mod wrong_codec {
    use omni::axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
    use omni::axum::http::StatusCode;
    use omni::axum::response::IntoResponse;
    use omni::axum::routing::{get, post};
    use omni::{ErrorCode, ServerFrame, SessionId};

    use super::*;

    async fn socket(mut socket: WebSocket, welcomes: bool) {
        let welcome = ServerFrame::<()>::Welcome {
            session: SessionId::from_u128(7),
            seq: 0,
            resumed: false,
            protocol: "Blobs".into(),
            version: String::new(),
            codec: Codec::Json,
            id: None,
        };
        let welcome = welcome.encode().unwrap();
        // Serde's JSON for the old frame: no `codec` key.
        let welcome = welcome.replace(r#","codec":"json""#, "");
        if welcomes {
            let _ = socket.send(Message::Text(welcome.into())).await;
        }
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Binary(_) = message {
                let refusal = ServerFrame::<()>::Error {
                    code: ErrorCode::BadFrame,
                    message: "frames are JSON text".into(),
                    reference: None,
                    id: None,
                };
                let refusal = refusal.encode().unwrap();
                let _ = socket.send(Message::Text(refusal.into())).await;
            }
        }
    }

    async fn mixed(mut socket: WebSocket) {
        let welcome = ServerFrame::<()>::Welcome {
            session: SessionId::from_u128(8),
            seq: 0,
            resumed: false,
            protocol: "Blobs".into(),
            version: String::new(),
            codec: Codec::MsgPack,
            id: None,
        };
        let text = r#"{"type":"push","payload":{"kind":"Ready"}}"#;
        let msg = ServerFrame::Msg {
            seq: 1,
            payload: BlobsFromServer::Heard(blob(3, 100)),
            reference: None,
            topic: None,
            id: None,
        };
        let frames = [
            Message::Binary(welcome.encode_msgpack().unwrap().into()),
            Message::Text(text.into()),
            Message::Binary(msg.encode_msgpack().unwrap().into()),
        ];
        for frame in frames {
            let _ = socket.send(frame).await;
        }
        while let Some(Ok(_)) = socket.recv().await {}
    }

    async fn http() -> impl IntoResponse {
        let refusal = r#"[{"type":"error","code":"bad_frame","message":"not JSON"}]"#;
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            [("content-type", "application/json")],
            refusal,
        )
    }

    async fn start() -> SocketAddr {
        let router = omni::axum::Router::new()
            .route(
                "/old/ws",
                get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(|s| socket(s, true)) }),
            )
            .route(
                "/old/mux",
                get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(|s| socket(s, false)) }),
            )
            .route("/old/http", post(http))
            .route(
                "/mixed/ws",
                get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(mixed) }),
            );
        serve(router).await
    }

    /// The client reports a `TransportError::Init` naming MessagePack and stops.
    async fn refused(messages: &mut Messages<Blobs>, what: &str) {
        loop {
            match next(messages).await {
                Blobs::Transport(TransportState::Error(TransportError::Init { message })) => {
                    assert!(
                        message.contains("does not offer MessagePack"),
                        "{what}: {message}"
                    );
                    break;
                }
                Blobs::Transport(
                    state @ (TransportState::Connected { .. } | TransportState::Error(_)),
                ) => panic!("{what}: {state:?}"),
                _ => {}
            }
        }
        let end = tokio::time::timeout(PATIENCE, messages.recv()).await;
        assert!(matches!(end, Ok(None)), "{what}: the stream ends");
    }

    #[tokio::test]
    async fn a_server_without_msgpack_is_reported_not_waited_for() {
        let addr = start().await;
        for transport in [Transport::Ws, Transport::Http] {
            let (client, mut messages) = Client::<Blobs>::builder(format!("http://{addr}/old"))
                .transport(transport)
                .codec(Codec::MsgPack)
                .backoff(quick())
                .connect();
            client.send(BlobsFromClient::Shout(blob(1, 10))).unwrap();
            refused(&mut messages, &format!("{transport:?}")).await;
        }
        let mux = MuxClient::builder(format!("http://{addr}/old"))
            .codec(Codec::MsgPack)
            .backoff(quick())
            .connect();
        let (_component, mut messages) = mux.join::<Blobs>("b", "blobs", "a token");
        refused(&mut messages, "mux").await;
    }

    #[tokio::test]
    async fn a_text_frame_on_a_welcomed_msgpack_socket_is_reported_and_skipped() {
        let addr = start().await;
        let (client, mut messages) = Client::<Blobs>::builder(format!("http://{addr}/mixed"))
            .codec(Codec::MsgPack)
            .connect();
        assert_eq!(next_state(&mut messages).await, TransportState::Connecting);
        assert!(matches!(
            next_state(&mut messages).await,
            TransportState::Connected { .. }
        ));
        match next_state(&mut messages).await {
            TransportState::Error(TransportError::Decode { message }) => {
                assert_eq!(message, "a text frame on a msgpack connection");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(next(&mut messages).await, Blobs::Heard(blob(3, 100)));
        client.close();
    }
}
