//! The `/mux` endpoint over real sockets: joins with signed tokens, routing by component id,
//! every refusal as an `error` frame naming the id, leave, close, limits, resume, and a fuzz
//! test that throws arbitrary frames at a socket whose other components must keep working.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use common::{Client, PATIENCE, serve};
use omni::server::{Endpoint, Limits, Mux};
use omni::token::Keys;
use omni::{ClientFrame, Context, ErrorCode, HandlerResult, ServerFrame, SessionId};
use proptest::prelude::*;
use serde_json::{Value, json};

const KEY: &[u8] = b"the mux tests' key, thirty-two bytes or more";
const OTHER_KEY: &[u8] = b"some other key, also thirty-two bytes long!!";
const TTL: Duration = Duration::from_secs(600);

/// A running total per component.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Tally {
    #[client]
    Add(i64),
    /// Panics.
    #[client]
    Boom,
    /// The handler closes its own component.
    #[client]
    Quit,
    /// The owner named in the token's props, sent on connect.
    #[server]
    Owner(String),
    #[server]
    Total(i64),
}

/// Says back what it hears.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Parrot {
    #[client]
    Say(String),
    #[server]
    Said(String),
}

/// How many hooks ran, across every component of a module.
#[derive(Clone, Default)]
struct Hooks {
    connected: Arc<AtomicU32>,
    disconnected: Arc<AtomicU32>,
}

struct Totaller {
    owner: String,
    total: i64,
    hooks: Hooks,
}

impl TallyHandler for Totaller {
    async fn add(&mut self, cx: &mut Context<Tally>, n: i64) -> HandlerResult {
        self.total += n;
        cx.send(TallyFromServer::Total(self.total));
        Ok(())
    }

    async fn boom(&mut self, _: &mut Context<Tally>) -> HandlerResult {
        panic!("boom")
    }

    async fn quit(&mut self, cx: &mut Context<Tally>) -> HandlerResult {
        cx.close();
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Tally>) -> HandlerResult {
        self.hooks.connected.fetch_add(1, Ordering::SeqCst);
        cx.send(TallyFromServer::Owner(self.owner.clone()));
        Ok(())
    }

