//! Pub/sub across server processes through Redis `PUBLISH` / `PSUBSCRIBE`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{LocalPubSub, Member, Outgoing, PubSub};
use crate::SessionId;

/// Publishes waiting while Redis is unreachable; past this, broadcasts to other processes are
/// dropped (local subscribers still get them).
const PUBLISH_QUEUE: usize = 4096;

/// A [`PubSub`] whose broadcasts reach subscribers on every server process that uses the same
/// Redis (and the same channel prefix).
///
/// Each process keeps one subscriber connection (a `PSUBSCRIBE` on the prefix) and one
/// publishing connection, whatever the number of clients. A broadcast is delivered to this
/// process's subscribers at once, without a round trip through Redis, and published once for
/// the others; `broadcast_from` excludes the sender on every process. When Redis goes away the
/// process keeps serving its own subscribers, reconnects with backoff, and reports both in
/// [`health`](Self::health) and in `tracing` (a `warn` on loss, an `info` on recovery).
///
/// ```no_run
/// use std::sync::Arc;
/// use omni_runtime::pubsub::RedisPubSub;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pubsub = Arc::new(RedisPubSub::connect("redis://127.0.0.1:6379/")?);
/// // Then: Endpoint::builder(factory).pubsub(pubsub.clone()).build()
/// # Ok(()) }
/// ```
pub struct RedisPubSub {
    inner: Arc<Inner>,
}

struct Inner {
    local: LocalPubSub,
    node: u128,
    prefix: String,
    publish: mpsc::Sender<(String, Vec<u8>)>,
    subscribed: AtomicBool,
    publishing: AtomicBool,
    reconnects: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// How the connection to Redis is doing, from [`RedisPubSub::health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisHealth {
    /// The subscriber connection is up: broadcasts from other processes arrive.
    pub subscribed: bool,
    /// The last publish reached Redis.
    pub publishing: bool,
    /// Times the subscriber connection was re-established after a loss.
    pub reconnects: u64,
    /// Broadcasts not published to other processes (Redis unreachable, queue full).
    pub dropped: u64,
    /// The most recent error.
    pub last_error: Option<String>,
}

impl RedisPubSub {
    /// Connects to the Redis at `url` with the channel prefix `omni:`. Needs a tokio runtime:
    /// the connections live in tasks of their own, which end when this value is dropped.
    pub fn connect(url: &str) -> Result<Self, redis::RedisError> {
        Self::with_prefix(url, "omni:")
    }

