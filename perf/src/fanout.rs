//! Fan-out: one 200-byte frame to every subscriber, omni's broadcast against a raw axum
//! server that hands every connection the same `Utf8Bytes` through a `tokio::sync::broadcast`
//! channel. Three processes: the server, the subscribers (10,000 sockets on each end would not
//! fit one process's 20,000 open files) and the driver, which reads the server's resident
//! memory from `/proc` and matches the server's "sent" time against the subscribers' "last
//! one read it" time (both from the system clock, which the processes share).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::routing::get;
use futures_util::StreamExt;
use omni::pubsub::{LocalPubSub, Outgoing, PubSub};
use omni::server::Endpoint;
use omni::{Context, HandlerResult};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::child::{Child, rss_bytes, stdin_lines};
use crate::{Options, median, now_us};

const KINDS: [&str; 2] = ["omni", "raw"];
const FRAME_BYTES: usize = 200;

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Fan {
    #[client]
    Nothing,
    #[server]
    News(String),
}

struct Subscriber;

impl FanHandler for Subscriber {
    async fn nothing(&mut self, _: &mut Context<Fan>) -> HandlerResult {
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Fan>) -> HandlerResult {
        cx.subscribe("all");
        Ok(())
    }
}

/// omni's `push` frame for `News`, padded to exactly 200 bytes; the raw server sends the same.
fn frame() -> Utf8Bytes {
    let shell = r#"{"type":"push","payload":{"kind":"News","data":""},"topic":"all"}"#;
    let data = "x".repeat(FRAME_BYTES - shell.len());
    let text =
        format!(r#"{{"type":"push","payload":{{"kind":"News","data":"{data}"}},"topic":"all"}}"#);
    assert_eq!(text.len(), FRAME_BYTES);
    text.into()
}

/// `fanout-serve KIND`: prints `listening ADDR`; for every `broadcast` line on stdin, notes
/// the time, broadcasts, and prints `sent TIME_US`; exits when stdin closes.
pub fn serve(kind: &str) {
    let runtime = crate::runtime();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let frame = frame();
        let send: Box<dyn Fn()> = match kind {
            "omni" => {
                let pubsub = Arc::new(LocalPubSub::new());
                let endpoint = Endpoint::<Fan, _>::builder(|| Subscriber)
                    .pubsub(pubsub.clone())
                    .build();
                let router = axum::Router::new().nest("/omni", endpoint.router());
                tokio::spawn(async move { axum::serve(listener, router).await });
                Box::new(move || pubsub.broadcast("all", Outgoing::push(frame.clone())))
            }
            "raw" => {
                let (tx, _) = broadcast::channel::<Utf8Bytes>(64);
                let subscribe = tx.clone();
                let router = axum::Router::new().route(
                    "/ws",
                    get(move |ws: WebSocketUpgrade| {
                        // Subscribed before the upgrade, so no broadcast can slip past.
                        let rx = subscribe.subscribe();
                        async move {
                            ws.read_buffer_size(4 * 1024)
                                .on_upgrade(move |socket| raw_subscriber(socket, rx))
                        }
                    }),
                );
                tokio::spawn(async move { axum::serve(listener, router).await });
                Box::new(move || {
                    let _ = tx.send(frame.clone());
                })
            }
            other => panic!("no fan-out server called {other}"),
        };
        println!("listening {addr}");
        let mut commands = stdin_lines();
        while let Some(command) = commands.recv().await {
            assert_eq!(command, "broadcast");
            let at = now_us();
            send();
            println!("sent {at}");
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}

async fn raw_subscriber(mut socket: WebSocket, mut frames: broadcast::Receiver<Utf8Bytes>) {
    loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Ok(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => {
                if !matches!(incoming, Some(Ok(_))) {
                    return;
                }
            }
        }
    }
}

/// `subscribe KIND URL N ROUNDS`: opens N connections, prints `ready`, then after each
/// broadcast prints `round R TIME_US`, the time the last of them read it; exits after ROUNDS.
pub fn subscribe(args: &[String]) {
    let [kind, url, n, rounds] = args else {
        panic!("subscribe KIND URL N ROUNDS, not {args:?}");
    };
    let (n, rounds): (usize, usize) = (n.parse().unwrap(), rounds.parse().unwrap());
    let omni = kind == "omni";
    crate::runtime().block_on(async move {
        let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
        // A few connects at a time: the accept queue stays short and no connect times out.
        let sockets: Vec<_> = futures_util::stream::iter(0..n)
            .map(|_| async move {
                let (mut socket, _) =
                    tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                        .await
                        .expect("connect");
                if omni {
                    // The welcome; omni subscribes the session in `connected`.
                    socket.next().await.expect("a welcome").expect("a welcome");
                }
                socket
            })
            .buffer_unordered(32)
            .collect()
            .await;
        println!("ready");
        let (tx, mut read) = tokio::sync::mpsc::unbounded_channel::<(usize, u64)>();
        for mut socket in sockets {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut round = 0;
                while let Some(Ok(message)) = socket.next().await {
                    if let tungstenite::Message::Text(_) = message {
                        let _ = tx.send((round, now_us()));
                        round += 1;
                    }
                }
            });
        }
        let mut last = vec![0; rounds];
        let mut count = vec![0; rounds];
        while let Some((round, at)) = read.recv().await {
            if round >= rounds {
                continue;
            }
            last[round] = last[round].max(at);
            count[round] += 1;
            if count[round] == n {
                println!("round {round} {}", last[round]);
                if round + 1 == rounds {
                    break;
                }
            }
        }
    });
    // The reader tasks still hold their sockets; exiting closes them all.
    std::process::exit(0);
}

