//! The Redis series of `/metrics` against a real redis-server: `omni_redis_up` falls while the
//! subscriber connection is lost and rises when it is back, `omni_redis_reconnects_total`
//! counts the return, and `omni_redis_publish_duration_seconds` counts every publish.
//!
//! On a test binary of its own: it cuts every pub/sub connection of the server it is given
//! and pauses that server, which no other test may share at the time (`cargo xtask test`
//! runs test binaries one after another).

mod common;

use std::sync::Arc;

use common::{PATIENCE, until};
use omni::pubsub::{Outgoing, PubSub, RedisPubSub};
use omni::server::{Endpoint, Prometheus};
use omni::{Context, HandlerResult};

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Quiet {
    #[client]
    Nothing,
}

struct Idle;

impl QuietHandler for Idle {
    async fn nothing(&mut self, _: &mut Context<Quiet>) -> HandlerResult {
        Ok(())
    }
}

/// The value of the one sample of `name` (without labels) in a scrape.
fn sample(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

/// Runs one Redis command on a connection of its own.
async fn command(url: &str, words: &[&str]) -> redis::Value {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd.query_async(&mut conn).await.unwrap()
}

#[tokio::test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
async fn the_redis_series_follow_the_connection_and_count_publishes() {
    let url = std::env::var("OMNI_REDIS_URL")
        .expect("OMNI_REDIS_URL names a redis-server: run these tests with `cargo xtask test`");
    let pubsub = Arc::new(RedisPubSub::with_prefix(&url, "metrics-test:").unwrap());
    assert!(pubsub.ready(PATIENCE).await, "redis subscriber up");
    let endpoint: Endpoint<Quiet, Idle> = Endpoint::builder(|| Idle).pubsub(pubsub.clone()).build();
    let metrics = Prometheus::new().endpoint(&endpoint);
    let value = |name: &str| sample(&metrics.render(), name);

    // Up once both connections are: the publisher's first command (the new process's
    // announcement) follows the subscription by a moment.
    until("redis reported up", || value("omni_redis_up") == Some(1.0)).await;
    assert_eq!(value("omni_redis_reconnects_total"), Some(0.0));
    let published = value("omni_redis_publish_duration_seconds_count").unwrap();

    // Ten broadcasts go out through Redis; each is timed.
    for n in 0..10 {
        pubsub.broadcast(
            "room",
            Outgoing::push(format!(r#"{{"type":"push","payload":{n}}}"#)),
        );
    }
    until("ten publishes timed", || {
        value("omni_redis_publish_duration_seconds_count") >= Some(published + 10.0)
    })
    .await;

    // The subscriber connection is cut, and Redis answers nobody for a while: the backend is
    // down until it has subscribed again.
    command(&url, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    command(&url, &["CLIENT", "PAUSE", "1500", "ALL"]).await;
    until("redis reported down", || {
        value("omni_redis_up") == Some(0.0)
    })
    .await;
    until("redis reported up again", || {
        value("omni_redis_up") == Some(1.0)
    })
    .await;
    assert_eq!(value("omni_redis_reconnects_total"), Some(1.0));
    assert!(pubsub.health().subscribed);
    // What cannot be named yet stays out of the scrape: no topic or user text as a label.
    assert!(!metrics.render().contains("room"));
}
