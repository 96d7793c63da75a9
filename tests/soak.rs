//! The multi-node soak: four chat demo processes behind a round-robin balancer, on a Redis
//! Cluster of three masters with a replica each, with sessions kept in the cluster; Rust
//! clients chat with acknowledgements while a demo process is SIGKILLed, a Redis master is
//! SIGKILLed (its replica takes over) and the whole cluster is paused. Then, for every
//! client: each of its messages acknowledged, no reset (the sessions of the killed process
//! resumed elsewhere), every room message received exactly once, and the room's presence
//! converged within 15 s of each fault.
//!
//! Ignored by a plain `cargo test`; `cargo xtask test` runs the short variant (60 clients, a
//! message from each every 1.5 s, a 5 s pause). `OMNI_SOAK_CLIENTS`, `OMNI_SOAK_EVERY_MS` and
//! `OMNI_SOAK_PAUSE_SECS` make it longer (the run: thousands of clients and 30 s).
//! The clients and the balancer run in this process, three descriptors a client: a few
//! thousand fit under its open-file limit.

#[path = "../examples/chat/app.rs"]
mod chat;
mod common;
#[path = "../examples/chat/store.rs"]
mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat::{ChatMessage, Msg, MsgFromClient, ROOM, Status};
use common::balancer::Balancer;
use common::cluster::{Cluster, cli};
use common::demo::{chat_server_with, free_port};
use omni::client::{Client, Messages};
use omni::presence::{Mode, Modes};
use omni::{Ref, TransportState};

/// How long presence may take to be right again after a fault.
const CONVERGE: Duration = Duration::from_secs(15);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// Times each message id arrived in an `Upsert`.
    upserts: HashMap<String, u32>,
    states: Vec<TransportState>,
}

struct Member {
    name: String,
    client: Client<Msg>,
    sent: Vec<(String, Ref)>,
    seen: Arc<Mutex<Seen>>,
}

fn quick() -> omni::client::Backoff {
    omni::client::Backoff {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(500),
        ..omni::client::Backoff::default()
    }
}

async fn member(balancer: SocketAddr, i: usize) -> Member {
    let (client, messages) = Client::<Msg>::builder(format!("http://{balancer}/omni"))
        .presence(Modes::new().topic(ROOM, Mode::Count))
        .backoff(quick())
        .connect();
    let name = format!("c{i}");
    client.send(MsgFromClient::SetName(name.clone())).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    tokio::spawn(read(messages, seen.clone()));
    Member {
        name,
        client,
        sent: Vec::new(),
        seen,
    }
}

async fn read(mut messages: Messages<Msg>, seen: Arc<Mutex<Seen>>) {
    while let Some(msg) = messages.recv().await {
        let mut seen = seen.lock().unwrap();
        match msg {
            Msg::Transport(state) => seen.states.push(state),
            Msg::Upsert(upsert) => {
                for id in upsert.into_keys() {
                    *seen.upserts.entry(id).or_default() += 1;
                }
            }
            _ => {}
        }
    }
}

/// The demo processes, killed when the test ends, however it ends.
struct Demos(Vec<Option<std::process::Child>>);