/// One server process's rounds: milliseconds to the last subscriber, and KB per idle
/// connection.
struct Outcome {
    times_ms: Vec<f64>,
    kb_per_connection: f64,
}

pub fn run(options: &Options) {
    let n = options.get("subscribers", 10_000);
    let rounds = options.get("rounds", 15) as usize;
    let passes = options.get("passes", 3) as usize;
    let mut outcomes: Vec<(&str, Vec<Outcome>)> = KINDS.iter().map(|&k| (k, Vec::new())).collect();
    for pass in 0..passes {
        // Alternating which goes first, like the round trips.
        for i in 0..KINDS.len() {
            let k = (pass + i) % KINDS.len();
            let outcome = measure(KINDS[k], n, rounds);
            eprintln!(
                "  fanout pass {}/{passes} {}: median {:.1} ms, {:.1} KB/connection",
                pass + 1,
                KINDS[k],
                median(&outcome.times_ms),
                outcome.kb_per_connection
            );
            outcomes[k].1.push(outcome);
        }
    }
    println!(
        "## Fan-out\n\nOne {FRAME_BYTES}-byte frame to {n} WebSocket subscribers (in a child \
         process), {rounds} rounds 100 ms apart, in each of {passes} fresh server processes \
         per server, alternating: time from the broadcast call to the last subscriber having \
         read the frame. Memory: the server's resident set growth from before the subscribers \
         connect to when they sit idle, divided by {n}.\n\n\
         | server | median of all rounds | per-process medians | max | RSS per idle connection, median (min–max) |\n\
         |---|---|---|---|---|"
    );
    let mut summary = Vec::new();
    for (kind, runs) in &outcomes {
        let all: Vec<f64> = runs
            .iter()
            .flat_map(|o| o.times_ms.iter().copied())
            .collect();
        let medians: Vec<String> = runs
            .iter()
            .map(|o| format!("{:.1}", median(&o.times_ms)))
            .collect();
        let memory: Vec<f64> = runs.iter().map(|o| o.kb_per_connection).collect();
        let (lo, hi) = memory
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let how = if *kind == "omni" {
            "omni (`LocalPubSub::broadcast` through an endpoint)"
        } else {
            "raw axum (`tokio::sync::broadcast` of one `Utf8Bytes`)"
        };
        println!(
            "| {how} | {:.1} ms | {} ms | {:.1} ms | {:.1} KB ({lo:.1}–{hi:.1}) |",
            median(&all),
            medians.join(", "),
            all.iter().copied().fold(0.0, f64::max),
            median(&memory),
        );
        summary.push((median(&all), median(&memory)));
    }
    let ((omni_ms, omni_kb), (raw_ms, raw_kb)) = (summary[0], summary[1]);
    println!(
        "\n| omni/raw | ratio |\n|---|---|\n| time to the last subscriber | {:.2} |\n\
         | memory per idle connection | {:.2} |\n",
        omni_ms / raw_ms,
        omni_kb / raw_kb
    );
}

fn measure(kind: &str, n: u64, rounds: usize) -> Outcome {
    let mut server = Child::spawn(&[], &["fanout-serve".into(), kind.into()]);
    let addr = server.expect("listening", Duration::from_secs(10));
    // Let the runtime's threads and the allocator settle before the baseline.
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_bytes(server.pid());
    let path = if kind == "omni" { "/omni/ws" } else { "/ws" };
    let mut subscribers = Child::spawn(
        &[],
        &[
            "subscribe".into(),
            kind.into(),
            format!("ws://{addr}{path}"),
            n.to_string(),
            rounds.to_string(),
        ],
    );
    subscribers.expect("ready", Duration::from_secs(180));
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_bytes(server.pid());

    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        server.send("broadcast");
        let sent: u64 = server
            .expect("sent", Duration::from_secs(10))
            .parse()
            .unwrap();
        let read: u64 = subscribers
            .expect(&format!("round {round} "), Duration::from_secs(60))
            .parse()
            .unwrap();
        times.push(read.saturating_sub(sent) as f64 / 1e3);
        std::thread::sleep(Duration::from_millis(100));
    }
    subscribers.finish(Duration::from_secs(30));
    server.finish(Duration::from_secs(30));
    Outcome {
        times_ms: times,
        kb_per_connection: after.saturating_sub(before) as f64 / n as f64 / 1e3,
    }
}
