//! The Rust client against a real server: every transport, offline queueing, version
//! refusal, a server restart, and fault injection through a TCP proxy that cuts and pauses
//! connections at random.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::PATIENCE;
use common::proxy::Proxy;
use common::relay::{
    Relay, RelayFromClient, RelayFromServer, RelayHandler, next, next_echo, next_state,
};
use common::stuck::{self, Stuck};
use omni::client::{AckError, Backoff, Client, Heartbeat, Messages, SendError, Transport};
use omni::server::{Endpoint, Limits};
use omni::{Context, ErrorCode, HandlerResult, TransportState};
use rand::Rng;

/// The `Echo` the handler refuses (returns an `Err` for).
const REFUSED: u32 = u32::MAX;

/// Every `Echo` a server's handlers handled, in order.
type Handled = Arc<Mutex<Vec<u32>>>;

struct Relayer(Handled);

impl RelayHandler for Relayer {
    async fn echo(&mut self, cx: &mut Context<Relay>, n: u32) -> HandlerResult {
        if n == REFUSED {
            return Err("refused on purpose".into());
        }
        self.0.lock().unwrap().push(n);
        cx.send(RelayFromServer::Echoed(n));
        Ok(())
    }
}

/// A server on `addr` (or a free port); returns its address, what it handled, and a handle
/// that stops it.
async fn server(addr: Option<SocketAddr>) -> (SocketAddr, Handled, Stop) {
    let handled = Handled::default();
    let h = handled.clone();
    let endpoint: Endpoint<Relay, Relayer> = Endpoint::builder(move || Relayer(h.clone()))
        .limits(Limits::default())
        .build();
    let listener = tokio::net::TcpListener::bind(addr.unwrap_or(([127, 0, 0, 1], 0).into()))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = omni::axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let router = omni::axum::Router::new().nest("/omni", endpoint.router());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = endpoint.clone();
    let task = tokio::spawn(async move {
        omni::axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                shutdown.shutdown();
            })
            .await
            .unwrap();
    });
    (addr, handled, Stop(Some(stop), task))
}

/// Stops a test server and frees its port.
struct Stop(
    Option<tokio::sync::oneshot::Sender<()>>,
    tokio::task::JoinHandle<()>,
);

impl Stop {
    async fn stop(mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(PATIENCE, &mut self.1).await;
        self.1.abort();
    }
}

/// The heartbeat of [`client`]s: short, so that a silent connection is noticed in a second.
const HEARTBEAT: Heartbeat = Heartbeat {
    interval: Duration::from_millis(250),
    timeout: Duration::from_millis(500),
};

fn client(addr: SocketAddr, transport: Transport) -> (Client<Relay>, Messages<Relay>) {
    client_with(addr, transport, HEARTBEAT)
}

fn client_with(
    addr: SocketAddr,
    transport: Transport,
    heartbeat: Heartbeat,
) -> (Client<Relay>, Messages<Relay>) {
    Client::<Relay>::builder(format!("http://{addr}/omni"))
        .transport(transport)
        .backoff(Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            ..Backoff::default()
        })
        .heartbeat(heartbeat)
        .poll_interval(Duration::from_millis(50))
        .connect()
}

const TRANSPORTS: [Transport; 3] = [Transport::Ws, Transport::Http, Transport::Sse];

#[tokio::test]
async fn every_transport_connects_sends_and_receives() {
    let (addr, handled, _stop) = server(None).await;
    for transport in TRANSPORTS {
        let (client, mut messages) = client(addr, transport);
        assert_eq!(next_state(&mut messages).await, TransportState::Connecting);
        let TransportState::Connected { session } = next_state(&mut messages).await else {
            panic!("{transport:?}: not connected");
        };
        assert_eq!(client.session(), Some(session));
        for n in 1..=3 {
            client.send(RelayFromClient::Echo(n)).unwrap();
        }
        for n in 1..=3 {
            assert_eq!(next_echo(&mut messages).await, n, "{transport:?}");
        }
        // Every message is handed back to apply; only client messages are sent.
        assert!(matches!(
            client.dispatch(Relay::Echoed(9)),
            (Relay::Echoed(9), None)
        ));
        assert!(matches!(
            client.dispatch(Relay::Echo(4)),
            (Relay::Echo(4), Some(Ok(_)))
        ));
        assert_eq!(next_echo(&mut messages).await, 4);

        client.close();
        let mut rest = Vec::new();
        while let Some(msg) = tokio::time::timeout(PATIENCE, messages.recv())
            .await
            .unwrap()
        {
            rest.push(msg);
        }
        assert!(
            matches!(
                &rest[..],
                [Relay::Transport(TransportState::Disconnected {
                    code: 1000,
                    ..
                })]
            ),
            "{transport:?}: {rest:?}"
        );
        assert_eq!(
            client.send(RelayFromClient::Echo(5)),
            Err(SendError::Closed)
        );
    }
    assert_eq!(handled.lock().unwrap().len(), 12);
}

