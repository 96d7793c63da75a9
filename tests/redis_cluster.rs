//! Pub/sub across server processes through a real Redis Cluster: six redis-server processes
//! (three masters, a replica each) made a cluster by `redis-cli --cluster create`. These tests
//! are ignored by a plain `cargo test`; `cargo xtask test` runs them, with
//! `OMNI_REDIS_CLUSTER=1`, when redis-server and redis-cli are on the PATH.

#[path = "../examples/chat/app.rs"]
mod chat;
mod common;
#[path = "../examples/chat/store.rs"]
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, cli};
use common::{Client, PATIENCE, serve};
use omni::pubsub::{PubSub, RedisPubSub};
use omni::server::Endpoint;
use omni::{Context, HandlerResult, ServerFrame, TransportState};

/// Rooms named by the client: broadcasts (`Say`) and sequenced messages (`Post`) on any of
/// the topics every member follows.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Rooms {
    #[client]
    Say { topic: String, text: String },
    #[client]
    Post { topic: String, text: String },
    #[server]
    Said { topic: String, text: String },
    #[server]
    Posted { topic: String, text: String },
    /// A topic's snapshot: nothing to hold but that it came.
    #[server]
    State { topic: String },
}

struct Member {
    name: String,
    topics: Arc<Vec<String>>,
}

impl RoomsHandler for Member {
    async fn connected(&mut self, cx: &mut Context<Rooms>) -> HandlerResult {
        for topic in self.topics.iter() {
            cx.subscribe(topic.clone());
        }
        cx.track(self.topics[0].clone(), self.name.clone(), ());
        Ok(())
    }

    async fn say(&mut self, cx: &mut Context<Rooms>, topic: String, text: String) -> HandlerResult {
        cx.broadcast(topic.clone(), RoomsFromServer::Said { topic, text });
        Ok(())
    }

    async fn post(
        &mut self,
        cx: &mut Context<Rooms>,
        topic: String,
        text: String,
    ) -> HandlerResult {
        cx.publish(topic.clone(), RoomsFromServer::Posted { topic, text });
        Ok(())
    }

    async fn snapshot(&mut self, cx: &mut Context<Rooms>, topic: String) -> HandlerResult {
        cx.send(RoomsFromServer::State { topic });
        Ok(())
    }
}

/// A server process stand-in on the cluster reached through `urls`.
async fn node(
    urls: &str,
    prefix: &str,
    topics: &Arc<Vec<String>>,
) -> (SocketAddr, Arc<RedisPubSub>) {
    let pubsub = Arc::new(
        RedisPubSub::with_prefix(urls, prefix)
            .unwrap()
            .with_presence_interval(Duration::from_millis(20)),
    );
    assert!(pubsub.ready(PATIENCE).await, "cluster subscriber up");
    let topics = topics.clone();
    let members = Arc::new(AtomicUsize::new(0));
    let endpoint = Endpoint::<Rooms, _>::builder(move || Member {
        // Unique across servers: the same key from two servers would be one member.
        name: format!(
            "m{:x}-{}",
            rand::random::<u32>(),
            members.fetch_add(1, Ordering::SeqCst)
        ),
        topics: topics.clone(),
    })
    .pubsub(pubsub.clone())
    .build();
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    (addr, pubsub)
}

fn prefix() -> String {
    format!("test-{:x}:", rand::random::<u64>())
}

fn channel(prefix: &str, topic: &str) -> String {
    format!("{{{prefix}{topic}}}")
}

/// One topic per master: their channels and keys live on three different shards.
fn one_topic_per_master(port: u16, prefix: &str) -> Vec<String> {
    let mut by_master = std::collections::BTreeMap::new();
    for n in 0.. {
        let topic = format!("t{n}");
        let master = Cluster::master_of(port, &channel(prefix, &topic));
        by_master.entry(master).or_insert(topic);
        if by_master.len() == 3 {
            break;
        }
    }
    by_master.into_values().collect()
}

