//! Pub/sub across server processes through a real redis-server. These tests are ignored by a
//! plain `cargo test`; `cargo xtask test` starts a redis-server and runs them.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Client, serve};
use omni::pubsub::RedisPubSub;
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

async fn heard(client: &mut Client) -> String {
    loop {
        if let ServerFrame::Push {
            payload: RoomFromServer::Said(text),
            ..
        } = client.next::<RoomFromServer>().await
        {
            return text;
        }
    }
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

/// A redis-server of this test's own, to stop and start again.
struct OwnRedis {
    child: Option<Child>,
    dir: std::path::PathBuf,
}

impl OwnRedis {
    fn start(port: u16, dir: std::path::PathBuf) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (cargo xtask test installs it)");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Self {
            child: Some(child),
            dir,
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn a_redis_restart_is_survived_and_reported() {
    let _ = redis_url();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("omni-redis-test-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = OwnRedis::start(port, dir.clone());
    let url = format!("redis://127.0.0.1:{port}/");
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pubsub_a.health().subscribed || pubsub_b.health().subscribed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the loss is reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pubsub_a.health().last_error.is_some());

    // Local delivery never stops.
    on_a.msg(RoomFromClient::Say("during".into()), 2).await;
    assert_eq!(heard(&mut local).await, "during");

    let mut redis = OwnRedis::start(port, dir);
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
    let mut seen = 0;
    while seen < 2 {
        let frame = ada.next::<chat::MsgFromServer>().await;
        seen = seen.max(presence(&frame).unwrap_or(0));
    }

    let message = chat::ChatMessage {
        id: "m1".into(),
        author: "ada".into(),
        text: "across servers".into(),
        status: chat::Status::Sending,
        sent_at: 0,
    };
    ada.msg(chat::MsgFromClient::Send(message), 1).await;
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
    // The store is shared: the other server answers FetchAll with it.
    bob.msg(chat::MsgFromClient::FetchAll, 1).await;
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
}