impl Drop for Demos {
    fn drop(&mut self) {
        for child in self.0.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How many transport states each member has had so far.
fn marks(members: &Mutex<Vec<Member>>) -> Vec<usize> {
    members
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.seen.lock().unwrap().states.len())
        .collect()
}

/// Waits until every member that lost its connection since `marks` has a new one; returns how
/// many did.
async fn reconnected(members: &Mutex<Vec<Member>>, marks: &[usize]) -> usize {
    // A killed process's connections reset at once; a moment lets every client notice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    loop {
        let (mut dropped, mut back) = (0, 0);
        for (m, mark) in members.lock().unwrap().iter().zip(marks) {
            let seen = m.seen.lock().unwrap();
            let since = &seen.states[*mark..];
            if let Some(lost) = since
                .iter()
                .rposition(|s| matches!(s, TransportState::Disconnected { .. }))
            {
                dropped += 1;
                if since[lost..]
                    .iter()
                    .any(|s| matches!(s, TransportState::Connected { .. }))
                {
                    back += 1;
                }
            }
        }
        if dropped == back {
            return dropped;
        }
        assert!(
            started.elapsed() < CONVERGE,
            "{} of {dropped} clients not back",
            dropped - back
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every member is shown `n` keys and `n` entries in the room; returns how long
/// it took, failing after [`CONVERGE`].
async fn converged(members: &Mutex<Vec<Member>>, n: u64, after: &str) -> Duration {
    let started = Instant::now();
    loop {
        let wrong: Vec<_> = members
            .lock()
            .unwrap()
            .iter()
            .filter_map(|m| {
                let count = m.client.presence_count(ROOM);
                let right = count.is_some_and(|c| c.keys == n && c.entries == n);
                (!right).then(|| format!("{}: {count:?}", m.name))
            })
            .collect();
        if wrong.is_empty() {
            let took = started.elapsed();
            eprintln!("soak: presence converged {took:?} after {after}");
            return took;
        }
        if started.elapsed() >= CONVERGE {
            for m in members.lock().unwrap().iter() {
                let seen = m.seen.lock().unwrap();
                eprintln!("{}: {:?}", m.name, seen.states);
            }
        }
        assert!(
            started.elapsed() < CONVERGE,
            "presence not converged {CONVERGE:?} after {after}: {} members wrong, e.g. {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each member sends a message every `every`, on its own schedule, until `stop`.
fn chatter(members: Arc<Mutex<Vec<Member>>>, stop: Arc<AtomicBool>, every: Duration) {
    let count = members.lock().unwrap().len();
    for i in 0..count {
        let (members, stop) = (members.clone(), stop.clone());
        tokio::spawn(async move {
            // Spread out: not everyone at the same instant.
            tokio::time::sleep(every * i as u32 / count as u32).await;
            let mut k = 0;
            while !stop.load(Ordering::SeqCst) {
                {
                    let mut members = members.lock().unwrap();
                    let member = &mut members[i];
                    let id = format!("{}-{k}", member.name);
                    let sent = member.client.send(MsgFromClient::Send(ChatMessage {
                        id: id.clone(),
                        author: member.name.clone(),
                        text: format!("message {k}"),
                        status: Status::Sending,
                        sent_at: 0,
                    }));
                    member.sent.push((id, sent.unwrap()));
                }
                k += 1;
                tokio::time::sleep(every).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and redis-cli: run with `cargo xtask test`"]
async fn four_demo_nodes_on_a_cluster_survive_a_node_kill_a_failover_and_a_pause() {
    let clients = setting("OMNI_SOAK_CLIENTS", 60) as usize;
    let pause = Duration::from_secs(setting("OMNI_SOAK_PAUSE_SECS", 5));
    let every = Duration::from_millis(setting("OMNI_SOAK_EVERY_MS", 1500));
    let mut cluster = Cluster::start();
    let seed = Cluster::url(cluster.ports()[0]);

    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let mut nodes = Demos(
        ports
            .iter()
            .map(|port| Some(chat_server_with(*port, &["--redis", &seed])))
            .collect(),
    );
    let balancer = Balancer::start(
        ports
            .iter()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], *port)))
            .collect(),
    )
    .await;

    let mut joined = Vec::new();
    for i in 0..clients {
        joined.push(member(balancer.addr, i).await);
    }
    let n = clients as u64;
    let members = Arc::new(Mutex::new(joined));
    converged(&members, n, "everyone joined").await;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    chatter(members.clone(), stop.clone(), every);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 1. A demo process dies without a word: its clients come back through the balancer.
    let before = marks(&members);
    let mut victim = nodes.0[0].take().unwrap();
    victim.kill().unwrap();
    victim.wait().unwrap();
    let moved = reconnected(&members, &before).await;
    eprintln!("soak: {moved} clients of the killed process are back");
    assert!(moved > 0, "the killed process had clients");
    let kill_took = converged(&members, n, "a demo process was SIGKILLed").await;
    eprintln!(
        "soak: {:?} into the chatter, a Redis master is killed",
        started.elapsed()
    );

    // 2. A Redis master dies: its replica takes over.
    let master = cluster_master(&cluster);
    let heir = cluster.replica_of(master);
    cluster.kill(master);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cli(heir, &["role"]).starts_with("master") {
        assert!(Instant::now() < deadline, "the replica took over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failover_took = converged(&members, n, "a Redis master was SIGKILLed").await;

    // 3. The whole cluster stops answering for a while.
    eprintln!(
        "soak: {:?} into the chatter, Redis is paused",
        started.elapsed()
    );
    for port in cluster.ports() {
        if port != master {
            cli(
                port,
                &["client", "pause", &pause.as_millis().to_string(), "all"],
            );
        }
    }
    tokio::time::sleep(pause).await;
    let pause_took = converged(&members, n, "Redis was paused").await;

    // Everyone stops; everything sent is acknowledged and has arrived.
    stop.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let members = std::mem::take(&mut *members.lock().unwrap());
    let mut all = Vec::new();
    for member in &members {
        for (id, reference) in &member.sent {
            tokio::time::timeout(Duration::from_secs(30), member.client.acked(*reference))
                .await
                .unwrap_or_else(|_| panic!("{id} acknowledged"))
                .unwrap();
            all.push(id.clone());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let missing = members
            .iter()
            .map(|m| {
                let seen = m.seen.lock().unwrap();
                all.iter()
                    .filter(|id| !seen.upserts.contains_key(*id))
                    .count()
            })
            .sum::<usize>();
        if missing == 0 {
            break;
        }
        if Instant::now() >= deadline {
            let mut by_id: HashMap<&str, usize> = HashMap::new();
            for m in &members {
                let seen = m.seen.lock().unwrap();
                for id in all.iter().filter(|id| !seen.upserts.contains_key(*id)) {
                    *by_id.entry(id).or_default() += 1;
                }
            }
            let mut by_id: Vec<_> = by_id.into_iter().collect();
            by_id.sort();
            panic!(
                "{missing} room messages never arrived (message: clients missing it): {:?}",
                &by_id[..by_id.len().min(20)]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut resets = 0;
    for member in &members {
        let seen = member.seen.lock().unwrap();
        resets += seen
            .states
            .iter()
            .filter(|s| matches!(s, TransportState::Reset | TransportState::TopicReset { .. }))
            .count();
        for id in &all {
            // Once from the room; the sender's own also once as the answer to its message.
            let own = id.starts_with(&format!("{}-", member.name));
            let expected = 1 + u32::from(own);
            assert_eq!(
                seen.upserts.get(id).copied().unwrap_or(0),
                expected,
                "{} received {id}",
                member.name
            );
        }
    }
    assert_eq!(resets, 0, "no client was reset");
    // The backlog the pause leaves arrives at once: its followers are caught up from the
    // topic's log, never closed for it.
    let (mut slow, mut caught_up) = (0.0, 0.0);
    let _ = rustls::crypto::ring::default_provider().install_default();
    for port in &ports[1..] {
        let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        slow += counter(&text, "omni_slow_consumers_total");
        caught_up += counter(&text, "omni_topic_catch_ups_total");
    }
    eprintln!("soak: {slow} slow consumers, {caught_up} topic catch-ups on the nodes left");
    assert_eq!(slow, 0.0, "a node closed a client as a slow consumer");
    eprintln!(
        "soak: {clients} clients, {} messages, presence converged {kill_took:?} after the \
         node kill, {failover_took:?} after the failover, {pause_took:?} after a {pause:?} pause",
        all.len()
    );
    drop(nodes);
}

/// The sum of a counter's series in a Prometheus scrape.
fn counter(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The port of a master that serves slots, other than the seed the demo was given (a
/// deployment lists several seeds; the demo here was given one).
fn cluster_master(cluster: &Cluster) -> u16 {
    let seed = cluster.ports()[0];
    Cluster::masters(seed)
        .into_iter()
        .map(|(_, port, _)| port)
        .find(|port| *port != seed)
        .expect("three masters")
}
