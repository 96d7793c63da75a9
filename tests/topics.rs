//! Sequenced topics over real sockets: numbered `msg` frames for clients that follow topics,
//! plain pushes for v1 clients, exact replay after a cursor on any server sharing the
//! pub/sub, `reset` and the handler's snapshot past the log, and the Rust client resuming
//! its topics through a load balancer that moves it to another server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::feed::{
    Down, FEED, Feed, FeedFromServer, Posts, Reader, builder, collect, connect, cursor,
    move_a_follower, next, node, numbered, post, queue_of, quick, snapshot, snapshot_of, topic_msg,
};
use common::proxy::Proxy;
use omni::client::{Client as RustClient, Mux as MuxClient, Transport};
use omni::pubsub::{LocalPubSub, PubSub, Publication};
use omni::server::{Endpoint, Mux};
use omni::token::Keys;

#[tokio::test]
async fn a_v1_client_gets_topic_messages_as_plain_pushes() {
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::new());
    let addr = node(pubsub, &Posts::default()).await;
    let mut v1 = connect(addr, None).await;
    assert!(snapshot(&mut v1).await.is_empty());
    let mut poster = connect(addr, None).await;
    snapshot(&mut poster).await;
    post(&mut poster, "hello", 1).await;
    assert_eq!(
        next(&mut v1).await,
        Down::Push {
            payload: FeedFromServer::Posted("hello".into()),
            topic: Some(FEED.into()),
            id: None
        }
    );
}

#[tokio::test]
async fn a_follower_moved_to_another_server_receives_exactly_what_it_missed() {
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::new());
    let posts = Posts::default();
    let (a, b) = (
        node(pubsub.clone(), &posts).await,
        node(pubsub, &posts).await,
    );
    let mut poster = connect(a, None).await;
    snapshot(&mut poster).await;

    let mut reader = connect(a, Some("{}")).await;
    assert!(snapshot(&mut reader).await.is_empty());
    post(&mut poster, "one", 1).await;
    let (first, text) = numbered(&mut reader).await;
    assert_eq!(text, "one");
    post(&mut poster, "two", 2).await;
    assert_eq!(numbered(&mut reader).await, (first + 1, "two".into()));
    drop(reader);
    for (i, text) in ["three", "four", "five"].into_iter().enumerate() {
        post(&mut poster, text, i as u64 + 3).await;
    }
    // Back on the other server with its cursor: no snapshot, the three it missed in order,
    // then the live stream.
    let mut reader = connect(b, Some(&cursor(first + 1))).await;
    assert_eq!(next(&mut reader).await, topic_msg(first + 2, "three"));
    assert_eq!(next(&mut reader).await, topic_msg(first + 3, "four"));
    assert_eq!(next(&mut reader).await, topic_msg(first + 4, "five"));
    post(&mut poster, "six", 6).await;
    assert_eq!(next(&mut reader).await, topic_msg(first + 5, "six"));
    assert!(reader.quiet_for(Duration::from_millis(200)).await);
}

#[tokio::test]
async fn past_the_log_a_follower_gets_a_topic_reset_and_the_handlers_snapshot() {
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::with_topic_log(2));
    let posts = Posts::default();
    let addr = node(pubsub, &posts).await;
    let mut poster = connect(addr, None).await;
    snapshot(&mut poster).await;
    let mut witness = connect(addr, Some("{}")).await;
    snapshot(&mut witness).await;
    for (i, text) in ["one", "two", "three", "four"].into_iter().enumerate() {
        post(&mut poster, text, i as u64 + 1).await;
    }
    let first = numbered(&mut witness).await.0;
    // The log holds three and four; two and three were missed.
    let mut reader = connect(addr, Some(&cursor(first))).await;
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

    // A cursor the log still holds resumes without a snapshot.
    let mut other = connect(addr, Some(&cursor(first + 3))).await;
    assert_eq!(next(&mut other).await, topic_msg(first + 4, "five"));

    // A cursor from before the topic's numbering (a restarted server) is gone too.
    let mut stale = connect(addr, Some(&cursor(3))).await;
    assert!(matches!(
        next(&mut stale).await,
        Down::Reset { topic: Some(_), .. }
    ));
    assert_eq!(snapshot(&mut stale).await.len(), 5);
}