    async fn disconnected(&mut self, _: &mut Context<Tally>) -> HandlerResult {
        self.hooks.disconnected.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Parroter;

impl ParrotHandler for Parroter {
    async fn say(&mut self, cx: &mut Context<Parrot>, text: String) -> HandlerResult {
        cx.send(ParrotFromServer::Said(text));
        Ok(())
    }
}

struct Server {
    addr: SocketAddr,
    mux: Mux,
    hooks: Hooks,
    tally: Endpoint<Tally, Totaller>,
}

async fn server(limits: Limits) -> Server {
    let hooks = Hooks::default();
    let tally = {
        let hooks = hooks.clone();
        Endpoint::<Tally, _>::with_props(move |props: &Value| Totaller {
            owner: props["owner"].as_str().unwrap_or("nobody").to_owned(),
            total: 0,
            hooks: hooks.clone(),
        })
        .build()
    };
    let parrot = Endpoint::<Parrot, _>::new(|| Parroter);
    let mux = Mux::builder(Keys::new(KEY).unwrap())
        .module("tally", &tally)
        .module("parrot", &parrot)
        .limits(limits)
        .build();
    let addr = serve(omni::axum::Router::new().nest("/omni", mux.router())).await;
    Server {
        addr,
        mux,
        hooks,
        tally,
    }
}

impl Server {
    fn token(&self, module: &str, owner: &str) -> String {
        self.mux.sign(module, &json!({ "owner": owner }), TTL)
    }

    async fn socket(&self) -> Client {
        Client::connect(self.addr, "/omni/mux").await
    }
}

type Frame = ServerFrame<Value>;

fn join(id: &str, module: &str, token: String) -> ClientFrame<()> {
    ClientFrame::Join {
        topics: None,
        id: id.into(),
        module: module.into(),
        token,
        session: None,
        after: None,
        version: None,
        compatible: None,
        traceparent: None,
        presence: None,
        client: None,
    }
}

fn msg<C>(id: &str, payload: C, reference: u64) -> ClientFrame<C> {
    ClientFrame::Msg {
        payload,
        reference: Some(reference),
        id: Some(id.into()),
    }
}

/// Joins `id` and reads `joined` and `welcome`; returns the component's session.
async fn joined(client: &mut Client, frame: ClientFrame<()>) -> SessionId {
    let ClientFrame::Join { id, .. } = &frame else {
        unreachable!()
    };
    let id = id.clone();
    client.send(frame).await;
    // Earlier components' frames may come first.
    loop {
        match client.next::<Value>().await {
            Frame::Joined { id: got } if got == id => break,
            Frame::Error { code, message, .. } => panic!("{code}: {message}"),
            _ => {}
        }
    }
    match client.next::<Value>().await {
        Frame::Welcome {
            session, id: got, ..
        } => {
            assert_eq!(got.as_deref(), Some(id.as_str()));
            session
        }
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Reads frames until the `error`, which it returns as (code, id, ref).
async fn error(client: &mut Client) -> (ErrorCode, Option<String>, Option<u64>) {
    loop {
        if let Frame::Error {
            code,
            id,
            reference,
            ..
        } = client.next::<Value>().await
        {
            return (code, id, reference);
        }
    }
}

/// Sends `Add(n)` to `id` and returns the `Total` it answers with, checking every frame on
/// the way names `id`.
async fn add(client: &mut Client, id: &str, n: i64, reference: u64) -> i64 {
    client
        .send(msg(id, json!({"kind": "Add", "data": n}), reference))
        .await;
    let mut total = None;
    loop {
        match client.next::<Value>().await {
            Frame::Msg {
                payload,
                id: got,
                reference: Some(r),
                ..
            } if r == reference => {
                assert_eq!(got.as_deref(), Some(id));
                total = payload["data"].as_i64();
            }
            Frame::Ack {
                reference: r,
                id: got,
            } if r == reference => {
                assert_eq!(got.as_deref(), Some(id));
                return total.expect("a Total before the ack");
            }
            Frame::Error {
                code,
                message,
                reference: Some(r),
                ..
            } if r == reference => panic!("{code}: {message}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn components_of_two_modules_share_a_socket_and_every_frame_names_its_id() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    joined(
        &mut client,
        join("t1", "tally", server.token("tally", "ada")),
    )
    .await;
    // The connected hook's message, tagged with the component.
    match client.next::<Value>().await {
        Frame::Msg {
            payload, id, seq, ..
        } => {
            assert_eq!(payload, json!({"kind": "Owner", "data": "ada"}));
            assert_eq!((id.as_deref(), seq), (Some("t1"), 1));
        }
        other => panic!("expected the owner, got {other:?}"),
    }
    joined(
        &mut client,
        join("p1", "parrot", server.token("parrot", "-")),
    )
    .await;
    joined(
        &mut client,
        join("t2", "tally", server.token("tally", "bob")),
    )
    .await;
    let _owner = client.next::<Value>().await;

    assert_eq!(add(&mut client, "t1", 5, 1).await, 5);
    assert_eq!(
        add(&mut client, "t2", 2, 1).await,
        2,
        "t2 has its own state"
    );
    assert_eq!(add(&mut client, "t1", 1, 2).await, 6);
    client
        .send(msg("p1", json!({"kind": "Say", "data": "hi"}), 9))
        .await;
    match client.next::<Value>().await {
        Frame::Msg { payload, id, .. } => {
            assert_eq!(payload, json!({"kind": "Said", "data": "hi"}));
            assert_eq!(id.as_deref(), Some("p1"));
        }
        other => panic!("expected Said, got {other:?}"),
    }
    // A message of the other module's protocol is one this component's build does not know.
    client
        .send(msg("p1", json!({"kind": "Add", "data": 1}), 10))
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::UnknownMessage, Some("p1".into()), Some(10))
    );
    // One of its own kinds that does not decode is its `bad_payload`.
    client
        .send(msg("p1", json!({"kind": "Say", "data": 5}), 11))
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::BadPayload, Some("p1".into()), Some(11))
    );
    assert_eq!(server.hooks.connected.load(Ordering::SeqCst), 2);
}

/// A token with its claims part replaced by `claims`, keeping the original signature.
fn with_claims(token: &str, claims: Value) -> String {
    let (_, tag) = token.split_once('.').unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{claims}.{tag}")
}

#[tokio::test]
async fn every_bad_token_is_refused_with_bad_token_and_the_live_component_keeps_working() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    joined(
        &mut client,
        join("live", "tally", server.token("tally", "ada")),
    )
    .await;
    let _owner = client.next::<Value>().await;
    assert_eq!(add(&mut client, "live", 3, 1).await, 3);

    let good = server.token("tally", "ada");
    let expires = SystemTime::now() + TTL;
    let e = expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let other_key = Keys::new(OTHER_KEY).unwrap();
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    let cases = [
        (
            "tampered props",
            with_claims(&good, json!({"m": "tally", "p": {"owner": "eve"}, "e": e})),
        ),
        (
            "tampered module",
            with_claims(&good, json!({"m": "parrot", "p": {"owner": "ada"}, "e": e})),
        ),
        ("wrong key", other_key.sign("tally", &json!({}), TTL)),
        (
            "expired",
            Keys::new(KEY)
                .unwrap()
                .sign_at("tally", &json!({}), Duration::from_secs(60), long_ago),
        ),
        ("truncated", good[..good.len() - 5].to_owned()),
        ("for another module", server.token("parrot", "ada")),
        ("garbage", "¿¡ not base64 at all !?".to_owned()),
        ("empty", String::new()),
    ];
    for (what, token) in cases {
        client.send(join("new", "tally", token)).await;
        let (code, id, _) = error(&mut client).await;
        assert_eq!(code, ErrorCode::BadToken, "{what}");
        assert_eq!(id.as_deref(), Some("new"), "{what}");
    }
    // No join was half-done: `new` is unknown, and `live` kept its state.
    client
        .send(msg("new", json!({"kind": "Add", "data": 1}), 7))
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::UnknownId, Some("new".into()), Some(7))
    );
    assert_eq!(add(&mut client, "live", 1, 2).await, 4);
    assert_eq!(server.hooks.connected.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unknown_module_is_named_before_the_token_is_checked() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    client.send(join("x", "nope", "garbage".into())).await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::UnknownModule, Some("x".into()), None)
    );
}