#[tokio::test]
async fn messages_sent_offline_are_delivered_once_after_the_server_appears() {
    for transport in TRANSPORTS {
        // A port with nothing behind it yet.
        let addr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let (client, mut messages) = client(addr, transport);
        for n in 1..=5 {
            client.send(RelayFromClient::Echo(n)).unwrap();
        }
        // Failed attempts are reported, with growing backoff.
        assert_eq!(next_state(&mut messages).await, TransportState::Connecting);
        assert!(matches!(
            next_state(&mut messages).await,
            TransportState::Disconnected { code: 1006, .. }
        ));
        assert!(matches!(
            next_state(&mut messages).await,
            TransportState::Reconnecting { attempt: 1, .. }
        ));

        let (_, handled, stop) = server(Some(addr)).await;
        for n in 1..=5 {
            assert_eq!(next_echo(&mut messages).await, n, "{transport:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(*handled.lock().unwrap(), [1, 2, 3, 4, 5], "{transport:?}");
        assert_eq!(client.unacknowledged(), 0);
        client.close();
        stop.stop().await;
    }
}

#[tokio::test]
async fn a_full_queue_says_so() {
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let (client, _messages) = Client::<Relay>::builder(format!("http://{addr}/omni"))
        .queue(3)
        .connect();
    for n in 0..3 {
        client.send(RelayFromClient::Echo(n)).unwrap();
    }
    assert_eq!(
        client.send(RelayFromClient::Echo(3)),
        Err(SendError::QueueFull { capacity: 3 })
    );
}

mod other_build {
    /// The same protocol name, built from a different enum: its schema hash differs.
    #[omni::protocol(name = "Relay")]
    #[derive(Debug, Clone, PartialEq)]
    pub enum Relay {
        #[client]
        Echo(u64),
        #[server]
        Echoed(u64),
    }
}

#[tokio::test]
async fn a_client_from_another_protocol_version_is_refused_once_and_stops() {
    let (addr, _, _stop) = server(None).await;
    let proxy = Proxy::start(addr).await;
    for transport in TRANSPORTS {
        let accepted_before = proxy.accepted();
        let (client, mut messages) =
            Client::<other_build::Relay>::builder(format!("http://{}/omni", proxy.addr))
                .transport(transport)
                .backoff(Backoff {
                    base: Duration::from_millis(10),
                    ..Backoff::default()
                })
                .connect();
        if transport == Transport::Sse {
            // The SSE transport sends its `hello` with its first message.
            client.send(other_build::RelayFromClient::Echo(1)).unwrap();
        }
        let mut states = Vec::new();
        while let Some(msg) = tokio::time::timeout(PATIENCE, messages.recv())
            .await
            .unwrap()
        {
            if let other_build::Relay::Transport(state) = msg {
                states.push(state);
            }
        }
        // A distinct state, ending the stream: retrying cannot help, a newer build can.
        assert!(
            matches!(states.last(), Some(TransportState::Incompatible { reason }) if reason.contains("schema")),
            "{transport:?}: {states:?}"
        );
        assert!(
            !states
                .iter()
                .any(|s| matches!(s, TransportState::Reconnecting { .. })),
            "{transport:?} retried: {states:?}"
        );
        // No further connection attempts follow.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let attempts = proxy.accepted() - accepted_before;
        assert!(attempts <= 2, "{transport:?}: {attempts} connections");
    }
}

#[tokio::test]
async fn a_restarted_server_is_reconnected_to_and_its_lost_session_reported_as_reset() {
    for transport in TRANSPORTS {
        let (addr, _, stop) = server(None).await;
        let (client, mut messages) = client(addr, transport);
        client.send(RelayFromClient::Echo(1)).unwrap();
        assert_eq!(next_echo(&mut messages).await, 1);
        let first = client.session().unwrap();

        stop.stop().await;
        client.send(RelayFromClient::Echo(2)).unwrap();
        let (_, handled, stop) = server(Some(addr)).await;

        let mut states = Vec::new();
        loop {
            match next(&mut messages).await {
                Relay::Transport(state) => {
                    let reset = state == TransportState::Reset;
                    states.push(state);
                    if reset {
                        break;
                    }
                }
                Relay::Echoed(n) => panic!("{transport:?}: Echoed({n}) before the reset"),
                other => panic!("{other:?}"),
            }
        }
        assert!(
            states
                .iter()
                .any(|s| matches!(s, TransportState::Connected { session } if *session != first)),
            "{transport:?}: {states:?}"
        );
        assert_eq!(next_echo(&mut messages).await, 2, "{transport:?}");
        assert_eq!(*handled.lock().unwrap(), [2]);
        client.close();
        stop.stop().await;
    }
}

#[tokio::test]
async fn acks_and_refusals_of_a_ref_can_be_awaited() {
    let (addr, handled, stop) = server(None).await;
    for transport in TRANSPORTS {
        let (client, mut messages) = client(addr, transport);
        let one = client.send(RelayFromClient::Echo(1)).unwrap();
        let refused = client.send(RelayFromClient::Echo(REFUSED)).unwrap();
        let two = client.send(RelayFromClient::Echo(2)).unwrap();
        let within = |ack| async move { tokio::time::timeout(PATIENCE, ack).await.unwrap() };
        assert_eq!(within(client.acked(two)).await, Ok(()), "{transport:?}");
        match within(client.acked(refused)).await {
            Err(AckError::Rejected { code, message }) => {
                assert_eq!(code, ErrorCode::Rejected, "{transport:?}");
                assert!(message.contains("refused on purpose"), "{message}");
            }
            other => panic!("{transport:?}: {other:?}"),
        }
        // Answers that came before the question are remembered.
        assert_eq!(client.acked(one).await, Ok(()), "{transport:?}");
        assert_eq!(client.acked(two + 100).await, Err(AckError::Unknown));
        client.close();
        // The refusal was that message's outcome, not the connection's: the stream, read to
        // its end, never reported it.
        while let Some(msg) = tokio::time::timeout(PATIENCE, messages.recv())
            .await
            .unwrap()
        {
            assert!(
                !matches!(msg, Relay::Transport(TransportState::Error(_))),
                "{transport:?}: {msg:?}"
            );
        }
    }
    assert_eq!(*handled.lock().unwrap(), [1, 2, 1, 2, 1, 2]);
    stop.stop().await;

    // Offline, the answer waits for the server; a close ends the wait.
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let (client, _messages) = client(addr, Transport::Ws);
    let sent = client.send(RelayFromClient::Echo(7)).unwrap();
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.acked(sent).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished());
    let (_, _, stop) = server(Some(addr)).await;
    assert_eq!(
        tokio::time::timeout(PATIENCE, waiting)
            .await
            .unwrap()
            .unwrap(),
        Ok(())
    );
    stop.stop().await;
    let later = client.send(RelayFromClient::Echo(8)).unwrap();
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.acked(later).await }
    });
    client.close();
    assert_eq!(
        tokio::time::timeout(PATIENCE, waiting)
            .await
            .unwrap()
            .unwrap(),
        Err(AckError::Closed)
    );
}

