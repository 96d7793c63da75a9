//! Broadcast fan-out to 1,000 and 10,000 WebSocket subscribers, through the in-process
//! pub/sub and through Redis (broadcast on one node, subscribers on another): the time until
//! the last subscriber has the message, and the server's resident memory per idle connection.
//! Each is measured for a plain broadcast and for a message published on a sequenced topic
//! (numbered and logged first: in Redis, by a script).
//!
//! `cargo bench --features redis --bench fanout` (needs `redis-server` on the PATH, or
//! `OMNI_REDIS_URL`). The subscribers live in a child process: 10,000 connections on both
//! ends would not fit one process's open-file limit.
#![allow(missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use omni::pubsub::{LocalPubSub, Outgoing, PubSub, Publication};
use omni::server::{Endpoint, Limits};
use omni::{Context, HandlerResult};

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Fan {
    #[client]
    Nothing,
    #[server]
    News(String),
}

struct Listener;

impl FanHandler for Listener {
    async fn nothing(&mut self, _: &mut Context<Fan>) -> HandlerResult {
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Fan>) -> HandlerResult {
        cx.subscribe("all");
        Ok(())
    }
}

const ROUNDS: usize = 15;

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The child process: `n` connections to `url`; after each broadcast, prints when the last of
/// them had it.
async fn clients(url: String, n: usize) {
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(&url, None, true)
            .await
            .expect("connect");
        socket.next().await.unwrap().unwrap(); // welcome
        sockets.push(socket);
    }
    println!("ready");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u128)>();
    for socket in sockets {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut socket = socket;
            let mut round = 0;
            while let Some(Ok(message)) = socket.next().await {
                if message.is_text() {
                    let _ = tx.send((round, now_us()));
                    round += 1;
                }
            }
        });
    }
    let mut last = [0u128; ROUNDS];
    let mut counts = [0usize; ROUNDS];
    while let Some((round, at)) = rx.recv().await {
        if round >= ROUNDS {
            continue;
        }
        last[round] = last[round].max(at);
        counts[round] += 1;
        if counts[round] == n {
            println!("round {round} {}", last[round]);
            std::io::stdout().flush().unwrap();
            if round + 1 == ROUNDS {
                return;
            }
        }
    }
}

async fn serve(endpoint: &Endpoint<Fan, Listener>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let router = axum::Router::new().nest("/omni", endpoint.router());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn endpoint(pubsub: Arc<dyn PubSub>) -> Endpoint<Fan, Listener> {
    Endpoint::builder(|| Listener)
        .pubsub(pubsub)
        .limits(Limits::default())
        .build()
}

/// How the message goes out.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `broadcast`: fire and forget.
    Broadcast,
    /// `publish` on a sequenced topic.
    Publish,
}

/// One measurement: subscribers connect to `subscribers`' node, messages go out on
/// `broadcaster`. Returns (median, max) time to the last subscriber, and bytes per idle
/// connection.
async fn measure(
    n: usize,
    subscribers: Arc<dyn PubSub>,
    broadcaster: Arc<dyn PubSub>,
    mode: Mode,
) -> (Duration, Duration, u64) {
    let endpoint = endpoint(subscribers);
    let addr = serve(&endpoint).await;
    let before = rss_bytes();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("FANOUT_ROLE", "clients")
        .env("FANOUT_URL", format!("ws://{addr}/omni/ws"))
        .env("FANOUT_N", n.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::task::spawn_blocking(move || {
        let first = lines.next();
        (first, lines)
    });
    let (first, lines) = ready.await.unwrap();
    assert_eq!(first.unwrap().unwrap(), "ready");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_connection = rss_bytes().saturating_sub(before) / n as u64;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let payload = "x".repeat(150);
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        let text = format!(
            r#"{{"type":"push","payload":{{"kind":"News","data":"{payload}"}},"topic":"all"}}"#
        );
        let template = format!(
            r#"{{"type":"msg","seq":0,"payload":{{"kind":"News","data":"{payload}"}},"topic":"all"}}"#
        );
        let sent = now_us();
        match mode {
            Mode::Broadcast => broadcaster.broadcast("all", Outgoing::push(text.clone())),
            Mode::Publish => {
                let publication = Publication::new(&template, Outgoing::push(text.clone()))
                    .expect("a numbered frame template");
                broadcaster.publish("all", publication);
            }
        }
        let line = rx.recv().await.expect("the clients report");
        let at: u128 = line
            .strip_prefix(&format!("round {round} "))
            .unwrap_or_else(|| panic!("unexpected line {line}"))
            .parse()
            .unwrap();
        times.push(Duration::from_micros((at.saturating_sub(sent)) as u64));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.wait();
    endpoint.shutdown();
    times.sort();
    (
        times[times.len() / 2],
        times[times.len() - 1],
        per_connection,
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("FANOUT_ROLE").as_deref() == Ok("clients") {
        let url = std::env::var("FANOUT_URL").unwrap();
        let n = std::env::var("FANOUT_N").unwrap().parse().unwrap();
        runtime.block_on(clients(url, n));
        return;
    }
    // `cargo test --benches` runs this once with small numbers.
    let quick = !std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if quick { &[50] } else { &[1_000, 10_000] };
    runtime.block_on(async {
        let redis = redis_url();
        println!("fan-out of one 200-byte message, {ROUNDS} rounds each");
        for &n in sizes {
            for (mode, how) in [(Mode::Broadcast, "broadcast"), (Mode::Publish, "publish  ")] {
                let local: Arc<dyn PubSub> = Arc::new(LocalPubSub::new());
                let (median, max, rss) = measure(n, local.clone(), local, mode).await;
                println!(
                    "  {how} in-process  {n:>6} subscribers: median {median:>10.2?}  max {max:>10.2?}  rss/conn {rss} B"
                );
                if let Some(url) = &redis.0 {
                    let prefix = format!("bench-{:x}:", rand::random::<u64>());
                    let a = Arc::new(omni::pubsub::RedisPubSub::with_prefix(url, &prefix).unwrap());
                    let b = Arc::new(omni::pubsub::RedisPubSub::with_prefix(url, &prefix).unwrap());
                    assert!(a.ready(Duration::from_secs(10)).await && b.ready(Duration::from_secs(10)).await);
                    let (median, max, rss) = measure(n, b, a, mode).await;
                    println!(
                        "  {how} via redis   {n:>6} subscribers: median {median:>10.2?}  max {max:>10.2?}  rss/conn {rss} B"
                    );
                } else {
                    println!("  via redis: skipped (no redis-server on the PATH and no OMNI_REDIS_URL)");
                }
            }
        }
        drop(redis);
    });
}

/// `OMNI_REDIS_URL`, or a redis-server of our own (stopped on drop).
fn redis_url() -> (Option<String>, Option<std::process::Child>) {
    if let Ok(url) = std::env::var("OMNI_REDIS_URL") {
        return (Some(url), None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn();
    match child {
        Ok(child) => {
            std::thread::sleep(Duration::from_millis(300));
            (Some(format!("redis://127.0.0.1:{port}/")), Some(child))
        }
        Err(_) => (None, None),
    }
}