    /// Like [`connect`](Self::connect), with channels named `{prefix}{topic}`: deployments
    /// sharing one Redis stay apart with different prefixes.
    pub fn with_prefix(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        let inner = Arc::new(Inner {
            local: LocalPubSub::new(),
            node: rand::random(),
            prefix: prefix.to_owned(),
            publish,
            subscribed: AtomicBool::new(false),
            publishing: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        tokio::spawn(subscriber(Arc::downgrade(&inner), client.clone()));
        tokio::spawn(publisher(Arc::downgrade(&inner), client, queue));
        Ok(Self { inner })
    }

    /// How the connection to Redis is doing.
    pub fn health(&self) -> RedisHealth {
        let inner = &self.inner;
        RedisHealth {
            subscribed: inner.subscribed.load(Ordering::SeqCst),
            publishing: inner.publishing.load(Ordering::SeqCst),
            reconnects: inner.reconnects.load(Ordering::SeqCst),
            dropped: inner.dropped.load(Ordering::SeqCst),
            last_error: inner.last_error.lock().unwrap().clone(),
        }
    }

    /// Waits until the subscriber connection is up, or `timeout` passes. Returns whether it is.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.inner.subscribed.load(Ordering::SeqCst) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    fn publish(&self, topic: &str, except: Option<SessionId>, frame: &Outgoing) {
        let channel = format!("{}{topic}", self.inner.prefix);
        let payload = encode(self.inner.node, except, frame);
        if self.inner.publish.try_send((channel, payload)).is_err() {
            self.inner.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl PubSub for RedisPubSub {
    fn register(&self, id: SessionId, member: Arc<dyn Member>) {
        self.inner.local.register(id, member);
    }

    fn unregister(&self, id: SessionId) {
        self.inner.local.unregister(id);
    }

    fn subscribe(&self, id: SessionId, topic: &str) -> bool {
        self.inner.local.subscribe(id, topic)
    }

    fn unsubscribe(&self, id: SessionId, topic: &str) -> bool {
        self.inner.local.unsubscribe(id, topic)
    }

    fn broadcast(&self, topic: &str, frame: Outgoing) {
        self.publish(topic, None, &frame);
        self.inner.local.broadcast(topic, frame);
    }

    fn broadcast_from(&self, from: SessionId, topic: &str, frame: Outgoing) {
        self.publish(topic, Some(from), &frame);
        self.inner.local.broadcast_from(from, topic, frame);
    }
}

/// The message published for one broadcast: a header line naming the publishing process, the
/// excluded session and the frame's type, then the frame itself.
fn encode(node: u128, except: Option<SessionId>, frame: &Outgoing) -> Vec<u8> {
    let except = except.map_or_else(|| "-".to_owned(), |id| id.to_string());
    let mut out = format!("{node:032x} {except} {}\n", frame.kind()).into_bytes();
    out.extend_from_slice(frame.text().as_bytes());
    out
}

/// A published message from another process: the excluded session and the frame.
fn decode(own_node: u128, payload: &[u8]) -> Option<(Option<SessionId>, Outgoing)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (header, frame) = text.split_once('\n')?;
    let mut parts = header.split(' ');
    let node = u128::from_str_radix(parts.next()?, 16).ok()?;
    if node == own_node {
        // Already delivered locally when it was broadcast.
        return None;
    }
    let except = match parts.next()? {
        "-" => None,
        id => Some(id.parse().ok()?),
    };
    let kind = match parts.next()? {
        "push" => "push",
        "msg" => "msg",
        _ => return None,
    };
    Some((
        except,
        Outgoing::new(kind, None, Utf8Bytes::from(frame.to_owned())),
    ))
}

/// Delay before reconnection attempt `attempt`: 100 ms doubling to 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)).min(5_000))
}

/// Keeps one `PSUBSCRIBE` connection up and delivers what arrives to local subscribers.
async fn subscriber(inner: Weak<Inner>, client: redis::Client) {
    let mut attempt = 0;
    let mut ever_connected = false;
    loop {
        let Some(pattern) = inner.upgrade().map(|i| format!("{}*", i.prefix)) else {
            return;
        };
        let connected = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(&pattern).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(Duration::from_secs(5), connected).await {
            Ok(Ok(pubsub)) => {
                let Some(strong) = inner.upgrade() else {
                    return;
                };
                strong.subscribed.store(true, Ordering::SeqCst);
                if ever_connected {
                    strong.reconnects.fetch_add(1, Ordering::SeqCst);
                    tracing::info!("redis pub/sub reconnected");
                }
                ever_connected = true;
                attempt = 0;
                drop(strong);
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let Some(inner) = inner.upgrade() else { return };
                    let topic = message
                        .get_channel_name()
                        .strip_prefix(inner.prefix.as_str())
                        .unwrap_or_default();
                    if let Some((except, frame)) = decode(inner.node, message.get_payload_bytes()) {
                        match except {
                            Some(from) => inner.local.broadcast_from(from, topic, frame),
                            None => inner.local.broadcast(topic, frame),
                        }
                    }
                }
                let Some(inner) = inner.upgrade() else { return };
                inner.subscribed.store(false, Ordering::SeqCst);
                *inner.last_error.lock().unwrap() = Some("subscriber connection lost".into());
                tracing::warn!("redis pub/sub connection lost; serving local subscribers only");
            }
            Ok(Err(err)) => record(&inner, &err.to_string()),
            Err(_) => record(&inner, "connecting to redis timed out"),
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

fn record(inner: &Weak<Inner>, error: &str) {
    if let Some(inner) = inner.upgrade() {
        tracing::warn!(%error, "redis unreachable");
        *inner.last_error.lock().unwrap() = Some(error.to_owned());
    }
}

/// Publishes queued broadcasts, reconnecting when a publish fails.
async fn publisher(
    inner: Weak<Inner>,
    client: redis::Client,
    mut queue: mpsc::Receiver<(String, Vec<u8>)>,
) {
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    let mut attempt = 0;
    while let Some((channel, payload)) = queue.recv().await {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if connection.is_none() {
            let connect = client.get_multiplexed_async_connection();
            match tokio::time::timeout(Duration::from_secs(2), connect).await {
                Ok(Ok(conn)) => {
                    connection = Some(conn);
                    attempt = 0;
                }
                _ => {
                    // Unreachable: this broadcast stays local; try again after a pause.
                    strong.publishing.store(false, Ordering::SeqCst);
                    strong.dropped.fetch_add(1, Ordering::SeqCst);
                    attempt += 1;
                    drop(strong);
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
            }
        }
        let conn = connection.as_mut().expect("connected above");
        let published: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(&payload)
            .query_async(conn)
            .await;
        match published {
            Ok(_) => strong.publishing.store(true, Ordering::SeqCst),
            Err(err) => {
                strong.publishing.store(false, Ordering::SeqCst);
                strong.dropped.fetch_add(1, Ordering::SeqCst);
                *strong.last_error.lock().unwrap() = Some(err.to_string());
                tracing::warn!(%err, "redis publish failed");
                connection = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_messages_round_trip_and_own_ones_are_skipped() {
        let frame = Outgoing::push(Utf8Bytes::from_static(r#"{"type":"push","payload":1}"#));
        let from = SessionId::from_u128(5);
        let payload = encode(7, Some(from), &frame);
        assert!(decode(7, &payload).is_none());
        let (except, decoded) = decode(8, &payload).unwrap();
        assert_eq!(except, Some(from));
        assert_eq!(decoded.text(), frame.text());
        assert_eq!(decoded.kind(), "push");
        assert!(decode(8, b"garbage").is_none());
    }
}