#[tokio::test]
async fn a_duplicate_id_is_refused_and_the_live_component_is_untouched() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    let session = joined(
        &mut client,
        join("c", "tally", server.token("tally", "ada")),
    )
    .await;
    let _owner = client.next::<Value>().await;
    assert_eq!(add(&mut client, "c", 5, 1).await, 5);
    client
        .send(join("c", "tally", server.token("tally", "bob")))
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::DuplicateId, Some("c".into()), None)
    );
    // Same handler state, same session, no second handler started.
    assert_eq!(add(&mut client, "c", 1, 2).await, 6);
    assert_eq!(server.hooks.connected.load(Ordering::SeqCst), 1);
    assert_eq!(server.tally.sessions(), 1);
    let _ = session;
}

#[tokio::test]
async fn unknown_ids_and_id_less_messages_are_errors_that_keep_the_socket_open() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    client
        .send(msg("ghost", json!({"kind": "Add", "data": 1}), 4))
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::UnknownId, Some("ghost".into()), Some(4))
    );
    client
        .send(ClientFrame::<()>::Leave { id: "ghost".into() })
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::UnknownId, Some("ghost".into()), None)
    );
    client
        .send(ClientFrame::Msg {
            payload: json!({"kind": "Add", "data": 1}),
            reference: Some(5),
            id: None,
        })
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::BadFrame, None, Some(5))
    );
    client.send_text(r#"{"type":"join","id":"j"}"#).await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::BadFrame, Some("j".into()), None)
    );
    // Still serving.
    joined(
        &mut client,
        join("t", "tally", server.token("tally", "ada")),
    )
    .await;
}

