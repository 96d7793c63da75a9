//! Pub/sub across server processes through Redis: each process subscribes to the channels
//! of the topics it has subscribers to, and sequenced topics are numbered and logged in Redis
//! (a counter and a capped stream per topic, expiring when the topic is idle).

mod channels;
mod command;
mod inner;
mod keys;
mod message;
mod publisher;
mod servers;
mod sessions;
mod sharded;
mod subscriber;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{Notify, mpsc, oneshot};

use self::channels::Channels;
use self::command::Command;
use self::inner::{Inner, REPLAY_TIMEOUT, backoff, millis, record};
use self::keys::node_channel;
use self::message::{Announcement, AnnouncementKind, encode, node_name};
use self::publisher::publisher;
use self::servers::{Mode, Servers};
use self::sessions::RedisSessions;
use self::subscriber::subscriber;
use super::backend::{Member, PresenceWatcher, PubSub, RedisReport, Replay, Report, TOPIC_LOG};
use super::local::LocalPubSub;
use crate::presence::peers::Peers;
use crate::presence::{List, Meta};
use crate::server::encoded::{Outgoing, Publication};
use crate::server::metrics::Histogram;
use crate::{Seq, SessionId};

/// How long a sequenced topic's counter and log stay in Redis after its last message, by
/// default.
pub const TOPIC_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a session's state stays in Redis after its last change, by default (see
/// [`RedisPubSub::with_session_expiry`]).
pub const SESSION_EXPIRY: Duration = Duration::from_secs(60 * 60);

/// How often a process says it is alive, by default.
const HEARTBEAT: Duration = Duration::from_secs(3);

/// How long a process may be silent before the others take it to be dead and remove its
/// presence entries, by default: a process killed without a word is gone from every list
/// within this time (and at most one check period more).
const PRESENCE_EXPIRY: Duration = Duration::from_secs(10);

/// Presence announcements waiting while Redis is unreachable; past this they are dropped (the
/// others notice the gap in the numbers, or the silence, and ask again).
const ANNOUNCEMENT_QUEUE: usize = 256;

/// Publishes waiting while Redis is unreachable; past this, broadcasts to other processes are
/// dropped (local subscribers still get them).
const PUBLISH_QUEUE: usize = 4096;

/// A [`PubSub`] whose broadcasts reach subscribers on every server process that uses the same
/// Redis (and the same channel prefix).
///
/// Each process keeps one subscriber connection and two publishing connections (messages;
/// presence announcements, so that a backlog of messages never holds them up), whatever the
/// number of clients. The subscriber connection is on a topic's channel only while this
/// process has a subscriber to the topic: a process receives the traffic of its own topics,
/// not the whole cluster's. A broadcast is delivered to this process's subscribers at once,
/// without a round trip through Redis, and published once for the others; `broadcast_from`
/// excludes the sender on every process. When Redis goes away the
/// process keeps serving its own subscribers, reconnects with backoff, and reports both in
/// [`health`](Self::health) and in `tracing` (a `warn` on loss, an `info` on recovery).
///
/// ```no_run
/// use std::sync::Arc;
///
/// use omni::pubsub::RedisPubSub;
/// use omni::server::Endpoint;
/// use omni::{Context, HandlerResult};
///
/// #[omni::protocol]
/// #[derive(Debug, Clone, PartialEq)]
/// enum Echo {
///     #[client]
///     Say(String),
///     #[server]
///     Heard(String),
/// }
///
/// struct Room;
///
/// impl EchoHandler for Room {
///     async fn connected(&mut self, cx: &mut Context<Echo>) -> HandlerResult {
///         cx.subscribe("room");
///         Ok(())
///     }
///
///     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
///         cx.broadcast("room", EchoFromServer::Heard(text));
///         Ok(())
///     }
/// }
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pubsub = Arc::new(RedisPubSub::connect("redis://127.0.0.1:6379/")?);
/// // A broadcast on "room" now reaches its subscribers on every process sharing this Redis.
/// let endpoint = Endpoint::<Echo, _>::builder(|| Room).pubsub(pubsub).build();
/// # let _ = endpoint;
/// # Ok(())
/// # }
/// ```
pub struct RedisPubSub {
    inner: Arc<Inner>,
    sessions: Arc<RedisSessions>,
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
    ///
    /// `url` names one server, or a Redis Cluster: a node of it (the server says it is one),
    /// or several nodes separated by commas (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`).
    /// On a cluster the other nodes are found from these, a topic's channel is a sharded
    /// channel (`SSUBSCRIBE`/`SPUBLISH`, Redis 7) on the slot of its keys, and subscriptions
    /// follow their slots when a master fails over or a slot moves.
    pub fn connect(url: &str) -> Result<Self, redis::RedisError> {
        Self::with_prefix(url, "omni:")
    }