#[tokio::test]
async fn hello_cursors_resume_topics_on_a_connection_that_is_already_open() {
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::new());
    let posts = Posts::default();
    let addr = node(pubsub, &posts).await;
    let mut poster = connect(addr, None).await;
    snapshot(&mut poster).await;
    let mut witness = connect(addr, Some("{}")).await;
    snapshot(&mut witness).await;
    post(&mut poster, "one", 1).await;
    post(&mut poster, "two", 2).await;
    let first = numbered(&mut witness).await.0;
    // A v1 connection that then sends its cursors: the topic is replayed after one, and
    // from then on its messages are numbered.
    let mut reader = connect(addr, None).await;
    snapshot(&mut reader).await;
    reader
        .send_text(format!(r#"{{"type":"hello","topics":{}}}"#, cursor(first)))
        .await;
    assert_eq!(next(&mut reader).await, topic_msg(first + 1, "two"));
    post(&mut poster, "three", 3).await;
    assert_eq!(next(&mut reader).await, topic_msg(first + 2, "three"));
}

/// The Rust client over `transport`, moved between two servers sharing an in-process pub/sub.
async fn follows_a_topic_across_servers(transport: Transport) {
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::new());
    let posts = Posts::default();
    let (a, b) = (
        node(pubsub.clone(), &posts).await,
        node(pubsub, &posts).await,
    );
    move_a_follower(a, b, transport, 20).await;
}

#[tokio::test]
async fn the_rust_client_follows_a_topic_across_servers_over_websocket() {
    follows_a_topic_across_servers(Transport::Ws).await;
}

#[tokio::test]
async fn the_rust_client_follows_a_topic_across_servers_over_sse() {
    follows_a_topic_across_servers(Transport::Sse).await;
}

#[tokio::test]
async fn a_mux_component_resumes_its_topic_when_it_rejoins() {
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::new());
    let posts = Posts::default();
    let feed = {
        let posts = posts.clone();
        Endpoint::<Feed, _>::builder(move || Reader {
            posts: posts.clone(),
        })
        .pubsub(pubsub)
        .build()
    };
    let mux = Mux::builder(Keys::new("the topic tests' mux key, 32 bytes+").unwrap())
        .module("feed", &feed)
        .build();
    let addr =
        common::serve(omni::axum::Router::new().nest("/omni", feed.router().merge(mux.router())))
            .await;
    let proxy = Proxy::start(addr).await;
    let client = MuxClient::builder(format!("http://{}/omni", proxy.addr))
        .backoff(quick())
        .connect_timeout(Duration::from_millis(500))
        .connect();
    let token = mux.sign("feed", &serde_json::json!({}), Duration::from_secs(600));
    let (_feed, mut messages) = client.join::<Feed>("f", "feed", token);
    snapshot_of(&mut messages).await;
    let mut poster = connect(addr, None).await;
    snapshot(&mut poster).await;
    post(&mut poster, "p1", 1).await;
    assert_eq!(collect(&mut messages, 1).await, (vec!["p1".into()], 0));

    proxy.pause();
    proxy.cut();
    for i in 2..=10 {
        post(&mut poster, &format!("p{i}"), i).await;
    }
    proxy.resume();
    let (got, resets) = collect(&mut messages, 9).await;
    let want: Vec<String> = (2..=10).map(|i| format!("p{i}")).collect();
    assert_eq!(got, want);
    assert_eq!(resets, 0);
}

#[tokio::test]
async fn a_resumed_session_without_a_cursor_for_its_topic_gets_a_fresh_snapshot() {
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::new());
    let posts = Posts::default();
    let addr = node(pubsub, &posts).await;
    let mut poster = connect(addr, None).await;
    snapshot(&mut poster).await;

    // A follower that has had no feed message yet, so it holds no cursor for it.
    let mut reader = common::Client::connect(addr, "/omni/ws?topics=%7B%7D").await;
    let Down::Welcome { session, .. } = reader.next::<FeedFromServer>().await else {
        panic!("expected welcome");
    };
    assert!(snapshot(&mut reader).await.is_empty());
    drop(reader);
    post(&mut poster, "while away", 1).await;

    let path = format!("/omni/ws?session={session}&after=1&topics=%7B%7D");
    let mut reader = common::Client::connect(addr, &path).await;
    assert!(matches!(
        reader.next::<FeedFromServer>().await,
        Down::Welcome { resumed: true, .. }
    ));
    // What it missed went nowhere while it was away: the handler's snapshot brings it.
    assert_eq!(snapshot(&mut reader).await, ["while away"]);
    post(&mut poster, "back", 2).await;
    assert_eq!(numbered(&mut reader).await.1, "back");
}