#[tokio::test]
async fn leave_stops_the_component_and_ends_its_session() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    joined(
        &mut client,
        join("a", "tally", server.token("tally", "ada")),
    )
    .await;
    joined(
        &mut client,
        join("b", "tally", server.token("tally", "bob")),
    )
    .await;
    assert_eq!(server.tally.sessions(), 2);
    client
        .send(ClientFrame::<()>::Leave { id: "a".into() })
        .await;
    loop {
        if let Frame::Left { id } = client.next::<Value>().await {
            assert_eq!(id, "a");
            break;
        }
    }
    assert_eq!(server.hooks.disconnected.load(Ordering::SeqCst), 1);
    assert_eq!(server.tally.sessions(), 1, "a left session is not held");
    client
        .send(msg("a", json!({"kind": "Add", "data": 1}), 3))
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::UnknownId, Some("a".into()), Some(3))
    );
    assert_eq!(add(&mut client, "b", 2, 1).await, 2);
    // The id is free again.
    joined(
        &mut client,
        join("a", "tally", server.token("tally", "ada")),
    )
    .await;
}

#[tokio::test]
async fn a_handler_closing_its_component_leaves_the_socket_to_the_others() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    joined(
        &mut client,
        join("a", "tally", server.token("tally", "ada")),
    )
    .await;
    joined(
        &mut client,
        join("b", "tally", server.token("tally", "bob")),
    )
    .await;
    client.send(msg("a", json!({"kind": "Quit"}), 100)).await;
    loop {
        if let Frame::Left { id } = client.next::<Value>().await {
            assert_eq!(id, "a");
            break;
        }
    }
    // Nothing for `a` follows its `left`, not even the `ack` of the message that closed it.
    client
        .send(msg("b", json!({"kind": "Add", "data": 2}), 1))
        .await;
    loop {
        match client.next::<Value>().await {
            Frame::Ack { reference: 1, id } if id.as_deref() == Some("b") => break,
            Frame::Msg { id, .. } | Frame::Ack { id, .. } => assert_eq!(id.as_deref(), Some("b")),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(server.hooks.disconnected.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn closing_the_socket_runs_every_components_disconnect_hook() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    joined(
        &mut client,
        join("a", "tally", server.token("tally", "ada")),
    )
    .await;
    joined(
        &mut client,
        join("b", "tally", server.token("tally", "bob")),
    )
    .await;
    joined(
        &mut client,
        join("p", "parrot", server.token("parrot", "-")),
    )
    .await;
    client.socket.close(None).await.unwrap();
    drop(client);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while server.hooks.disconnected.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "hooks did not run");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.hooks.disconnected.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_socket_joins_at_most_max_components() {
    let server = server(Limits {
        max_components: 2,
        ..Limits::default()
    })
    .await;
    let mut client = server.socket().await;
    joined(
        &mut client,
        join("a", "tally", server.token("tally", "ada")),
    )
    .await;
    joined(
        &mut client,
        join("b", "parrot", server.token("parrot", "-")),
    )
    .await;
    client
        .send(join("c", "tally", server.token("tally", "cy")))
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::TooLarge, Some("c".into()), None)
    );
    assert_eq!(server.tally.sessions(), 1);
    client
        .send(ClientFrame::<()>::Leave { id: "b".into() })
        .await;
    joined(&mut client, join("c", "tally", server.token("tally", "cy"))).await;
}

#[tokio::test]
async fn a_panicking_component_is_restarted_and_its_neighbours_never_notice() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    joined(
        &mut client,
        join("a", "tally", server.token("tally", "ada")),
    )
    .await;
    joined(
        &mut client,
        join("b", "tally", server.token("tally", "bob")),
    )
    .await;
    assert_eq!(add(&mut client, "b", 7, 1).await, 7);
    client.send(msg("a", json!({"kind": "Boom"}), 1)).await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::HandlerFailed, Some("a".into()), Some(1))
    );
    assert_eq!(add(&mut client, "b", 1, 2).await, 8);
    assert_eq!(add(&mut client, "a", 1, 2).await, 1, "a restarted afresh");
}

