//! Fan-out: one 200-byte frame to every subscriber, omni's broadcast against a raw axum
//! server that hands every connection the same `Utf8Bytes` through a `tokio::sync::broadcast`
//! channel, and (with `--fanout`) omni's other ways to reach them: `publish` on a sequenced
//! topic, and both through Redis. Three processes: the server, the subscribers (10,000
//! sockets on each end would not fit one process's 20,000 open files) and the driver, which
//! reads the server's resident memory from `/proc` and matches the server's "sent" time
//! against the subscribers' "last one read it" time (both from the system clock, which the
//! processes share).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::routing::get;
use futures_util::StreamExt;
use omni::pubsub::{LocalPubSub, Outgoing, PubSub, Publication, RedisPubSub};
use omni::server::Endpoint;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::bench::{Bench, BenchFromServer, Echoer, TOPIC};
use crate::child::{Child, rss_bytes, stdin_lines};
use crate::{Options, median, now_us, usage};

const FRAME_BYTES: usize = 200;

/// The fan-out servers `fanout` runs without `--fanout`.
pub const DEFAULT: &str = "omni,raw";

/// Every fan-out server's name, for the usage text.
pub fn names() -> String {
    Server::ALL.map(Server::name).join(", ")
}

/// A fan-out server, named by how it sends one frame to every subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    /// `LocalPubSub::broadcast` through an endpoint.
    Omni,
    /// `LocalPubSub::publish` on a sequenced topic: numbered and logged, then delivered.
    OmniPublish,
    /// `RedisPubSub::broadcast` on one node of the server process, its endpoint's
    /// subscribers on another, so every frame crosses Redis.
    OmniRedis,
    /// `RedisPubSub::publish`: numbered and logged by a script in Redis, then delivered
    /// through the subscription as above.
    OmniRedisPublish,
    /// A `tokio::sync::broadcast` of one `Utf8Bytes` to every connection's task.
    Raw,
}

impl Server {
    const ALL: [Server; 5] = [
        Server::Omni,
        Server::OmniPublish,
        Server::OmniRedis,
        Server::OmniRedisPublish,
        Server::Raw,
    ];

    fn name(self) -> &'static str {
        match self {
            Server::Omni => "omni",
            Server::OmniPublish => "omni-publish",
            Server::OmniRedis => "omni-redis",
            Server::OmniRedisPublish => "omni-redis-publish",
            Server::Raw => "raw",
        }
    }

    fn parse(name: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The row's name in the report.
    fn describe(self) -> &'static str {
        match self {
            Server::Omni => "omni (`LocalPubSub::broadcast` through an endpoint)",
            Server::OmniPublish => "omni-publish (`LocalPubSub::publish` on a sequenced topic)",
            Server::OmniRedis => "omni-redis (`RedisPubSub::broadcast`, across two nodes)",
            Server::OmniRedisPublish => {
                "omni-redis-publish (`RedisPubSub::publish`, across two nodes)"
            }
            Server::Raw => "raw axum (`tokio::sync::broadcast` of one `Utf8Bytes`)",
        }
    }

    fn omni(self) -> bool {
        self != Server::Raw
    }

    fn redis(self) -> bool {
        matches!(self, Server::OmniRedis | Server::OmniRedisPublish)
    }

    fn publishes(self) -> bool {
        matches!(self, Server::OmniPublish | Server::OmniRedisPublish)
    }

    fn path(self) -> &'static str {
        if self.omni() { "/omni/ws" } else { "/ws" }
    }
}

