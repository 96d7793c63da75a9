//! Credentials on every connect: the client's provider is called before each attempt, its
//! headers reach the server's middleware and, through the request's extensions, the handler;
//! a refusal (401, or a failing provider) is its own state and is not retried until the
//! application says so, and nothing queued meanwhile is lost.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::Proxy;
use common::relay::{
    Relay, RelayFromClient, RelayFromServer, RelayHandler, next, next_echo, next_state,
};
use omni::axum::extract::Request;
use omni::axum::http::StatusCode;
use omni::axum::middleware::{self, Next};
use omni::axum::response::{IntoResponse, Response};
use omni::client::{Backoff, Client, HeaderMap, HeaderValue, Messages, Transport};
use omni::server::Endpoint;
use omni::{Context, HandlerResult, TransportState};

/// What the auth middleware learnt from a request, for the handler.
#[derive(Clone)]
struct Token(String);

/// Every `Echo` handled, with the token of the connection it came on.
type Seen = Arc<Mutex<Vec<(u32, String)>>>;

struct Relayer(Seen);

impl RelayHandler for Relayer {
    async fn echo(&mut self, cx: &mut Context<Relay>, n: u32) -> HandlerResult {
        let token = cx.extensions().get::<Token>().map(|t| t.0.clone());
        self.0.lock().unwrap().push((n, token.unwrap_or_default()));
        cx.send(RelayFromServer::Echoed(n));
        Ok(())
    }
}

/// The server's view: what its handlers saw, and how many requests reached it.
struct Server {
    addr: SocketAddr,
    seen: Seen,
    requests: Arc<AtomicUsize>,
    /// How many of the next requests to answer with 503, as a server being deployed does.
    unavailable: Arc<AtomicUsize>,
}

/// Tokens that stop being accepted: as if they expired.
static REVOKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Accepts `Bearer good-…` unless revoked, refuses anything else with 401.
async fn auth(mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|token| token.starts_with("good-"))
        .filter(|token| !REVOKED.lock().unwrap().iter().any(|t| t == token))
        .map(str::to_owned);
    match token {
        Some(token) => {
            request.extensions_mut().insert(Token(token));
            next.run(request).await
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn server() -> Server {
    let seen = Seen::default();
    let s = seen.clone();
    let endpoint: Endpoint<Relay, Relayer> = Endpoint::builder(move || Relayer(s.clone())).build();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let unavailable = Arc::new(AtomicUsize::new(0));
    let down = unavailable.clone();
    let router = omni::axum::Router::new()
        .nest("/omni", endpoint.router())
        .layer(middleware::from_fn(auth))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            counted.fetch_add(1, Ordering::SeqCst);
            let refused = down
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            async move {
                if refused {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    next.run(request).await
                }
            }
        }));
    let addr = common::serve(router).await;
    Server {
        addr,
        seen,
        requests,
        unavailable,
    }
}

const TRANSPORTS: [Transport; 3] = [Transport::Ws, Transport::Http, Transport::Sse];

/// Ends the client's connection through `proxy` to `server` from outside, so that it
/// connects again. A WebSocket or an event stream is cut. An HTTP client has no connection
/// to cut (between its requests a cut is invisible: the next opens another); its run of
/// requests ends when one fails, so the server answers the next one with 503.
fn end_connection(transport: Transport, server: &Server, proxy: &Proxy) {
    match transport {
        Transport::Http => {
            server.unavailable.store(1, Ordering::SeqCst);
        }
        _ => proxy.cut(),
    }
}

/// The value the test's provider hands out, changed by the test between connects.
type Issued = Arc<Mutex<Result<String, String>>>;

fn client(
    addr: SocketAddr,
    transport: Transport,
    issued: &Issued,
) -> (Client<Relay>, Messages<Relay>) {
    let issued = issued.clone();
    Client::<Relay>::builder(format!("http://{addr}/omni"))
        .transport(transport)
        .backoff(Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
            ..Backoff::default()
        })
        .poll_interval(Duration::from_millis(50))
        .connect_timeout(Duration::from_millis(300))
        .credentials(move || {
            let issued = issued.lock().unwrap().clone();
            async move {
                let token = issued?;
                if token == "hang" {
                    std::future::pending::<()>().await;
                }
                let mut headers = HeaderMap::new();
                let value = HeaderValue::try_from(format!("Bearer {token}")).unwrap();
                headers.insert("authorization", value);
                Ok::<_, String>(headers)
            }
        })
        .connect()
}