    /// Like [`connect`](Self::connect), with keys and channels named after `prefix` (a
    /// topic's are `{prefix+topic}:seq`, `{prefix+topic}:log` and `{prefix+topic}`):
    /// deployments sharing one Redis stay apart with different prefixes.
    pub fn with_prefix(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        let servers = Servers::parse(url)?;
        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        let (announcements, announced) = mpsc::channel(ANNOUNCEMENT_QUEUE);
        // One pending wake-up is enough: the subscriber takes every change in one batch.
        let (channels_changed, changes) = mpsc::channel(1);
        let inner = Arc::new(Inner {
            local: LocalPubSub::new(),
            node: rand::random(),
            prefix: prefix.to_owned(),
            publish,
            announcements,
            log_frames: AtomicUsize::new(TOPIC_LOG),
            idle: AtomicU64::new(millis(TOPIC_EXPIRY)),
            // The node channel's name waits for the mode.
            channels: Mutex::new(Channels::new(Vec::new())),
            channels_changed,
            live: Notify::new(),
            received: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            publishing: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
            presence_seq: AtomicU64::new(0),
            peers: Mutex::new(Peers::new(PRESENCE_EXPIRY)),
            heartbeat: Mutex::new(HEARTBEAT),
            publish_latency: Histogram::durations(),
        });
        let weak = Arc::downgrade(&inner);
        inner.local.on_presence_changes(move |changes| {
            if let Some(inner) = weak.upgrade() {
                let seq = inner.presence_seq.fetch_add(1, Ordering::SeqCst) + 1;
                inner.announce(&Announcement::changes(seq, changes));
            }
        });
        let sessions = Arc::new(RedisSessions::new(
            servers.clone(),
            prefix,
            millis(SESSION_EXPIRY),
        ));
        tokio::spawn(start(
            Arc::downgrade(&inner),
            servers,
            changes,
            [queue, announced],
        ));
        tokio::spawn(heartbeat(Arc::downgrade(&inner)));
        Ok(Self { inner, sessions })
    }

    /// A session store in this Redis, for
    /// [`EndpointBuilder::session_store`](crate::server::EndpointBuilder::session_store):
    /// the sessions of every process that uses it can be resumed on any of them. A session's
    /// keys are `{prefix session/ID}:session` (a hash: its claim, sequence number, client id
    /// and props), `:frames` (the frames its log keeps) and `:refs` (the client messages it
    /// handled, as many as it remembers), on one cluster slot. They go when the session ends;
    /// the process holding a session touches its keys every third of
    /// [`with_session_expiry`](Self::with_session_expiry), so they expire only that long
    /// after the process stopped (it died: the session is never ended there). The store uses a
    /// connection of its own, made on first use.
    pub fn session_store(&self) -> crate::server::SessionStore {
        crate::server::SessionStore::new(self.sessions.clone())
    }

    /// How long a session's state stays in Redis once no process holds it (default
    /// [`SESSION_EXPIRY`], 1 h): a client whose process died resumes elsewhere within this
    /// time; later, it is given a new session, with `reset`. Every process sharing the store
    /// should use the same.
    pub fn with_session_expiry(self, idle: Duration) -> Self {
        self.sessions.expiry.store(millis(idle), Ordering::Relaxed);
        self
    }