/// The `News` text that makes omni's `push` frame for it exactly 200 bytes.
fn news() -> String {
    let shell =
        format!(r#"{{"type":"push","payload":{{"kind":"News","data":""}},"topic":"{TOPIC}"}}"#);
    "x".repeat(FRAME_BYTES - shell.len())
}

/// omni's `push` frame for `News`; the raw server sends the same bytes.
fn frame() -> Utf8Bytes {
    let data = news();
    let text = format!(
        r#"{{"type":"push","payload":{{"kind":"News","data":"{data}"}},"topic":"{TOPIC}"}}"#
    );
    assert_eq!(text.len(), FRAME_BYTES);
    text.into()
}

/// `fanout-serve KIND [REDIS_URL]`: prints `listening ADDR`; for every `broadcast` line on
/// stdin, notes the time, sends, and prints `sent TIME_US`; exits when stdin closes.
pub fn serve(args: &[String]) {
    let (server, redis) = match args {
        [kind] => (kind, None),
        [kind, url] => (kind, Some(url.as_str())),
        _ => panic!("fanout-serve KIND [REDIS_URL], not {args:?}"),
    };
    let server = Server::parse(server).unwrap_or_else(|| panic!("no fan-out server {server}"));
    let runtime = crate::runtime();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let send: Box<dyn Fn()> = if server.omni() {
            let (subscribers, sender) = pubsubs(server, redis).await;
            let endpoint = Endpoint::<Bench, _>::builder(Echoer::subscriber)
                .pubsub(subscribers)
                .build();
            let router = axum::Router::new().nest("/omni", endpoint.router());
            tokio::spawn(async move { axum::serve(listener, router).await });
            if server.publishes() {
                let publication = Publication::encode(TOPIC, &BenchFromServer::News(news()))
                    .expect("a publication encodes");
                Box::new(move || sender.publish(TOPIC, publication.clone()))
            } else {
                let frame = frame();
                Box::new(move || sender.broadcast(TOPIC, Outgoing::push(frame.as_str())))
            }
        } else {
            let frame = frame();
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

/// The pub/sub the endpoint's sessions subscribe through, and the one the frames are sent
/// on: the same in-process registry, or two Redis nodes.
async fn pubsubs(server: Server, redis: Option<&str>) -> (Arc<dyn PubSub>, Arc<dyn PubSub>) {
    if !server.redis() {
        let local = Arc::new(LocalPubSub::new());
        return (local.clone(), local);
    }
    let url = redis.expect("a Redis URL for a Redis server");
    // A prefix of this process's own: a Redis kept between runs holds nothing it reads.
    let prefix = format!("omni-perf-{}-{}:", std::process::id(), now_us());
    let node = || RedisPubSub::with_prefix(url, &prefix).expect("a Redis node");
    let (subscribers, sender) = (node(), node());
    for node in [&subscribers, &sender] {
        assert!(
            node.ready(Duration::from_secs(10)).await,
            "no Redis subscription at {url} within 10 s"
        );
    }
    (Arc::new(subscribers), Arc::new(sender))
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
    let omni = Server::parse(kind).is_some_and(Server::omni);
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
    let servers: Vec<Server> = options
        .text("fanout", DEFAULT)
        .split(',')
        .map(|name| {
            Server::parse(name).unwrap_or_else(|| usage(&format!("no fan-out server {name}")))
        })
        .collect();
    let redis = servers
        .iter()
        .any(|s| s.redis())
        .then(|| Redis::new(options));
    let redis_url = redis.as_ref().map(|r| r.url.as_str());
    let mut outcomes: Vec<Vec<Outcome>> = servers.iter().map(|_| Vec::new()).collect();
    for pass in 0..passes {
        // Alternating which goes first, like the round trips.
        for i in 0..servers.len() {
            let k = (pass + i) % servers.len();
            let outcome = measure(servers[k], n, rounds, redis_url);
            eprintln!(
                "  fanout pass {}/{passes} {}: median {:.1} ms, {:.1} KB/connection",
                pass + 1,
                servers[k].name(),
                median(&outcome.times_ms),
                outcome.kb_per_connection
            );
            outcomes[k].push(outcome);
        }
    }
    drop(redis);
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
    for (server, runs) in servers.iter().zip(&outcomes) {
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
        println!(
            "| {} | {:.1} ms | {} ms | {:.1} ms | {:.1} KB ({lo:.1}–{hi:.1}) |",
            server.describe(),
            median(&all),
            medians.join(", "),
            all.iter().copied().fold(0.0, f64::max),
            median(&memory),
        );
        summary.push((*server, median(&all), median(&memory)));
    }
    let Some(&(_, raw_ms, raw_kb)) = summary.iter().find(|s| s.0 == Server::Raw) else {
        println!();
        return;
    };
    println!(
        "\n| against raw | time to the last subscriber | memory per idle connection |\n\
         |---|---|---|"
    );
    for (server, ms, kb) in summary.iter().filter(|s| s.0.omni()) {
        println!(
            "| {}/raw | {:.2} | {:.2} |",
            server.name(),
            ms / raw_ms,
            kb / raw_kb
        );
    }
    println!();
}

fn measure(server: Server, n: u64, rounds: usize, redis: Option<&str>) -> Outcome {
    let mut args = vec!["fanout-serve".to_string(), server.name().into()];
    if server.redis() {
        args.extend(redis.map(String::from));
    }
    let mut process = Child::spawn(&[], &args);
    let addr = process.expect("listening", Duration::from_secs(20));
    // Let the runtime's threads and the allocator settle before the baseline.
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_bytes(process.pid());
    let mut subscribers = Child::spawn(
        &[],
        &[
            "subscribe".into(),
            server.name().into(),
            format!("ws://{addr}{}", server.path()),
            n.to_string(),
            rounds.to_string(),
        ],
    );
    subscribers.expect("ready", Duration::from_secs(180));
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_bytes(process.pid());

    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        process.send("broadcast");
        let sent: u64 = process
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
    process.finish(Duration::from_secs(30));
    Outcome {
        times_ms: times,
        kb_per_connection: after.saturating_sub(before) as f64 / n as f64 / 1e3,
    }
}

/// The Redis the `omni-redis` servers share: `--redis URL`, or `OMNI_REDIS_URL`, or a
/// `redis-server` of this run's own on a free loopback port, stopped when dropped.
struct Redis {
    url: String,
    server: Option<Child>,
}

impl Redis {
    fn new(options: &Options) -> Redis {
        let given = Some(options.text("redis", ""))
            .filter(|url| !url.is_empty())
            .map(String::from)
            .or_else(|| std::env::var("OMNI_REDIS_URL").ok());
        if let Some(url) = given {
            return Redis { url, server: None };
        }
        // Free now; redis-server binds it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
            .to_string();
        let words = [
            "redis-server",
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        let words: Vec<String> = words.into_iter().map(String::from).collect();
        let mut server = Child::program(&words, &[]);
        // It logs to stdout; this line says it listens.
        while !server
            .line(Duration::from_secs(10))
            .contains("Ready to accept connections")
        {}
        Redis {
            url: format!("redis://127.0.0.1:{port}/"),
            server: Some(server),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            server.kill();
        }
    }
}