#[tokio::test]
async fn the_rust_client_past_the_log_reports_a_topic_reset_and_takes_the_snapshot() {
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::with_topic_log(2));
    let posts = Posts::default();
    let addr = node(pubsub, &posts).await;
    let proxy = Proxy::start(addr).await;
    let (_client, mut messages) =
        RustClient::<Feed>::builder(format!("http://{}/omni", proxy.addr))
            .backoff(quick())
            .connect();
    snapshot_of(&mut messages).await;
    let mut poster = connect(addr, None).await;
    snapshot(&mut poster).await;
    post(&mut poster, "p1", 1).await;
    assert_eq!(collect(&mut messages, 1).await, (vec!["p1".into()], 0));

    proxy.pause();
    proxy.cut();
    for i in 2..=6 {
        post(&mut poster, &format!("p{i}"), i).await;
    }
    proxy.resume();
    // Five missed, two logged: a reset, then the snapshot of all six.
    let (got, resets) = collect(&mut messages, 6).await;
    let want: Vec<String> = (1..=6).map(|i| format!("p{i}")).collect();
    assert_eq!((got, resets), (want, 1));
    // The numbering goes on from the reset.
    post(&mut poster, "p7", 7).await;
    assert_eq!(collect(&mut messages, 1).await, (vec!["p7".into()], 0));
}

/// A burst on a topic (a backlog that arrives at once when Redis comes back, a room that
/// shouts) is more than a reading follower's outbound queue holds: the follower is not
/// closed as a slow consumer, and receives every message once, in order, the ones its queue
/// could not take sent from the topic's log once it has drained.
#[tokio::test]
async fn a_follower_behind_a_burst_is_caught_up_from_the_log_not_closed() {
    const BURST: u64 = 600;
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::new());
    let posts = Posts::default();
    let endpoint = builder(pubsub.clone(), &posts).limits(queue_of(8)).build();
    let addr = common::serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    // A follower too: a client given plain pushes has nothing to catch up from, and one
    // that does not read through a burst is still closed as a slow consumer.
    let mut poster = connect(addr, Some("{}")).await;
    snapshot(&mut poster).await;
    let mut reader = common::Client::connect_with_small_window(
        addr,
        &format!("/omni/ws?topics={}", common::feed::urlencode("{}")),
    )
    .await;
    assert!(matches!(next(&mut reader).await, Down::Welcome { .. }));
    assert!(snapshot(&mut reader).await.is_empty());
    post(&mut poster, "first", 1).await;
    let (first, _) = numbered(&mut reader).await;

    // Published in one go, while the reader is not reading: far more than its queue holds,
    // and large enough that the socket backs up too.
    let padding = "x".repeat(2048);
    for i in 1..=BURST {
        let publication =
            Publication::encode(FEED, &FeedFromServer::Posted(format!("{i}:{padding}"))).unwrap();
        pubsub.publish(FEED, publication);
    }
    for i in 1..=BURST {
        assert_eq!(
            numbered(&mut reader).await,
            (first + i, format!("{i}:{padding}")),
            "each message of the burst once, in order"
        );
    }
    post(&mut poster, "after", 2).await;
    assert_eq!(
        numbered(&mut reader).await,
        (first + BURST + 1, "after".into())
    );
    assert!(reader.quiet_for(Duration::from_millis(200)).await);
    let metrics = endpoint.metrics();
    assert_eq!(metrics.slow_consumers, 0);
    assert!(
        metrics.topic_catch_ups >= 1,
        "the queue never overflowed: the test proved nothing"
    );
}