    /// How often this process tells the others it is alive (default 3 s), and how long a
    /// silent process is given before its presence entries are removed (default 10 s; it is
    /// noticed within a second more). Every process sharing the Redis should use the same.
    pub fn with_presence_timing(self, heartbeat: Duration, expiry: Duration) -> Self {
        *self.inner.heartbeat.lock().unwrap() = heartbeat;
        *self.inner.peers.lock().unwrap() = Peers::new(expiry);
        self
    }

    /// Sends each topic's presence changes at most once per `interval` (default 100 ms).
    pub fn with_presence_interval(self, interval: Duration) -> Self {
        self.inner.local.set_presence_interval(interval);
        self
    }

    /// How many messages each sequenced topic keeps in its Redis stream for replay
    /// (default [`TOPIC_LOG`]). Every process sharing the topics should use the same.
    pub fn with_topic_log(self, frames: usize) -> Self {
        self.inner.log_frames.store(frames.max(1), Ordering::SeqCst);
        self
    }

    /// How long a sequenced topic's counter and log stay in Redis after its last message
    /// (default [`TOPIC_EXPIRY`], 24 h). A client resuming a topic that expired gets its
    /// `reset`, as for any cursor the log no longer holds. Every process sharing the topics
    /// should use the same.
    pub fn with_topic_expiry(self, idle: Duration) -> Self {
        self.inner.idle.store(millis(idle), Ordering::SeqCst);
        self
    }

    /// Messages this process's subscriber connection received from Redis so far (broadcasts,
    /// topic messages and presence announcements): with subscriptions that follow this
    /// process's topics, the traffic of those topics and no other.
    pub fn received(&self) -> u64 {
        self.inner.received.load(Ordering::Relaxed)
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

    fn send_broadcast(&self, topic: &str, except: Option<SessionId>, frame: &Outgoing) {
        let payload = encode(self.inner.node, except, frame);
        self.queue(Command::Broadcast {
            topic: Some(topic.to_owned()),
            payload,
        });
    }

    fn queue(&self, command: Command) {
        self.inner.queue(command);
    }
}

impl PubSub for RedisPubSub {
    fn ready(&self) -> Result<(), String> {
        let health = self.health();
        if health.subscribed && health.publishing {
            return Ok(());
        }
        let why = health
            .last_error
            .unwrap_or_else(|| "not connected yet".to_owned());
        Err(format!("Redis is unreachable: {why}"))
    }

    fn register(&self, id: SessionId, member: Arc<dyn Member>) {
        self.inner.local.register(id, member);
    }

    fn unregister(&self, id: SessionId) {
        self.inner.subscriptions(|local| {
            let topics = local.topics_of(id);
            local.unregister(id);
            ((), topics)
        });
    }

    fn subscribe(&self, id: SessionId, topic: &str) -> bool {
        self.inner.subscriptions(|local| {
            let added = local.subscribe(id, topic);
            (
                added,
                if added {
                    vec![topic.to_owned()]
                } else {
                    vec![]
                },
            )
        })
    }

    fn unsubscribe(&self, id: SessionId, topic: &str) -> bool {
        self.inner.subscriptions(|local| {
            let removed = local.unsubscribe(id, topic);
            (
                removed,
                if removed {
                    vec![topic.to_owned()]
                } else {
                    vec![]
                },
            )
        })
    }

    fn listening(&self, topic: &str) -> BoxFuture<'static, ()> {
        Box::pin(self.inner.clone().listening(topic.to_owned()))
    }

    fn broadcast(&self, topic: &str, frame: Outgoing) {
        self.send_broadcast(topic, None, &frame);
        self.inner.local.broadcast(topic, frame);
    }

    fn broadcast_from(&self, from: SessionId, topic: &str, frame: Outgoing) {
        self.send_broadcast(topic, Some(from), &frame);
        self.inner.local.broadcast_from(from, topic, frame);
    }

    /// Numbered by Redis: this process's subscribers receive it when it comes back through
    /// the subscription, in the same order as every other process's.
    fn publish(&self, topic: &str, publication: Publication) {
        self.queue(Command::Publish {
            topic: topic.to_owned(),
            publication,
            id: rand::random(),
            retry: false,
        });
    }