/// States up to and including the first that `stop` accepts.
async fn states_until(
    messages: &mut Messages<Relay>,
    stop: impl Fn(&TransportState) -> bool,
) -> Vec<TransportState> {
    let mut states = Vec::new();
    loop {
        let state = next_state(messages).await;
        let done = stop(&state);
        states.push(state);
        if done {
            return states;
        }
    }
}

fn is_connected(state: &TransportState) -> bool {
    matches!(state, TransportState::Connected { .. })
}

fn is_unauthorized(state: &TransportState) -> bool {
    matches!(state, TransportState::Unauthorized { .. })
}

#[tokio::test]
async fn the_providers_headers_reach_the_handler_on_every_reconnect() {
    for transport in TRANSPORTS {
        let server = server().await;
        let proxy = Proxy::start(server.addr).await;
        let issued: Issued = Arc::new(Mutex::new(Ok("good-1".into())));
        let (client, mut messages) = client(proxy.addr, transport, &issued);
        let mut session = None;
        for round in 1..=3u32 {
            let states = states_until(&mut messages, is_connected).await;
            assert!(
                !states.iter().any(is_unauthorized),
                "{transport:?}: {states:?}"
            );
            let Some(TransportState::Connected { session: now }) = states.last() else {
                unreachable!()
            };
            // The session is resumed: only the credentials changed.
            assert_eq!(*session.get_or_insert(*now), *now, "{transport:?}");
            client.send(RelayFromClient::Echo(round)).unwrap();
            assert_eq!(next_echo(&mut messages).await, round, "{transport:?}");
            *issued.lock().unwrap() = Ok(format!("good-{}", round + 1));
            end_connection(transport, &server, &proxy);
        }
        let seen = server.seen.lock().unwrap().clone();
        let expected: Vec<_> = (1..=3).map(|n| (n, format!("good-{n}"))).collect();
        assert_eq!(seen, expected, "{transport:?}");
        client.close();
    }
}

#[tokio::test]
async fn a_401_waits_for_the_application_and_the_queue_then_goes_once() {
    for transport in [Transport::Ws, Transport::Http, Transport::Sse] {
        // A server of its own, which no request of another client's reaches.
        let server = server().await;
        let issued: Issued = Arc::new(Mutex::new(Ok("expired".into())));
        let before = server.requests.load(Ordering::SeqCst);
        let (client, mut messages) = client(server.addr, transport, &issued);
        for n in 1..=3 {
            client.send(RelayFromClient::Echo(n)).unwrap();
        }
        let states = states_until(&mut messages, is_unauthorized).await;
        assert!(
            matches!(
                &states[..],
                [
                    TransportState::Connecting,
                    TransportState::Disconnected { code: 401, .. },
                    TransportState::Unauthorized { .. },
                ]
            ),
            "{transport:?}: {states:?}"
        );
        // No retry storm: nothing more reaches the server until the application says so.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            server.requests.load(Ordering::SeqCst) - before,
            1,
            "{transport:?}"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), messages.recv())
                .await
                .is_err(),
            "{transport:?}: the client stays quiet"
        );
        // Messages queued meanwhile wait with the rest.
        client.send(RelayFromClient::Echo(4)).unwrap();
        assert_eq!(client.unacknowledged(), 4);

        *issued.lock().unwrap() = Ok("good-again".into());
        client.reconnect();
        for n in 1..=4 {
            assert_eq!(next_echo(&mut messages).await, n, "{transport:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let handled: Vec<u32> = server.seen.lock().unwrap().iter().map(|s| s.0).collect();
        assert_eq!(handled, [1, 2, 3, 4], "{transport:?}: delivered once");
        assert_eq!(client.unacknowledged(), 0);
        client.close();
    }
}

#[tokio::test]
async fn a_failing_provider_is_unauthorized_and_a_hanging_one_is_bounded() {
    for transport in TRANSPORTS {
        failing_and_hanging_provider(transport).await;
    }
}

