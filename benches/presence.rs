//! Presence at scale: 10,000 sessions tracked on one topic, each also subscribed to it (the
//! worst case: every join is news to every session). Measures the time until every session
//! is tracked and every subscriber's list is complete, the memory that takes, the presence
//! frames each subscriber received for the burst (coalesced diffs, not one per join), and the
//! size of the list a new subscriber is sent first.
//!
//! `cargo bench --bench presence` (in memory, through `omni::test` clients: the real hub,
//! sessions and pub/sub, without sockets, whose cost `perf/`'s fan-out measures).
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use omni::pubsub::{LocalPubSub, PubSub};
use omni::server::{Endpoint, Limits};
use omni::test::TestClient;
use omni::{Context, HandlerResult, ServerFrame};

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Lobby {
    #[client]
    Nothing,
    #[server]
    Hi,
}

const TOPIC: &str = "lobby";

struct Guest {
    name: String,
}

impl LobbyHandler for Guest {
    async fn nothing(&mut self, _: &mut Context<Lobby>) -> HandlerResult {
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Lobby>) -> HandlerResult {
        cx.subscribe(TOPIC);
        cx.track(TOPIC, &self.name, serde_json::json!({ "status": "here" }));
        Ok(())
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn entries(pubsub: &dyn PubSub) -> usize {
    pubsub.presence(TOPIC).values().map(Vec::len).sum()
}

async fn run(sessions: usize) {
    let pubsub = Arc::new(LocalPubSub::new());
    let next = Arc::new(AtomicUsize::new(0));
    let endpoint = Endpoint::<Lobby, _>::builder(move || Guest {
        name: format!("user-{:05}", next.fetch_add(1, Ordering::Relaxed)),
    })
    .pubsub(pubsub.clone())
    .limits(Limits {
        outbound_queue: 4096,
        ..Limits::default()
    })
    .build();
    let before = rss();
    let started = Instant::now();
    let mut clients = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        clients.push(TestClient::connect(&endpoint).await);
    }
    let connected = started.elapsed();
    while entries(pubsub.as_ref()) < sessions {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let tracked = started.elapsed();
    // Every subscriber's list complete: the last diff flushed and queued to all of them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut frames, mut bytes, mut complete) = (0usize, 0usize, 0usize);
    for client in &mut clients {
        let mut list = omni::presence::List::new();
        for frame in client.frames() {
            match frame {
                ServerFrame::PresenceState { state, .. } => {
                    frames += 1;
                    bytes += serde_json::to_string(&state).map_or(0, |s| s.len());
                    list = state;
                }
                ServerFrame::PresenceDiff { diff, .. } => {
                    frames += 1;
                    bytes += serde_json::to_string(&diff).map_or(0, |s| s.len());
                    diff.apply_to(&mut list);
                }
                _ => {}
            }
        }
        if list.len() == sessions {
            complete += 1;
        }
    }
    let after = rss();
    let mut late = TestClient::connect(&endpoint).await;
    let first = late.frames().into_iter().find_map(|frame| match frame {
        ServerFrame::PresenceState { .. } => Some(frame.encode().map_or(0, |t| t.len())),
        _ => None,
    });
    println!(
        "| {sessions} | {:.0} ms | {:.0} ms | {:.1} MiB ({} B/session) | {:.1} | {:.1} KiB | {} | {:.0} KiB |",
        connected.as_secs_f64() * 1e3,
        tracked.as_secs_f64() * 1e3,
        after.saturating_sub(before) as f64 / (1 << 20) as f64,
        after.saturating_sub(before) / sessions,
        frames as f64 / sessions as f64,
        bytes as f64 / sessions as f64 / 1024.0,
        complete,
        first.unwrap_or(0) as f64 / 1024.0,
    );
}

fn main() {
    // `cargo test --benches` runs every bench binary once as a smoke test; keep that short.
    let sizes: &[usize] = if std::env::args().any(|a| a == "--bench") {
        &[1_000, 10_000]
    } else {
        &[200]
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| sessions | all connected | all tracked | memory | presence frames per subscriber | presence bytes per subscriber | subscribers with the whole list | first list |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &sessions in sizes {
        runtime.block_on(run(sessions));
    }
}
