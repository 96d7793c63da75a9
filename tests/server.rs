//! The server runtime over real sockets: WebSocket, HTTP and SSE against a real axum server
//! on loopback, driven by tokio-tungstenite and reqwest.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, PATIENCE, serve};
use futures_util::SinkExt;
use omni::server::{Endpoint, Limits, Origins, SESSION_HEADER};
use omni::{ClientFrame, Context, ErrorCode, HandlerResult, ServerFrame, SessionId};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// A plain HTTP client. reqwest is built with rustls and no crypto provider of its own (the
/// `tls` feature's choice), so a client not configured by omni needs the process's default.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A protocol that exercises the runtime.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Probe {
    /// Answered with `Echoed`, sequenced.
    #[client]
    Echo(String),
    /// Answered with `Count(1..=n)`, sequenced.
    #[client]
    Burst(u32),
    /// Returns an error.
    #[client]
    Fail,
    /// Panics.
    #[client]
    Panic,
    /// Answered with how many messages this session's handler has handled.
    #[client]
    Handled,
    /// Broadcasts `Heard` to topic `all`, except to the sender.
    #[client]
    Shout(String),
    /// Subscribes to a topic.
    #[client]
    Join(String),
    /// Broadcasts `n` blobs of `size` bytes to topic `big`.
    #[client]
    Flood { n: u32, size: u32 },
    /// Sends `Echoed` later, from a spawned task, through the context's sender.
    #[client]
    Later(String),
    /// Answered with `Echoed` of the `User` an auth layer put in the request's extensions.
    #[client]
    WhoAmI,
    #[server]
    Echoed(String),
    #[server]
    Count(u32),
    #[server]
    Counter(u32),
    #[server]
    Heard(String),
    #[server]
    Blob(String),
}

type Down = ServerFrame<ProbeFromServer>;

/// What an auth layer found out about the request.
#[derive(Clone)]
struct User(&'static str);

/// What the handlers of one endpoint saw.
#[derive(Clone, Default)]
struct Log {
    connects: Arc<AtomicU32>,
    disconnects: Arc<Mutex<Vec<(SessionId, Instant)>>>,
    disconnected: Arc<Notify>,
}

struct Prober {
    log: Log,
    handled: u32,
}

impl ProbeHandler for Prober {
    async fn echo(&mut self, cx: &mut Context<Probe>, text: String) -> HandlerResult {
        self.handled += 1;
        cx.send(ProbeFromServer::Echoed(text));
        Ok(())
    }

    async fn burst(&mut self, cx: &mut Context<Probe>, n: u32) -> HandlerResult {
        self.handled += 1;
        for i in 1..=n {
            cx.send(ProbeFromServer::Count(i));
        }
        Ok(())
    }

    async fn fail(&mut self, cx: &mut Context<Probe>) -> HandlerResult {
        cx.send(ProbeFromServer::Echoed("never sent".into()));
        Err("refused on purpose".into())
    }

    async fn panic(&mut self, _: &mut Context<Probe>) -> HandlerResult {
        panic!("boom")
    }

    async fn handled(&mut self, cx: &mut Context<Probe>) -> HandlerResult {
        cx.send(ProbeFromServer::Counter(self.handled));
        Ok(())
    }

    async fn shout(&mut self, cx: &mut Context<Probe>, text: String) -> HandlerResult {
        cx.broadcast_from("all", ProbeFromServer::Heard(text));
        Ok(())
    }

    async fn join(&mut self, cx: &mut Context<Probe>, topic: String) -> HandlerResult {
        cx.subscribe(topic);
        Ok(())
    }

    async fn flood(&mut self, cx: &mut Context<Probe>, n: u32, size: u32) -> HandlerResult {
        let blob = "x".repeat(size as usize);
        for _ in 0..n {
            cx.broadcast_from("big", ProbeFromServer::Blob(blob.clone()));
        }
        Ok(())
    }

    async fn later(&mut self, cx: &mut Context<Probe>, text: String) -> HandlerResult {
        let sender = cx.sender();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            sender.send(ProbeFromServer::Echoed(text)).unwrap();
        });
        Ok(())
    }

    async fn who_am_i(&mut self, cx: &mut Context<Probe>) -> HandlerResult {
        let user = cx.extensions().get::<User>().map_or("anonymous", |u| u.0);
        cx.send(ProbeFromServer::Echoed(user.into()));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Probe>) -> HandlerResult {
        self.log.connects.fetch_add(1, Ordering::SeqCst);
        cx.subscribe("all");
        Ok(())
    }

    async fn disconnected(&mut self, cx: &mut Context<Probe>) -> HandlerResult {
        self.log
            .disconnects
            .lock()
            .unwrap()
            .push((cx.session(), Instant::now()));
        self.log.disconnected.notify_waiters();
        Ok(())
    }
}

fn endpoint(log: &Log, limits: Limits) -> Endpoint<Probe, Prober> {
    let log = log.clone();
    Endpoint::builder(move || Prober {
        log: log.clone(),
        handled: 0,
    })
    .limits(limits)
    .build()
}