/// Every transport asks the provider before its attempt (an event stream before its `GET`, an
/// HTTP client before its first request), so each is refused or bounded alike.
async fn failing_and_hanging_provider(transport: Transport) {
    let server = server().await;
    let issued: Issued = Arc::new(Mutex::new(Err("signed out".into())));
    let (client, mut messages) = client(server.addr, transport, &issued);
    client.send(RelayFromClient::Echo(1)).unwrap();
    let states = states_until(&mut messages, is_unauthorized).await;
    match &states[..] {
        [
            TransportState::Connecting,
            TransportState::Unauthorized { reason },
        ] => assert!(reason.contains("signed out"), "{transport:?}: {reason}"),
        other => panic!("{transport:?}: {other:?}"),
    }
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        0,
        "{transport:?}: nothing was sent"
    );

    // A provider that never answers costs one connect timeout per attempt, then a retry.
    *issued.lock().unwrap() = Ok("hang".into());
    client.reconnect();
    let states = states_until(&mut messages, |s| {
        matches!(s, TransportState::Reconnecting { .. })
    })
    .await;
    assert!(
        matches!(
            &states[..],
            [
                TransportState::Connecting,
                TransportState::Disconnected { code: 1006, .. },
                TransportState::Reconnecting { attempt: 1, .. },
            ]
        ),
        "{transport:?}: {states:?}"
    );
    *issued.lock().unwrap() = Ok("good-1".into());
    assert_eq!(next_echo(&mut messages).await, 1, "{transport:?}");
    assert_eq!(
        *server.seen.lock().unwrap(),
        [(1, "good-1".to_owned())],
        "{transport:?}: handled once, with the credentials that worked"
    );
    client.close();
}

#[tokio::test]
async fn a_mux_asks_the_provider_too_and_waits_after_a_401() {
    use omni::client::Mux as MuxClient;
    use omni::server::Mux;
    use omni::token::Keys;

    let seen = Seen::default();
    let s = seen.clone();
    let endpoint: Endpoint<Relay, Relayer> = Endpoint::builder(move || Relayer(s.clone())).build();
    let keys = Keys::new(b"the credentials tests' key, 32 bytes or more").unwrap();
    let mux = Mux::builder(keys).module("relay", &endpoint).build();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let router = omni::axum::Router::new()
        .nest("/omni", mux.router())
        .layer(middleware::from_fn(auth))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            counted.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        }));
    let addr = common::serve(router).await;

    let issued: Issued = Arc::new(Mutex::new(Ok("expired".into())));
    let provider = issued.clone();
    let client = MuxClient::builder(format!("http://{addr}/omni"))
        .backoff(Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
            ..Backoff::default()
        })
        .credentials(move || {
            let token = provider.lock().unwrap().clone();
            async move {
                let mut headers = HeaderMap::new();
                let value = HeaderValue::try_from(format!("Bearer {}", token?)).unwrap();
                headers.insert("authorization", value);
                Ok::<_, String>(headers)
            }
        })
        .connect();
    let token = mux.sign("relay", &serde_json::json!({}), Duration::from_secs(600));
    let (relay, mut messages) = client.join::<Relay>("r", "relay", token);
    relay.send(RelayFromClient::Echo(1)).unwrap();
    states_until(&mut messages, is_unauthorized).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(requests.load(Ordering::SeqCst), 1, "no retry storm");

    *issued.lock().unwrap() = Ok("good-mux".into());
    client.reconnect();
    assert_eq!(next_echo(&mut messages).await, 1);
    assert_eq!(*seen.lock().unwrap(), [(1, "good-mux".to_owned())]);
    client.close();
}

#[tokio::test]
async fn credentials_that_expire_on_an_open_connection_are_renewed_not_reported() {
    for transport in TRANSPORTS {
        let server = server().await;
        let proxy = Proxy::start(server.addr).await;
        let name = format!("good-{transport:?}");
        let issued: Issued = Arc::new(Mutex::new(Ok(format!("{name}-1"))));
        let (client, mut messages) = client(proxy.addr, transport, &issued);
        client.send(RelayFromClient::Echo(1)).unwrap();
        assert_eq!(next_echo(&mut messages).await, 1, "{transport:?}");

        // The token in use expires; the provider has a fresh one.
        REVOKED.lock().unwrap().push(format!("{name}-1"));
        *issued.lock().unwrap() = Ok(format!("{name}-2"));
        if transport == Transport::Ws {
            // A WebSocket is authorized once, at its handshake: nothing on an open socket
            // asks again, so the expired token is met at the next connect, which asks the
            // provider first. Its message goes on the new socket.
            proxy.cut();
            loop {
                let state = next_state(&mut messages).await;
                if matches!(state, TransportState::Disconnected { .. }) {
                    break;
                }
            }
        }
        client.send(RelayFromClient::Echo(2)).unwrap();
        // HTTP and SSE repeat the attempt's headers: the refused request ends the
        // connection, and the next asks the provider again.
        loop {
            match next(&mut messages).await {
                Relay::Echoed(2) => break,
                Relay::Transport(state) => assert!(!is_unauthorized(&state), "{transport:?}"),
                other => panic!("{transport:?}: {other:?}"),
            }
        }
        let seen = server.seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [(1, format!("{name}-1")), (2, format!("{name}-2"))],
            "{transport:?}"
        );
        client.close();
    }
}
