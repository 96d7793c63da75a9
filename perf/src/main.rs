//! Cross-process benchmarks of omni against raw axum, a hand-written typed axum server and
//! jsonrpsee: round trips, instructions per round trip under callgrind, and fan-out.
//!
//! `cargo run --release -- all` runs everything and prints markdown tables; `roundtrip`,
//! `callgrind` and `fanout` run one part. Options add servers to the default ones:
//! `--targets` a typed server that acks and omni in MessagePack, `--fanout` omni's sequenced
//! topics and Redis (run it with no subcommand for the list). The same binary is also every server and every load
//! client (the `serve`, `load`, `fanout-serve` and `subscribe` subcommands), started by the
//! driver as child processes so that a server never shares its process, heap or runtime with
//! the load that measures it.
//!
//! `storm` is apart (not in `all`): the reconnect storm of issue 14 against the chat demo,
//! with its own children (`storm-clients`, `storm-proxy`); see `storm.rs`.

mod bench;
mod blip_proxy;
mod callgrind;
/// The chat demo's protocol, from the demo's own source, so the storm's clients speak it.
#[path = "../../examples/chat/app.rs"]
mod chat;
mod child;
mod fanout;
mod load;
mod roundtrip;
mod servers;
mod storm;
mod storm_clients;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a load client talks to, and how. `OmniRef` is the omni server driven with a `ref` on
/// every message, so each round trip is answered by a `msg` and an `ack`; `TypedAck` is the
/// typed server answering the same way; `OmniMsgpack` is `OmniRef` in MessagePack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Raw,
    Typed,
    Jsonrpsee,
    Omni,
    OmniRef,
    TypedAck,
    OmniMsgpack,
    OmniRedis,
    OmniStore,
}

impl Target {
    pub const ALL: [Target; 9] = [
        Target::Raw,
        Target::Typed,
        Target::Jsonrpsee,
        Target::Omni,
        Target::OmniRef,
        Target::TypedAck,
        Target::OmniMsgpack,
        Target::OmniRedis,
        Target::OmniStore,
    ];

    /// What `roundtrip` and `callgrind` run without `--targets`.
    pub const DEFAULT: &str = "raw,typed,jsonrpsee,omni,omni-ref";

    pub fn name(self) -> &'static str {
        match self {
            Target::Raw => "raw",
            Target::Typed => "typed",
            Target::Jsonrpsee => "jsonrpsee",
            Target::Omni => "omni",
            Target::OmniRef => "omni-ref",
            Target::TypedAck => "typed-ack",
            Target::OmniMsgpack => "omni-msgpack",
            Target::OmniRedis => "omni-redis",
            Target::OmniStore => "omni-store",
        }
    }

    pub fn parse(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The targets `--targets` names, in its order.
    pub fn list(options: &Options) -> Vec<Target> {
        options
            .text("targets", Target::DEFAULT)
            .split(',')
            .map(|name| {
                Target::parse(name).unwrap_or_else(|| usage(&format!("no target called {name}")))
            })
            .collect()
    }

    /// The server process this target runs against.
    pub fn server(self) -> &'static str {
        match self {
            Target::OmniRef | Target::OmniMsgpack => Target::Omni.name(),
            Target::TypedAck => Target::Typed.name(),
            other => other.name(),
        }
    }

    /// The WebSocket path below `ws://ADDR`.
    pub fn path(self) -> &'static str {
        match self {
            Target::Raw | Target::Typed => "/ws",
            Target::TypedAck => "/ws-ack",
            Target::Jsonrpsee => "/",
            Target::Omni | Target::OmniRef | Target::OmniRedis | Target::OmniStore => "/omni/ws",
            Target::OmniMsgpack => "/omni/ws?codec=msgpack",
        }
    }

    /// Whether it answers with omni's frames (the raw server echoes the request, jsonrpsee
    /// speaks JSON-RPC).
    pub fn omni_frames(self) -> bool {
        !matches!(self, Target::Raw | Target::Jsonrpsee)
    }

    /// Whether every request carries a `ref` (the typed server's replies echo it).
    pub fn sends_ref(self) -> bool {
        matches!(
            self,
            Target::Typed
                | Target::TypedAck
                | Target::OmniRef
                | Target::OmniMsgpack
                | Target::OmniRedis
                | Target::OmniStore
        )
    }

    /// Whether a request is answered by a reply and an `ack`.
    pub fn acks(self) -> bool {
        matches!(
            self,
            Target::TypedAck
                | Target::OmniRef
                | Target::OmniMsgpack
                | Target::OmniRedis
                | Target::OmniStore
        )
    }

    /// Whether it answers with omni's own server (a `welcome` first).
    pub fn omni(self) -> bool {
        matches!(
            self,
            Target::Omni
                | Target::OmniRef
                | Target::OmniMsgpack
                | Target::OmniRedis
                | Target::OmniStore
        )
    }

    /// Whether its frames are MessagePack, in binary WebSocket messages.
    pub fn msgpack(self) -> bool {
        self == Target::OmniMsgpack
    }
}

