//! Pub/sub across server processes through a real redis-server. These tests are ignored by a
//! plain `cargo test`; `cargo xtask test` starts a redis-server and runs them.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::own_redis::OwnRedis;
use common::{Client, PATIENCE, serve, until};
use omni::pubsub::{PubSub, RedisPubSub};
use omni::server::Endpoint;
use omni::{Context, HandlerResult, ServerFrame};

/// A protocol with broadcasts.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Room {
    /// Broadcast to everyone on `room`, the sender too.
    #[client]
    Say(String),
    /// Broadcast to everyone on `room` but the sender.
    #[client]
    Tell(String),
    #[server]
    Said(String),
}

struct Member;

impl RoomHandler for Member {
    async fn say(&mut self, cx: &mut Context<Room>, text: String) -> HandlerResult {
        cx.broadcast("room", RoomFromServer::Said(text));
        Ok(())
    }

    async fn tell(&mut self, cx: &mut Context<Room>, text: String) -> HandlerResult {
        cx.broadcast_from("room", RoomFromServer::Said(text));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Room>) -> HandlerResult {
        cx.subscribe("room");
        Ok(())
    }
}

fn redis_url() -> String {
    std::env::var("OMNI_REDIS_URL")
        .expect("OMNI_REDIS_URL names a redis-server: run these tests with `cargo xtask test`")
}

/// A server process stand-in: an endpoint on its own port with its own Redis pub/sub.
async fn node(url: &str, prefix: &str) -> (SocketAddr, Arc<RedisPubSub>) {
    let pubsub = Arc::new(RedisPubSub::with_prefix(url, prefix).unwrap());
    assert!(
        pubsub.ready(Duration::from_secs(10)).await,
        "redis subscriber up"
    );
    let endpoint: Endpoint<Room, Member> =
        Endpoint::builder(|| Member).pubsub(pubsub.clone()).build();
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    (addr, pubsub)
}

/// What `wait` returns, or a panic saying what did not happen after [`PATIENCE`].
async fn within<T>(what: &str, wait: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}"))
}

fn prefix() -> String {
    format!("test-{:x}:", rand::random::<u64>())
}

async fn joined(addr: SocketAddr) -> Client {
    let mut client = Client::connect(addr, "/omni/ws").await;
    assert!(matches!(
        client.next::<RoomFromServer>().await,
        ServerFrame::Welcome { .. }
    ));
    client
}