/// A server with default limits; returns its address and what its handlers saw.
async fn start() -> (SocketAddr, Log, Endpoint<Probe, Prober>) {
    start_with(Limits::default()).await
}

async fn start_with(limits: Limits) -> (SocketAddr, Log, Endpoint<Probe, Prober>) {
    let log = Log::default();
    let endpoint = endpoint(&log, limits);
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    (addr, log, endpoint)
}

/// Connects and reads the `welcome`; returns the client and its session.
async fn connect(addr: SocketAddr, query: &str) -> (Client, SessionId, u64) {
    let mut client = Client::connect(addr, &format!("/omni/ws{query}")).await;
    match client.next::<ProbeFromServer>().await {
        ServerFrame::Welcome { session, seq, .. } => (client, session, seq),
        other => panic!("expected welcome, got {other:?}"),
    }
}

fn welcome_fields(frame: &Down) -> (SessionId, u64, bool) {
    match frame {
        ServerFrame::Welcome {
            session,
            seq,
            resumed,
            protocol,
            version,
            ..
        } => {
            assert_eq!(protocol, "Probe");
            assert_eq!(version, <Probe as omni::Protocol>::version());
            (*session, *seq, *resumed)
        }
        other => panic!("expected welcome, got {other:?}"),
    }
}

#[tokio::test]
async fn ws_replies_are_sequenced_carry_the_ref_and_are_acked() {
    let (addr, log, _) = start().await;
    let (mut client, _, seq) = connect(addr, "").await;
    assert_eq!(seq, 0);
    assert_eq!(log.connects.load(Ordering::SeqCst), 1);

    client.msg(ProbeFromClient::Echo("hi".into()), 7).await;
    assert_eq!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Msg {
            topic: None,
            seq: 1,
            payload: ProbeFromServer::Echoed("hi".into()),
            reference: Some(7),
            id: None
        }
    );
    assert_eq!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Ack {
            reference: 7,
            id: None
        }
    );

    // A message without a ref is handled and answered, but not acknowledged.
    client
        .send(ClientFrame::msg(ProbeFromClient::Echo("again".into())))
        .await;
    assert_eq!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Msg {
            topic: None,
            seq: 2,
            payload: ProbeFromServer::Echoed("again".into()),
            reference: None,
            id: None
        }
    );
    assert!(client.quiet_for(Duration::from_millis(100)).await);
}

#[tokio::test]
async fn a_resent_ref_is_acked_again_not_handled_twice() {
    let (addr, _, _) = start().await;
    let (mut client, _, _) = connect(addr, "").await;
    client.msg(ProbeFromClient::Echo("once".into()), 1).await;
    client.next::<ProbeFromServer>().await;
    client.next::<ProbeFromServer>().await;
    client.msg(ProbeFromClient::Echo("once".into()), 1).await;
    assert_eq!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Ack {
            reference: 1,
            id: None
        }
    );
    client.msg(ProbeFromClient::Handled, 2).await;
    match client.next::<ProbeFromServer>().await {
        ServerFrame::Msg { payload, .. } => assert_eq!(payload, ProbeFromServer::Counter(1)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn broadcasts_reach_other_subscribers_only() {
    let (addr, _, _) = start().await;
    let (mut a, _, _) = connect(addr, "").await;
    let (mut b, _, _) = connect(addr, "").await;
    let (mut c, _, _) = connect(addr, "").await;
    a.msg(ProbeFromClient::Shout("hello".into()), 1).await;
    let expected = ServerFrame::Push {
        payload: ProbeFromServer::Heard("hello".into()),
        topic: Some("all".into()),
        id: None,
    };
    assert_eq!(b.next::<ProbeFromServer>().await, expected);
    assert_eq!(c.next::<ProbeFromServer>().await, expected);
    assert!(matches!(
        a.next::<ProbeFromServer>().await,
        ServerFrame::Ack { reference: 1, .. }
    ));
    assert!(a.quiet_for(Duration::from_millis(100)).await);
}

#[tokio::test]
async fn a_background_sender_delivers_later() {
    let (addr, _, _) = start().await;
    let (mut client, _, _) = connect(addr, "").await;
    client.msg(ProbeFromClient::Later("tick".into()), 1).await;
    assert!(matches!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Ack { .. }
    ));
    assert_eq!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Msg {
            topic: None,
            seq: 1,
            payload: ProbeFromServer::Echoed("tick".into()),
            reference: None,
            id: None
        }
    );
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_stays_open() {
    let (addr, _, _) = start().await;
    let (mut client, _, _) = connect(addr, "").await;

    let cases: [(&str, ErrorCode, Option<u64>); 5] = [
        ("not json", ErrorCode::BadFrame, None),
        (r#"{"type":"dance","ref":3}"#, ErrorCode::BadFrame, Some(3)),
        (
            // A kind this build has no message of: unknown, not malformed.
            r#"{"type":"msg","payload":{"kind":"Nope"},"ref":4}"#,
            ErrorCode::UnknownMessage,
            Some(4),
        ),
        (
            r#"{"type":"msg","payload":{"kind":"Echo","data":5},"ref":5}"#,
            ErrorCode::BadPayload,
            Some(5),
        ),
        (
            r#"{"type":"join","id":"c1","module":"chat","token":"t"}"#,
            ErrorCode::BadFrame,
            None,
        ),
    ];
    for (text, code, reference) in cases {
        client.send_text(text).await;
        match client.next::<ProbeFromServer>().await {
            ServerFrame::Error {
                code: got,
                reference: got_ref,
                message,
                ..
            } => {
                assert_eq!((got, got_ref), (code, reference), "{text}: {message}");
                assert!(!message.is_empty());
            }
            other => panic!("{text}: expected an error, got {other:?}"),
        }
    }
    client.socket.send_binary_for_test(vec![1, 2, 3]).await;
    assert!(matches!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Error {
            code: ErrorCode::BadFrame,
            ..
        }
    ));

    // Still served.
    client.msg(ProbeFromClient::Echo("alive".into()), 9).await;
    assert!(matches!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Msg { seq: 1, .. }
    ));
}

