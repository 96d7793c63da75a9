//! A protocol with a sequenced topic, for the topic tests: posts are published on `feed`,
//! and the handler's snapshot of `feed` is every post so far.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use omni::pubsub::PubSub;
use omni::server::{Endpoint, EndpointBuilder, Limits};
use omni::{Context, HandlerResult, ServerFrame, TransportState};

use super::{Client, PATIENCE, serve};

/// The sequenced topic.
pub const FEED: &str = "feed";

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// Publish `Posted` on the feed.
    #[client]
    Post(String),
    #[server]
    Posted(String),
    /// The handler's snapshot: every post so far.
    #[server]
    State(Vec<String>),
}

/// The posts of one deployment (shared by its "servers").
#[derive(Clone, Default)]
pub struct Posts(pub Arc<Mutex<Vec<String>>>);

pub struct Reader {
    pub posts: Posts,
}

impl FeedHandler for Reader {
    async fn post(&mut self, cx: &mut Context<Feed>, text: String) -> HandlerResult {
        self.posts.0.lock().unwrap().push(text.clone());
        cx.publish(FEED, FeedFromServer::Posted(text));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Feed>) -> HandlerResult {
        cx.subscribe(FEED);
        Ok(())
    }

    async fn snapshot(&mut self, cx: &mut Context<Feed>, topic: String) -> HandlerResult {
        assert_eq!(topic, FEED);
        cx.send(FeedFromServer::State(self.posts.0.lock().unwrap().clone()));
        Ok(())
    }
}

pub type Down = ServerFrame<FeedFromServer>;

/// A "server": an endpoint on its own port, on the deployment's pub/sub and posts.
pub async fn node(pubsub: Arc<dyn PubSub>, posts: &Posts) -> SocketAddr {
    let endpoint = builder(pubsub, posts).build();
    serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await
}

/// The feed's endpoint on `pubsub` and `posts`, to be built.
pub fn builder(pubsub: Arc<dyn PubSub>, posts: &Posts) -> EndpointBuilder<Feed, Reader> {
    let posts = posts.clone();
    Endpoint::<Feed, _>::builder(move || Reader {
        posts: posts.clone(),
    })
    .pubsub(pubsub)
}

/// Limits with an outbound queue of `items`, the rest default.
pub fn queue_of(items: usize) -> Limits {
    Limits {
        outbound_queue: items,
        ..Limits::default()
    }
}

/// Connects and reads `welcome`; `topics` is the URL's cursor object, if any.
pub async fn connect(addr: SocketAddr, topics: Option<&str>) -> Client {
    let path = match topics {
        Some(topics) => format!("/omni/ws?topics={}", urlencode(topics)),
        None => "/omni/ws".to_owned(),
    };
    let mut client = Client::connect(addr, &path).await;
    assert!(matches!(
        client.next::<FeedFromServer>().await,
        Down::Welcome { .. }
    ));
    client
}

pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Posts through `client` and waits until the server has handled it.
pub async fn post(client: &mut Client, text: &str, reference: u64) {
    client
        .msg(FeedFromClient::Post(text.into()), reference)
        .await;
    loop {
        if let Down::Ack { reference: r, .. } = client.next::<FeedFromServer>().await
            && r == reference
        {
            return;
        }
    }
}

/// The next frame that is not an `ack`.
pub async fn next(client: &mut Client) -> Down {
    loop {
        match client.next::<FeedFromServer>().await {
            Down::Ack { .. } => {}
            frame => return frame,
        }
    }
}

pub fn topic_msg(seq: u64, text: &str) -> Down {
    Down::Msg {
        seq,
        payload: FeedFromServer::Posted(text.into()),
        reference: None,
        topic: Some(FEED.into()),
        id: None,
    }
}

/// Reads the snapshot `State` a subscription starts with.
pub async fn snapshot(client: &mut Client) -> Vec<String> {
    match next(client).await {
        Down::Msg {
            payload: FeedFromServer::State(posts),
            topic: None,
            ..
        } => posts,
        other => panic!("expected the snapshot, got {other:?}"),
    }
}

/// The Rust client's view of the feed: posts in the order applied, and topic resets.
pub async fn collect(
    messages: &mut omni::client::Messages<Feed>,
    want: usize,
) -> (Vec<String>, u32) {
    let mut posts = Vec::new();
    let mut resets = 0;
    while posts.len() < want {
        match tokio::time::timeout(PATIENCE, messages.recv()).await {
            Ok(Some(Feed::Posted(text))) => posts.push(text),
            Ok(Some(Feed::State(state))) => posts = state,
            Ok(Some(Feed::Transport(TransportState::TopicReset { .. }))) => resets += 1,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended"),
            Err(_) => panic!("only {posts:?} within {PATIENCE:?}"),
        }
    }
    (posts, resets)
}

/// The number and text of the next topic message `client` receives.
pub async fn numbered(client: &mut Client) -> (u64, String) {
    match next(client).await {
        Down::Msg {
            seq,
            payload: FeedFromServer::Posted(text),
            topic: Some(topic),
            ..
        } if topic == FEED => (seq, text),
        other => panic!("expected a feed message, got {other:?}"),
    }
}

/// A cursor object holding the feed at `seq`.
pub fn cursor(seq: u64) -> String {
    format!(r#"{{"feed":{seq}}}"#)
}

/// Waits for the Rust client's snapshot of the feed.
pub async fn snapshot_of(messages: &mut omni::client::Messages<Feed>) {
    loop {
        match tokio::time::timeout(PATIENCE, messages.recv()).await {
            Ok(Some(Feed::State(_))) => return,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended"),
            Err(_) => panic!("no snapshot within {PATIENCE:?}"),
        }
    }
}

/// A quick reconnection backoff for tests.
pub fn quick() -> omni::client::Backoff {
    omni::client::Backoff {
        base: std::time::Duration::from_millis(20),
        cap: std::time::Duration::from_millis(100),
        ..omni::client::Backoff::default()
    }
}

/// The Rust client over `transport`, moved from server `a` to server `b` by a load balancer
/// while posts 2 to `last` go on through `a`: it receives each post once, in order, from
/// `b`'s replay of the shared log, without a reset or a snapshot.
pub async fn move_a_follower(
    a: SocketAddr,
    b: SocketAddr,
    transport: omni::client::Transport,
    last: u64,
) {
    let proxy = super::proxy::Proxy::start(a).await;
    let (_client, mut messages) =
        omni::client::Client::<Feed>::builder(format!("http://{}/omni", proxy.addr))
            .transport(transport)
            .backoff(quick())
            .connect();
    let mut poster = connect(a, None).await;
    snapshot(&mut poster).await;
    // Wait until the client has its snapshot, so every post is a topic message to it.
    snapshot_of(&mut messages).await;
    post(&mut poster, "p1", 1).await;
    assert_eq!(collect(&mut messages, 1).await, (vec!["p1".into()], 0));

    proxy.pause();
    proxy.set_upstream(b);
    proxy.cut();
    for i in 2..=last {
        post(&mut poster, &format!("p{i}"), i).await;
    }
    proxy.resume();
    let (got, resets) = collect(&mut messages, last as usize - 1).await;
    let want: Vec<String> = (2..=last).map(|i| format!("p{i}")).collect();
    assert_eq!(
        got, want,
        "{transport:?}: each post once, in order, nothing missed"
    );
    assert_eq!(
        resets, 0,
        "{transport:?}: the topic resumed: no reset, no snapshot"
    );
}