#[tokio::test]
async fn a_component_resumes_on_a_new_socket_with_exactly_what_it_missed() {
    let server = server(Limits::default()).await;
    let mut client = server.socket().await;
    let session = joined(
        &mut client,
        join("a", "tally", server.token("tally", "ada")),
    )
    .await;
    let _owner = client.next::<Value>().await; // seq 1
    assert_eq!(add(&mut client, "a", 1, 1).await, 1); // seq 2
    assert_eq!(add(&mut client, "a", 2, 2).await, 3); // seq 3
    drop(client);

    let mut client = server.socket().await;
    client
        .send(ClientFrame::<()>::Join {
            topics: None,
            id: "again".into(),
            module: "tally".into(),
            token: server.token("tally", "ada"),
            session: Some(session),
            after: Some(1),
            version: None,
            compatible: None,
            traceparent: None,
            presence: None,
            client: None,
        })
        .await;
    assert_eq!(
        client.next::<Value>().await,
        Frame::Joined { id: "again".into() }
    );
    match client.next::<Value>().await {
        Frame::Welcome {
            session: s,
            resumed,
            seq,
            ..
        } => assert_eq!((s, resumed, seq), (session, true, 3)),
        other => panic!("expected welcome, got {other:?}"),
    }
    // The frames after 1, under the id of the new join.
    for (want_seq, want_total) in [(2, 1), (3, 3)] {
        match client.next::<Value>().await {
            Frame::Msg {
                seq, payload, id, ..
            } => {
                assert_eq!(
                    (seq, payload["data"].as_i64()),
                    (want_seq, Some(want_total))
                );
                assert_eq!(id.as_deref(), Some("again"));
            }
            other => panic!("expected a replayed msg, got {other:?}"),
        }
    }
    // The resumed handler kept its state.
    assert_eq!(add(&mut client, "again", 1, 3).await, 4);
    client
        .send(ClientFrame::<()>::Join {
            topics: None,
            id: "old".into(),
            module: "tally".into(),
            token: server.token("tally", "ada"),
            session: Some(SessionId::from_u128(42)),
            after: Some(9),
            version: Some("not the version".into()),
            compatible: None,
            traceparent: None,
            presence: None,
            client: None,
        })
        .await;
    assert_eq!(
        error(&mut client).await,
        (ErrorCode::VersionMismatch, Some("old".into()), None)
    );
}

/// Frames a fuzzer throws at a socket: raw text, and frames of every type with arbitrary
/// fields, none naming the two components the test keeps alive.
fn fuzz_frame() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        Just(Value::from("c1")),
        Just(Value::from("")),
        any::<String>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    let json = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("kind|data|[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let kind = prop_oneof![
        Just("msg"),
        Just("join"),
        Just("leave"),
        Just("hello"),
        Just("welcome"),
        Just("nonsense"),
    ];
    let module = prop_oneof![Just("tally"), Just("parrot"), Just("nope")];
    let framed = (kind, id, module, json.clone(), json, any::<u64>()).prop_map(
        |(kind, id, module, payload, token, reference)| {
            json!({
                "type": kind,
                "id": id,
                "module": module,
                "token": token,
                "payload": payload,
                "ref": reference,
            })
            .to_string()
        },
    );
    prop_oneof![
        ".{0,64}",
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        framed,
    ]
}