/// Connects following sequenced topics, and reads `welcome` and every topic's snapshot.
async fn member(addr: SocketAddr, cursors: &str, topics: usize) -> Client {
    let path = format!("/omni/ws?topics={}", common::feed::urlencode(cursors));
    let mut client = Client::connect(addr, &path).await;
    assert!(matches!(
        client.next::<RoomsFromServer>().await,
        ServerFrame::Welcome { .. }
    ));
    for _ in 0..topics {
        match next(&mut client).await {
            ServerFrame::Msg {
                payload: RoomsFromServer::State { .. },
                ..
            } => {}
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }
    client
}

/// The next frame that is not an `ack` or presence.
async fn next(client: &mut Client) -> ServerFrame<RoomsFromServer> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match client.next::<RoomsFromServer>().await {
                ServerFrame::Ack { .. }
                | ServerFrame::PresenceState { .. }
                | ServerFrame::PresenceDiff { .. } => {}
                frame => return frame,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no frame within {PATIENCE:?}"))
}

/// Topic messages received: `(topic, seq, text)`.
type Numbered = Vec<(String, u64, String)>;
/// Broadcasts received: `(topic, text)`.
type Heard = Vec<(String, String)>;

/// What a member received: `(topic, seq, text)` of each topic message, `(topic, text)` of
/// each broadcast, until it has `posts` and `says` of them.
async fn received(client: &mut Client, posts: usize, says: usize) -> (Numbered, Heard) {
    let (mut numbered, mut heard) = (Vec::new(), Vec::new());
    while numbered.len() < posts || heard.len() < says {
        match next(client).await {
            ServerFrame::Msg {
                seq,
                payload: RoomsFromServer::Posted { topic, text },
                ..
            } => numbered.push((topic, seq, text)),
            ServerFrame::Push {
                payload: RoomsFromServer::Said { topic, text },
                ..
            } => heard.push((topic, text)),
            other => panic!("unexpected {other:?}"),
        }
    }
    (numbered, heard)
}

/// Each topic's numbers, contiguous, with its texts in the order published.
fn check_numbering(numbered: &[(String, u64, String)], topics: &[String], rounds: usize) {
    for topic in topics {
        let mine: Vec<_> = numbered.iter().filter(|(t, ..)| t == topic).collect();
        assert_eq!(mine.len(), rounds, "{topic}: every message once");
        let first = mine[0].1;
        for (i, (_, seq, text)) in mine.iter().enumerate() {
            assert_eq!(*seq, first + i as u64, "{topic}: contiguous numbers");
            assert_eq!(*text, format!("{topic}-{i}"), "{topic}: in order");
        }
    }
}

fn say(topic: &str, text: &str) -> RoomsFromClient {
    RoomsFromClient::Say {
        topic: topic.into(),
        text: text.into(),
    }
}

fn post(topic: &str, text: &str) -> RoomsFromClient {
    RoomsFromClient::Post {
        topic: topic.into(),
        text: text.into(),
    }
}

/// Connects without following topics, to send.
async fn writer(addr: SocketAddr) -> Client {
    let mut client = Client::connect(addr, "/omni/ws").await;
    assert!(matches!(
        client.next::<RoomsFromServer>().await,
        ServerFrame::Welcome { .. }
    ));
    client
}

/// Sends `msg` and waits until the server has handled it.
async fn send(client: &mut Client, msg: RoomsFromClient, reference: &mut u64) {
    *reference += 1;
    client.msg(msg, *reference).await;
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let ServerFrame::Ack { reference: r, .. } = client.next::<RoomsFromServer>().await
                && r == *reference
            {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no ack within {PATIENCE:?}"));
}

/// Reads `client`'s frames into `seen` until the topic message `text` is among them.
async fn until_posted(client: &mut Client, seen: &mut (Numbered, Heard), text: &str) {
    while !seen.0.iter().any(|(_, _, t)| t == text) {
        let (numbered, heard) = received(client, 1, 0).await;
        seen.0.extend(numbered);
        seen.1.extend(heard);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and redis-cli: run `cargo xtask test`"]
async fn two_servers_on_a_cluster_share_topics_on_every_shard() {
    let cluster = Cluster::start();
    let ports = cluster.ports();
    let prefix = prefix();
    let topics = Arc::new(one_topic_per_master(ports[0], &prefix));
    // One server finds the cluster from a single node, the other is given two seeds.
    let (a, _) = node(&Cluster::url(ports[0]), &prefix, &topics).await;
    let seeds = format!("{},{}", Cluster::url(ports[3]), Cluster::url(ports[4]));
    let (b, _) = node(&seeds, &prefix, &topics).await;
    let mut on_a = member(a, "{}", topics.len()).await;
    let mut on_b = member(b, "{}", topics.len()).await;
    let mut writers = [writer(a).await, writer(b).await];
    let (mut seen_a, mut seen_b) = Default::default();

    const ROUNDS: usize = 4;
    let mut reference = 0;
    for i in 0..ROUNDS {
        for topic in topics.iter() {
            // Through either server: one numbering per topic, in Redis. Each post is seen on
            // both before the next goes, so texts follow numbers.
            let text = format!("{topic}-{i}");
            send(&mut writers[i % 2], post(topic, &text), &mut reference).await;
            until_posted(&mut on_a, &mut seen_a, &text).await;
            until_posted(&mut on_b, &mut seen_b, &text).await;
        }
    }
    for (numbered, _) in [&seen_a, &seen_b] {
        check_numbering(numbered, &topics, ROUNDS);
    }
    for topic in topics.iter() {
        send(
            &mut writers[0],
            say(topic, &format!("hi {topic}")),
            &mut reference,
        )
        .await;
    }
    let mut want: Vec<_> = topics
        .iter()
        .map(|t| (t.clone(), format!("hi {t}")))
        .collect();
    want.sort();
    for client in [&mut on_a, &mut on_b] {
        let (_, mut heard) = received(client, 0, topics.len()).await;
        heard.sort();
        assert_eq!(heard, want, "every broadcast crossed, once");
    }

    // A member resuming on b from a cursor gets the rest of that topic from the Redis log:
    // the replay script ran on the topic's slot.
    let topic = &topics[1];
    let first = seen_a.0.iter().find(|(t, ..)| t == topic).unwrap().1;
    let mut reader = member(b, &format!(r#"{{"{topic}":{first}}}"#), 0).await;
    // The other topics' snapshots and this one's replay, in any order between topics.
    let (mut replayed, mut snapshots) = (Vec::new(), 0);
    while replayed.len() < ROUNDS - 1 || snapshots < topics.len() - 1 {
        match next(&mut reader).await {
            ServerFrame::Msg {
                payload: RoomsFromServer::State { .. },
                ..
            } => snapshots += 1,
            ServerFrame::Msg {
                seq,
                payload: RoomsFromServer::Posted { topic, text },
                ..
            } => replayed.push((topic, seq, text)),
            other => panic!("unexpected {other:?}"),
        }
    }
    let want: Vec<_> = seen_a
        .0
        .iter()
        .filter(|(t, ..)| t == topic)
        .skip(1)
        .cloned()
        .collect();
    assert_eq!(replayed, want, "exactly what followed the cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and redis-cli: run `cargo xtask test`"]
async fn every_number_arrives_once_on_both_servers() {
    let cluster = Cluster::start();
    let ports = cluster.ports();
    let prefix = prefix();
    let topics = Arc::new(one_topic_per_master(ports[0], &prefix));
    let (a, _) = node(&Cluster::url(ports[1]), &prefix, &topics).await;
    let (b, _) = node(&Cluster::url(ports[2]), &prefix, &topics).await;
    let mut poster = writer(a).await;
    let mut on_a = member(a, "{}", topics.len()).await;
    let mut on_b = member(b, "{}", topics.len()).await;
    const ROUNDS: usize = 5;
    let mut reference = 0;
    for i in 0..ROUNDS {
        for topic in topics.iter() {
            send(
                &mut poster,
                post(topic, &format!("{topic}-{i}")),
                &mut reference,
            )
            .await;
        }
    }
    let total = ROUNDS * topics.len();
    for client in [&mut on_a, &mut on_b] {
        let (numbered, _) = received(client, total, 0).await;
        check_numbering(&numbered, &topics, ROUNDS);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and redis-cli: run `cargo xtask test`"]
async fn presence_crosses_servers_in_cluster_mode() {
    let cluster = Cluster::start();
    let ports = cluster.ports();
    let prefix = prefix();
    let topics = Arc::new(one_topic_per_master(ports[0], &prefix));
    let (a, pubsub_a) = node(&Cluster::url(ports[0]), &prefix, &topics).await;
    let (b, pubsub_b) = node(&Cluster::url(ports[5]), &prefix, &topics).await;
    let on_a = member(a, "{}", topics.len()).await;
    let on_b = member(b, "{}", topics.len()).await;
    let room = &topics[0];
    let names = |pubsub: &RedisPubSub| pubsub.presence(room).keys().cloned().collect::<Vec<_>>();
    let deadline = Instant::now() + PATIENCE;
    while !(names(&pubsub_a).len() == 2 && names(&pubsub_b) == names(&pubsub_a)) {
        assert!(
            Instant::now() < deadline,
            "both servers list both members: {:?} {:?}",
            names(&pubsub_a),
            names(&pubsub_b)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop((on_a, on_b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and redis-cli: run `cargo xtask test`"]
async fn a_master_killed_fails_over_and_its_topics_carry_on() {
    let mut cluster = Cluster::start();
    let ports = cluster.ports();
    let prefix = prefix();
    let topics = Arc::new(one_topic_per_master(ports[0], &prefix));
    let topic = topics[0].clone();
    let key = channel(&prefix, &topic);
    let victim = Cluster::master_of(ports[0], &key);
    let heir = cluster.replica_of(victim);
    let alive: Vec<u16> = ports.iter().copied().filter(|p| *p != victim).collect();
    let seeds: Vec<String> = ports.iter().map(|p| Cluster::url(*p)).collect();
    let (a, _) = node(&seeds.join(","), &prefix, &topics).await;
    let (b, pubsub_b) = node(&Cluster::url(alive[0]), &prefix, &topics).await;

    // The Rust client on b: it resumes by itself with its cursor when it sees a gap.
    let (_client, mut messages) =
        omni::client::Client::<Rooms>::builder(format!("http://{b}/omni"))
            .backoff(common::feed::quick())
            .connect();
    let mut snapshots = 0;
    while snapshots < topics.len() {
        match tokio::time::timeout(PATIENCE, messages.recv()).await {
            Ok(Some(Rooms::State { .. })) => snapshots += 1,
            Ok(Some(_)) => {}
            other => panic!("no snapshots: {other:?}"),
        }
    }
    let mut poster = writer(a).await;
    let mut reference = 0;
    for i in 0..5 {
        send(&mut poster, post(&topic, &format!("p{i}")), &mut reference).await;
    }
    // The first five reached b (so were numbered) and the replica has them: nothing written
    // is lost with the master.
    let mut posts = Vec::new();
    while posts.len() < 5 {
        match tokio::time::timeout(PATIENCE, messages.recv()).await {
            Ok(Some(Rooms::Posted { text, .. })) => posts.push(text),
            Ok(Some(_)) => {}
            other => panic!("only {posts:?}: {other:?}"),
        }
    }
    let offset = |port: u16, field: &str| -> u64 {
        let info = cli(port, &["info", "replication"]);
        info.lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    let written = offset(victim, "master_repl_offset:");
    let deadline = Instant::now() + PATIENCE;
    while offset(heir, "slave_repl_offset:") < written {
        assert!(Instant::now() < deadline, "the replica did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let killed = Instant::now();
    cluster.kill(victim);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cli(heir, &["role"]).starts_with("master") {
        assert!(Instant::now() < deadline, "the replica was not promoted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.until_ok(&alive);
    let promoted = killed.elapsed();
    // Both servers' subscriptions to the topic are back, on the new master, as it counts them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let numsub = cli(heir, &["pubsub", "shardnumsub", &key]);
        if numsub.lines().nth(1).map(str::trim) == Some("2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscriptions not re-established: {numsub}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "failover: replica promoted after {promoted:?}, subscriptions back after {:?}",
        killed.elapsed()
    );
    assert!(pubsub_b.health().subscribed);

    for i in 5..10 {
        send(&mut poster, post(&topic, &format!("p{i}")), &mut reference).await;
    }
    send(&mut poster, say(&topic, "after"), &mut reference).await;
    let mut heard = false;
    while posts.len() < 10 || !heard {
        match tokio::time::timeout(PATIENCE, messages.recv()).await {
            Ok(Some(Rooms::Posted { text, .. })) => posts.push(text),
            Ok(Some(Rooms::Said { text, .. })) => heard |= text == "after",
            Ok(Some(Rooms::Transport(TransportState::TopicReset { .. }))) => {
                panic!("the topic's log covers the failover: no reset")
            }
            Ok(Some(_)) => {}
            other => panic!("only {posts:?}: {other:?}"),
        }
    }
    let want: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    assert_eq!(
        posts, want,
        "every message once, in order, across the failover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and redis-cli: run `cargo xtask test`"]
async fn the_chat_demo_s_room_lives_on_a_cluster_found_from_one_node_or_listed() {
    let cluster = Cluster::start();
    let ports = cluster.ports();
    let name = format!("chat-{:x}", rand::random::<u64>());
    // What `--redis` is given: one node (the others are found from it), or several.
    let one = Cluster::url(ports[0]);
    let listed = format!("{},{}", Cluster::url(ports[1]), Cluster::url(ports[2]));
    let mut servers = Vec::new();
    for url in [&one, &listed] {
        let room = chat::Room::with_redis(url, &name).await.unwrap();
        assert!(matches!(
            room.shared().unwrap().redis,
            store::Store::Cluster(_)
        ));
        let router = omni::axum::Router::new().nest("/omni", room.endpoint().router());
        servers.push(serve(router).await);
    }
    let mut ada = Client::connect(servers[0], "/omni/ws").await;
    let mut bob = Client::connect(servers[1], "/omni/ws").await;
    let message = chat::ChatMessage {
        id: "m1".into(),
        author: "ada".into(),
        text: "across a cluster".into(),
        status: chat::Status::Sending,
        sent_at: 0,
    };
    ada.msg(chat::MsgFromClient::Send(message), 1).await;
    // Pushed to bob on the other server, and kept in the cluster: the other server answers
    // FetchAll with it.
    let upsert = |frame: ServerFrame<chat::MsgFromServer>| match frame {
        ServerFrame::Push {
            payload: chat::MsgFromServer::Upsert(map),
            ..
        }
        | ServerFrame::Msg {
            payload: chat::MsgFromServer::Upsert(map),
            ..
        } => map.get("m1").cloned(),
        _ => None,
    };
    let deadline = Instant::now() + PATIENCE;
    let pushed = loop {
        assert!(Instant::now() < deadline, "ada's message never reached bob");
        if let Some(found) = upsert(bob.next::<chat::MsgFromServer>().await) {
            break found;
        }
    };
    assert_eq!(
        (pushed.text.as_str(), pushed.status),
        ("across a cluster", chat::Status::Sent)
    );
    bob.msg(chat::MsgFromClient::FetchAll, 2).await;
    loop {
        assert!(Instant::now() < deadline, "no answer to FetchAll");
        if let ServerFrame::Msg {
            payload: chat::MsgFromServer::Upsert(map),
            ..
        } = bob.next::<chat::MsgFromServer>().await
        {
            assert_eq!(map["m1"].text, "across a cluster");
            break;
        }
    }
}