    /// Read once this process receives the topic's live messages, so that whatever follows
    /// what the log holds reaches the subscriber live: nothing falls between the two.
    fn replay(&self, topic: &str, after: Seq) -> BoxFuture<'static, Replay> {
        let inner = self.inner.clone();
        let topic = topic.to_owned();
        Box::pin(async move {
            inner.clone().listening(topic.clone()).await;
            let (reply, answer) = oneshot::channel();
            inner.queue(Command::Replay {
                topic,
                after,
                reply,
            });
            match tokio::time::timeout(REPLAY_TIMEOUT, answer).await {
                Ok(Ok(replay)) => replay,
                // Redis is unreachable: the subscriber gets a snapshot rather than waiting.
                _ => Replay::Gone { head: after },
            }
        })
    }

    fn track(&self, id: SessionId, topic: &str, key: &str, meta: Meta) {
        self.inner.local.track(id, topic, key, meta);
    }

    fn untrack(&self, id: SessionId, topic: &str, key: &str) {
        self.inner.local.untrack(id, topic, key);
    }

    fn untrack_all(&self, id: SessionId) {
        self.inner.local.untrack_all(id);
    }

    fn show_presence(&self, topic: &str, member: &dyn Member, always: bool) -> bool {
        self.inner.local.show_presence(topic, member, always)
    }

    fn presence(&self, topic: &str) -> List {
        self.inner.local.presence(topic)
    }

    fn presence_count(&self, topic: &str) -> Outgoing {
        self.inner.local.presence_count(topic)
    }

    fn presence_state(&self, topic: &str, then: &mut dyn FnMut()) -> Outgoing {
        self.inner.local.presence_state(topic, then)
    }

    fn report(&self) -> Report {
        let mut report = self.inner.local.report();
        let health = self.health();
        report.redis = Some(RedisReport {
            up: PubSub::ready(self).is_ok(),
            reconnects: health.reconnects,
            dropped: health.dropped,
            publish: self.inner.publish_latency.read(1e-9),
        });
        report
    }

    fn watch_presence(&self, topic: &str, watcher: PresenceWatcher) {
        self.inner.local.watch_presence(topic, watcher);
    }
}

/// Finds out whether the servers are a cluster (retrying until one answers), then runs the
/// subscriber and publishing connections for that mode.
async fn start(
    inner: Weak<Inner>,
    servers: Servers,
    changes: mpsc::Receiver<()>,
    [queue, announced]: [mpsc::Receiver<Command>; 2],
) {
    let mut attempt = 0;
    let mode = loop {
        match servers.mode().await {
            Ok(mode) => break mode,
            Err(err) => record(&inner, &err.to_string()),
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
        if inner.strong_count() == 0 {
            return;
        }
    };
    let Some(strong) = inner.upgrade() else {
        return;
    };
    strong
        .channels()
        .fix(vec![node_channel(&strong.prefix, mode)]);
    drop(strong);
    let subscriber = async {
        match mode {
            Mode::Single => match servers.client() {
                Ok(client) => subscriber(inner.clone(), client, changes).await,
                Err(err) => record(&inner, &err.to_string()),
            },
            Mode::Cluster => sharded::subscriber(inner.clone(), servers.clone(), changes).await,
        }
    };
    tokio::join!(
        subscriber,
        publisher(inner.clone(), servers.clone(), mode, queue),
        publisher(inner.clone(), servers.clone(), mode, announced),
    );
}

/// Tells the other processes this one is alive, and removes the presence entries of those
/// that went silent.
async fn heartbeat(inner: Weak<Inner>) {
    let mut last_beat = tokio::time::Instant::now();
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let every = *strong.heartbeat.lock().unwrap();
        if last_beat.elapsed() >= every {
            last_beat = tokio::time::Instant::now();
            strong.announce_plain(AnnouncementKind::Beat, None);
        }
        let dead = strong
            .peers
            .lock()
            .unwrap()
            .expired(std::time::Instant::now());
        for node in dead {
            tracing::info!(node = %node_name(node), "a server went silent; its presence entries are removed");
            strong
                .local
                .change_presence(|registry| registry.remove_node(node));
        }
        drop(strong);
        tokio::time::sleep(every.min(Duration::from_secs(1))).await;
    }
}