/// Ratios worth printing, each when both of its targets ran.
pub const RATIOS: [(Target, Target); 8] = [
    (Target::Omni, Target::Typed),
    (Target::Omni, Target::Jsonrpsee),
    (Target::OmniRef, Target::Typed),
    (Target::Typed, Target::Raw),
    (Target::OmniRef, Target::TypedAck),
    (Target::OmniMsgpack, Target::OmniRef),
    (Target::OmniRedis, Target::OmniRef),
    (Target::OmniStore, Target::OmniRedis),
];

/// `--name value` options after the subcommand, with defaults.
pub struct Options(HashMap<String, String>);

impl Options {
    fn parse(args: &[String]) -> Options {
        let mut map = HashMap::new();
        let mut args = args.iter();
        while let Some(key) = args.next() {
            let Some(key) = key.strip_prefix("--") else {
                usage(&format!("unexpected argument {key}"));
            };
            let Some(value) = args.next() else {
                usage(&format!("--{key} needs a value"));
            };
            map.insert(key.to_string(), value.clone());
        }
        Options(map)
    }

    pub fn get(&self, key: &str, default: u64) -> u64 {
        self.0.get(key).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("--{key} wants a number, not {v}")))
        })
    }

    /// The number given for `key`, if any.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.0.contains_key(key).then(|| self.get(key, 0))
    }

    pub fn text<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.0.get(key).map_or(default, String::as_str)
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\n\n\
         usage: omni-perf all | roundtrip | callgrind | fanout | storm [--option value]...\n  \
         roundtrip: --runs 9 --connections 50 --trips 400 --warmup 50 --modes pinned,free\n             \
         --targets {}\n  \
         callgrind: --connections 50 --callgrind-trips 200 --callgrind-warmup 20 --repeats 3\n             \
         --targets (as roundtrip's)\n  \
         fanout:    --subscribers 10000 --rounds 15 --passes 3 --fanout {}\n             \
         --redis URL (default: $OMNI_REDIS_URL, or a redis-server started on a free port)\n  \
         storm:     --clients 1000 --scenario both|kill|blip --per-child 5000 --senders 100\n             \
         --connect-rate 2000 --setup 90 --settle 60 --confirm 30 --backlog N --demo PATH\n             \
         --presence list|count\n\
         `all` accepts all of these but storm's, and does not run the storm.\n\
         targets: {}\n\
         fan-out servers: {}",
        Target::DEFAULT,
        fanout::DEFAULT,
        Target::ALL.map(Target::name).join(", "),
        fanout::names(),
    );
    std::process::exit(2)
}

/// Microseconds since the epoch: the one clock the fan-out's processes share.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

pub fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// A runtime for a server or client process. Under `taskset` its worker count follows the
/// CPUs the process may use (tokio asks `available_parallelism`, which reads the affinity).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        usage("no subcommand");
    };
    match command.as_str() {
        // The child processes.
        "serve" => servers::serve(rest.first().map_or("", String::as_str)),
        "load" => load::main(rest),
        "fanout-serve" => fanout::serve(rest),
        "subscribe" => fanout::subscribe(rest),
        "storm-clients" => storm_clients::main(rest),
        "storm-proxy" => blip_proxy::main(rest),
        "storm" => {
            println!(
                "# Reconnect storm\n\nomni sources at {}, run on {}, {} CPUs\n\n`omni-perf {}`\n",
                child::omni_commit(),
                child::today(),
                std::thread::available_parallelism().map_or(0, usize::from),
                args.join(" "),
            );
            storm::run(&Options::parse(rest));
        }
        // The driver.
        "roundtrip" | "callgrind" | "fanout" | "all" => {
            let options = Options::parse(rest);
            let started = std::time::Instant::now();
            // The load average says how busy the shared machine was when the run began.
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            let load = load
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "# omni cross-process benchmarks\n\nomni sources at {}, run on {}, {} CPUs, \
                 load average {load} at the start\n",
                child::omni_commit(),
                child::today(),
                std::thread::available_parallelism().map_or(0, usize::from),
            );
            if matches!(command.as_str(), "roundtrip" | "all") {
                roundtrip::run(&options);
            }
            if matches!(command.as_str(), "callgrind" | "all") {
                callgrind::run(&options);
            }
            if matches!(command.as_str(), "fanout" | "all") {
                fanout::run(&options);
            }
            println!("(took {} s)", started.elapsed().as_secs());
        }
        other => usage(&format!("unknown subcommand {other}")),
    }
}