/// The next `Said`, skipping other frames.
async fn heard(client: &mut Client) -> String {
    within("a broadcast heard", async {
        loop {
            if let ServerFrame::Push {
                payload: RoomFromServer::Said(text),
                ..
            } = client.next::<RoomFromServer>().await
            {
                return text;
            }
        }
    })
    .await
}

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn a_broadcast_reaches_subscribers_on_every_node() {
    let (url, prefix) = (redis_url(), prefix());
    let (a, _) = node(&url, &prefix).await;
    let (b, _) = node(&url, &prefix).await;
    let mut on_a = joined(a).await;
    let mut also_on_a = joined(a).await;
    let mut on_b = joined(b).await;

    on_a.msg(RoomFromClient::Say("hello".into()), 1).await;
    assert_eq!(heard(&mut on_b).await, "hello");
    assert_eq!(heard(&mut also_on_a).await, "hello");
    assert_eq!(heard(&mut on_a).await, "hello");
    // Exactly once each: the publishing node does not also deliver its own message back.
    assert!(matches!(
        on_a.next::<RoomFromServer>().await,
        ServerFrame::Ack { .. }
    ));
    assert!(on_a.quiet_for(Duration::from_millis(200)).await);
    assert!(also_on_a.quiet_for(Duration::from_millis(100)).await);
    assert!(on_b.quiet_for(Duration::from_millis(100)).await);
}

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn a_msgpack_subscriber_on_another_node_gets_a_broadcast() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let (url, prefix) = (redis_url(), prefix());
    let (a, _) = node(&url, &prefix).await;
    let (b, _) = node(&url, &prefix).await;
    let mut on_a = joined(a).await;
    let (mut packed, _) =
        tokio_tungstenite::connect_async(format!("ws://{b}/omni/ws?codec=msgpack"))
            .await
            .unwrap();
    let mut next = async || -> ServerFrame<RoomFromServer> {
        match within("a frame", packed.next()).await {
            Some(Ok(Message::Binary(bytes))) => ServerFrame::decode_msgpack(&bytes).unwrap(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    };
    assert!(matches!(next().await, ServerFrame::Welcome { .. }));
    // Redis carries the JSON form; node B re-encodes it for its MessagePack subscriber.
    on_a.msg(RoomFromClient::Say("über".into()), 1).await;
    assert_eq!(
        next().await,
        ServerFrame::Push {
            payload: RoomFromServer::Said("über".into()),
            topic: Some("room".into()),
            id: None,
        }
    );
}

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn broadcast_from_excludes_the_sender_on_every_node() {
    let (url, prefix) = (redis_url(), prefix());
    let (a, _) = node(&url, &prefix).await;
    let (b, _) = node(&url, &prefix).await;
    let mut sender = joined(a).await;
    let mut neighbour = joined(a).await;
    let mut remote = joined(b).await;

    sender.msg(RoomFromClient::Tell("psst".into()), 1).await;
    assert_eq!(heard(&mut neighbour).await, "psst");
    assert_eq!(heard(&mut remote).await, "psst");
    assert!(matches!(
        sender.next::<RoomFromServer>().await,
        ServerFrame::Ack { .. }
    ));
    assert!(sender.quiet_for(Duration::from_millis(300)).await);
}

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn a_redis_restart_is_survived_and_reported() {
    let _ = redis_url();
    let (mut redis, url) = OwnRedis::fresh();
    let prefix = prefix();
    let (a, pubsub_a) = node(&url, &prefix).await;
    let (b, pubsub_b) = node(&url, &prefix).await;
    let mut on_a = joined(a).await;
    let mut local = joined(a).await;
    let mut on_b = joined(b).await;
    on_a.msg(RoomFromClient::Say("before".into()), 1).await;
    assert_eq!(heard(&mut on_b).await, "before");
    assert_eq!(heard(&mut local).await, "before");

    redis.stop();
    until("both nodes report the loss of Redis", || {
        !pubsub_a.health().subscribed && !pubsub_b.health().subscribed
    })
    .await;
    assert!(pubsub_a.health().last_error.is_some());

    // Local delivery never stops.
    on_a.msg(RoomFromClient::Say("during".into()), 2).await;
    assert_eq!(heard(&mut local).await, "during");

    redis.restart();
    assert!(
        pubsub_a.ready(Duration::from_secs(15)).await,
        "node a reconnects"
    );
    assert!(
        pubsub_b.ready(Duration::from_secs(15)).await,
        "node b reconnects"
    );
    assert!(pubsub_b.health().reconnects >= 1);

    on_a.msg(RoomFromClient::Say("after".into()), 3).await;
    assert_eq!(heard(&mut local).await, "after");
    // Node b hears what was published after the recovery; "during" was never published.
    assert_eq!(heard(&mut on_b).await, "after");
    redis.stop();
}

#[path = "../examples/chat/app.rs"]
mod chat;
#[path = "../examples/chat/counter.rs"]
mod counter;
#[cfg(feature = "redis")]
#[path = "../examples/chat/store.rs"]
mod store;

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn the_demo_counter_is_one_value_on_every_server_of_a_room() {
    let url = redis_url();
    let name = format!("chat-{:x}", rand::random::<u64>());
    let mut servers = Vec::new();
    for _ in 0..2 {
        let room = chat::Room::with_redis(&url, &name).await.unwrap();
        let shared = room.shared().unwrap();
        let value = counter::Shared::with_redis(
            shared.redis.clone(),
            format!("{name}:counter"),
            shared.pubsub.clone(),
        );
        let router = omni::axum::Router::new().nest("/omni", value.endpoint().router());
        servers.push(serve(router).await);
    }
    /// The next counter value, skipping other frames.
    async fn value(client: &mut Client) -> i64 {
        within("a counter value", async {
            loop {
                match client.next::<counter::CounterFromServer>().await {
                    ServerFrame::Msg {
                        payload: counter::CounterFromServer::Value(n),
                        ..
                    }
                    | ServerFrame::Push {
                        payload: counter::CounterFromServer::Value(n),
                        ..
                    } => return n,
                    _ => {}
                }
            }
        })
        .await
    }
    let mut a = Client::connect(servers[0], "/omni/ws").await;
    assert_eq!(value(&mut a).await, 0);
    a.msg(counter::CounterFromClient::Increment, 1).await;
    assert_eq!(value(&mut a).await, 1);
    let mut b = Client::connect(servers[1], "/omni/ws").await;
    assert_eq!(
        value(&mut b).await,
        1,
        "the other server starts from the same value"
    );
    b.msg(counter::CounterFromClient::Increment, 1).await;
    // A's broadcast of 1 travels through Redis and may reach b after its own answer began: b
    // may be shown 1 once more before 2.
    let mut seen = value(&mut b).await;
    if seen == 1 {
        seen = value(&mut b).await;
    }
    assert_eq!(seen, 2);
    assert_eq!(value(&mut a).await, 2, "and its change reaches this one");
}

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn two_chat_servers_sharing_redis_are_one_room() {
    let url = redis_url();
    let name = format!("chat-{:x}", rand::random::<u64>());
    let mut servers = Vec::new();
    for _ in 0..2 {
        let room = chat::Room::with_redis(&url, &name).await.unwrap();
        let router = omni::axum::Router::new().nest("/omni", room.endpoint().router());
        servers.push(serve(router).await);
    }
    let presence = |frame: &ServerFrame<chat::MsgFromServer>| match frame {
        ServerFrame::Push {
            payload: chat::MsgFromServer::Presence { online },
            ..
        } => Some(*online),
        _ => None,
    };

    let mut ada = Client::connect(servers[0], "/omni/ws").await;
    let mut bob = Client::connect(servers[1], "/omni/ws").await;
    // Presence counts clients on both servers: someone sees 2.
    within("a presence of 2 across both servers", async {
        let mut seen = 0;
        while seen < 2 {
            let frame = ada.next::<chat::MsgFromServer>().await;
            seen = seen.max(presence(&frame).unwrap_or(0));
        }
    })
    .await;

    let message = chat::ChatMessage {
        id: "m1".into(),
        author: "ada".into(),
        text: "across servers".into(),
        status: chat::Status::Sending,
        sent_at: 0,
    };
    ada.msg(chat::MsgFromClient::Send(message), 1).await;
    within("ada's message pushed to bob on the other server", async {
        loop {
            if let ServerFrame::Push {
                payload: chat::MsgFromServer::Upsert(map),
                ..
            } = bob.next::<chat::MsgFromServer>().await
            {
                assert_eq!(map["m1"].text, "across servers");
                assert_eq!(map["m1"].status, chat::Status::Sent);
                break;
            }
        }
    })
    .await;
    // The store is shared: the other server answers FetchAll with it.
    bob.msg(chat::MsgFromClient::FetchAll, 1).await;
    within("the other server's answer to FetchAll", async {
        loop {
            if let ServerFrame::Msg {
                payload: chat::MsgFromServer::Upsert(map),
                ..
            } = bob.next::<chat::MsgFromServer>().await
            {
                assert!(map.contains_key("m1"));
                break;
            }
        }
    })
    .await;
}

/// A client of the chat demo, online as `name`.
async fn chat_member(addr: SocketAddr, name: &str) -> Client {
    let mut client = Client::connect(addr, "/omni/ws").await;
    client
        .msg(chat::MsgFromClient::SetName(name.into()), 1)
        .await;
    client
}

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn presence_is_the_same_on_every_server_and_follows_a_name_change() {
    let url = redis_url();
    let name = format!("chat-{:x}", rand::random::<u64>());
    let mut servers = Vec::new();
    for _ in 0..2 {
        let room = chat::Room::with_redis(&url, &name).await.unwrap();
        let pubsub = room.shared().unwrap().pubsub.clone();
        let router = omni::axum::Router::new().nest("/omni", room.endpoint().router());
        servers.push((serve(router).await, pubsub));
    }
    let mut ada = chat_member(servers[0].0, "ada").await;
    let _bob = chat_member(servers[1].0, "bob").await;
    let both = |list: &omni::presence::List| {
        list.keys().map(String::as_str).collect::<Vec<_>>() == ["ada", "bob"]
    };
    for (_, pubsub) in &servers {
        until("both servers list ada and bob", || {
            both(&pubsub.presence("room"))
        })
        .await;
    }
    // Ada's page holds the same list, from the state and the diffs its server sent.
    let mut list = omni::presence::List::new();
    within("ada's list names ada and bob", async {
        while !both(&list) {
            match ada.next::<chat::MsgFromServer>().await {
                ServerFrame::PresenceState { state, .. } => list = state,
                ServerFrame::PresenceDiff { diff, .. } => diff.apply_to(&mut list),
                _ => {}
            }
        }
    })
    .await;
    ada.msg(chat::MsgFromClient::SetName("ada2".into()), 2)
        .await;
    let renamed = |list: &omni::presence::List| {
        list.keys().map(String::as_str).collect::<Vec<_>>() == ["ada2", "bob"]
    };
    until("the other server follows the new name", || {
        renamed(&servers[1].1.presence("room"))
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn a_server_killed_with_sigkill_leaves_every_list_within_fifteen_seconds() {
    let url = redis_url();
    // This process is one server of the room; the demo, in a process of its own, the other.
    let room = chat::Room::with_redis(&url, "omni-chat").await.unwrap();
    let pubsub = room.shared().unwrap().pubsub.clone();
    let here = serve(omni::axum::Router::new().nest("/omni", room.endpoint().router())).await;
    let port = common::demo::free_port();
    let mut demo = common::demo::chat_server_with(port, &["--redis", &url]);
    let there = SocketAddr::from(([127, 0, 0, 1], port));
    let _ann = chat_member(there, "ann").await;
    let mut bob = chat_member(here, "bob").await;
    until("this server lists ann, online on the other", || {
        pubsub.presence("room").contains_key("ann")
    })
    .await;

    demo.kill().unwrap();
    let killed = std::time::Instant::now();
    demo.wait().unwrap();
    let bound = Duration::from_secs(15);
    while pubsub.presence("room").contains_key("ann") {
        assert!(
            killed.elapsed() < bound,
            "ann is still listed {bound:?} after her server was killed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("ann left the list {:?} after SIGKILL", killed.elapsed());
    // Bob's page was told.
    within("bob hears ann leave", async {
        loop {
            if let ServerFrame::PresenceDiff { diff, .. } = bob.next::<chat::MsgFromServer>().await
                && diff.leaves.contains_key("ann")
            {
                return;
            }
        }
    })
    .await;
    assert!(pubsub.presence("room").contains_key("bob"));
}

mod topics {
    use std::sync::Arc;
    use std::time::Duration;

    use omni::client::Transport;
    use omni::pubsub::{PubSub, RedisPubSub};

    use super::common::feed::{
        Down, FEED, Posts, connect, cursor, move_a_follower, next, node, numbered, post, snapshot,
        topic_msg,
    };
    use super::common::until;
    use super::{OwnRedis, prefix, redis_url};

    /// The payloads of `topic`'s messages after `after`, as Redis holds them.
    async fn logged(pubsub: &RedisPubSub, topic: &str, after: u64) -> Vec<u64> {
        match pubsub.replay(topic, after).await {
            omni::pubsub::Replay::Held(frames) => frames
                .iter()
                .map(|frame| {
                    let value: serde_json::Value = serde_json::from_str(&frame.text()).unwrap();
                    value["payload"].as_u64().unwrap()
                })
                .collect(),
            other => panic!("the log after {after}: {other:?}"),
        }
    }

    /// A topic message whose script Redis carried out but whose answer was lost (the
    /// connection dropped before it came back) is sent again, and the retry finds it
    /// published: it is numbered once, not twice.
    #[tokio::test]
    #[ignore = "needs a redis-server: run with `cargo xtask test`"]
    async fn a_publish_retried_after_its_answer_was_lost_is_numbered_once() {
        use omni::pubsub::Publication;

        let url = redis_url();
        let direct = url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let proxy = super::common::proxy::Proxy::start(direct).await;
        let prefix = prefix();
        let via = pubsub(&format!("redis://{}", proxy.addr), &prefix, 64).await;
        let reader = pubsub(&url, &prefix, 64).await;
        let omni::pubsub::Replay::Gone { head } = reader.replay("t", 0).await else {
            panic!("a fresh topic holds nothing");
        };
        let publish = |n: u64| via.publish("t", Publication::encode("t", &n).unwrap());
        publish(1);
        until_logged(&reader, head, 1).await;

        // Redis runs the script, the answer is held back, then the connection drops.
        proxy.mute();
        publish(2);
        until_logged(&reader, head, 2).await;
        proxy.cut();
        proxy.resume();
        publish(3);
        until_logged(&reader, head, 3).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(logged(&reader, "t", head).await, [1, 2, 3]);
    }

    async fn until_logged(reader: &RedisPubSub, head: u64, n: usize) {
        let deadline = tokio::time::Instant::now() + super::PATIENCE;
        while logged(reader, "t", head).await.len() < n {
            assert!(tokio::time::Instant::now() < deadline, "{n} logged");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn pubsub(url: &str, prefix: &str, log: usize) -> Arc<RedisPubSub> {
        let pubsub = Arc::new(
            RedisPubSub::with_prefix(url, prefix)
                .unwrap()
                .with_topic_log(log),
        );
        assert!(pubsub.ready(Duration::from_secs(10)).await);
        pubsub
    }

    #[tokio::test]
    #[ignore = "needs a redis-server: run `cargo xtask test`"]
    async fn a_follower_moved_to_another_node_receives_exactly_what_it_missed() {
        let (url, prefix) = (redis_url(), prefix());
        let posts = Posts::default();
        let a = node(pubsub(&url, &prefix, 1024).await, &posts).await;
        let b = node(pubsub(&url, &prefix, 1024).await, &posts).await;
        let mut poster_a = connect(a, None).await;
        snapshot(&mut poster_a).await;
        let mut poster_b = connect(b, None).await;
        snapshot(&mut poster_b).await;

        let mut reader = connect(a, Some("{}")).await;
        snapshot(&mut reader).await;
        post(&mut poster_a, "one", 1).await;
        let (first, _) = numbered(&mut reader).await;
        post(&mut poster_b, "two", 1).await;
        assert_eq!(numbered(&mut reader).await, (first + 1, "two".into()));
        drop(reader);
        // Published through both nodes while the reader is away: one numbering, in Redis.
        post(&mut poster_a, "three", 2).await;
        post(&mut poster_b, "four", 2).await;
        post(&mut poster_a, "five", 3).await;

        let mut reader = connect(b, Some(&cursor(first + 1))).await;
        assert_eq!(next(&mut reader).await, topic_msg(first + 2, "three"));
        assert_eq!(next(&mut reader).await, topic_msg(first + 3, "four"));
        assert_eq!(next(&mut reader).await, topic_msg(first + 4, "five"));
        post(&mut poster_a, "six", 4).await;
        assert_eq!(next(&mut reader).await, topic_msg(first + 5, "six"));
        assert!(reader.quiet_for(Duration::from_millis(200)).await);
    }

    #[tokio::test]
    #[ignore = "needs a redis-server: run `cargo xtask test`"]
    async fn past_the_redis_log_a_follower_gets_a_topic_reset_and_a_snapshot() {
        let (url, prefix) = (redis_url(), prefix());
        let posts = Posts::default();
        let a = node(pubsub(&url, &prefix, 2).await, &posts).await;
        let b = node(pubsub(&url, &prefix, 2).await, &posts).await;
        let mut poster = connect(a, None).await;
        snapshot(&mut poster).await;
        let mut witness = connect(a, Some("{}")).await;
        snapshot(&mut witness).await;
        for (i, text) in ["one", "two", "three", "four"].into_iter().enumerate() {
            post(&mut poster, text, i as u64 + 1).await;
        }
        let first = numbered(&mut witness).await.0;
        // An ack does not wait for Redis; the witness seeing the fourth post does, so the
        // log has been trimmed past "two" before the reader resumes.
        for n in 1..4 {
            assert_eq!(numbered(&mut witness).await.0, first + n);
        }
        let mut reader = connect(b, Some(&cursor(first))).await;
        assert_eq!(
            next(&mut reader).await,
            Down::Reset {
                seq: first + 3,
                topic: Some(FEED.into()),
                id: None
            }
        );
        assert_eq!(snapshot(&mut reader).await, ["one", "two", "three", "four"]);
        post(&mut poster, "five", 5).await;
        assert_eq!(next(&mut reader).await, topic_msg(first + 4, "five"));
    }

    #[tokio::test]
    #[ignore = "needs a redis-server: run `cargo xtask test`"]
    async fn the_rust_client_follows_a_topic_across_nodes_without_gaps_or_repeats() {
        let (url, prefix) = (redis_url(), prefix());
        let posts = Posts::default();
        let a = node(pubsub(&url, &prefix, 1024).await, &posts).await;
        let b = node(pubsub(&url, &prefix, 1024).await, &posts).await;
        move_a_follower(a, b, Transport::Ws, 30).await;
    }

    #[tokio::test]
    #[ignore = "needs a redis-server: run `cargo xtask test`"]
    async fn topic_messages_published_while_redis_is_down_arrive_after_it_returns() {
        let _ = redis_url();
        let (mut redis, url) = OwnRedis::fresh();
        let prefix = prefix();
        let posts = Posts::default();
        let pubsub_a = pubsub(&url, &prefix, 1024).await;
        let a = node(pubsub_a.clone() as Arc<dyn PubSub>, &posts).await;
        let mut poster = connect(a, None).await;
        snapshot(&mut poster).await;
        let mut reader = connect(a, Some("{}")).await;
        snapshot(&mut reader).await;
        post(&mut poster, "before", 1).await;
        assert_eq!(numbered(&mut reader).await.1, "before");

        redis.stop();
        until("the node reports the loss of Redis", || {
            !pubsub_a.health().subscribed
        })
        .await;
        // Handled (acknowledged) at once; numbered once Redis is back.
        post(&mut poster, "during", 2).await;
        redis.restart();
        assert!(pubsub_a.ready(Duration::from_secs(15)).await);
        // Redis lost its data: the numbering starts again above the old one, so an old
        // cursor can never be taken for a position in it.
        let (during, text) = numbered(&mut reader).await;
        assert_eq!(text, "during");
        post(&mut poster, "after", 3).await;
        assert_eq!(numbered(&mut reader).await, (during + 1, "after".into()));
        redis.stop();
    }
}

/// Subscriptions that follow each node's own topics, watched from outside: on the real
/// redis-server (`PUBSUB NUMSUB`) and in what each node's subscriber connection received.
mod following {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use omni::SessionId;
    use omni::pubsub::{Member, Outgoing, PubSub, Publication, RedisPubSub, Replay, TopicFrame};

    use super::common::feed::{
        Down, FEED, Posts, connect, cursor, next, node, numbered, post, snapshot, topic_msg,
    };
    use super::common::until;
    use super::{prefix, redis_url, within};

    /// Keeps what it is handed: ephemeral frames by text, topic messages by number.
    #[derive(Default)]
    struct Inbox {
        pushes: Mutex<Vec<String>>,
        numbers: Mutex<Vec<u64>>,
    }

    impl Member for Inbox {
        fn deliver(&self, frame: Outgoing) {
            self.pushes.lock().unwrap().push(frame.text().into_owned());
        }

        fn deliver_topic(&self, _: &str, frame: &TopicFrame) {
            self.numbers.lock().unwrap().push(frame.seq());
        }
    }

    async fn backend(url: &str, prefix: &str) -> Arc<RedisPubSub> {
        let pubsub = Arc::new(RedisPubSub::with_prefix(url, prefix).unwrap());
        assert!(pubsub.ready(Duration::from_secs(10)).await);
        pubsub
    }

    async fn redis() -> redis::aio::MultiplexedConnection {
        redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Subscribers to `channel` on the real server, as it counts them.
    async fn numsub(conn: &mut redis::aio::MultiplexedConnection, channel: &str) -> i64 {
        let answer: (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(conn)
            .await
            .unwrap();
        answer.1
    }

    fn channel(prefix: &str, topic: &str) -> String {
        format!("{{{prefix}{topic}}}")
    }

    fn publication(n: usize) -> Publication {
        let template = format!(r#"{{"type":"msg","seq":0,"payload":{n},"topic":"t"}}"#);
        let push = Outgoing::push(format!(r#"{{"type":"push","payload":{n},"topic":"t"}}"#));
        Publication::new(&template, push).unwrap()
    }

    async fn numsub_becomes(
        conn: &mut redis::aio::MultiplexedConnection,
        channel: &str,
        want: i64,
    ) {
        within(&format!("{channel} has {want} subscribers"), async {
            while numsub(conn, channel).await != want {
                tokio::task::yield_now().await;
            }
        })
        .await;
    }

    #[tokio::test]
    #[ignore = "needs a redis-server: run `cargo xtask test`"]
    async fn two_nodes_on_disjoint_topics_each_receive_only_their_own() {
        let (url, prefix) = (redis_url(), prefix());
        let mut conn = redis().await;
        let a = backend(&url, &prefix).await;
        let b = backend(&url, &prefix).await;
        let (on_a, on_b) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
        let (ida, idb) = (SessionId::from_u128(1), SessionId::from_u128(2));
        a.register(ida, on_a.clone());
        b.register(idb, on_b.clone());
        a.subscribe(ida, "a");
        b.subscribe(idb, "b");
        numsub_becomes(&mut conn, &channel(&prefix, "a"), 1).await;
        numsub_becomes(&mut conn, &channel(&prefix, "b"), 1).await;
        let (before_a, before_b) = (a.received(), b.received());

        // Each node publishes on the other's topic, b ten times as much.
        for n in 0..20 {
            b.broadcast("a", Outgoing::push(format!(r#"{{"n":{n}}}"#)));
        }
        for n in 0..200 {
            a.broadcast("b", Outgoing::push(format!(r#"{{"n":{n}}}"#)));
        }
        until("a has its topic's 20", || {
            on_a.pushes.lock().unwrap().len() == 20
        })
        .await;
        until("b has its topic's 200", || {
            on_b.pushes.lock().unwrap().len() == 200
        })
        .await;
        // What each subscriber connection received: its own topic's traffic (and at most a
        // few presence heartbeats on the node channel), none of the other's.
        let (got_a, got_b) = (a.received() - before_a, b.received() - before_b);
        assert!((20..30).contains(&got_a), "a received {got_a}");
        assert!((200..210).contains(&got_b), "b received {got_b}");

        // The last local subscriber leaves: the subscription goes.
        a.unsubscribe(ida, "a");
        numsub_becomes(&mut conn, &channel(&prefix, "a"), 0).await;
        b.unregister(idb);
        numsub_becomes(&mut conn, &channel(&prefix, "b"), 0).await;
        assert_eq!(
            numsub(&mut conn, &prefix).await,
            2,
            "the node channel stays"
        );
    }

    #[tokio::test]
    #[ignore = "needs a redis-server: run `cargo xtask test`"]
    async fn many_sessions_joining_and_leaving_leave_exactly_the_topics_still_subscribed() {
        let (url, prefix) = (redis_url(), prefix());
        let mut conn = redis().await;
        let node = backend(&url, &prefix).await;
        let inbox = Arc::new(Inbox::default());
        let ids: Vec<SessionId> = (0..20).map(SessionId::from_u128).collect();
        for id in &ids {
            node.register(*id, inbox.clone());
        }
        // A storm of subscribes and unsubscribes, most undone at once: the connection
        // follows in batches and ends on exactly the topics with a subscriber.
        let mut model: std::collections::HashMap<String, std::collections::HashSet<SessionId>> =
            Default::default();
        for round in 0..50 {
            for (i, id) in ids.iter().enumerate() {
                let topic = format!("t{}", (i + round) % 7);
                node.subscribe(*id, &topic);
                model.entry(topic.clone()).or_default().insert(*id);
                if (i * 7 + round) % 5 != 0 {
                    node.unsubscribe(*id, &topic);
                    model.entry(topic).or_default().remove(id);
                }
            }
            tokio::task::yield_now().await;
        }
        for t in 0..7 {
            let topic = format!("t{t}");
            let want = i64::from(model.get(&topic).is_some_and(|ids| !ids.is_empty()));
            numsub_becomes(&mut conn, &channel(&prefix, &topic), want).await;
        }
        for id in &ids {
            node.unregister(*id);
        }
        for t in 0..7 {
            numsub_becomes(&mut conn, &channel(&prefix, &format!("t{t}")), 0).await;
        }
    }

    /// Joins (first subscriber of the node), leaves and publishes, interleaved in many
    /// ways on real Redis: whoever holds a topic's number (its head when it joined) gets
    /// every later number once, in order.
    #[tokio::test]
    #[ignore = "needs a redis-server: run `cargo xtask test`"]
    async fn rapid_joins_and_leaves_lose_and_double_no_numbered_message() {
        let (url, prefix) = (redis_url(), prefix());
        let publisher = backend(&url, &prefix).await;
        let node = backend(&url, &prefix).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let publishing = {
            let (publisher, stop) = (publisher.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    publisher.publish("t", publication(n));
                    n += 1;
                    // Paced, so the queue to Redis never overflows.
                    if n % 8 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        };
        let mut conn = redis().await;
        for round in 0..60u128 {
            let id = SessionId::from_u128(round);
            let inbox = Arc::new(Inbox::default());
            node.register(id, inbox.clone());
            node.subscribe(id, "t");
            if round % 3 == 1 {
                // Left and back before the subscription settled.
                node.unsubscribe(id, "t");
                tokio::task::yield_now().await;
                node.subscribe(id, "t");
            }
            // As a session does: the replay starts once the node receives the topic.
            let Replay::Gone { head: held } = node.replay("t", 0).await else {
                panic!("0 is never held");
            };
            // Wait for a few numbers past it, then check them all.
            let last = held + 5;
            within("numbers past the join", async {
                while !inbox.numbers.lock().unwrap().contains(&last) {
                    tokio::task::yield_now().await;
                }
            })
            .await;
            let numbers = inbox.numbers.lock().unwrap().clone();
            let after: Vec<u64> = numbers.iter().copied().filter(|n| *n > held).collect();
            let want: Vec<u64> = (held + 1..=*after.last().unwrap()).collect();
            assert_eq!(after, want, "round {round}: a number lost or doubled");
            assert!(
                numbers.windows(2).all(|w| w[0] < w[1]),
                "round {round}: out of order or doubled: {numbers:?}"
            );
            node.unregister(id);
            if round % 2 == 0 {
                // Sometimes the unsubscribe settles before the next join, sometimes not.
                numsub_becomes(&mut conn, &channel(&prefix, "t"), 0).await;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        publishing.await.unwrap();
    }

    /// A client's first subscription on a node, while another node publishes as fast as it
    /// can: the snapshot and the numbered messages after it hold every post, each number
    /// once and in order.
    #[tokio::test]
    #[ignore = "needs a redis-server: run `cargo xtask test`"]
    async fn a_message_published_while_a_nodes_first_subscriber_joins_arrives_once() {
        let (url, prefix) = (redis_url(), prefix());
        let posts = Posts::default();
        let a = node(backend(&url, &prefix).await, &posts).await;
        let mut posters = Vec::new();
        for _ in 0..6 {
            let mut poster = connect(a, None).await;
            snapshot(&mut poster).await;
            posters.push(poster);
        }
        for round in 0..10 {
            // A node of its own: the reader is its first subscriber to the feed.
            let b = node(backend(&url, &prefix).await, &posts).await;
            let joining = tokio::spawn(async move {
                let mut reader = connect(b, Some("{}")).await;
                let seen = snapshot(&mut reader).await;
                (reader, seen)
            });
            // Several posters at once, until the reader has its snapshot.
            let mut posting = Vec::new();
            for (p, mut poster) in posters.drain(..).enumerate() {
                let joining = joining.abort_handle();
                posting.push(tokio::spawn(async move {
                    let mut posted = Vec::new();
                    // A session answers a reference it handled without handling it again.
                    let mut reference = round * 100_000;
                    while !joining.is_finished() {
                        reference += 1;
                        let text = format!("{round}.{p}.{reference}");
                        post(&mut poster, &text, reference).await;
                        posted.push(text);
                    }
                    // One more after the join, so that the reader is known to have it all.
                    reference += 1;
                    let last = format!("{round}.{p}.{reference}");
                    post(&mut poster, &last, reference).await;
                    posted.push(last);
                    (poster, posted)
                }));
            }
            let (mut reader, mut seen) = joining.await.unwrap();
            let mut posted = Vec::new();
            for posting in posting {
                let (poster, texts) = posting.await.unwrap();
                posters.push(poster);
                posted.extend(texts);
            }
            let mut previous = None;
            while !posted.iter().all(|text| seen.contains(text)) {
                let Ok((seq, text)) =
                    tokio::time::timeout(Duration::from_secs(3), numbered(&mut reader)).await
                else {
                    let missing: Vec<&String> =
                        posted.iter().filter(|text| !seen.contains(text)).collect();
                    panic!("round {round}: {missing:?} never reached the reader; it has {seen:?}");
                };
                if let Some(previous) = previous {
                    assert_eq!(seq, previous + 1, "round {round}: a gap or a repeat");
                }
                previous = Some(seq);
                if !seen.contains(&text) {
                    seen.push(text);
                }
            }
        }
    }

    #[tokio::test]
    #[ignore = "needs a redis-server: run `cargo xtask test`"]
    async fn a_topic_idle_past_its_expiry_leaves_redis_and_an_old_cursor_gets_a_reset() {
        let (url, prefix) = (redis_url(), prefix());
        let posts = Posts::default();
        let pubsub = Arc::new(
            RedisPubSub::with_prefix(&url, &prefix)
                .unwrap()
                .with_topic_expiry(Duration::from_secs(1)),
        );
        assert!(pubsub.ready(Duration::from_secs(10)).await);
        let a = node(pubsub, &posts).await;
        let mut poster = connect(a, None).await;
        snapshot(&mut poster).await;
        let mut reader = connect(a, Some("{}")).await;
        snapshot(&mut reader).await;
        post(&mut poster, "one", 1).await;
        post(&mut poster, "two", 2).await;
        numbered(&mut reader).await;
        let (held, _) = numbered(&mut reader).await;
        drop(reader);

        let mut conn = redis().await;
        let tag = channel(&prefix, FEED);
        let keys = [format!("{tag}:seq"), format!("{tag}:log")];
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&keys[0])
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((1..=1000).contains(&ttl), "the counter expires: {ttl}");
        within("the topic's keys expire", async {
            loop {
                let exists: i64 = redis::cmd("EXISTS")
                    .arg(&keys[..])
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                if exists == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;

        let mut reader = connect(a, Some(&cursor(held))).await;
        let Down::Reset {
            seq: head, topic, ..
        } = next(&mut reader).await
        else {
            panic!("expected a reset");
        };
        assert_eq!(topic.as_deref(), Some(FEED));
        assert!(
            head > held,
            "the new numbering starts above the old: {head} > {held}"
        );
        assert_eq!(snapshot(&mut reader).await, ["one", "two"]);
        post(&mut poster, "three", 3).await;
        assert_eq!(next(&mut reader).await, topic_msg(head + 1, "three"));
    }
}

/// The figures in BENCHMARKS.md: what each of 4 nodes, each on its own topic, receives from
/// Redis, against what a connection on the whole prefix (`PSUBSCRIBE`, as every node did
/// before) receives. `cargo xtask test` runs it; it prints the figures.
#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn inbound_traffic_per_node_is_its_own_topics() {
    use futures_util::StreamExt;
    use omni::SessionId;
    use omni::pubsub::Outgoing;

    struct Nothing;
    impl omni::pubsub::Member for Nothing {
        fn deliver(&self, _: Outgoing) {}
    }

    const EACH: u64 = 2000;
    let (url, prefix) = (redis_url(), prefix());
    let mut whole = redis::Client::open(url.as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    // Topic channels are `{prefix+topic}`; the node channel is the prefix itself.
    whole.psubscribe(format!("{{{prefix}*")).await.unwrap();
    whole.psubscribe(format!("{prefix}*")).await.unwrap();
    let mut nodes = Vec::new();
    for n in 0..4u128 {
        let pubsub = Arc::new(RedisPubSub::with_prefix(&url, &prefix).unwrap());
        assert!(pubsub.ready(Duration::from_secs(10)).await);
        pubsub.register(SessionId::from_u128(n), Arc::new(Nothing));
        pubsub.subscribe(SessionId::from_u128(n), &format!("room{n}"));
        nodes.push(pubsub);
    }
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for n in 0..4 {
        loop {
            let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(format!("{{{prefix}room{n}}}"))
                .query_async(&mut conn)
                .await
                .unwrap();
            if subscribers == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let before: Vec<u64> = nodes.iter().map(|n| n.received()).collect();
    // Each node's subscriber publishes on its own topic (a room whose members are all on it).
    for (n, node) in nodes.iter().enumerate() {
        for i in 0..EACH {
            node.broadcast(
                &format!("room{n}"),
                Outgoing::push(format!(r#"{{"i":{i}}}"#)),
            );
        }
    }
    let mut seen = 0;
    let mut stream = whole.on_message();
    within("the whole prefix's traffic", async {
        while seen < 4 * EACH {
            if stream
                .next()
                .await
                .unwrap()
                .get_channel_name()
                .starts_with('{')
            {
                seen += 1;
            }
        }
    })
    .await;
    drop(stream);
    // Every broadcast went through Redis; each node's own come back to it as well (and are
    // skipped there: delivered locally already).
    until("each node received its own topic's traffic", || {
        nodes
            .iter()
            .zip(&before)
            .all(|(node, before)| node.received() - before >= EACH)
    })
    .await;
    let per_node: Vec<u64> = nodes
        .iter()
        .zip(&before)
        .map(|(node, before)| node.received() - before)
        .collect();
    eprintln!(
        "4 nodes x {EACH} broadcasts on their own topics: a PSUBSCRIBE on the prefix received \
         {seen}; each node's subscriber connection received {per_node:?}"
    );
    for received in per_node {
        assert!(received < EACH + EACH / 10, "a node received {received}");
    }
}
