//! The chat demo's `/metrics` as Prometheus reads it, scraped while real clients chat,
//! reconnect, get rejected and overflow: each documented metric moves as it should, and
//! every metric the Grafana dashboard queries exists.

mod common;

#[path = "../examples/chat/app.rs"]
mod app;
#[cfg(feature = "redis")]
#[path = "../examples/chat/store.rs"]
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::Duration;

use app::{ChatMessage, Msg, MsgFromClient, SharedFile, Status};
use common::demo::{chat_server_with, free_port};
use common::{Client, PATIENCE};
use omni::client::{AckError, Client as OmniClient};
use omni::{ClientFrame, ErrorCode, ServerFrame, SessionId};

/// The demo, killed when dropped.
struct Demo {
    child: Child,
    port: u16,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo(args: &[&str]) -> Demo {
    let port = free_port();
    Demo {
        child: chat_server_with(port, args),
        port,
    }
}

/// One sample of a scrape: a series and its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape, parsed from the Prometheus text format.
#[derive(Debug)]
struct Scrape {
    /// The names `# TYPE` declares.
    families: BTreeSet<String>,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut families = BTreeSet::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                families.insert(declared.split(' ').next().unwrap().to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value = match value {
                "+Inf" => f64::INFINITY,
                value => value.parse().unwrap_or_else(|_| panic!("{line}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let rest = rest.strip_suffix('}').unwrap();
                    let labels = rest
                        .split("\",")
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (key, value) = pair.split_once("=\"").unwrap();
                            (key.to_owned(), value.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Self { families, samples }
    }

    /// `name`'s series that carry all of `labels`.
    fn series<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
    }

    /// The sum of `name`'s series that carry all of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.series(name, labels).map(|s| s.value).sum()
    }

    /// Whether `name` has a series carrying all of `labels`.
    fn has_series(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.series(name, labels).next().is_some()
    }

    /// Whether `name` has a series at all.
    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

async fn scrape(demo: &Demo) -> Scrape {
    scrape_port(demo.port).await
}

async fn scrape_port(port: u16) -> Scrape {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    Scrape::parse(&response.text().await.unwrap())
}

/// Scrapes until `holds` is true of a scrape, or fails saying `what` after [`PATIENCE`].
async fn until(demo: &Demo, what: &str, holds: impl Fn(&Scrape) -> bool) -> Scrape {
    until_port(demo.port, what, holds).await
}

async fn until_port(port: u16, what: &str, holds: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = scrape_port(port).await;
        if holds(&now) {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {now:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const CHAT: (&str, &str) = ("protocol", "Msg");
const WS: (&str, &str) = ("transport", "ws");

fn message(id: &str, text: String) -> ChatMessage {
    ChatMessage {
        id: id.into(),
        author: "ada".into(),
        text,
        status: Status::Sending,
        sent_at: 0,
    }
}

/// A chat client that reads everything it is sent, as a browser would.
async fn chatter(demo: &Demo) -> OmniClient<Msg> {
    let url = format!("http://127.0.0.1:{}/omni", demo.port);
    let (client, mut messages) = OmniClient::<Msg>::builder(url).connected().await.unwrap();
    tokio::spawn(async move { while messages.recv().await.is_some() {} });
    client
}

async fn welcomed(client: &mut Client) -> SessionId {
    loop {
        if let ServerFrame::Welcome { session, .. } = client.next::<serde_json::Value>().await {
            return session;
        }
    }
}

#[tokio::test]
async fn the_demo_s_metrics_move_as_clients_chat_reconnect_get_rejected_and_overflow() {
    let demo = demo(&["--grace", "1"]);
    let start = scrape(&demo).await;
    assert_eq!(start.sum("omni_sessions_live", &[CHAT]), 0.0);
    let delta = |now: &Scrape, name: &str, labels: &[(&str, &str)]| {
        now.sum(name, labels) - start.sum(name, labels)
    };

    // Two clients chat: three messages, each stored, acknowledged and published to both.
    let ada = chatter(&demo).await;
    let _bob = chatter(&demo).await;
    for n in 0..3 {
        let reference = ada
            .send(MsgFromClient::Send(message(&format!("m{n}"), "hi".into())))
            .unwrap();
        ada.acked(reference).await.unwrap();
    }
    let now = until(&demo, "both sessions counted", |s| {
        s.sum("omni_sessions_live", &[CHAT]) == 2.0
    })
    .await;
    let open = [CHAT, WS, ("codec", "json")];
    assert_eq!(now.sum("omni_connections_open", &open), 2.0);
    assert_eq!(delta(&now, "omni_connections_opened_total", &open), 2.0);
    assert_eq!(delta(&now, "omni_sessions_created_total", &[CHAT]), 2.0);
    let msgs = [CHAT, WS, ("type", "msg")];
    assert_eq!(delta(&now, "omni_frames_received_total", &msgs), 3.0);
    assert_eq!(
        delta(&now, "omni_handler_duration_seconds_count", &[CHAT]),
        3.0,
        "one observation per message"
    );
    assert!(now.sum("omni_handler_duration_seconds_sum", &[CHAT]) > 0.0);
    assert_eq!(delta(&now, "omni_broadcasts_total", &[CHAT]), 3.0);
    let kind = |kind| [CHAT, ("kind", kind)];
    assert_eq!(
        delta(&now, "omni_messages_received_total", &kind("Send")),
        3.0
    );
    // Each confirmed to its sender and published on the room; hooks may send more.
    assert!(delta(&now, "omni_messages_sent_total", &kind("Upsert")) >= 6.0);
    // Every kind of the schema is a series from the start, at 0 until one is sent.
    assert!(now.has_series("omni_messages_sent_total", &kind("Shared")));
    assert_eq!(
        delta(&now, "omni_messages_sent_total", &kind("Shared")),
        0.0
    );
    // Each reply and each published message, to two connections: at least six.
    assert!(delta(&now, "omni_frames_sent_total", &msgs) >= 6.0);
    assert!(
        delta(
            &now,
            "omni_frames_sent_total",
            &[CHAT, WS, ("type", "welcome")]
        ) >= 2.0
    );
    assert!(delta(&now, "omni_broadcast_fanout_count", &[]) >= 3.0);
    assert_eq!(now.sum("omni_topics", &[]), 1.0, "the room");
    assert_eq!(now.sum("omni_presence_entries", &[]), 2.0);

    // A message the handler refuses.
    let reference = ada.send(MsgFromClient::SetName(String::new())).unwrap();
    match ada.acked(reference).await {
        Err(AckError::Rejected { code, .. }) => assert_eq!(code, ErrorCode::Rejected),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let now = scrape(&demo).await;
    assert_eq!(delta(&now, "omni_handler_rejections_total", &[CHAT]), 1.0);
    assert_eq!(delta(&now, "omni_handler_panics_total", &[CHAT]), 0.0);
    assert!(
        delta(
            &now,
            "omni_frames_sent_total",
            &[CHAT, WS, ("type", "error")]
        ) >= 1.0
    );

    // A client that follows the room from a number its log no longer holds: the handler's
    // snapshot instead of a replay.
    let behind = "/omni/ws?topics=%7B%22room%22%3A1%7D";
    let mut behind = Client::connect(demo_addr(&demo), behind).await;
    welcomed(&mut behind).await;
    let now = until(&demo, "a catch-up fell back to a snapshot", |s| {
        delta(s, "omni_replay_fallbacks_total", &[CHAT]) == 1.0
    })
    .await;
    assert_eq!(
        delta(&now, "omni_sessions_reset_total", &[CHAT]),
        1.0,
        "the topic's reset"
    );
    drop(behind);

    // A frame that cannot be decoded.
    let mut raw = Client::connect(demo_addr(&demo), "/omni/ws").await;
    let session = welcomed(&mut raw).await;
    raw.send_text("not a frame").await;
    // Presence and the room's messages may come first.
    while !matches!(
        raw.next::<serde_json::Value>().await,
        ServerFrame::Error { .. }
    ) {}
    let now = scrape(&demo).await;
    assert_eq!(delta(&now, "omni_decode_errors_total", &[CHAT]), 1.0);
    let invalid = [CHAT, WS, ("type", "invalid")];
    assert_eq!(delta(&now, "omni_frames_received_total", &invalid), 1.0);

    // A message of a kind this build does not know: counted under `unknown`, never under the
    // name the client made up.
    raw.send_text(r#"{"type":"msg","ref":1,"payload":{"kind":"Teleport","data":null}}"#)
        .await;
    loop {
        if let ServerFrame::Error { code, .. } = raw.next::<serde_json::Value>().await {
            assert_eq!(code, ErrorCode::UnknownMessage);
            break;
        }
    }
    let now = scrape(&demo).await;
    assert_eq!(delta(&now, "omni_unknown_messages_total", &[CHAT]), 1.0);
    assert_eq!(
        delta(&now, "omni_messages_received_total", &kind("unknown")),
        1.0
    );
    assert!(!now.has_series("omni_messages_received_total", &kind("Teleport")));
    assert_eq!(delta(&now, "omni_decode_errors_total", &[CHAT]), 1.0);

    // The connection drops without a close frame, and its client resumes within the grace.
    drop(raw);
    let resume = format!("/omni/ws?session={session}&after=0");
    let mut back = Client::connect(demo_addr(&demo), &resume).await;
    assert_eq!(welcomed(&mut back).await, session);
    let now = until(&demo, "the old connection counted closed", |s| {
        delta(s, "omni_connections_closed_total", &[CHAT, WS]) >= 1.0
    })
    .await;
    assert_eq!(delta(&now, "omni_sessions_resumed_total", &[CHAT]), 1.0);

    // A resume of a session this server never had is answered with `reset`.
    let unknown = SessionId::from_u128(7);
    let mut lost = Client::connect(
        demo_addr(&demo),
        &format!("/omni/ws?session={unknown}&after=3"),
    )
    .await;
    welcomed(&mut lost).await;
    let now = scrape(&demo).await;
    assert_eq!(delta(&now, "omni_sessions_reset_total", &[CHAT]), 2.0);

    // Both leave for good (1000): their sessions end after the linger, or expire after the
    // one-second grace; either way they are gone.
    back.socket.close(None).await.unwrap();
    drop(lost);
    until(&demo, "a session expired after its grace", |s| {
        delta(s, "omni_sessions_expired_total", &[CHAT]) >= 1.0
    })
    .await;

    // A client that stops reading while others share files and chat: first the frames it
    // may miss are dropped, then it is closed as a slow consumer.
    let mut stuck = Client::connect_with_small_window(demo_addr(&demo), "/omni/ws").await;
    welcomed(&mut stuck).await;
    let file = SharedFile {
        name: "big.bin".into(),
        // Within the client's own frame limit (64 KiB) once in base64.
        data: vec![7; 40 * 1024].into(),
    };
    let mut n = 0;
    let now = loop {
        n += 1;
        let reference = ada.send(MsgFromClient::Share(file.clone())).unwrap();
        ada.acked(reference).await.unwrap();
        let now = scrape(&demo).await;
        if delta(&now, "omni_ephemeral_dropped_total", &[CHAT]) > 0.0 {
            break now;
        }
        assert!(n < 1000, "no ephemeral frame was ever dropped: {now:#?}");
    };
    assert_eq!(delta(&now, "omni_slow_consumers_total", &[CHAT]), 0.0);
    assert!(now.sum("omni_outbound_queue_high_water", &[CHAT]) >= 10.0);
    let long = "x".repeat(32 * 1024);
    let mut n = 0;
    loop {
        n += 1;
        let reference = ada
            .send(MsgFromClient::Send(message(
                &format!("long{n}"),
                long.clone(),
            )))
            .unwrap();
        ada.acked(reference).await.unwrap();
        if delta(&scrape(&demo).await, "omni_slow_consumers_total", &[CHAT]) >= 1.0 {
            break;
        }
        assert!(n < 1000, "the stuck client was never closed");
    }
    let now = until(
        &demo,
        "the slow consumer's connection counted closed",
        |s| s.sum("omni_connections_open", &open) == 2.0,
    )
    .await;
    assert!(delta(&now, "omni_connections_closed_total", &[CHAT, WS]) >= 4.0);
    drop(stuck);

    // Every metric the README documents was in the scrape.
    let documented = documented_metrics();
    assert!(documented.len() >= 29, "{documented:?}");
    for name in &documented {
        assert!(
            now.families.contains(name),
            "{name} is documented but not exported"
        );
    }
}

fn demo_addr(demo: &Demo) -> std::net::SocketAddr {
    ([127, 0, 0, 1], demo.port).into()
}

/// The metric names in the README's table (`| \`omni_…\``).
fn documented_metrics() -> BTreeSet<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `omni_"))
        .map(|rest| format!("omni_{}", rest.split('`').next().unwrap()))
        .collect()
}

/// The metric names a dashboard's queries read: every `omni_…` word of every `expr`, without
/// the suffixes a histogram's series add.
fn queried_metrics(dashboard: &serde_json::Value) -> BTreeSet<String> {
    fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        serde_json::Value::String(expr) if key == "expr" => out.push(expr.clone()),
                        value => exprs(value, out),
                    }
                }
            }
            serde_json::Value::Array(values) => values.iter().for_each(|v| exprs(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    exprs(dashboard, &mut found);
    assert!(!found.is_empty(), "the dashboard has no queries");
    let mut names = BTreeSet::new();
    for expr in found {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("omni_") {
            let word: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + word.len()..];
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(&word);
            names.insert(base.to_owned());
        }
    }
    names
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_in_a_scrape_of_the_demo() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana/omni.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let queried = queried_metrics(&dashboard);
    assert!(queried.len() >= 20, "{queried:?}");

    // With a Redis (as `cargo xtask test` starts one), the demo shares its room through it
    // and the Redis metrics have series too.
    let redis = std::env::var("OMNI_REDIS_URL")
        .ok()
        .filter(|_| cfg!(feature = "redis"));
    let args: Vec<&str> = match &redis {
        Some(url) => vec!["--redis", url],
        None => Vec::new(),
    };
    let demo = demo(&args);
    let scraped = scrape(&demo).await;
    for name in &queried {
        assert!(
            scraped.families.contains(name),
            "the dashboard queries {name}, which the demo does not export"
        );
        let series = ["", "_bucket"]
            .iter()
            .any(|suffix| scraped.has(&format!("{name}{suffix}")));
        let redis_only = name.starts_with("omni_redis_");
        assert!(
            series || (redis_only && redis.is_none()),
            "{name} is exported without a series"
        );
    }
}

#[tokio::test]
async fn a_mux_socket_counts_under_the_mux_and_its_components_under_their_protocol() {
    let demo = demo(&[]);
    let start = scrape(&demo).await;
    let mut socket = Client::connect(demo_addr(&demo), "/omni/mux").await;
    socket
        .send(ClientFrame::<()>::Leave {
            id: "nobody".into(),
        })
        .await;
    assert!(matches!(
        socket.next::<serde_json::Value>().await,
        ServerFrame::Error { .. }
    ));
    let now = scrape(&demo).await;
    let mux = [("protocol", "mux"), ("transport", "mux")];
    assert_eq!(
        now.sum("omni_connections_open", &mux) - start.sum("omni_connections_open", &mux),
        1.0
    );
    let leave = [mux[0], mux[1], ("type", "leave")];
    assert_eq!(now.sum("omni_frames_received_total", &leave), 1.0);
    let error = [mux[0], mux[1], ("type", "error")];
    assert_eq!(now.sum("omni_frames_sent_total", &error), 1.0);
    socket.socket.close(None).await.unwrap();
    until(&demo, "the mux socket counted closed", |s| {
        s.sum("omni_connections_open", &mux) == 0.0
    })
    .await;
}

#[tokio::test]
async fn a_write_that_makes_no_progress_counts_as_a_write_timeout() {
    use common::echo::{Echo, EchoFromClient, Parrot};
    use omni::server::{Endpoint, Limits, Prometheus, Shutdown};

    // Only the write timeout can notice this client: its queue is far larger than what it is
    // sent, and the server's send buffer and its receive window hold a few KiB between them.
    let endpoint = Endpoint::<Echo, _>::builder(|| Parrot)
        .limits(Limits {
            outbound_queue: 1_000_000,
            outbound_queue_bytes: 1 << 30,
            write_timeout: Duration::from_millis(300),
            ..Limits::default()
        })
        .build();
    let router = omni::axum::Router::new()
        .nest("/omni", endpoint.router())
        .merge(Prometheus::new().endpoint(&endpoint).router());
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let listener = socket.listen(64).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { omni::axum::serve(listener, router).await.unwrap() });

    let mut stuck = Client::connect_with_small_window(addr, "/omni/ws").await;
    welcomed(&mut stuck).await;
    let text = "x".repeat(32 * 1024);
    for _ in 0..64 {
        let say = ClientFrame::msg(EchoFromClient::Say(text.clone()));
        let sent = tokio::time::timeout(PATIENCE, stuck.send_text(say.encode().unwrap())).await;
        if sent.is_err() {
            break;
        }
    }
    let echo = ("protocol", "Echo");
    let now = until_port(addr.port(), "the stuck write timed out", |s| {
        s.sum("omni_write_timeouts_total", &[echo]) == 1.0
    })
    .await;
    assert_eq!(now.sum("omni_slow_consumers_total", &[echo]), 1.0);
    assert!(now.sum("omni_outbound_queue_high_water", &[echo]) >= 2.0);
    let open = [echo, ("transport", "ws"), ("codec", "json")];
    until_port(addr.port(), "its connection counted closed", |s| {
        s.sum("omni_connections_open", &open) == 0.0
    })
    .await;

    // A graceful shutdown closes a client that still reads, and says how long that took.
    let shutdown = Shutdown::new().endpoint(&endpoint);
    let mut reader = Client::connect(addr, "/omni/ws").await;
    welcomed(&mut reader).await;
    assert_eq!(
        scrape_port(addr.port())
            .await
            .sum("omni_shutdown_drain_seconds", &[echo]),
        0.0
    );
    shutdown.now();
    assert_eq!(reader.close_code().await, Some(1001));
    assert!(shutdown.drained().await);
    let drain = scrape_port(addr.port())
        .await
        .sum("omni_shutdown_drain_seconds", &[echo]);
    assert!(drain > 0.0 && drain < PATIENCE.as_secs_f64(), "{drain}");
}

#[tokio::test]
async fn a_message_sent_later_through_a_sender_is_counted_by_kind() {
    use common::echo::{Echo, EchoFromClient, EchoFromServer, EchoHandler};
    use omni::server::{Endpoint, Prometheus};
    use omni::{Context, HandlerResult};

    /// Answers from a task of its own, after the handler has returned.
    struct Later;

    impl EchoHandler for Later {
        async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
            let sender = cx.sender();
            tokio::spawn(async move { sender.send(EchoFromServer::Heard(text)) });
            Ok(())
        }
    }

    let endpoint = Endpoint::<Echo, _>::builder(|| Later).build();
    let router = omni::axum::Router::new()
        .nest("/omni", endpoint.router())
        .merge(Prometheus::new().endpoint(&endpoint).router());
    let addr = common::serve(router).await;
    let mut client = Client::connect(addr, "/omni/ws").await;
    welcomed(&mut client).await;
    client.msg(EchoFromClient::Say("hi".into()), 1).await;
    let mut heard = false;
    while !heard {
        heard = matches!(
            client.next::<EchoFromServer>().await,
            ServerFrame::Msg {
                payload: EchoFromServer::Heard(_),
                ..
            }
        );
    }
    let now = scrape_port(addr.port()).await;
    let sent = [("protocol", "Echo"), ("kind", "Heard")];
    assert_eq!(now.sum("omni_messages_sent_total", &sent), 1.0);
    let received = [("protocol", "Echo"), ("kind", "Say")];
    assert_eq!(now.sum("omni_messages_received_total", &received), 1.0);
}