#[test]
fn arbitrary_frames_never_break_the_other_components_on_the_socket() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (server, client) = runtime.block_on(async {
        let server = server(Limits::default()).await;
        let mut client = server.socket().await;
        joined(
            &mut client,
            join("keep-a", "tally", server.token("tally", "a")),
        )
        .await;
        joined(
            &mut client,
            join("keep-b", "parrot", server.token("parrot", "b")),
        )
        .await;
        (server, client)
    });
    let client = std::cell::RefCell::new(client);
    let reference = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(fuzz_frame(), 1..8), |frames| {
            let client = &mut *client.borrow_mut();
            let reference = {
                reference.set(reference.get() + 1);
                reference.get()
            };
            runtime.block_on(async {
                for frame in frames {
                    client.send_text(frame).await;
                }
                add(client, "keep-a", 1, reference).await;
                client
                    .send(msg(
                        "keep-b",
                        json!({"kind": "Say", "data": "still here"}),
                        reference,
                    ))
                    .await;
                loop {
                    if let Frame::Ack { id, reference: r } = client.next::<Value>().await
                        && r == reference
                        && id.as_deref() == Some("keep-b")
                    {
                        break;
                    }
                }
            });
            Ok(())
        })
        .unwrap();
    assert_eq!(server.hooks.disconnected.load(Ordering::SeqCst), 0);
}

mod rust_client {
    use omni::TransportError;
    use omni::client::{Backoff, Messages, Mux as MuxClient};

    use super::common::proxy::Proxy;
    use super::common::stuck::Stuck;
    use super::*;

