//! What a connection does while something is slow: a handler that awaits, a client that
//! stops reading, a component of a mux socket that takes its time. Real sockets on loopback.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, PATIENCE};
use futures_util::SinkExt;
use omni::server::{Endpoint, Limits, Mux};
use omni::token::Keys;
use omni::{ClientFrame, Context, HandlerResult, ServerFrame, SessionId};
use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

/// A protocol whose handler can be told to take its time.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Nap {
    /// Sleeps this many milliseconds, then answers `Woke`.
    #[client]
    Sleep(u64),
    /// Broadcasts `Heard` to every other subscriber of `all`.
    #[client]
    Shout(String),
    /// Answered with `Echoed`.
    #[client]
    Echo(String),
    #[server]
    Woke,
    #[server]
    Heard(String),
    #[server]
    Echoed(String),
}

type Down = ServerFrame<NapFromServer>;

struct Napper {
    /// Told when a nap starts.
    napping: Arc<Notify>,
    /// Told of every `disconnected` hook: the session, and when.
    gone: mpsc::UnboundedSender<(SessionId, Instant)>,
}

impl NapHandler for Napper {
    async fn sleep(&mut self, cx: &mut Context<Nap>, ms: u64) -> HandlerResult {
        self.napping.notify_one();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        cx.send(NapFromServer::Woke);
        Ok(())
    }

    async fn shout(&mut self, cx: &mut Context<Nap>, text: String) -> HandlerResult {
        cx.broadcast_from("all", NapFromServer::Heard(text));
        Ok(())
    }

    async fn echo(&mut self, cx: &mut Context<Nap>, text: String) -> HandlerResult {
        cx.send(NapFromServer::Echoed(text));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Nap>) -> HandlerResult {
        cx.subscribe("all");
        Ok(())
    }

    async fn disconnected(&mut self, cx: &mut Context<Nap>) -> HandlerResult {
        let _ = self.gone.send((cx.session(), Instant::now()));
        Ok(())
    }
}

const KEY: &[u8] = b"the stall tests' key, thirty-two bytes or more";

struct Server {
    addr: SocketAddr,
    endpoint: Endpoint<Nap, Napper>,
    mux: Mux,
    napping: Arc<Notify>,
    gone: mpsc::UnboundedReceiver<(SessionId, Instant)>,
}

impl Server {
    /// Waits until a handler has started its nap.
    async fn napping(&self) {
        tokio::time::timeout(PATIENCE, self.napping.notified())
            .await
            .expect("the nap started");
    }
}

/// Serves the endpoint on `/ws` and as mux modules `a` and `b` on `/mux`.
async fn start(limits: Limits) -> Server {
    start_with(limits, None).await
}

/// [`start`], with the listener's (and so every accepted socket's) kernel send buffer set to
/// `send_buffer` bytes, if given.
async fn start_with(limits: Limits, send_buffer: Option<u32>) -> Server {
    let napping = Arc::new(Notify::new());
    let (told, gone) = mpsc::unbounded_channel();
    let factory = (napping.clone(), told);
    let endpoint = Endpoint::<Nap, _>::builder(move || Napper {
        napping: factory.0.clone(),
        gone: factory.1.clone(),
    })
    .limits(limits)
    .build();
    let mux = Mux::builder(Keys::new(KEY).unwrap())
        .module("a", &endpoint)
        .module("b", &endpoint)
        .build();
    let router = omni::axum::Router::new()
        .nest("/omni", endpoint.router())
        .nest("/omni", mux.router());
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(bytes) = send_buffer {
        socket.set_send_buffer_size(bytes).unwrap();
    }
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let listener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = omni::axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { omni::axum::serve(listener, router).await.unwrap() });
    Server {
        addr,
        endpoint,
        mux,
        napping,
        gone,
    }
}

