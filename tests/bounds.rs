//! What one request, one frame or one slow reader may pin on the server, attacked over real
//! sockets: a batch of requests for large replies, a reply larger than the resume log, a reader
//! that is slow but steady, an event stream nobody reads, a socket that never says a word,
//! MessagePack maps keyed by numbers, a codec asked for twice.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Client, PATIENCE, serve};
use futures_util::SinkExt;
use omni::server::{Endpoint, Limits, Server};
use omni::{ClientFrame, Context, ErrorCode, HandlerResult, ServerFrame, SessionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Load {
    /// Answered with one `Blob` of this many bytes, as a room snapshot is.
    #[client]
    Fetch(u32),
    /// Answered with `count` blobs of `size` bytes each, as a burst of shared files is.
    #[client]
    Burst { count: u32, size: u32 },
    #[server]
    Blob(String),
}

type Down = ServerFrame<LoadFromServer>;

struct Loader {
    disconnects: Arc<AtomicU32>,
}

impl LoadHandler for Loader {
    async fn fetch(&mut self, cx: &mut Context<Load>, size: u32) -> HandlerResult {
        cx.send(LoadFromServer::Blob("b".repeat(size as usize)));
        Ok(())
    }

    async fn burst(&mut self, cx: &mut Context<Load>, count: u32, size: u32) -> HandlerResult {
        for _ in 0..count {
            cx.send(LoadFromServer::Blob("b".repeat(size as usize)));
        }
        Ok(())
    }

    async fn disconnected(&mut self, _: &mut Context<Load>) -> HandlerResult {
        self.disconnects.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Started {
    addr: SocketAddr,
    disconnects: Arc<AtomicU32>,
}

fn endpoint(limits: Limits) -> (Endpoint<Load, Loader>, Arc<AtomicU32>) {
    let disconnects = Arc::new(AtomicU32::new(0));
    let counted = disconnects.clone();
    let endpoint = Endpoint::<Load, _>::builder(move || Loader {
        disconnects: counted.clone(),
    })
    .limits(limits)
    .build();
    (endpoint, disconnects)
}

/// Serves the endpoint with `axum::serve`: what holds here holds whatever serves the router.
async fn start(limits: Limits) -> Started {
    let (endpoint, disconnects) = endpoint(limits);
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    Started { addr, disconnects }
}

/// Serves the endpoint with omni's own [`Server`].
async fn start_served(limits: Limits, server: Server) -> Started {
    let (endpoint, disconnects) = endpoint(limits);
    let router = omni::axum::Router::new().nest("/omni", endpoint.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, router));
    Started { addr, disconnects }
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn welcomed(addr: SocketAddr, path: &str) -> (Client, SessionId) {
    let mut client = Client::connect(addr, path).await;
    match client.next::<LoadFromServer>().await {
        ServerFrame::Welcome { session, .. } => (client, session),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Waits for `counter` to reach `n`, failing after `patience`.
async fn reaches(counter: &AtomicU32, n: u32, patience: Duration, what: &str) {
    let deadline = Instant::now() + patience;
    while counter.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "{what}: not within {patience:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn one_request_cannot_make_a_response_larger_than_the_queue_bound() {
    let bound = 1024 * 1024;
    let server = start(Limits {
        outbound_queue_bytes: bound,
        ..Limits::default()
    })
    .await;
    // 600 requests for 100 KB each in a 20 KB body: 60 MB of replies if nothing bounds them.
    let frames: Vec<String> = (1..=600)
        .map(|r| {
            ClientFrame::Msg {
                payload: LoadFromClient::Fetch(100_000),
                reference: Some(r),
                id: None,
            }
            .encode()
            .unwrap()
        })
        .collect();
    let body = format!("[{}]", frames.join(","));
    assert!(body.len() < Limits::default().max_frame_bytes);
    let response = http_client()
        .post(format!("http://{}/omni/http", server.addr))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert!(
        body.len() <= bound + 100_000 + 4096,
        "a {} byte response for a bound of {bound}",
        body.len()
    );
    let frames: Vec<Down> = serde_json::from_slice::<Vec<serde_json::Value>>(&body)
        .unwrap()
        .into_iter()
        .map(|v| ServerFrame::decode(v.to_string().as_bytes()).unwrap())
        .collect();
    let blobs = frames
        .iter()
        .filter(|f| matches!(f, ServerFrame::Msg { .. }))
        .count();
    assert!((1..600).contains(&blobs), "{blobs} replies");
    match frames.last() {
        Some(ServerFrame::Error { code, message, .. }) => {
            assert_eq!(*code, ErrorCode::TooLarge);
            assert!(message.contains("not handled"), "{message}");
        }
        other => panic!("the response should end with too_large, not {other:?}"),
    }
}

#[tokio::test]
async fn a_reply_larger_than_the_log_is_delivered_but_not_kept() {
    let server = start(Limits::default()).await;
    let (mut client, session) = welcomed(server.addr, "/omni/ws").await;
    client.msg(LoadFromClient::Fetch(10), 1).await;
    client.msg(LoadFromClient::Fetch(200_000), 2).await;
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        if let ServerFrame::Msg { seq, payload, .. } = client.next::<LoadFromServer>().await {
            let LoadFromServer::Blob(blob) = payload;
            seqs.push((seq, blob.len()));
        }
    }
    assert_eq!(seqs, [(1, 10), (2, 200_000)], "delivered, all of it");
    drop(client);

    // Holding 1, the client misses the large frame, which the 64 KiB log did not keep: it
    // is reset, rather than the session pinning 200 KB for its whole grace period.
    let path = format!("/omni/ws?session={session}&after=1");
    let mut client = Client::connect(server.addr, &path).await;
    assert!(matches!(
        client.next::<LoadFromServer>().await,
        ServerFrame::Welcome { resumed: true, .. }
    ));
    match client.next::<LoadFromServer>().await {
        ServerFrame::Reset { seq, .. } => assert_eq!(seq, 2),
        ServerFrame::Msg { seq, .. } => panic!("{seq} replayed from a log holding 200 KB"),
        other => panic!("{other:?}"),
    }
    drop(client);

    // Holding it, the client misses nothing and is not reset.
    let path = format!("/omni/ws?session={session}&after=2");
    let mut client = Client::connect(server.addr, &path).await;
    assert!(matches!(
        client.next::<LoadFromServer>().await,
        ServerFrame::Welcome { resumed: true, .. }
    ));
    client.msg(LoadFromClient::Fetch(20), 3).await;
    match client.next::<LoadFromServer>().await {
        ServerFrame::Msg { seq, .. } => assert_eq!(seq, 3),
        other => panic!("{other:?}"),
    }
}

/// Serves the endpoint with `axum::serve`, each accepted socket with a send buffer of
/// `sndbuf`: on loopback the kernel would otherwise grow it to hold megabytes, and a burst
/// would never wait for its reader.
async fn start_with_send_buffer(limits: Limits, sndbuf: usize) -> Started {
    let (endpoint, disconnects) = endpoint(limits);
    let router = omni::axum::Router::new().nest("/omni", endpoint.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = omni::axum::serve::ListenerExt::tap_io(listener, move |tcp| {
        socket2::SockRef::from(&*tcp)
            .set_send_buffer_size(sndbuf)
            .unwrap();
    });
    tokio::spawn(async move { omni::axum::serve(listener, router).await.unwrap() });
    Started { addr, disconnects }
}

#[tokio::test]
async fn a_slow_but_steady_reader_is_served_through_a_burst() {
    let server = start_with_send_buffer(
        Limits {
            write_timeout: Duration::from_millis(1000),
            ..Limits::default()
        },
        64 * 1024,
    )
    .await;
    let mut client = Client::connect_with_small_window(server.addr, "/omni/ws").await;
    assert!(matches!(
        client.next::<LoadFromServer>().await,
        ServerFrame::Welcome { .. }
    ));
    // 3 MB, read at about 1 MB/s: the whole burst takes three times the write timeout, and
    // no single write waits for long.
    let (count, size) = (50, 60_000);
    client.msg(LoadFromClient::Burst { count, size }, 1).await;
    let started = Instant::now();
    let mut blobs = 0;
    while blobs < count {
        match client.next_message().await {
            Some(Message::Text(text)) => {
                if text.as_str().contains(r#""type":"msg""#) {
                    blobs += 1;
                }
            }
            other => panic!("after {blobs} blobs the connection ended: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(
        started.elapsed() > Duration::from_millis(2500),
        "the reader was not slow"
    );
    assert_eq!(server.disconnects.load(Ordering::SeqCst), 0);
}

/// Opens `/sse` on a raw socket with a small receive window, reads up to the welcome, and
/// returns the socket (never read again) and the session.
async fn sse_that_stops_reading(addr: SocketAddr) -> (TcpStream, SessionId) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /omni/sse HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0; 1024];
    let session = loop {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream ended before its welcome");
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(at) = text.find(r#""session":""#) {
            let start = at + r#""session":""#.len();
            if text.len() >= start + 32 {
                break text[start..start + 32].parse().unwrap();
            }
        }
    };
    (stream, session)
}

async fn uplink(addr: SocketAddr, session: SessionId, payload: LoadFromClient) {
    let response = http_client()
        .post(format!("http://{addr}/omni/http"))
        .header("omni-session", session.to_string())
        .body(ClientFrame::msg(payload).encode().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

/// Opens an event stream that stops reading, has `count` blobs of 60 KB sent to it, and
/// waits (3 s at most) for its session to be released.
async fn unread_stream_is_released(count: u32, what: &str) {
    let server = start(Limits {
        write_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let (_stream, session) = sse_that_stops_reading(server.addr).await;
    let size = 60_000;
    uplink(server.addr, session, LoadFromClient::Burst { count, size }).await;
    reaches(&server.disconnects, 1, Duration::from_secs(3), what).await;
}

#[tokio::test]
async fn an_event_stream_nobody_reads_is_ended_as_a_slow_consumer() {
    // 12 MB for a stream whose reader is gone: the queue overflows its 4 MiB.
    unread_stream_is_released(200, "a stream that overflowed its queue was released").await;
}

#[tokio::test]
async fn an_event_stream_that_makes_no_progress_is_ended_after_the_write_timeout() {
    // 3.6 MB: within every bound, but more than the socket takes while nobody reads.
    unread_stream_is_released(60, "a stream that stopped being read was released").await;
}

/// Reads until the peer ends the connection; returns how it ended.
async fn ending(stream: &mut TcpStream, patience: Duration) -> std::io::Result<()> {
    let mut buf = vec![0; 64 * 1024];
    tokio::time::timeout(patience, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(err) => return Err(err),
            }
        }
    })
    .await
    .expect("the server never ended the connection")
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed() {
    let server = start_served(
        Limits::default(),
        Server::new().header_read_timeout(Duration::from_millis(300)),
    )
    .await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let _ = ending(&mut silent, Duration::from_secs(3)).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_connection_cut_for_a_write_timeout_is_reset_not_left_to_the_kernel() {
    let server = start_served(
        Limits {
            write_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        Server::new(),
    )
    .await;
    let mut client = Client::connect_with_small_window(server.addr, "/omni/ws").await;
    // Far more than the socket buffers hold, within the queue's bound; never read.
    client
        .msg(
            LoadFromClient::Burst {
                count: 60,
                size: 60_000,
            },
            1,
        )
        .await;
    reaches(
        &server.disconnects,
        1,
        Duration::from_secs(5),
        "the stuck connection was cut",
    )
    .await;
    let tokio_tungstenite::MaybeTlsStream::Plain(mut tcp) = client.socket.into_inner() else {
        unreachable!()
    };
    let ended = ending(&mut tcp, Duration::from_secs(5)).await;
    assert_eq!(
        ended.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "closed with its unsent bytes held by the kernel, not reset"
    );
}

#[tokio::test]
async fn map_keys_that_are_not_strings_name_no_field() {
    let server = start(Limits::default()).await;
    let mut client = Client::connect(server.addr, "/omni/ws?codec=msgpack").await;
    assert!(matches!(
        client.next_message().await,
        Some(Message::Binary(_))
    ));
    let payload = rmpv::Value::Map(vec![
        ("kind".into(), "Fetch".into()),
        ("data".into(), 3.into()),
    ]);
    let by_position = rmpv::Value::Map(vec![
        (0.into(), "msg".into()),
        (1.into(), payload.clone()),
        (2.into(), 49.into()),
    ]);
    let by_bytes = rmpv::Value::Map(vec![
        (rmpv::Value::Binary(b"type".to_vec()), "msg".into()),
        (rmpv::Value::Binary(b"payload".to_vec()), payload),
        (rmpv::Value::Binary(b"ref".to_vec()), 50.into()),
    ]);
    for frame in [by_position, by_bytes] {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &frame).unwrap();
        client
            .socket
            .send(Message::Binary(bytes.into()))
            .await
            .unwrap();
        let Some(Message::Binary(reply)) = client.next_message().await else {
            panic!("expected a binary frame");
        };
        let reply: Down = ServerFrame::decode_msgpack(&reply).unwrap();
        match reply {
            ServerFrame::Error { code, message, .. } => {
                assert_eq!(code, ErrorCode::BadFrame);
                assert!(message.contains("type"), "{message}");
            }
            other => panic!("a map keyed by {frame} was read as a frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_codec_asked_for_twice_is_refused_before_the_upgrade() {
    let server = start(Limits::default()).await;
    let url = format!(
        "http://{}/omni/sse?codec=msgpack&codec=msgpack",
        server.addr
    );
    let response = http_client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("codec"), "{text}");
    let url = format!("ws://{}/omni/ws?codec=msgpack&codec=msgpack", server.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
        }
        other => panic!("upgraded with a codec asked twice: {:?}", other.map(|_| ())),
    }
}
