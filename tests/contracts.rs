//! Promises of `docs/PROTOCOL.md` that no other test holds the runtime to, each checked against
//! a real server on loopback: error codes and the close codes that follow them, the ref resend
//! window, hooks that stay paired, and what reaches the client byte for byte.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Client, PATIENCE, serve};
use futures_util::SinkExt;
use omni::server::{Endpoint, Limits, Mux};
use omni::token::Keys;
use omni::{ClientFrame, Context, ErrorCode, HandlerResult, ServerFrame, SessionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A protocol with one message per promise under test.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Pact {
    /// Answered with `Echoed`, sequenced.
    #[client]
    Echo(String),
    /// Counted; answered by the ack alone.
    #[client]
    Note,
    /// Subscribes to topics `t0` to `t{n-1}`.
    #[client]
    Subscribe(u32),
    /// Answered with `Floated` of the same number.
    #[client]
    Float(f64),
    #[server]
    Echoed(String),
    #[server]
    Floated(f64),
}

type Down = ServerFrame<PactFromServer>;

/// What the handlers of one server did, across all its sessions.
#[derive(Clone, Default)]
struct Counts {
    connected: Arc<AtomicU32>,
    disconnected: Arc<AtomicU32>,
    notes: Arc<AtomicU32>,
    echoes: Arc<AtomicU32>,
}

/// Reads `counter`.
fn get(counter: &AtomicU32) -> u32 {
    counter.load(Ordering::SeqCst)
}

/// Waits until `counter` is at least `n`; panics after [`PATIENCE`].
async fn reach(counter: &AtomicU32, n: u32, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while get(counter) < n {
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {n} within {PATIENCE:?}",
            get(counter)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Keeper {
    counts: Counts,
}

impl PactHandler for Keeper {
    async fn echo(&mut self, cx: &mut Context<Pact>, text: String) -> HandlerResult {
        cx.send(PactFromServer::Echoed(text));
        self.counts.echoes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn note(&mut self, _: &mut Context<Pact>) -> HandlerResult {
        self.counts.notes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn subscribe(&mut self, cx: &mut Context<Pact>, n: u32) -> HandlerResult {
        for i in 0..n {
            cx.subscribe(format!("t{i}"));
        }
        Ok(())
    }

    async fn float(&mut self, cx: &mut Context<Pact>, x: f64) -> HandlerResult {
        cx.send(PactFromServer::Floated(x));
        Ok(())
    }

    async fn connected(&mut self, _: &mut Context<Pact>) -> HandlerResult {
        self.counts.connected.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn disconnected(&mut self, _: &mut Context<Pact>) -> HandlerResult {
        self.counts.disconnected.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

const KEY: &[u8] = b"the contract tests' key, thirty-two bytes or more";

struct Server {
    addr: SocketAddr,
    endpoint: Endpoint<Pact, Keeper>,
    mux: Mux,
    counts: Counts,
}

/// Serves the endpoint on `/omni/ws` and as mux modules `a` and `b` on `/omni/mux`, both
/// with `limits`.
async fn start(limits: Limits) -> Server {
    let counts = Counts::default();
    let kept = counts.clone();
    let endpoint = Endpoint::<Pact, _>::builder(move || Keeper {
        counts: kept.clone(),
    })
    .limits(limits.clone())
    .build();
    let mux = Mux::builder(Keys::new(KEY).unwrap())
        .module("a", &endpoint)
        .module("b", &endpoint)
        .limits(limits)
        .build();
    let router = omni::axum::Router::new()
        .nest("/omni", endpoint.router())
        .nest("/omni", mux.router());
    let addr = serve(router).await;
    Server {
        addr,
        endpoint,
        mux,
        counts,
    }
}

/// Connects to `/omni/ws{query}` and reads the `welcome`.
async fn welcomed(addr: SocketAddr, query: &str) -> (Client, SessionId) {
    let mut client = Client::connect(addr, &format!("/omni/ws{query}")).await;
    match client.next::<PactFromServer>().await {
        ServerFrame::Welcome { session, .. } => (client, session),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Sends `Echo(text)` with `reference` and checks that it is answered: the reply, then the
/// ack. Proves the connection is still open and served.
async fn echoed(client: &mut Client, text: &str, reference: u64) {
    client
        .msg(PactFromClient::Echo(text.into()), reference)
        .await;
    match client.next::<PactFromServer>().await {
        ServerFrame::Msg {
            payload: PactFromServer::Echoed(got),
            reference: Some(r),
            ..
        } => assert_eq!((got.as_str(), r), (text, reference)),
        other => panic!("expected the echo of ref {reference}, got {other:?}"),
    }
    match client.next::<PactFromServer>().await {
        ServerFrame::Ack { reference: r, .. } => assert_eq!(r, reference),
        other => panic!("expected the ack of ref {reference}, got {other:?}"),
    }
}

/// The code of the next frame, which must be an `error`.
async fn error_code(client: &mut Client) -> ErrorCode {
    match client.next::<PactFromServer>().await {
        ServerFrame::Error { code, .. } => code,
        other => panic!("expected an error frame, got {other:?}"),
    }
}

/// The text of the `i`th echo in the slow consumer test: numbered, so each replayed frame
/// can be matched to its `seq`, and large, so a few hundred fill the socket's buffers.
fn echo_text(i: u64) -> String {
    format!("{i}:{}", "x".repeat(16 * 1024))
}

#[tokio::test]
async fn a_slow_consumer_gets_the_error_then_1008_and_resumes_with_exactly_what_it_missed() {
    let server = start(Limits {
        // Room for the bursts a reading client sees (the reader may handle many echoes
        // before the writer runs), little next to what a client that stopped reading backs
        // up: the queue overflows only once the writer is stuck on this client.
        outbound_queue: 256,
        // Far longer than the test takes: the write stuck on this client is still waiting
        // when it reads again, so the `error` frame and the close get through.
        write_timeout: Duration::from_secs(60),
        // Every reply stays in the log, so all the client missed can be replayed.
        log_frames: 4096,
        log_bytes: 256 * 1024 * 1024,
        ..Limits::default()
    })
    .await;
    let mut client = Client::connect_with_small_window(server.addr, "/omni/ws").await;
    let session = match client.next::<PactFromServer>().await {
        ServerFrame::Welcome { session, .. } => session,
        other => panic!("expected welcome, got {other:?}"),
    };

    // The client sends without reading: each echo's reply is sequenced, and they back up
    // until its queue overflows.
    let mut sent = 0;
    while server.endpoint.metrics().slow_consumers == 0 {
        assert!(sent < 4000, "64 MiB of replies never overflowed the queue");
        sent += 1;
        let frame = ClientFrame::Msg {
            payload: PactFromClient::Echo(echo_text(sent)),
            reference: Some(sent),
            id: None,
        };
        let text = frame.encode().unwrap();
        tokio::time::timeout(PATIENCE, client.socket.send(Message::Text(text.into())))
            .await
            .expect("the server kept reading")
            .unwrap();
    }
    // What was still in flight is handled (and only logged) before the client reads again:
    // a reply queued once the writer moves on would follow a gap the client cannot see.
    reach(&server.counts.echoes, sent as u32, "echoes handled").await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Reading again: the replies that got out, in order, then the error, then the close.
    let mut held = 0;
    let mut error = None;
    let code = loop {
        match client.next_message().await {
            Some(Message::Text(text)) => {
                assert!(
                    error.is_none(),
                    "a frame after the slow_consumer error: {text}"
                );
                match Down::decode(text.as_bytes()).unwrap() {
                    ServerFrame::Msg {
                        seq,
                        payload: PactFromServer::Echoed(echo),
                        ..
                    } => {
                        assert_eq!(seq, held + 1, "the replies that got out have a gap");
                        assert_eq!(echo, echo_text(seq));
                        held = seq;
                    }
                    ServerFrame::Ack { .. } => {}
                    ServerFrame::Error { code, .. } => error = Some(code),
                    other => panic!("unexpected {other:?}"),
                }
            }
            Some(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Some(_) => {}
            None => panic!("the connection ended without a close frame (error: {error:?})"),
        }
    };
    assert_eq!(error, Some(ErrorCode::SlowConsumer));
    assert_eq!(code, Some(1008));
    assert!(
        held < sent,
        "the client missed nothing: the test proved nothing"
    );

    // The resume replays exactly the replies it missed, once.
    let mut client = Client::connect(
        server.addr,
        &format!("/omni/ws?session={session}&after={held}"),
    )
    .await;
    match client.next::<PactFromServer>().await {
        ServerFrame::Welcome {
            session: resumed_session,
            seq,
            resumed: true,
            ..
        } => {
            assert_eq!(resumed_session, session);
            assert_eq!(seq, sent, "every echo was answered in the session");
        }
        other => panic!("expected the resumed welcome, got {other:?}"),
    }
    for want in held + 1..=sent {
        match client.next::<PactFromServer>().await {
            ServerFrame::Msg {
                seq,
                payload: PactFromServer::Echoed(echo),
                ..
            } => {
                assert_eq!(seq, want);
                assert_eq!(echo, echo_text(want));
            }
            other => panic!("expected the replay of seq {want}, got {other:?}"),
        }
    }
    assert!(
        client.quiet_for(Duration::from_millis(200)).await,
        "nothing is replayed twice"
    );
}

#[tokio::test]
async fn subscribing_past_max_topics_is_too_large_and_the_connection_stays_open() {
    let server = start(Limits {
        max_topics: 2,
        ..Limits::default()
    })
    .await;
    let (mut client, _) = welcomed(server.addr, "").await;
    client.msg(PactFromClient::Subscribe(3), 1).await;
    // The third subscription is refused; the message itself was handled and is acked.
    assert_eq!(error_code(&mut client).await, ErrorCode::TooLarge);
    assert!(matches!(
        client.next::<PactFromServer>().await,
        ServerFrame::Ack { reference: 1, .. }
    ));
    echoed(&mut client, "still here", 2).await;
}

#[tokio::test]
async fn a_frame_with_a_duplicate_key_is_a_bad_frame_and_the_connection_stays_open() {
    let server = start(Limits::default()).await;
    let (mut client, _) = welcomed(server.addr, "").await;
    let twice = [
        r#"{"type":"msg","payload":{"kind":"Echo","data":"a"},"payload":{"kind":"Echo","data":"b"},"ref":1}"#,
        r#"{"type":"msg","payload":{"kind":"Echo","data":"a"},"ref":1,"ref":2}"#,
        r#"{"type":"msg","type":"msg","payload":{"kind":"Echo","data":"a"},"ref":3}"#,
    ];
    for frame in twice {
        client.send_text(frame).await;
        assert_eq!(
            error_code(&mut client).await,
            ErrorCode::BadFrame,
            "{frame}"
        );
    }
    // No handler ran for them: the next reply is this one, the session's first.
    client.msg(PactFromClient::Echo("ok".into()), 4).await;
    assert!(matches!(
        client.next::<PactFromServer>().await,
        ServerFrame::Msg {
            seq: 1,
            reference: Some(4),
            ..
        }
    ));
    assert_eq!(get(&server.counts.echoes), 1);
}

#[tokio::test]
async fn hello_naming_another_protocol_is_a_version_mismatch_then_1008() {
    let server = start(Limits::default()).await;
    let (mut client, _) = welcomed(server.addr, "").await;
    client
        .send(ClientFrame::<()>::Hello {
            protocol: Some("Other".into()),
            version: None,
            compatible: None,
            session: None,
            after: None,
            topics: None,
            traceparent: None,
        })
        .await;
    assert_eq!(error_code(&mut client).await, ErrorCode::VersionMismatch);
    assert_eq!(client.close_code().await, Some(1008));
}

/// Joins component `id` of `module` and reads its `joined` and `welcome`.
async fn join(client: &mut Client, mux: &Mux, id: &str, module: &str) {
    let token = mux.sign(module, &serde_json::Value::Null, Duration::from_secs(60));
    client
        .send(ClientFrame::<()>::Join {
            id: id.into(),
            module: module.into(),
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
        client.next::<PactFromServer>().await,
        ServerFrame::Joined { .. }
    ));
    assert!(matches!(
        client.next::<PactFromServer>().await,
        ServerFrame::Welcome { .. }
    ));
}

/// Opens a mux socket with components `a1` and `a2` of module `a` and `b1` of module `b`,
/// and waits for their three `connected` hooks.
async fn three_components(server: &Server) -> Client {
    let mut client = Client::connect(server.addr, "/omni/mux").await;
    join(&mut client, &server.mux, "a1", "a").await;
    join(&mut client, &server.mux, "a2", "a").await;
    join(&mut client, &server.mux, "b1", "b").await;
    reach(&server.counts.connected, 3, "connected hooks").await;
    client
}

/// Waits for every component's `disconnected` hook, then checks none ran twice.
async fn three_disconnected(server: &Server) {
    reach(&server.counts.disconnected, 3, "disconnected hooks").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(&server.counts.disconnected), 3);
}

#[tokio::test]
async fn a_mux_frame_over_max_frame_bytes_is_too_large_then_1009_and_every_component_ends() {
    let server = start(Limits {
        max_frame_bytes: 1024,
        ..Limits::default()
    })
    .await;
    let mut client = three_components(&server).await;
    client
        .send(ClientFrame::Msg {
            payload: PactFromClient::Echo("x".repeat(1500)),
            reference: Some(1),
            id: Some("a1".into()),
        })
        .await;
    assert_eq!(error_code(&mut client).await, ErrorCode::TooLarge);
    assert_eq!(client.close_code().await, Some(1009));
    three_disconnected(&server).await;
}

#[tokio::test]
async fn mux_shutdown_closes_with_1001_and_every_component_ends() {
    let server = start(Limits::default()).await;
    let mut client = three_components(&server).await;
    server.mux.shutdown();
    assert_eq!(client.close_code().await, Some(1001));
    three_disconnected(&server).await;
}

/// Sends `Note` with `reference` and waits for its ack.
async fn note(client: &mut Client, reference: u64) {
    client.msg(PactFromClient::Note, reference).await;
    match client.next::<PactFromServer>().await {
        ServerFrame::Ack { reference: r, .. } => assert_eq!(r, reference),
        other => panic!("expected the ack of ref {reference}, got {other:?}"),
    }
}

/// Handles refs `1..=window + 1` on a server remembering `window` refs: every resend of the
/// last `window` is acked without running the handler; ref 1, past the window, is handled
/// again. That second run is the documented bound ("remembers the last 1024 refs"), not a
/// promise of exactly-once beyond it.
async fn resend_window(limits: Limits, window: u64) {
    let server = start(limits).await;
    let (mut client, _) = welcomed(server.addr, "").await;
    for reference in 1..=window + 1 {
        note(&mut client, reference).await;
    }
    let handled = get(&server.counts.notes);
    assert_eq!(u64::from(handled), window + 1);

    // The oldest remembered, the newest, and one between: acked, not handled again.
    for reference in [2, window / 2 + 1, window + 1] {
        note(&mut client, reference).await;
        assert_eq!(
            get(&server.counts.notes),
            handled,
            "ref {reference} ran twice"
        );
    }
    // Past the window: handled again.
    note(&mut client, 1).await;
    assert_eq!(get(&server.counts.notes), handled + 1);
}

#[tokio::test]
async fn a_resend_within_the_remembered_refs_is_acked_and_an_older_one_runs_again() {
    resend_window(
        Limits {
            remembered_refs: 8,
            ..Limits::default()
        },
        8,
    )
    .await;
}

#[tokio::test]
async fn the_default_resend_window_is_the_last_1024_refs() {
    assert_eq!(Limits::default().remembered_refs, 1024);
    resend_window(Limits::default(), 1024).await;
}

#[tokio::test]
async fn a_ws_frame_over_max_frame_bytes_gets_a_close_frame_with_1009() {
    let server = start(Limits {
        max_frame_bytes: 1024,
        ..Limits::default()
    })
    .await;
    let (mut client, _) = welcomed(server.addr, "").await;
    client.msg(PactFromClient::Echo("x".repeat(1500)), 1).await;
    assert_eq!(error_code(&mut client).await, ErrorCode::TooLarge);
    // The code is read off the close frame: a connection that just ends gives `None`.
    assert_eq!(client.close_code().await, Some(1009));
}

#[tokio::test]
async fn a_ws_frame_far_over_max_frame_bytes_still_gets_a_close_frame_with_1009() {
    let server = start(Limits {
        max_frame_bytes: 1024,
        ..Limits::default()
    })
    .await;
    let (mut client, _) = welcomed(server.addr, "").await;
    // 2 MiB: past the 1 MiB that the server's WebSocket layer buffers at all, so this is
    // refused from the frame's header while the client is still writing it.
    let huge = ClientFrame::msg(PactFromClient::Echo("x".repeat(2 * 1024 * 1024)))
        .encode()
        .unwrap();
    // The write may fail once the server has closed; the close frame is read either way.
    let _ = client.socket.send(Message::Text(huge.into())).await;
    assert_eq!(client.close_code().await, Some(1009));
}

#[tokio::test]
async fn hellos_resuming_the_own_session_past_its_end_run_no_hooks() {
    let server = start(Limits::default()).await;
    let (mut client, session) = welcomed(server.addr, "").await;
    reach(&server.counts.connected, 1, "connected hook").await;
    // Each names the connection's own session: no connection attaches or goes, so no hook
    // is due (PROTOCOL.md: `connected` when a connection attaches, `disconnected` when it goes).
    for _ in 0..10 {
        client
            .send(ClientFrame::<()>::Hello {
                protocol: None,
                version: None,
                compatible: None,
                session: Some(session),
                after: Some(1_000_000),
                topics: None,
                traceparent: None,
            })
            .await;
    }
    // The hellos are handled in order, hooks included: once this is acked, all of them were.
    client.msg(PactFromClient::Note, 1).await;
    loop {
        if let ServerFrame::Ack { reference: 1, .. } = client.next::<PactFromServer>().await {
            break;
        }
    }
    assert_eq!(
        (
            get(&server.counts.connected),
            get(&server.counts.disconnected)
        ),
        (1, 0),
        "(connected, disconnected) after 10 hellos on the open socket"
    );

    client.socket.close(None).await.unwrap();
    drop(client);
    reach(
        &server.counts.disconnected,
        1,
        "disconnected hook after the close",
    )
    .await;
    assert_eq!(
        (
            get(&server.counts.connected),
            get(&server.counts.disconnected)
        ),
        (1, 1),
        "(connected, disconnected) once the socket closed"
    );
}

/// Upgrades a raw TCP connection to a WebSocket on `path` by hand, so the test can write
/// frames tungstenite would refuse to build.
async fn raw_upgrade(addr: SocketAddr, path: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Byte by byte up to the blank line: a frame right behind the head stays unread.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(PATIENCE, tcp.read_u8())
            .await
            .expect("the upgrade is answered")
            .unwrap();
        head.push(byte);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// PROTOCOL.md's close codes: "1007 | a text frame that is not UTF-8 (a `bad_frame` error
/// comes first)". Exactly that, in that order, and the server goes on serving others.
#[tokio::test]
async fn invalid_utf8_in_a_text_frame_is_a_bad_frame_then_1007_and_others_are_still_served() {
    let server = start(Limits::default()).await;
    let mut tcp = raw_upgrade(server.addr, "/omni/ws").await;
    // FIN + text opcode, masked, two bytes that are not UTF-8.
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let payload = [0xff, 0xfe];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask).map(|(b, m)| b ^ m));
    tcp.write_all(&frame).await.unwrap();

    // Reading is left to tungstenite.
    let socket =
        WebSocketStream::from_raw_socket(MaybeTlsStream::Plain(tcp), Role::Client, None).await;
    let mut client = Client { socket };
    assert!(matches!(
        client.next::<PactFromServer>().await,
        ServerFrame::Welcome { .. }
    ));
    match client.next_message().await {
        Some(Message::Text(text)) => match Down::decode(text.as_bytes()) {
            Ok(ServerFrame::Error { code, .. }) => assert_eq!(
                code,
                ErrorCode::BadFrame,
                "the error before the close: {text}"
            ),
            _ => panic!("expected the bad_frame error first, got {text}"),
        },
        other => panic!("expected the bad_frame error first, got {other:?}"),
    }
    match client.next_message().await {
        Some(Message::Close(frame)) => assert_eq!(
            frame.map(|f| u16::from(f.code)),
            Some(1007),
            "the close after the bad_frame error"
        ),
        other => panic!("expected the close frame after the error, got {other:?}"),
    }

    let (mut other, _) = welcomed(server.addr, "").await;
    echoed(&mut other, "ok", 1).await;
}

#[tokio::test]
async fn a_float_round_trips_exactly() {
    let server = start(Limits::default()).await;
    let (mut client, _) = welcomed(server.addr, "").await;
    let x: f64 = "6.777777777777777e+64".parse().unwrap();
    // Written by hand, so nothing on the client side can round it on the way up.
    client
        .send_text(
            r#"{"type":"msg","payload":{"kind":"Float","data":6.777777777777777e+64},"ref":1}"#,
        )
        .await;
    let text = match client.next_message().await {
        Some(Message::Text(text)) => text,
        other => panic!("expected the reply, got {other:?}"),
    };
    // Read off the text with the standard library's exact parser, so only the server's
    // decoding and encoding are under test.
    let number = text
        .split_once(r#""data":"#)
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(number, _)| number)
        .unwrap_or_else(|| panic!("no number in {text}"));
    let echoed: f64 = number.parse().unwrap();
    assert_eq!(
        echoed.to_bits(),
        x.to_bits(),
        "sent 6.777777777777777e+64, got back {number} in {text}"
    );
}