async fn welcomed(addr: SocketAddr) -> (Client, SessionId) {
    let mut client = Client::connect(addr, "/omni/ws").await;
    match client.next::<NapFromServer>().await {
        ServerFrame::Welcome { session, .. } => (client, session),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Reads until a frame `pick` accepts; panics on anything else it does not skip.
async fn until<T>(client: &mut Client, mut pick: impl FnMut(Down) -> Option<T>) -> T {
    loop {
        if let Some(found) = pick(client.next::<NapFromServer>().await) {
            return found;
        }
    }
}

#[tokio::test]
async fn a_slow_handler_does_not_hold_up_broadcasts_to_its_own_client() {
    let server = start(Limits::default()).await;
    let (mut sleeper, _) = welcomed(server.addr).await;
    let (mut shouter, _) = welcomed(server.addr).await;

    sleeper.msg(NapFromClient::Sleep(1500), 1).await;
    server.napping().await;
    let shouted = Instant::now();
    for i in 0..5 {
        shouter
            .msg(NapFromClient::Shout(format!("s{i}")), 10 + i)
            .await;
    }
    for i in 0..5 {
        let heard = until(&mut sleeper, |frame| match frame {
            ServerFrame::Push {
                payload: NapFromServer::Heard(text),
                ..
            } => Some(text),
            other => panic!("expected the broadcast before anything else, got {other:?}"),
        })
        .await;
        assert_eq!(heard, format!("s{i}"));
    }
    let waited = shouted.elapsed();
    assert!(
        waited < Duration::from_millis(700),
        "broadcasts waited {waited:?} for the handler's nap to end"
    );
    // The nap still ends with its reply and ack.
    until(&mut sleeper, |frame| match frame {
        ServerFrame::Msg {
            payload: NapFromServer::Woke,
            reference: Some(1),
            ..
        } => Some(()),
        other => panic!("{other:?}"),
    })
    .await;
}

/// A `join` of component `id` of `module`.
fn join_frame(mux: &Mux, id: &str, module: &str) -> ClientFrame<()> {
    let token = mux.sign(module, &serde_json::Value::Null, Duration::from_secs(60));
    ClientFrame::Join {
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
    }
}

/// Joins component `id` of `module` on a mux socket and reads its `joined` and `welcome`.
async fn join(client: &mut Client, mux: &Mux, id: &str, module: &str) {
    client.send(join_frame(mux, id, module)).await;
    expect_joined(client).await;
}

async fn expect_joined(client: &mut Client) {
    assert!(matches!(
        client.next::<NapFromServer>().await,
        ServerFrame::Joined { .. }
    ));
    assert!(matches!(
        client.next::<NapFromServer>().await,
        ServerFrame::Welcome { .. }
    ));
}

fn to(id: &str, payload: NapFromClient, reference: u64) -> ClientFrame<NapFromClient> {
    ClientFrame::Msg {
        payload,
        reference: Some(reference),
        id: Some(id.into()),
    }
}

#[tokio::test]
async fn a_slow_component_does_not_hold_up_the_others_on_its_socket() {
    let server = start(Limits::default()).await;
    let mut socket = Client::connect(server.addr, "/omni/mux").await;
    join(&mut socket, &server.mux, "slow", "a").await;
    join(&mut socket, &server.mux, "fast", "b").await;
    let (mut shouter, _) = welcomed(server.addr).await;

    socket.send(to("slow", NapFromClient::Sleep(1500), 1)).await;
    server.napping().await;
    let started = Instant::now();
    // A message to the other component is handled, and broadcasts reach both, while the
    // first component naps.
    socket
        .send(to("fast", NapFromClient::Echo("hi".into()), 2))
        .await;
    shouter.msg(NapFromClient::Shout("all".into()), 3).await;
    let (mut echoed, mut acked, mut heard) = (false, false, Vec::new());
    while !(echoed && acked && heard.len() == 2) {
        match socket.next::<NapFromServer>().await {
            ServerFrame::Msg {
                payload: NapFromServer::Echoed(text),
                id: Some(id),
                ..
            } if id == "fast" && text == "hi" => echoed = true,
            ServerFrame::Ack {
                reference: 2,
                id: Some(id),
            } if id == "fast" => acked = true,
            ServerFrame::Push {
                payload: NapFromServer::Heard(_),
                id: Some(id),
                ..
            } => heard.push(id),
            other => panic!("nothing of the napping component yet, got {other:?}"),
        }
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(700),
        "the other component waited {waited:?} for the nap to end"
    );
    heard.sort();
    assert_eq!(heard, ["fast", "slow"]);
    let woke = until(&mut socket, |frame| match frame {
        ServerFrame::Msg {
            payload: NapFromServer::Woke,
            id,
            ..
        } => Some(id),
        other => panic!("{other:?}"),
    })
    .await;
    assert_eq!(woke.as_deref(), Some("slow"));
}

#[tokio::test]
async fn a_client_that_sends_but_never_reads_is_closed_after_the_write_timeout() {
    let write_timeout = Duration::from_millis(500);
    // The queue is far larger than anything this test sends: only the write timeout can
    // notice this client. The server's send buffer and the client's receive window hold a
    // few KiB between them, less than one reply: the server's writes stall on the first.
    let mut server = start_with(
        Limits {
            outbound_queue: 1_000_000,
            outbound_queue_bytes: 1 << 30,
            write_timeout,
            ..Limits::default()
        },
        Some(4096),
    )
    .await;
    let mut stuck = Client::connect_with_small_window(server.addr, "/omni/ws").await;
    let stuck_session = match stuck.next::<NapFromServer>().await {
        ServerFrame::Welcome { session, .. } => session,
        other => panic!("expected welcome, got {other:?}"),
    };
    let (mut bystander, _) = welcomed(server.addr).await;

    // Each echo comes back as large as it went, and this client reads none of them.
    const ECHOES: usize = 64;
    let text = "x".repeat(32 * 1024);
    let frame = ClientFrame::msg(NapFromClient::Echo(text))
        .encode()
        .unwrap();
    // The server cannot be stuck on a reply before the first echo is sent.
    let stalled_by = Instant::now();
    for _ in 0..ECHOES {
        let sent = tokio::time::timeout(
            PATIENCE,
            stuck.socket.send(Message::Text(frame.clone().into())),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            break;
        }
    }

    let bound = write_timeout + Duration::from_millis(1500);
    let (session, at) = tokio::time::timeout_at((stalled_by + bound).into(), server.gone.recv())
        .await
        .unwrap_or_else(|_| panic!("the stuck connection was not closed within {bound:?}"))
        .unwrap();
    // Its session's `disconnected` hook ran: the connection is over on the server.
    assert_eq!(session, stuck_session, "another session was disconnected");
    assert!(
        at - stalled_by <= bound,
        "closed after {:?}",
        at - stalled_by
    );
    assert_eq!(server.endpoint.metrics().slow_consumers, 1);

    // The socket is closed on the server's side: reading it now yields at most what the
    // kernels held when the server gave up, then its end (or a reset), not the other replies.
    let MaybeTlsStream::Plain(mut tcp) = stuck.socket.into_inner() else {
        unreachable!("a plain connection")
    };
    let mut read = 0;
    let mut buf = vec![0; 64 * 1024];
    let ended = loop {
        let deadline = (stalled_by + bound).into();
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) => break "its end",
            Ok(Ok(n)) => read += n,
            Ok(Err(err)) => {
                use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
                assert!(
                    matches!(err.kind(), ConnectionReset | ConnectionAborted | BrokenPipe),
                    "{err}"
                );
                break "a reset";
            }
            Err(_) => panic!(
                "the stuck connection is still open {bound:?} after the stall ({read} bytes read)"
            ),
        }
    };
    assert!(
        read < ECHOES * 32 * 1024,
        "{read} bytes read before {ended}: the server went on writing"
    );

    // Everyone else is served as before, and no other session was disconnected.
    bystander.msg(NapFromClient::Echo("ok".into()), 1).await;
    until(&mut bystander, |frame| match frame {
        ServerFrame::Msg {
            payload: NapFromServer::Echoed(text),
            ..
        } => Some(text),
        _ => None,
    })
    .await;
    assert!(server.gone.try_recv().is_err(), "a second disconnect");
}