/// Sends a binary message on a tungstenite socket.
trait SendBinary {
    async fn send_binary_for_test(&mut self, bytes: Vec<u8>);
}

impl SendBinary for common::Socket {
    async fn send_binary_for_test(&mut self, bytes: Vec<u8>) {
        use futures_util::SinkExt;
        self.send(Message::Binary(bytes.into())).await.unwrap();
    }
}

#[tokio::test]
async fn a_refusing_handler_keeps_its_state_and_a_panicking_one_restarts_only_its_own() {
    let (addr, _, endpoint) = start().await;
    let (mut a, _, _) = connect(addr, "").await;
    let (mut b, _, _) = connect(addr, "").await;
    for (i, client) in [&mut a, &mut b].into_iter().enumerate() {
        client.msg(ProbeFromClient::Echo(format!("{i}")), 1).await;
        client.next::<ProbeFromServer>().await;
        client.next::<ProbeFromServer>().await;
    }

    a.msg(ProbeFromClient::Fail, 2).await;
    match a.next::<ProbeFromServer>().await {
        ServerFrame::Error {
            code,
            reference,
            message,
            ..
        } => {
            assert_eq!((code, reference), (ErrorCode::Rejected, Some(2)));
            assert_eq!(message, "refused on purpose");
        }
        other => panic!("{other:?}"),
    }
    // The refused method's effects were discarded, and the handler kept its state (one
    // message handled).
    a.msg(ProbeFromClient::Handled, 3).await;
    assert!(matches!(
        a.next::<ProbeFromServer>().await,
        ServerFrame::Msg {
            payload: ProbeFromServer::Counter(1),
            seq: 2,
            ..
        }
    ));
    a.next::<ProbeFromServer>().await;

    a.msg(ProbeFromClient::Panic, 4).await;
    match a.next::<ProbeFromServer>().await {
        ServerFrame::Error {
            code,
            reference,
            message,
            ..
        } => {
            assert_eq!((code, reference), (ErrorCode::HandlerFailed, Some(4)));
            assert!(message.contains("boom"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A panic replaces the handler: the fresh one has handled nothing.
    a.msg(ProbeFromClient::Handled, 5).await;
    assert!(matches!(
        a.next::<ProbeFromServer>().await,
        ServerFrame::Msg {
            payload: ProbeFromServer::Counter(0),
            ..
        }
    ));

    // The other session kept its state and never noticed.
    assert!(b.quiet_for(Duration::from_millis(100)).await);
    b.msg(ProbeFromClient::Handled, 2).await;
    assert!(matches!(
        b.next::<ProbeFromServer>().await,
        ServerFrame::Msg {
            payload: ProbeFromServer::Counter(1),
            ..
        }
    ));
    assert_eq!(endpoint.metrics().handler_failures, 2);
}

#[tokio::test]
async fn hello_with_another_version_is_refused_and_closed() {
    let (addr, _, _) = start().await;
    let (mut client, _, _) = connect(addr, "").await;
    client
        .send(ClientFrame::<()>::Hello {
            topics: None,
            protocol: None,
            version: Some("0000000000000000".into()),
            compatible: None,
            session: None,
            after: None,
            traceparent: None,
        })
        .await;
    assert!(matches!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Error {
            code: ErrorCode::VersionMismatch,
            ..
        }
    ));
    assert_eq!(client.close_code().await, Some(1008));

    // The same version is welcome.
    let (mut client, _, _) = connect(addr, "").await;
    client
        .send(ClientFrame::<()>::Hello {
            topics: None,
            protocol: Some("Probe".into()),
            version: Some(<Probe as omni::Protocol>::version().into()),
            compatible: None,
            session: None,
            after: None,
            traceparent: None,
        })
        .await;
    assert!(client.quiet_for(Duration::from_millis(100)).await);
}

#[tokio::test]
async fn oversized_ws_frames_close_with_1009() {
    let (addr, _, endpoint) = start_with(Limits {
        max_frame_bytes: 1024,
        ..Limits::default()
    })
    .await;
    let (mut client, _, _) = connect(addr, "").await;
    client.msg(ProbeFromClient::Echo("x".repeat(1500)), 1).await;
    assert!(matches!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Error {
            code: ErrorCode::TooLarge,
            ..
        }
    ));
    assert_eq!(client.close_code().await, Some(1009));

    // Far over it, past what the server will even buffer: the connection ends.
    let (mut client, _, _) = connect(addr, "").await;
    let huge = ClientFrame::Msg {
        payload: ProbeFromClient::Echo("x".repeat(2 * 1024 * 1024)),
        reference: Some(1),
        id: None,
    };
    // The server may reset the connection while this is still being written.
    let _ = client
        .socket
        .send(Message::Text(huge.encode().unwrap().into()))
        .await;
    while let Some(message) = client.next_message().await {
        if let Message::Close(frame) = message {
            assert_eq!(frame.map(|f| u16::from(f.code)), Some(1009));
            break;
        }
    }
    // Others are still served.
    let (mut other, _, _) = connect(addr, "").await;
    other.msg(ProbeFromClient::Echo("ok".into()), 1).await;
    assert!(matches!(
        other.next::<ProbeFromServer>().await,
        ServerFrame::Msg { .. }
    ));
    assert_eq!(endpoint.metrics().connections_opened, 3);
}

/// Resume exactness: a client that held the first k of n sequenced frames and resumes
/// receives exactly the other n - k, in order, once.
#[tokio::test]
async fn resume_replays_exactly_the_missed_frames() {
    let (addr, log, endpoint) = start().await;
    for k in [0u32, 1, 7, 20] {
        let n = 20;
        let (mut client, session, _) = connect(addr, "").await;
        client.msg(ProbeFromClient::Burst(n), 1).await;
        let mut last = 0;
        for _ in 0..k {
            match client.next::<ProbeFromServer>().await {
                ServerFrame::Msg { seq, .. } => last = seq,
                other => panic!("{other:?}"),
            }
        }
        drop(client);

        let (mut resumed, again, seq) =
            connect(addr, &format!("?session={session}&after={last}")).await;
        assert_eq!(again, session);
        assert_eq!(seq, u64::from(n));
        let mut got = Vec::new();
        for _ in k..n {
            match resumed.next::<ProbeFromServer>().await {
                ServerFrame::Msg { seq, payload, .. } => got.push((seq, payload)),
                other => panic!("{other:?}"),
            }
        }
        let expected: Vec<_> = (k + 1..=n)
            .map(|i| (u64::from(i), ProbeFromServer::Count(i)))
            .collect();
        assert_eq!(got, expected, "k = {k}");
        assert!(
            resumed.quiet_for(Duration::from_millis(100)).await,
            "k = {k}"
        );
    }
    assert_eq!(endpoint.metrics().sessions_resumed, 4);
    // Each resume connected the session again, after its drop disconnected it.
    assert_eq!(log.connects.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn hello_resumes_onto_an_open_connection() {
    let (addr, _, _) = start().await;
    let (mut first, session, _) = connect(addr, "").await;
    first.msg(ProbeFromClient::Burst(3), 1).await;
    for _ in 0..4 {
        first.next::<ProbeFromServer>().await;
    }
    drop(first);

    let (mut second, fresh, _) = connect(addr, "").await;
    assert_ne!(fresh, session);
    second
        .send(ClientFrame::<()>::Hello {
            topics: None,
            protocol: None,
            version: None,
            compatible: None,
            session: Some(session),
            after: Some(1),
            traceparent: None,
        })
        .await;
    let (id, seq, resumed) = welcome_fields(&second.next().await);
    assert_eq!((id, seq, resumed), (session, 3, true));
    for expected in [2u64, 3] {
        assert!(matches!(
            second.next::<ProbeFromServer>().await,
            ServerFrame::Msg { seq, .. } if seq == expected
        ));
    }
}

#[tokio::test]
async fn past_the_log_or_the_grace_period_a_resume_gets_reset() {
    let (addr, _, endpoint) = start_with(Limits {
        log_frames: 5,
        grace: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;

    // Past the log: 10 frames sent, 5 kept, the client holds 2.
    let (mut client, session, _) = connect(addr, "").await;
    client.msg(ProbeFromClient::Echo("state".into()), 1).await;
    client.next::<ProbeFromServer>().await;
    client.next::<ProbeFromServer>().await;
    client.msg(ProbeFromClient::Burst(9), 2).await;
    client.next::<ProbeFromServer>().await;
    drop(client);
    let (mut client, again, _) = connect(addr, &format!("?session={session}&after=2")).await;
    assert_eq!(again, session);
    assert_eq!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Reset {
            topic: None,
            seq: 10,
            id: None
        }
    );
    // Fresh handler state follows.
    client.msg(ProbeFromClient::Handled, 3).await;
    assert!(matches!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Msg {
            seq: 11,
            payload: ProbeFromServer::Counter(0),
            ..
        }
    ));
    drop(client);

    // Past the grace period: the session is gone; a new one and `reset`.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (mut client, fresh, seq) = connect(addr, &format!("?session={session}&after=11")).await;
    assert_ne!(fresh, session);
    assert_eq!(seq, 0);
    assert_eq!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Reset {
            topic: None,
            seq: 0,
            id: None
        }
    );
    assert!(endpoint.metrics().sessions_expired >= 1);
}

#[tokio::test]
async fn the_disconnect_hook_runs_within_a_second_on_ws() {
    let (addr, log, _) = start().await;
    let (mut client, session, _) = connect(addr, "").await;
    let notified = log.disconnected.notified();
    let closed_at = Instant::now();
    client.socket.get_mut().shutdown_for_test().await;
    drop(client);
    tokio::time::timeout(Duration::from_secs(1), notified)
        .await
        .expect("disconnect hook within 1 s");
    let disconnects = log.disconnects.lock().unwrap().clone();
    assert_eq!(disconnects.len(), 1);
    assert_eq!(disconnects[0].0, session);
    assert!(disconnects[0].1.duration_since(closed_at) < Duration::from_secs(1));
}

/// Closes the TCP connection under a WebSocket without a close handshake.
trait Shutdown {
    async fn shutdown_for_test(&mut self);
}

impl Shutdown for tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream> {
    async fn shutdown_for_test(&mut self) {
        use tokio::io::AsyncWriteExt;
        if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = self {
            let _ = tcp.shutdown().await;
        }
    }
}

#[tokio::test]
async fn refused_origins_get_403_on_every_transport() {
    let (addr, _, _) = start().await;
    let request = tokio_tungstenite::tungstenite::http::Request::builder()
        .uri(format!("ws://{addr}/omni/ws"))
        .header("host", addr.to_string())
        .header("origin", "http://evil.test")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header(
            "sec-websocket-key",
            tokio_tungstenite::tungstenite::handshake::client::generate_key(),
        )
        .body(())
        .unwrap();
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }

    let http = http_client();
    for (method, path) in [("GET", "/omni/sse"), ("POST", "/omni/http")] {
        let response = http
            .request(method.parse().unwrap(), format!("http://{addr}{path}"))
            .header("origin", "http://evil.test")
            .body(r#"{"type":"hello"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }

    // The same origin is allowed.
    let response = http
        .post(format!("http://{addr}/omni/http"))
        .header("origin", format!("http://{addr}"))
        .body(r#"{"type":"hello"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_origin_list_admits_listed_origins() {
    let log = Log::default();
    let endpoint: Endpoint<Probe, Prober> = {
        let log = log.clone();
        Endpoint::builder(move || Prober {
            log: log.clone(),
            handled: 0,
        })
        .origins(Origins::list(["https://app.test"]))
        .build()
    };
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    let http = http_client();
    for (origin, status) in [("https://app.test", 200), ("https://other.test", 403)] {
        let response = http
            .post(format!("http://{addr}/omni/http"))
            .header("origin", origin)
            .body(r#"{"type":"hello"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{origin}");
    }
}

/// Posts `body` to `/omni/http`, with a session header if given; returns status, session
/// header and decoded frames.
async fn post(
    addr: SocketAddr,
    session: Option<SessionId>,
    body: String,
) -> (u16, Option<SessionId>, Vec<Down>) {
    let mut request = http_client()
        .post(format!("http://{addr}/omni/http"))
        .body(body);
    if let Some(id) = session {
        request = request.header(SESSION_HEADER.as_str(), id.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get(SESSION_HEADER.as_str())
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let text = response.text().await.unwrap();
    let frames = if text.is_empty() {
        Vec::new()
    } else {
        serde_json::from_str::<Vec<serde_json::Value>>(&text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .into_iter()
            .map(|v| ServerFrame::decode(v.to_string().as_bytes()).unwrap())
            .collect()
    };
    (status, session, frames)
}

fn msg_text(payload: ProbeFromClient, reference: u64) -> String {
    ClientFrame::Msg {
        payload,
        reference: Some(reference),
        id: None,
    }
    .encode()
    .unwrap()
}

#[tokio::test]
async fn http_posts_answer_with_the_frames_they_produce() {
    let (addr, log, _) = start().await;
    let (status, session, frames) =
        post(addr, None, msg_text(ProbeFromClient::Echo("a".into()), 1)).await;
    assert_eq!(status, 200);
    let session = session.expect("a new session is named in the response");
    assert_eq!(welcome_fields(&frames[0]), (session, 0, false));
    assert_eq!(
        frames[1..],
        [
            ServerFrame::Msg {
                topic: None,
                seq: 1,
                payload: ProbeFromServer::Echoed("a".into()),
                reference: Some(1),
                id: None
            },
            ServerFrame::Ack {
                reference: 1,
                id: None
            }
        ]
    );
    // HTTP requests are not live connections: no hooks.
    assert_eq!(log.connects.load(Ordering::SeqCst), 0);

    // An array of frames, on the same session: a bad one is answered in place.
    let body = format!(
        "[{},{{\"type\":\"nope\"}},{}]",
        msg_text(ProbeFromClient::Echo("b".into()), 2),
        msg_text(ProbeFromClient::Handled, 3)
    );
    let (status, again, frames) = post(addr, Some(session), body).await;
    assert_eq!((status, again), (200, Some(session)));
    let kinds: Vec<_> = frames.iter().map(ServerFrame::kind).collect();
    assert_eq!(kinds, ["msg", "ack", "error", "msg", "ack"]);
    assert!(matches!(
        frames[3],
        ServerFrame::Msg {
            seq: 3,
            payload: ProbeFromServer::Counter(2),
            ..
        }
    ));

    // A lost response is recovered with `hello{after}`.
    let (_, _, frames) = post(
        addr,
        Some(session),
        format!(r#"{{"type":"hello","session":"{session}","after":1}}"#),
    )
    .await;
    let seqs: Vec<_> = frames.iter().filter_map(ServerFrame::seq).collect();
    assert_eq!(seqs, [2, 3]);
}

#[tokio::test]
async fn http_limits_and_undecodable_bodies() {
    let (addr, _, _) = start_with(Limits {
        max_frame_bytes: 512,
        ..Limits::default()
    })
    .await;
    let (status, _, frames) = post(
        addr,
        None,
        msg_text(ProbeFromClient::Echo("x".repeat(600)), 1),
    )
    .await;
    assert_eq!(status, 413);
    assert!(matches!(
        frames[..],
        [ServerFrame::Error {
            code: ErrorCode::TooLarge,
            ..
        }]
    ));

    let (status, _, frames) = post(addr, None, "{nope".into()).await;
    assert_eq!(status, 422);
    assert!(matches!(
        frames[..],
        [ServerFrame::Error {
            code: ErrorCode::BadFrame,
            ..
        }]
    ));

    // An unknown session header: a new session, told to reset.
    let stale = SessionId::from_u128(99);
    let (status, session, frames) = post(addr, Some(stale), r#"{"type":"hello"}"#.into()).await;
    assert_eq!(status, 200);
    assert_ne!(session, Some(stale));
    let kinds: Vec<_> = frames.iter().map(ServerFrame::kind).collect();
    assert_eq!(kinds, ["welcome", "reset"]);
}

/// An SSE stream read event by event.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    id: Option<String>,
    data: String,
}

impl EventStream {
    async fn open(addr: SocketAddr, query: &str, last_event_id: Option<u64>) -> Self {
        let mut request = http_client().get(format!("http://{addr}/omni/sse{query}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, skipping keep-alive comments.
    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: String::new(),
                    id: None,
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.into();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.into());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push_str(v);
                    }
                }
                if event.event.is_empty() && event.data.is_empty() {
                    continue;
                }
                return event;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    async fn frame(&mut self) -> (SseEvent, Down) {
        let event = self.next().await;
        let frame = ServerFrame::decode(event.data.as_bytes()).unwrap();
        assert_eq!(event.event, frame.kind());
        (event, frame)
    }
}

#[tokio::test]
async fn sse_streams_frames_and_takes_its_uplink_over_http() {
    let (addr, log, _) = start().await;
    let mut stream = EventStream::open(addr, "", None).await;
    let (event, welcome) = stream.frame().await;
    assert_eq!(event.id, None);
    let (session, _, _) = welcome_fields(&welcome);
    assert_eq!(log.connects.load(Ordering::SeqCst), 1);

    let (status, _, frames) =
        post(addr, Some(session), msg_text(ProbeFromClient::Burst(3), 1)).await;
    assert_eq!(status, 202);
    assert!(frames.is_empty());
    for i in 1..=3u32 {
        let (event, frame) = stream.frame().await;
        assert_eq!(event.id, Some(i.to_string()), "the event id is the seq");
        assert_eq!(frame.seq(), Some(u64::from(i)));
    }
    let (_, ack) = stream.frame().await;
    assert_eq!(
        ack,
        ServerFrame::Ack {
            reference: 1,
            id: None
        }
    );

    // Broadcasts arrive as push events.
    let (mut ws, _, _) = connect(addr, "").await;
    ws.msg(ProbeFromClient::Shout("to sse".into()), 1).await;
    let (event, push) = stream.frame().await;
    assert_eq!(event.id, None);
    assert_eq!(
        push,
        ServerFrame::Push {
            payload: ProbeFromServer::Heard("to sse".into()),
            topic: Some("all".into()),
            id: None
        }
    );
    drop(stream);

    // Resume with Last-Event-ID: exactly the frames after it.
    let mut resumed = EventStream::open(addr, &format!("?session={session}"), Some(1)).await;
    let (_, welcome) = resumed.frame().await;
    assert_eq!(welcome_fields(&welcome), (session, 3, true));
    let seqs = [resumed.frame().await.1.seq(), resumed.frame().await.1.seq()];
    assert_eq!(seqs, [Some(2), Some(3)]);
}

#[tokio::test]
async fn the_disconnect_hook_runs_within_a_second_on_sse() {
    let (addr, log, _) = start().await;
    let mut stream = EventStream::open(addr, "", None).await;
    let (_, welcome) = stream.frame().await;
    let (session, _, _) = welcome_fields(&welcome);
    let notified = log.disconnected.notified();
    let closed_at = Instant::now();
    drop(stream);
    tokio::time::timeout(Duration::from_secs(2), notified)
        .await
        .expect("disconnect hook after the stream closed");
    let disconnects = log.disconnects.lock().unwrap().clone();
    assert_eq!(disconnects[0].0, session);
    let after = disconnects[0].1.duration_since(closed_at);
    assert!(after <= Duration::from_millis(1100), "took {after:?}");
}

/// A client that stops reading backs up, fills its queue and is closed as a slow consumer;
/// a client reading the same stream keeps up, and 50 others keep receiving broadcasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stalled_client_does_not_delay_fifty_others() {
    let (addr, _, endpoint) = start_with(Limits {
        outbound_queue: 64,
        ..Limits::default()
    })
    .await;

    // Two clients on topic `big`: one that never reads again, one that reads everything.
    let mut stalled = Client::connect_with_small_window(addr, "/omni/ws").await;
    let mut reader = Client::connect(addr, "/omni/ws").await;
    for client in [&mut stalled, &mut reader] {
        client.next::<ProbeFromServer>().await;
        client.msg(ProbeFromClient::Join("big".into()), 1).await;
        assert!(matches!(
            client.next::<ProbeFromServer>().await,
            ServerFrame::Ack { .. }
        ));
    }
    let reading = tokio::spawn(async move {
        // Counted on the raw text: decoding every blob would make this reader the slow one
        // on a loaded machine.
        let mut blobs = 0;
        while blobs < 256 {
            match reader.next_message().await {
                Some(Message::Text(text)) if text.contains(r#""kind":"Blob""#) => blobs += 1,
                Some(Message::Text(text)) if text.contains("slow_consumer") => {
                    panic!("the reading client was closed as a slow consumer")
                }
                Some(_) => {}
                None => panic!("the reading client's connection ended"),
            }
        }
        blobs
    });

    let mut others = Vec::new();
    for _ in 0..50 {
        others.push(connect(addr, "").await.0);
    }
    let (mut feeder, _, _) = connect(addr, "").await;

    // 8 MiB, one 32 KiB broadcast at a time: a reader keeps up, the stalled client cannot.
    for i in 0..256 {
        feeder
            .msg(
                ProbeFromClient::Flood {
                    n: 1,
                    size: 32 * 1024,
                },
                i,
            )
            .await;
        assert!(matches!(
            feeder.next::<ProbeFromServer>().await,
            ServerFrame::Ack { .. }
        ));
    }
    let started = Instant::now();
    for i in 0..20 {
        feeder
            .msg(ProbeFromClient::Shout(format!("s{i}")), 1000 + i)
            .await;
    }
    for (n, other) in others.iter_mut().enumerate() {
        for i in 0..20 {
            match other.next::<ProbeFromServer>().await {
                ServerFrame::Push {
                    payload: ProbeFromServer::Heard(text),
                    ..
                } => {
                    assert_eq!(text, format!("s{i}"), "client {n}")
                }
                frame => panic!("client {n}: {frame:?}"),
            }
        }
    }
    let elapsed = started.elapsed();
    assert!(elapsed < PATIENCE, "fifty clients took {elapsed:?}");
    assert_eq!(
        tokio::time::timeout(PATIENCE, reading)
            .await
            .unwrap()
            .unwrap(),
        256
    );

    let deadline = Instant::now() + PATIENCE;
    while endpoint.metrics().slow_consumers == 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled client was never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        endpoint.metrics().slow_consumers,
        1,
        "only the stalled client"
    );
    drop(stalled);
}

#[tokio::test]
async fn shutdown_closes_connections_with_1001() {
    let (addr, _, endpoint) = start().await;
    let (mut client, _, _) = connect(addr, "").await;
    let mut stream = EventStream::open(addr, "", None).await;
    stream.frame().await;
    endpoint.shutdown();
    assert_eq!(client.close_code().await, Some(1001));
    let end = tokio::time::timeout(PATIENCE, stream.response.chunk())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "the event stream ends");
}

#[tokio::test]
async fn an_auth_layers_extensions_reach_the_handler() {
    let log = Log::default();
    let endpoint = endpoint(&log, Limits::default());
    let router = omni::axum::Router::new()
        .nest("/omni", endpoint.router())
        .layer(omni::axum::middleware::map_request(
            |mut request: omni::axum::extract::Request| async move {
                request.extensions_mut().insert(User("ada"));
                request
            },
        ));
    let addr = serve(router).await;
    let (mut client, _, _) = connect(addr, "").await;
    client.msg(ProbeFromClient::WhoAmI, 1).await;
    assert!(matches!(
        client.next::<ProbeFromServer>().await,
        ServerFrame::Msg { payload: ProbeFromServer::Echoed(user), .. } if user == "ada"
    ));
    let (_, _, frames) = post(addr, None, msg_text(ProbeFromClient::WhoAmI, 1)).await;
    assert!(matches!(
        &frames[1],
        ServerFrame::Msg { payload: ProbeFromServer::Echoed(user), .. } if user == "ada"
    ));
}

#[tokio::test]
async fn a_websocket_inside_the_users_own_handler() {
    use omni::axum::extract::ws::WebSocketUpgrade;

    let log = Log::default();
    let handler_log = log.clone();
    let endpoint = endpoint(&log, Limits::default());
    let router = omni::axum::Router::new()
        // The one-off function: a session of its own for this socket.
        .route(
            "/pipe",
            omni::axum::routing::get(move |upgrade: WebSocketUpgrade| {
                let log = handler_log.clone();
                async move {
                    upgrade.on_upgrade(move |socket| {
                        omni::server::websocket::<Probe, _>(socket, ProberTemplate(log))
                    })
                }
            }),
        )
        // The endpoint's upgrade, after the user's own checks.
        .route(
            "/checked",
            omni::axum::routing::get(
                move |upgrade: WebSocketUpgrade, request: omni::axum::extract::Request| async move {
                    let (parts, _) = request.into_parts();
                    endpoint.upgrade(upgrade, &parts)
                },
            ),
        );
    let addr = serve(router).await;
    for path in ["/pipe", "/checked"] {
        let mut client = Client::connect(addr, path).await;
        assert!(matches!(
            client.next::<ProbeFromServer>().await,
            ServerFrame::Welcome { .. }
        ));
        client.msg(ProbeFromClient::Echo(path.into()), 1).await;
        assert!(matches!(
            client.next::<ProbeFromServer>().await,
            ServerFrame::Msg { payload: ProbeFromServer::Echoed(p), .. } if p == path
        ));
    }
}

/// A cloneable handler for `omni::server::websocket`, which clones it again on restart.
#[derive(Clone)]
struct ProberTemplate(Log);

impl ProbeHandler for ProberTemplate {
    async fn echo(&mut self, cx: &mut Context<Probe>, text: String) -> HandlerResult {
        cx.send(ProbeFromServer::Echoed(text));
        Ok(())
    }
    async fn burst(&mut self, _: &mut Context<Probe>, _: u32) -> HandlerResult {
        Ok(())
    }
    async fn fail(&mut self, _: &mut Context<Probe>) -> HandlerResult {
        Ok(())
    }
    async fn panic(&mut self, _: &mut Context<Probe>) -> HandlerResult {
        Ok(())
    }
    async fn handled(&mut self, _: &mut Context<Probe>) -> HandlerResult {
        Ok(())
    }
    async fn shout(&mut self, _: &mut Context<Probe>, _: String) -> HandlerResult {
        Ok(())
    }
    async fn join(&mut self, _: &mut Context<Probe>, _: String) -> HandlerResult {
        Ok(())
    }
    async fn flood(&mut self, _: &mut Context<Probe>, _: u32, _: u32) -> HandlerResult {
        Ok(())
    }
    async fn later(&mut self, _: &mut Context<Probe>, _: String) -> HandlerResult {
        Ok(())
    }
    async fn who_am_i(&mut self, _: &mut Context<Probe>) -> HandlerResult {
        let _ = &self.0;
        Ok(())
    }
}

#[tokio::test]
async fn a_replay_larger_than_the_outbound_queue_is_not_a_slow_consumer() {
    let (addr, _, endpoint) = start_with(Limits {
        outbound_queue: 8,
        // Larger than a burst, smaller than the replay: the replay follows the `welcome`,
        // still queued, and passes the bytes bound too.
        outbound_queue_bytes: 1024,
        ..Limits::default()
    })
    .await;
    let (mut client, session, _) = connect(addr, "").await;
    // Sent in bursts the queue can take while the client reads.
    for i in 0..25 {
        client.msg(ProbeFromClient::Burst(4), i + 1).await;
        for _ in 0..5 {
            client.next::<ProbeFromServer>().await;
        }
    }
    drop(client);
    let (mut resumed, _, seq) = connect(addr, &format!("?session={session}&after=0")).await;
    assert_eq!(seq, 100);
    for expected in 1..=100u64 {
        assert!(matches!(
            resumed.next::<ProbeFromServer>().await,
            ServerFrame::Msg { seq, .. } if seq == expected
        ));
    }
    assert_eq!(endpoint.metrics().slow_consumers, 0);
}