    fn quick() -> Backoff {
        Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            ..Backoff::default()
        }
    }

    /// The next message that is not a transport state, skipping states.
    async fn next_message(messages: &mut Messages<Tally>) -> Tally {
        loop {
            match tokio::time::timeout(PATIENCE, messages.recv()).await {
                Ok(Some(Tally::Transport(_))) => {}
                Ok(Some(msg)) => return msg,
                Ok(None) => panic!("the stream ended"),
                Err(_) => panic!("no message within {PATIENCE:?}"),
            }
        }
    }

    async fn state_where(
        messages: &mut Messages<Tally>,
        pred: impl Fn(&omni::TransportState) -> bool,
    ) -> omni::TransportState {
        loop {
            match tokio::time::timeout(PATIENCE, messages.recv()).await {
                Ok(Some(Tally::Transport(state))) if pred(&state) => return state,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the stream ended"),
                Err(_) => panic!("no such state within {PATIENCE:?}"),
            }
        }
    }

    #[tokio::test]
    async fn messages_queued_offline_for_two_components_arrive_once_after_the_rejoins() {
        let server = server(Limits::default()).await;
        let proxy = Proxy::start(server.addr).await;
        let mux = MuxClient::builder(format!("http://{}/omni", proxy.addr))
            .backoff(quick())
            .connect_timeout(Duration::from_millis(500))
            .connect();
        let (a, mut a_msgs) = mux.join::<Tally>("a", "tally", server.token("tally", "ada"));
        let (b, mut b_msgs) = mux.join::<Tally>("b", "tally", server.token("tally", "bob"));
        assert_eq!(next_message(&mut a_msgs).await, Tally::Owner("ada".into()));
        assert_eq!(next_message(&mut b_msgs).await, Tally::Owner("bob".into()));
        let sessions = (a.session().unwrap(), b.session().unwrap());
        a.send(TallyFromClient::Add(1)).unwrap();
        b.send(TallyFromClient::Add(2)).unwrap();
        assert_eq!(next_message(&mut a_msgs).await, Tally::Total(1));
        assert_eq!(next_message(&mut b_msgs).await, Tally::Total(2));

        // Offline: the socket is cut and reconnects stall until the proxy forwards again.
        proxy.pause();
        proxy.cut();
        let offline =
            |s: &omni::TransportState| matches!(s, omni::TransportState::Disconnected { .. });
        state_where(&mut a_msgs, offline).await;
        state_where(&mut b_msgs, offline).await;
        a.send(TallyFromClient::Add(10)).unwrap();
        b.send(TallyFromClient::Add(20)).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(a.unacknowledged(), 1);
        proxy.resume();

        // The re-join comes first (its `connected` hook says the owner again), then the
        // queued message; each total continues its session's, so the message reached the
        // resumed component, not a fresh one, and was handled once.
        assert_eq!(next_message(&mut a_msgs).await, Tally::Owner("ada".into()));
        assert_eq!(next_message(&mut a_msgs).await, Tally::Total(11));
        assert_eq!(next_message(&mut b_msgs).await, Tally::Owner("bob".into()));
        assert_eq!(next_message(&mut b_msgs).await, Tally::Total(22));
        assert_eq!((a.session().unwrap(), b.session().unwrap()), sessions);
        a.send(TallyFromClient::Add(0)).unwrap();
        assert_eq!(next_message(&mut a_msgs).await, Tally::Total(11));
        assert_eq!(a.unacknowledged(), 0);
        assert_eq!(b.unacknowledged(), 0);
        assert!(server.hooks.connected.load(Ordering::SeqCst) >= 4);
        assert_eq!(server.tally.sessions(), 2);
        mux.close();
    }

    #[tokio::test]
    async fn a_components_hook_goes_between_its_join_and_its_queue() {
        let server = server(Limits::default()).await;
        let mux = MuxClient::builder(format!("http://{}/omni", server.addr)).connect();
        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let hook_told = told.clone();
        let (a, mut messages) = mux
            .component::<Tally>("a", "tally", server.token("tally", "ada"))
            .on_connect(move |info| {
                hook_told.lock().unwrap().push(info.resumed);
                vec![TallyFromClient::Add(100)]
            })
            .join();
        // Queued before the socket is up: it still goes after the hook's message.
        a.send(TallyFromClient::Add(1)).unwrap();
        assert_eq!(
            next_message(&mut messages).await,
            Tally::Owner("ada".into())
        );
        assert_eq!(next_message(&mut messages).await, Tally::Total(100));
        assert_eq!(next_message(&mut messages).await, Tally::Total(101));
        assert_eq!(*told.lock().unwrap(), [false]);
        mux.close();
    }

    #[tokio::test]
    async fn an_expired_token_is_refreshed_and_the_component_goes_on_with_its_queue() {
        let server = server(Limits::default()).await;
        let proxy = Proxy::start(server.addr).await;
        let mux = MuxClient::builder(format!("http://{}/omni", proxy.addr))
            .backoff(quick())
            .connect_timeout(Duration::from_millis(500))
            .connect();
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let fresh = {
            let asked = asked.clone();
            let token = server.token("tally", "ada");
            move || {
                asked.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Ok::<_, std::convert::Infallible>(token.clone()))
            }
        };
        // Good for one to two seconds.
        let short = server
            .mux
            .sign("tally", &json!({ "owner": "ada" }), Duration::from_secs(2));
        let (a, mut messages) = mux
            .component::<Tally>("a", "tally", short)
            .refresh_token(fresh)
            .join();
        assert_eq!(
            next_message(&mut messages).await,
            Tally::Owner("ada".into())
        );
        a.send(TallyFromClient::Add(1)).unwrap();
        assert_eq!(next_message(&mut messages).await, Tally::Total(1));
        let session = a.session();

        proxy.pause();
        proxy.cut();
        state_where(&mut messages, |s| {
            matches!(s, omni::TransportState::Disconnected { .. })
        })
        .await;
        a.send(TallyFromClient::Add(10)).unwrap();
        // The token expires while the socket is down.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(asked.load(Ordering::SeqCst), 0);
        proxy.resume();

        // The rejoin is refused, the fresh token's is welcomed into the same session, and
        // the queued message is handled once.
        assert_eq!(
            next_message(&mut messages).await,
            Tally::Owner("ada".into())
        );
        assert_eq!(next_message(&mut messages).await, Tally::Total(11));
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert_eq!(a.session(), session);
        a.send(TallyFromClient::Add(0)).unwrap();
        assert_eq!(next_message(&mut messages).await, Tally::Total(11));
        assert_eq!(a.unacknowledged(), 0);
        mux.close();
    }

    #[tokio::test]
    async fn a_refused_join_is_reported_on_that_component_only() {
        let server = server(Limits::default()).await;
        let mux = MuxClient::builder(format!("http://{}/omni", server.addr)).connect();
        let (_bad, mut bad_msgs) = mux.join::<Tally>("bad", "tally", "not a token");
        let (good, mut good_msgs) = mux.join::<Tally>("good", "tally", server.token("tally", "g"));
        let refused = state_where(&mut bad_msgs, |s| {
            matches!(s, omni::TransportState::Error(_))
        })
        .await;
        assert!(
            matches!(
                refused,
                omni::TransportState::Error(TransportError::Rejected {
                    code: ErrorCode::BadToken,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(
            tokio::time::timeout(PATIENCE, bad_msgs.recv())
                .await
                .unwrap()
                .is_none(),
            "a refused component's stream ends"
        );
        assert_eq!(next_message(&mut good_msgs).await, Tally::Owner("g".into()));
        good.send(TallyFromClient::Add(3)).unwrap();
        assert_eq!(next_message(&mut good_msgs).await, Tally::Total(3));

        // Closing a component leaves: its session ends on the server.
        good.close();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while server.tally.sessions() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the session did not end"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A mux whose server stops reading and writing once it welcomed component `p`, which
    /// has far more queued than the socket buffers hold.
    async fn stuck_component(
        heartbeat: omni::client::Heartbeat,
        write_timeout: Duration,
    ) -> (MuxClient, Messages<Parrot>) {
        let welcome = super::common::stuck::component_welcome("Parrot", "p");
        let peer = Stuck::start(Some(welcome), Duration::from_secs(30)).await;
        let mux = MuxClient::builder(format!("http://{}/omni", peer.addr))
            .backoff(quick())
            .heartbeat(heartbeat)
            .write_timeout(write_timeout)
            .connect();
        let (p, mut messages) = mux.join::<Parrot>("p", "parrot", "a token");
        let bulky = "x".repeat(60_000);
        for _ in 0..300 {
            p.send(ParrotFromClient::Say(bulky.clone())).unwrap();
        }
        let connected =
            |s: &omni::TransportState| matches!(s, omni::TransportState::Connected { .. });
        loop {
            match tokio::time::timeout(PATIENCE, messages.recv()).await {
                Ok(Some(Parrot::Transport(state))) if connected(&state) => break,
                Ok(Some(_)) => {}
                other => panic!("not welcomed: {other:?}"),
            }
        }
        (mux, messages)
    }

    /// The next transport state within `wait`.
    async fn parrot_state(messages: &mut Messages<Parrot>, wait: Duration) -> omni::TransportState {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, messages.recv()).await {
                Ok(Some(Parrot::Transport(state))) => return state,
                Ok(Some(_)) => {}
                other => panic!("no transport state within {wait:?}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_silent_mux_server_is_noticed_while_a_write_is_stuck() {
        let heartbeat = omni::client::Heartbeat {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(300),
        };
        let (mux, mut messages) = stuck_component(heartbeat, Duration::from_secs(60)).await;
        let bound = heartbeat.interval * 2 + heartbeat.timeout + Duration::from_secs(1);
        let state = parrot_state(&mut messages, bound).await;
        assert!(
            matches!(state, omni::TransportState::Disconnected { code: 1006, .. }),
            "{state:?}"
        );
        mux.close();
    }

    #[tokio::test]
    async fn a_mux_write_that_makes_no_progress_ends_the_socket() {
        let heartbeat = omni::client::Heartbeat {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
        };
        let write_timeout = Duration::from_millis(300);
        let (mux, mut messages) = stuck_component(heartbeat, write_timeout).await;
        let state = parrot_state(&mut messages, write_timeout + Duration::from_secs(1)).await;
        assert!(
            matches!(state, omni::TransportState::Disconnected { code: 1006, .. }),
            "{state:?}"
        );
        let state = parrot_state(&mut messages, PATIENCE).await;
        assert!(
            matches!(state, omni::TransportState::Reconnecting { attempt: 1, .. }),
            "{state:?}"
        );
        mux.close();
    }
}