#[tokio::test]
async fn a_connection_displaced_by_a_resume_is_closed_with_4000() {
    let server = start(Limits::default()).await;
    let (mut first, session) = welcomed(server.addr).await;
    let mut second =
        Client::connect(server.addr, &format!("/omni/ws?session={session}&after=0")).await;
    match second.next::<NapFromServer>().await {
        ServerFrame::Welcome {
            session: resumed,
            resumed: true,
            ..
        } => assert_eq!(resumed, session),
        other => panic!("expected the resumed welcome, got {other:?}"),
    }
    assert_eq!(first.close_code().await, Some(4000));
}

#[tokio::test]
async fn a_component_left_and_joined_again_at_once_keeps_the_order_of_its_frames() {
    let server = start(Limits::default()).await;
    let mut socket = Client::connect(server.addr, "/omni/mux").await;
    join(&mut socket, &server.mux, "c", "a").await;
    // The nap is still running when the client leaves, and joins again under the same id.
    socket.send(to("c", NapFromClient::Sleep(300), 1)).await;
    socket
        .send(ClientFrame::<()>::Leave { id: "c".into() })
        .await;
    socket.send(join_frame(&server.mux, "c", "b")).await;
    assert_eq!(
        socket.next::<NapFromServer>().await,
        ServerFrame::Left { id: "c".into() }
    );
    expect_joined(&mut socket).await;
    // Nothing of the component that left follows: not its nap's reply, not a second `left`.
    assert!(socket.quiet_for(Duration::from_millis(600)).await);
    socket
        .send(to("c", NapFromClient::Echo("still here".into()), 2))
        .await;
    let echoed = until(&mut socket, |frame| match frame {
        ServerFrame::Msg {
            payload: NapFromServer::Echoed(text),
            id,
            ..
        } => Some((text, id)),
        other => panic!("{other:?}"),
    })
    .await;
    assert_eq!(echoed, ("still here".into(), Some("c".into())));
}