/// The connect hook's message (`Echo(0)`) is handled before every queued one on a session the
/// server just made, and the hook knows a resumed session from a new one.
#[tokio::test]
async fn the_connect_hook_goes_before_the_queue_after_a_restart() {
    for transport in TRANSPORTS {
        let (addr, handled, stop) = server(None).await;
        let proxy = Proxy::start(addr).await;
        let told = Arc::new(Mutex::new(Vec::new()));
        let hook_told = told.clone();
        let (client, mut messages) =
            Client::<Relay>::builder(format!("http://{}/omni", proxy.addr))
                .transport(transport)
                .backoff(Backoff {
                    base: Duration::from_millis(20),
                    cap: Duration::from_millis(100),
                    ..Backoff::default()
                })
                .heartbeat(HEARTBEAT)
                .poll_interval(Duration::from_millis(50))
                .on_connect(move |info| {
                    hook_told.lock().unwrap().push(info.resumed);
                    vec![RelayFromClient::Echo(0)]
                })
                .connect();
        // Queued before the first connect: still after the hook's message.
        client.send(RelayFromClient::Echo(1)).unwrap();
        assert_eq!(next_echo(&mut messages).await, 0, "{transport:?}");
        assert_eq!(next_echo(&mut messages).await, 1, "{transport:?}");
        assert_eq!(*handled.lock().unwrap(), [0, 1], "{transport:?}");

        if transport != Transport::Http {
            // A cut connection resumes the session: the hook runs and says so.
            proxy.cut();
            assert_eq!(next_echo(&mut messages).await, 0, "{transport:?}");
            assert_eq!(*told.lock().unwrap(), [false, true], "{transport:?}");
        }

        stop.stop().await;
        for n in 2..=4 {
            client.send(RelayFromClient::Echo(n)).unwrap();
        }
        let (_, handled, stop) = server(Some(addr)).await;
        let mut echoed = Vec::new();
        while echoed.len() < 4 {
            echoed.push(next_echo(&mut messages).await);
        }
        assert_eq!(echoed, [0, 2, 3, 4], "{transport:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*handled.lock().unwrap(), [0, 2, 3, 4], "{transport:?}");
        assert_eq!(told.lock().unwrap().last(), Some(&false), "{transport:?}");
        assert_eq!(client.unacknowledged(), 0, "{transport:?}");
        client.close();
        stop.stop().await;
    }
}

/// Checks a run's transport states: they start connecting, every drop is followed by a
/// reconnect, and every connection attempt by success or a drop.
fn assert_well_formed(states: &[TransportState], transport: Transport) {
    assert_eq!(
        states.first(),
        Some(&TransportState::Connecting),
        "{transport:?}"
    );
    for pair in states.windows(2) {
        let ok = match (&pair[0], &pair[1]) {
            (TransportState::Connecting, next) => matches!(
                next,
                TransportState::Connected { .. } | TransportState::Disconnected { .. }
            ),
            (TransportState::Connected { .. }, next) => matches!(
                next,
                TransportState::Disconnected { .. }
                    | TransportState::Reset
                    | TransportState::Error(_)
            ),
            (TransportState::Disconnected { .. }, next) => {
                matches!(next, TransportState::Reconnecting { .. })
            }
            (TransportState::Reconnecting { .. }, next) => {
                matches!(next, TransportState::Connecting)
            }
            (
                TransportState::Error(_)
                | TransportState::Reset
                | TransportState::TopicReset { .. },
                _,
            ) => true,
            // These clients have no credentials to refuse.
            (TransportState::Unauthorized { .. }, _) => false,
            // A state this test does not know of is a state it has not checked.
            (other, _) => panic!("{transport:?}: an unknown state {other:?}"),
        };
        assert!(ok, "{transport:?}: {:?} then {:?}", pair[0], pair[1]);
    }
}

/// Where [`survives_faults`] is in its half-open step.
enum HalfOpen {
    /// Not yet: traffic flows through cuts.
    Ahead,
    /// The saboteur is held off; waiting for the client to be connected again before the
    /// proxy goes silent.
    Settling {
        quiet: tokio::sync::OwnedMutexGuard<()>,
        since: tokio::time::Instant,
    },
    /// The proxy forwards nothing and closes nothing; the client must notice by itself.
    Silent {
        // Held, never read: the saboteur waits until it is dropped.
        _quiet: tokio::sync::OwnedMutexGuard<()>,
        since: tokio::time::Instant,
        severed: u64,
    },
    Done,
}

/// 1,000 client messages and 1,000 server frames through a proxy that severs at least 20
/// connections at random moments while they flow, and halfway goes silent without closing
/// anything until the client's heartbeat notices: everything arrives exactly once, in order.
async fn survives_faults(transport: Transport) {
    let (addr, handled, _stop) = server(None).await;
    let proxy = Arc::new(Proxy::start(addr).await);
    let (client, mut messages) = client(proxy.addr, transport);

    // The saboteur cuts only while it can take this, so the half-open step can stop it.
    let quiet = Arc::new(tokio::sync::Mutex::new(()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saboteur = {
        let (proxy, done, quiet) = (proxy.clone(), done.clone(), quiet.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let wait = rand::rng().random_range(20..120);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                let _quiet = quiet.lock().await;
                proxy.cut();
            }
        })
    };

    let sender = {
        let client = client.clone();
        tokio::spawn(async move {
            for n in 0..1000 {
                loop {
                    match client.send(RelayFromClient::Echo(n)) {
                        Ok(_) => break,
                        Err(SendError::QueueFull { .. }) => {
                            tokio::time::sleep(Duration::from_millis(5)).await
                        }
                        Err(err) => panic!("{err}"),
                    }
                }
                // Spread over a few seconds, so that cuts land while traffic flows.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };

    // A silent connection is noticed at the first heartbeat tick past interval + timeout.
    let noticed_within = HEARTBEAT.interval * 2 + HEARTBEAT.timeout + Duration::from_secs(1);
    // Long enough after the saboteur's last cut that the client has seen all it did.
    let settle = Duration::from_millis(100);
    let mut half_open = HalfOpen::Ahead;
    let mut connected = false;
    let mut echoes = Vec::new();
    let mut states = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while echoes.len() < 1000 {
        let until = match &half_open {
            HalfOpen::Silent { since, .. } => deadline.min(*since + noticed_within),
            _ => deadline,
        };
        let Ok(msg) = tokio::time::timeout_at(until, messages.recv()).await else {
            if let HalfOpen::Silent { since, .. } = &half_open {
                panic!(
                    "{transport:?}: a silent connection went unnoticed for {:?} (bound {noticed_within:?}); states {:?}",
                    since.elapsed(),
                    &states[states.len().saturating_sub(8)..]
                );
            }
            panic!(
                "{transport:?}: {} of 1000 echoes (missing {:?}), {} unacknowledged, handled {}; states {:?}",
                echoes.len(),
                (0..1000)
                    .filter(|n| !echoes.contains(n))
                    .collect::<Vec<_>>(),
                client.unacknowledged(),
                handled.lock().unwrap().len(),
                &states[states.len().saturating_sub(8)..]
            );
        };
        let msg = msg.expect("the client is running");
        let echoed = matches!(msg, Relay::Echoed(_));
        match msg {
            Relay::Echoed(n) => echoes.push(n),
            Relay::Transport(state) => {
                connected = match state {
                    TransportState::Connected { .. } => true,
                    TransportState::Connecting
                    | TransportState::Disconnected { .. }
                    | TransportState::Reconnecting { .. } => false,
                    _ => connected,
                };
                let dropped = matches!(state, TransportState::Disconnected { .. });
                states.push(state);
                if dropped && let HalfOpen::Silent { severed, .. } = &half_open {
                    assert_eq!(
                        proxy.severed(),
                        *severed,
                        "{transport:?}: the proxy closed a connection while silent"
                    );
                    proxy.resume();
                    // Dropping the guard lets the saboteur go on.
                    half_open = HalfOpen::Done;
                }
            }
            other => panic!("{other:?}"),
        }
        half_open = match half_open {
            HalfOpen::Ahead if echoes.len() >= 500 => HalfOpen::Settling {
                quiet: quiet.clone().lock_owned().await,
                since: tokio::time::Instant::now(),
            },
            // An echo on a connected client, well after the last cut: this connection works,
            // and whatever drop is reported from now on comes from the silence.
            HalfOpen::Settling { quiet, since }
                if connected && echoed && since.elapsed() >= settle =>
            {
                proxy.pause();
                HalfOpen::Silent {
                    _quiet: quiet,
                    since: tokio::time::Instant::now(),
                    severed: proxy.severed(),
                }
            }
            other => other,
        };
    }
    // Counted before the saboteur stops: cuts that landed while traffic flowed.
    let severed = proxy.severed();
    sender.await.unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    saboteur.await.unwrap();

    assert!(
        matches!(half_open, HalfOpen::Done),
        "{transport:?}: the half-open step never ran"
    );
    assert_eq!(
        echoes,
        (0..1000).collect::<Vec<_>>(),
        "{transport:?}: server frames"
    );
    assert_eq!(
        *handled.lock().unwrap(),
        (0..1000).collect::<Vec<_>>(),
        "{transport:?}: client messages handled"
    );
    assert!(
        severed >= 20,
        "{transport:?}: only {severed} connections severed"
    );
    let drops = states
        .iter()
        .filter(|s| matches!(s, TransportState::Disconnected { .. }))
        .count();
    // Between HTTP requests a cut is invisible (the next request opens a new connection); the
    // silence still costs the HTTP transport a timed-out request.
    let least = if transport == Transport::Http { 1 } else { 10 };
    assert!(
        drops >= least,
        "{transport:?}: the client saw {drops} drops: {states:?}"
    );
    assert_well_formed(&states, transport);
    client.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_survives_cuts_and_a_half_open_connection() {
    survives_faults(Transport::Ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_survives_cuts_and_a_half_open_connection() {
    survives_faults(Transport::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_survives_cuts_and_a_half_open_connection() {
    survives_faults(Transport::Sse).await;
}

/// Reads `messages` until the connection drops (`Ok`, with the states seen) or `until`
/// passes (`Err`, with the states seen); panics on a server message.
async fn first_drop(
    messages: &mut Messages<Relay>,
    until: tokio::time::Instant,
    transport: Transport,
) -> Result<Vec<TransportState>, Vec<TransportState>> {
    let mut states = Vec::new();
    loop {
        let Ok(msg) = tokio::time::timeout_at(until, messages.recv()).await else {
            return Err(states);
        };
        match msg.expect("the client is running") {
            Relay::Transport(state @ TransportState::Disconnected { .. }) => {
                states.push(state);
                return Ok(states);
            }
            Relay::Transport(state) => states.push(state),
            other => panic!("{transport:?}: {other:?} while silent"),
        }
    }
}

/// Two idle clients behind one proxy that goes silent (forwards nothing, closes nothing): the
/// one with a short heartbeat notices by its heartbeat alone, within interval + timeout and a
/// tick, and reconnects once the path works again; the one whose heartbeat is far longer
/// notices nothing in that time, so it is the heartbeat that notices, not anything else.
/// Nothing is in flight, so no request timeout can notice first.
async fn notices_a_silent_connection(transport: Transport) {
    // Longer than the server's SSE keep-alive (1 s), so that an idle stream is not silent.
    let short = Heartbeat {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
    };
    let long = Heartbeat {
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(60),
    };
    let (addr, _, _stop) = server(None).await;
    let proxy = Proxy::start(addr).await;
    let (watchful, mut watchful_messages) = client_with(proxy.addr, transport, short);
    let (trusting, mut trusting_messages) = client_with(proxy.addr, transport, long);
    watchful.send(RelayFromClient::Echo(1)).unwrap();
    trusting.send(RelayFromClient::Echo(1)).unwrap();
    assert_eq!(next_echo(&mut watchful_messages).await, 1, "{transport:?}");
    assert_eq!(next_echo(&mut trusting_messages).await, 1, "{transport:?}");

    proxy.pause();
    let bound = short.interval * 2 + short.timeout + Duration::from_secs(1);
    let until = tokio::time::Instant::now() + bound;
    if let Err(states) = first_drop(&mut watchful_messages, until, transport).await {
        panic!("{transport:?}: silence unnoticed within {bound:?}; states {states:?}");
    }
    // Waits out the same bound.
    if let Ok(states) = first_drop(&mut trusting_messages, until, transport).await {
        panic!(
            "{transport:?}: a client with a {long:?} heartbeat dropped within {bound:?}: \
             something other than the heartbeat noticed; states {states:?}"
        );
    }
    assert_eq!(proxy.severed(), 0, "{transport:?}: the proxy cut");

    proxy.resume();
    watchful.send(RelayFromClient::Echo(2)).unwrap();
    trusting.send(RelayFromClient::Echo(2)).unwrap();
    assert_eq!(next_echo(&mut watchful_messages).await, 2, "{transport:?}");
    assert_eq!(next_echo(&mut trusting_messages).await, 2, "{transport:?}");
    watchful.close();
    trusting.close();
}

#[tokio::test]
async fn ws_notices_a_silent_connection() {
    notices_a_silent_connection(Transport::Ws).await;
}

#[tokio::test]
async fn http_notices_a_silent_connection() {
    notices_a_silent_connection(Transport::Http).await;
}

#[tokio::test]
async fn sse_notices_a_silent_connection() {
    notices_a_silent_connection(Transport::Sse).await;
}

/// The big-message variant of the protocol: text payloads.
mod big {
    #[omni::protocol]
    #[derive(Debug, Clone, PartialEq)]
    pub enum Note {
        #[client]
        Post(String),
        #[server]
        Posted(usize),
    }

    pub struct Board;

    impl NoteHandler for Board {
        async fn post(
            &mut self,
            cx: &mut omni::Context<Note>,
            text: String,
        ) -> omni::HandlerResult {
            cx.send(NoteFromServer::Posted(text.len()));
            Ok(())
        }
    }
}

#[tokio::test]
async fn messages_over_the_frame_limit_are_refused_and_http_batches_stay_under_it() {
    let endpoint: Endpoint<big::Note, big::Board> = Endpoint::new(|| big::Board);
    let addr = common::serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    for transport in [Transport::Http, Transport::Sse] {
        let (client, mut messages) = Client::<big::Note>::builder(format!("http://{addr}/omni"))
            .transport(transport)
            .connect();
        assert!(matches!(
            client.send(big::NoteFromClient::Post("x".repeat(70 * 1024))),
            Err(SendError::TooLarge { limit: 65536, .. })
        ));
        // 200 messages of 2 KiB: 400 KiB queued, carried in requests under the 64 KiB limit.
        for _ in 0..200 {
            client
                .send(big::NoteFromClient::Post("y".repeat(2048)))
                .unwrap();
        }
        let mut posted = 0;
        while posted < 200 {
            match tokio::time::timeout(PATIENCE, messages.recv())
                .await
                .unwrap()
                .unwrap()
            {
                big::Note::Posted(2048) => posted += 1,
                big::Note::Transport(TransportState::Error(err)) => panic!("{transport:?}: {err}"),
                _ => {}
            }
        }
        client.close();
    }
}

/// A protocol of large messages, so that a few of them fill any socket buffer.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Bulk {
    #[client]
    Put(String),
    #[server]
    Took(u32),
}

/// The next transport state of a `Bulk` client within `wait`, skipping server messages.
async fn next_bulk_state(messages: &mut Messages<Bulk>, wait: Duration) -> TransportState {
    let until = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(until, messages.recv())
            .await
            .unwrap_or_else(|_| panic!("no transport state within {wait:?}"))
            .expect("the client is running");
        if let Bulk::Transport(state) = msg {
            return state;
        }
    }
}

/// A `Bulk` client of `peer` that has queued far more than the socket buffers hold, once
/// welcomed.
async fn stuck_client(
    peer: &Stuck,
    heartbeat: Heartbeat,
    write_timeout: Duration,
) -> (Client<Bulk>, Messages<Bulk>) {
    let (client, mut messages) = Client::<Bulk>::builder(format!("http://{}/omni", peer.addr))
        .heartbeat(heartbeat)
        .write_timeout(write_timeout)
        .backoff(Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            ..Backoff::default()
        })
        .connect();
    // 300 x 60 KB: far beyond what loopback buffers take, whether the window holds it back
    // (256 in flight) or not.
    let bulky = "x".repeat(60_000);
    for _ in 0..300 {
        client.send(BulkFromClient::Put(bulky.clone())).unwrap();
    }
    assert_eq!(
        next_bulk_state(&mut messages, PATIENCE).await,
        TransportState::Connecting
    );
    let state = next_bulk_state(&mut messages, PATIENCE).await;
    assert!(
        matches!(state, TransportState::Connected { .. }),
        "{state:?}"
    );
    (client, messages)
}

#[tokio::test]
async fn a_silent_peer_is_noticed_while_a_write_is_stuck() {
    let peer = Stuck::start(Some(stuck::welcome("Bulk")), Duration::from_secs(30)).await;
    let heartbeat = Heartbeat {
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(300),
    };
    // A write timeout far away: only the heartbeat can notice.
    let (client, mut messages) = stuck_client(&peer, heartbeat, Duration::from_secs(60)).await;
    // Silence is noticed at the first tick past interval + timeout.
    let bound = heartbeat.interval * 2 + heartbeat.timeout + Duration::from_secs(1);
    let state = next_bulk_state(&mut messages, bound).await;
    assert!(
        matches!(state, TransportState::Disconnected { code: 1006, .. }),
        "{state:?}"
    );
    let state = next_bulk_state(&mut messages, PATIENCE).await;
    assert!(
        matches!(state, TransportState::Reconnecting { attempt: 1, .. }),
        "{state:?}"
    );
    client.close();
}

#[tokio::test]
async fn a_write_that_makes_no_progress_ends_the_connection() {
    let peer = Stuck::start(Some(stuck::welcome("Bulk")), Duration::from_secs(30)).await;
    // A heartbeat far away: only the write timeout can notice.
    let heartbeat = Heartbeat {
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(60),
    };
    let write_timeout = Duration::from_millis(300);
    let (client, mut messages) = stuck_client(&peer, heartbeat, write_timeout).await;
    let bound = write_timeout + Duration::from_secs(1);
    let state = next_bulk_state(&mut messages, bound).await;
    assert!(
        matches!(state, TransportState::Disconnected { code: 1006, .. }),
        "{state:?}"
    );
    // And it is replaced, with backoff.
    let state = next_bulk_state(&mut messages, PATIENCE).await;
    assert!(
        matches!(state, TransportState::Reconnecting { attempt: 1, .. }),
        "{state:?}"
    );
    assert_eq!(
        next_bulk_state(&mut messages, PATIENCE).await,
        TransportState::Connecting
    );
    let state = next_bulk_state(&mut messages, PATIENCE).await;
    assert!(
        matches!(state, TransportState::Connected { .. }),
        "{state:?}"
    );
    assert_eq!(peer.accepted(), 2);
    assert_eq!(client.unacknowledged(), 300, "nothing was answered");
    client.close();
}

/// A protocol whose messages carry some bulk both ways.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Padded {
    /// Answered with a `Got` of the same number and padding.
    #[client]
    Put { n: u32, pad: String },
    #[server]
    Got { n: u32, pad: String },
}

struct Putter(Handled);

impl PaddedHandler for Putter {
    async fn put(&mut self, cx: &mut Context<Padded>, n: u32, pad: String) -> HandlerResult {
        self.0.lock().unwrap().push(n);
        cx.send(PaddedFromServer::Got { n, pad });
        Ok(())
    }
}

/// A `Padded` server on `addr` (or a free port) whose sockets have small kernel buffers
/// (accepted sockets inherit the listener's), so that a few hundred KiB unread fill a
/// direction, whatever the kernel's autotuning would allow. Each start is a new server: it
/// knows no session of an earlier one.
async fn small_buffered_server(addr: Option<SocketAddr>) -> (SocketAddr, Handled, Stop) {
    let handled = Handled::default();
    let h = handled.clone();
    let endpoint: Endpoint<Padded, Putter> = Endpoint::builder(move || Putter(h.clone())).build();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.set_send_buffer_size(64 * 1024).unwrap();
    socket
        .bind(addr.unwrap_or(([127, 0, 0, 1], 0).into()))
        .unwrap();
    let listener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    let router = omni::axum::Router::new().nest("/omni", endpoint.router());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        omni::axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                endpoint.shutdown();
            })
            .await
            .unwrap();
    });
    (addr, handled, Stop(Some(stop), task))
}

/// The next message of a `Padded` client, or a panic saying `what` once `deadline` passes.
async fn next_padded(
    messages: &mut Messages<Padded>,
    deadline: tokio::time::Instant,
    what: impl FnOnce() -> String,
) -> Padded {
    match tokio::time::timeout_at(deadline, messages.recv()).await {
        Ok(msg) => msg.expect("the client is running"),
        Err(_) => panic!("{}", what()),
    }
}

/// A server stops while clients are connected to it; each queues a large backlog while
/// nothing serves the port; a new server starts on the same port, without their sessions.
/// Each client is told its session is gone (`reset`), then resends its whole backlog at once,
/// and the server answers as fast as it reads: a client that reads and writes in one loop
/// soon waits on its write while the server waits on its own, and neither reads. With a
/// reader and a writer and a window of messages in flight, each backlog drains, every
/// message handled once by the new server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backlog_after_a_restart_is_handled_exactly_once() {
    const CLIENTS: u32 = 3;
    const BACKLOG: u32 = 10_000;
    // Client `c`'s messages are numbered from `c * SPAN`; its first, before the restart, is
    // `c * SPAN + BACKLOG`, past its backlog's numbers.
    const SPAN: u32 = 1_000_000;
    // About 10 MB each way per client: past the 4 MiB a loopback send buffer grows to, and the
    // few hundred KiB the server's sockets hold.
    let pad = "p".repeat(1000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (addr, handled_before, stop) = small_buffered_server(None).await;

    // Each client is connected to the first server, which has answered and acknowledged one
    // of its messages.
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (client, mut messages) = Client::<Padded>::builder(format!("http://{addr}/omni"))
            .queue(BACKLOG as usize)
            .heartbeat(Heartbeat {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(2),
            })
            .backoff(Backoff {
                base: Duration::from_millis(20),
                cap: Duration::from_millis(200),
                ..Backoff::default()
            })
            .connect();
        let first = c * SPAN + BACKLOG;
        client
            .send(PaddedFromClient::Put {
                n: first,
                pad: String::new(),
            })
            .unwrap();
        let mut session = None;
        loop {
            match next_padded(&mut messages, deadline, || format!("client {c}: no answer")).await {
                Padded::Transport(TransportState::Connected { session: now }) => {
                    session = Some(now)
                }
                Padded::Transport(_) => {}
                Padded::Got { n, .. } => {
                    assert_eq!(n, first, "client {c}");
                    break;
                }
                Padded::Put { .. } => unreachable!(),
            }
        }
        let session = session.expect("connected before answered");
        while client.unacknowledged() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "client {c}: unacked"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        clients.push((c, client, messages, session));
    }

    stop.stop().await;
    // Each client has seen its connection go before it queues anything: the backlog waits
    // for a server, not for a connection that is closing.
    for (c, _, messages, _) in &mut clients {
        loop {
            let msg =
                next_padded(messages, deadline, || format!("client {c}: never dropped")).await;
            if let Padded::Transport(TransportState::Disconnected { .. }) = msg {
                break;
            }
        }
    }
    for (c, client, _, _) in &clients {
        for n in 0..BACKLOG {
            let n = c * SPAN + n;
            let pad = pad.clone();
            client.send(PaddedFromClient::Put { n, pad }).unwrap();
        }
    }

    let (_, handled, stop) = small_buffered_server(Some(addr)).await;
    let mut drains = Vec::new();
    for (c, client, mut messages, old) in clients {
        // Each client's messages are read as they come, as an application does.
        drains.push(tokio::spawn(async move {
            let mut got = 0u32;
            let mut states = Vec::new();
            while got < BACKLOG {
                let msg = next_padded(&mut messages, deadline, || {
                    let last = &states[states.len().saturating_sub(8)..];
                    format!("client {c}: {got} of {BACKLOG} answered; states {last:?}")
                })
                .await;
                match msg {
                    Padded::Got { n, .. } => {
                        // The old session is gone, and the client was told before anything
                        // of the new one arrived.
                        let last = &states[states.len().saturating_sub(8)..];
                        assert!(
                            states.contains(&TransportState::Reset),
                            "client {c}: an answer before the reset; states {last:?}"
                        );
                        assert!(
                            states.iter().any(|s| matches!(
                                s,
                                TransportState::Connected { session } if *session != old
                            )),
                            "client {c}: not on a new session; states {last:?}"
                        );
                        assert_eq!(n, c * SPAN + got, "client {c}: in order, once");
                        got += 1;
                    }
                    Padded::Transport(state) => states.push(state),
                    Padded::Put { .. } => unreachable!(),
                }
            }
            // The last ack follows the last reply.
            while client.unacknowledged() > 0 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "client {c}: unacked"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            client.close();
        }));
    }
    for drain in drains {
        drain.await.unwrap();
    }
    stop.stop().await;

    // Counted on each server, by content: nothing lost, nothing handled twice.
    let count = |handled: &Handled| {
        let mut counts = std::collections::BTreeMap::<u32, u32>::new();
        for n in handled.lock().unwrap().iter() {
            *counts.entry(*n).or_default() += 1;
        }
        counts
    };
    let firsts: std::collections::BTreeMap<u32, u32> =
        (0..CLIENTS).map(|c| (c * SPAN + BACKLOG, 1)).collect();
    assert_eq!(count(&handled_before), firsts, "the first server");
    let counts = count(&handled);
    let expected: std::collections::BTreeMap<u32, u32> = (0..CLIENTS)
        .flat_map(|c| (0..BACKLOG).map(move |n| (c * SPAN + n, 1)))
        .collect();
    let wrong: Vec<(u32, u32)> = expected
        .keys()
        .map(|n| (*n, counts.get(n).copied().unwrap_or(0)))
        .filter(|(_, times)| *times != 1)
        .chain(
            counts
                .iter()
                .filter(|(n, _)| !expected.contains_key(n))
                .map(|(n, times)| (*n, *times)),
        )
        .collect();
    assert!(
        wrong.is_empty(),
        "{} messages not handled exactly once by the new server (message, times): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}
