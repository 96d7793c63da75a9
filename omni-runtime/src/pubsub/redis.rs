//! Pub/sub across server processes through Redis `PUBLISH` / `PSUBSCRIBE`, and sequenced
//! topics numbered and logged in Redis (a counter and a capped stream per topic).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::backend::{
    Member, PresenceWatcher, PubSub, RedisReport, Replay, Report, TOPIC_LOG, topic_origin,
};
use super::local::LocalPubSub;
use crate::server::encoded::{Outgoing, Publication, TopicFrame};
use crate::server::metrics::Histogram;
use serde::{Deserialize, Serialize};

use crate::presence::peers::{Heard, Peers};
use crate::presence::registry::{Changes, NodeId, Tracked};
use crate::presence::{List, Meta};
use crate::{Seq, SessionId};

/// Numbers a topic message, logs it and publishes it, atomically, so that every process sees
/// a topic's messages in the order of their numbers and the log never misses one. A counter
/// that does not exist (first use, or lost with Redis's data) starts at the publisher's
/// [`topic_origin`]. Numbers are formatted with `%d`: Lua would write a
/// large one in exponent notation.
/// KEYS: counter, stream, channel. ARGV: frame head, frame tail, push frame, message header,
/// log length, origin.
const PUBLISH_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[6]) end
local seq = string.format('%d', redis.call('INCR', KEYS[1]))
local msg = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], '0-' .. seq, 'f', msg)
redis.call('PUBLISH', KEYS[3], ARGV[4] .. ' ' .. seq .. '\n' .. msg .. '\n' .. ARGV[3])
return seq
";

/// The messages after a cursor, if the stream still holds all of them: `{head, 'held',
/// frames…}`, or `{head, 'gone'}`. KEYS: counter, stream. ARGV: the cursor.
const REPLAY_SCRIPT: &str = r"
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[1])
local shown = string.format('%d', head)
if after == head then return {shown, 'held'} end
if after > head then return {shown, 'gone'} end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #first == 0 or tonumber(string.sub(first[1][1], 3)) > after + 1 then
  return {shown, 'gone'}
end
local out = {shown, 'held'}
local from = '0-' .. string.format('%d', after + 1)
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], from, '+')) do
  out[#out + 1] = entry[2][2]
end
return out
";

/// How long a replay may wait for Redis before the subscriber is given a snapshot instead.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a process says it is alive, by default.
const HEARTBEAT: Duration = Duration::from_secs(3);

/// How long a process may be silent before the others take it to be dead and remove its
/// presence entries, by default: a process killed without a word is gone from every list
/// within this time (and at most one check period more).
const PRESENCE_EXPIRY: Duration = Duration::from_secs(10);

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
}

struct Inner {
    local: LocalPubSub,
    node: u128,
    prefix: String,
    publish: mpsc::Sender<Command>,
    log_frames: AtomicUsize,
    subscribed: AtomicBool,
    publishing: AtomicBool,
    reconnects: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// The number of this process's last announcement of presence changes; moved only under
    /// the local presence lock, so numbers follow the order of the changes.
    presence_seq: AtomicU64,
    peers: Mutex<Peers>,
    heartbeat: Mutex<Duration>,
    /// How long each broadcast and topic message took to reach Redis, in nanoseconds.
    publish_latency: Histogram,
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
            log_frames: AtomicUsize::new(TOPIC_LOG),
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
        tokio::spawn(subscriber(Arc::downgrade(&inner), client.clone()));
        tokio::spawn(publisher(Arc::downgrade(&inner), client, queue));
        tokio::spawn(heartbeat(Arc::downgrade(&inner)));
        Ok(Self { inner })
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
        let channel = format!("{}{topic}", self.inner.prefix);
        let payload = encode(self.inner.node, except, frame);
        self.queue(Command::Broadcast { channel, payload });
    }

    fn queue(&self, command: Command) {
        if self.inner.publish.try_send(command).is_err() {
            self.inner.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Work for the publishing connection, in order.
enum Command {
    Broadcast {
        channel: String,
        payload: Vec<u8>,
    },
    Publish {
        topic: String,
        publication: Publication,
    },
    Replay {
        topic: String,
        after: Seq,
        reply: oneshot::Sender<Replay>,
    },
}

impl Inner {
    /// Publishes a presence announcement for the other processes. Dropped when Redis is
    /// unreachable: they notice the gap in the numbers (or the silence) and repair it.
    fn announce(&self, announcement: &Announcement) {
        let Ok(json) = serde_json::to_string(announcement) else {
            return;
        };
        let payload = format!("{:032x} - presence\n{json}", self.node).into_bytes();
        let command = Command::Broadcast {
            channel: self.prefix.clone(),
            payload,
        };
        if self.publish.try_send(command).is_err() {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Announces this process's whole presence state (`to` one process, or to all), with the
    /// number of its last change.
    fn announce_state(&self, to: Option<NodeId>) {
        // Under the presence lock: no change can slip between the entries and the number.
        let registry = self.local.lock_presence();
        let seq = self.presence_seq.load(Ordering::SeqCst);
        self.announce(&Announcement {
            kind: AnnouncementKind::State,
            seq,
            to: to.map(node_name),
            joins: registry.own_entries(),
            leaves: Vec::new(),
        });
    }

    /// Announces `kind` (a heartbeat, a request for states) with the current number.
    fn announce_plain(&self, kind: AnnouncementKind, to: Option<NodeId>) {
        let _registry = self.local.lock_presence();
        let seq = self.presence_seq.load(Ordering::SeqCst);
        self.announce(&Announcement {
            kind,
            seq,
            to: to.map(node_name),
            joins: Vec::new(),
            leaves: Vec::new(),
        });
    }

    /// Another process's presence announcement arrived.
    fn heard_presence(&self, node: NodeId, announcement: Announcement) {
        let Announcement {
            kind,
            seq,
            to,
            joins,
            leaves,
        } = announcement;
        if to.is_some_and(|to| to != node_name(self.node)) {
            return;
        }
        let heard = match kind {
            AnnouncementKind::Changes => Heard::Changes { seq },
            AnnouncementKind::State => Heard::State { seq },
            AnnouncementKind::Beat => Heard::Beat { seq },
            AnnouncementKind::Sync => {
                self.announce_state(Some(node));
                Heard::Beat { seq }
            }
        };
        let verdict = self
            .peers
            .lock()
            .unwrap()
            .heard(node, heard, std::time::Instant::now());
        if verdict.apply {
            self.local.change_presence(|registry| match kind {
                AnnouncementKind::State => registry.replace_node(node, joins),
                _ => registry.apply_node(node, Changes { joins, leaves }),
            });
        }
        if verdict.ask {
            self.announce_plain(AnnouncementKind::Sync, Some(node));
        }
    }

    fn counter_key(&self, topic: &str) -> String {
        format!("{}topic-seq:{topic}", self.prefix)
    }

    fn stream_key(&self, topic: &str) -> String {
        format!("{}topic-log:{topic}", self.prefix)
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
        self.inner.local.unregister(id);
    }

    fn subscribe(&self, id: SessionId, topic: &str) -> bool {
        self.inner.local.subscribe(id, topic)
    }

    fn unsubscribe(&self, id: SessionId, topic: &str) -> bool {
        self.inner.local.unsubscribe(id, topic)
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
        });
    }

    fn replay(&self, topic: &str, after: Seq) -> BoxFuture<'static, Replay> {
        let (reply, answer) = oneshot::channel();
        self.queue(Command::Replay {
            topic: topic.to_owned(),
            after,
            reply,
        });
        Box::pin(async move {
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

/// The message published for one broadcast: a header line naming the publishing process, the
/// excluded session and the frame's type, then the frame itself.
fn encode(node: u128, except: Option<SessionId>, frame: &Outgoing) -> Vec<u8> {
    let except = except.map_or_else(|| "-".to_owned(), |id| id.to_string());
    let mut out = format!("{node:032x} {except} {}\n", frame.kind()).into_bytes();
    out.extend_from_slice(frame.text().as_bytes());
    out
}

/// A message that arrived through the subscription.
#[derive(Debug)]
enum Received {
    /// A broadcast from another process, for every subscriber but `except`.
    Broadcast {
        except: Option<SessionId>,
        frame: Outgoing,
    },
    /// A numbered message of a sequenced topic, from any process (this one included).
    Topic(TopicFrame),
    /// Another process's presence announcement.
    Presence(NodeId, Announcement),
}

/// Reads a published message: a header line (publishing process, excluded session, kind and,
/// for a topic message, its number), then the frame (a topic message: its `msg` frame, a
/// newline, its `push` frame; JSON text has no raw newlines).
fn decode(own_node: u128, payload: &[u8]) -> Option<Received> {
    let text = std::str::from_utf8(payload).ok()?;
    let (header, frame) = text.split_once('\n')?;
    let mut parts = header.split(' ');
    let node = u128::from_str_radix(parts.next()?, 16).ok()?;
    let except = parts.next()?;
    if parts.clone().next() == Some("presence") {
        if node == own_node {
            return None;
        }
        return Some(Received::Presence(node, serde_json::from_str(frame).ok()?));
    }
    if parts.clone().next() == Some("topic") {
        let seq: Seq = parts.nth(1)?.parse().ok()?;
        let (msg, push) = frame.split_once('\n')?;
        return Some(Received::Topic(TopicFrame::new(
            seq,
            Outgoing::new("msg", None, msg),
            Outgoing::push(push),
        )));
    }
    if node == own_node {
        // Already delivered locally when it was broadcast.
        return None;
    }
    let except = match except {
        "-" => None,
        id => Some(id.parse().ok()?),
    };
    let kind = match parts.next()? {
        "push" => "push",
        "msg" => "msg",
        _ => return None,
    };
    Some(Received::Broadcast {
        except,
        frame: Outgoing::new(kind, None, frame),
    })
}

/// One process's presence announcement to the others, as JSON on the prefix's own channel.
/// A plain struct (no tagged enum): entries' metadata is raw JSON, which serde can only read
/// straight from the text.
#[derive(Debug, Serialize, Deserialize)]
struct Announcement {
    kind: AnnouncementKind,
    /// `changes`: its number; otherwise the number of the process's last changes.
    #[serde(default)]
    seq: u64,
    /// Only for this process (its name as in the header); absent: for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    /// `changes`: the entries that joined; `state`: every entry of the process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    joins: Vec<Tracked>,
    /// `changes`: the refs of the entries that left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    leaves: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AnnouncementKind {
    Changes,
    State,
    Beat,
    /// Asks for the whole state (of the process named in `to`, or of all).
    Sync,
}

impl Announcement {
    fn changes(seq: u64, changes: Changes) -> Self {
        Self {
            kind: AnnouncementKind::Changes,
            seq,
            to: None,
            joins: changes.joins,
            leaves: changes.leaves,
        }
    }
}

fn node_name(node: NodeId) -> String {
    format!("{node:032x}")
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
                // Whatever was announced while this process could not hear: every other
                // process sends its whole state.
                strong.announce_plain(AnnouncementKind::Sync, None);
                drop(strong);
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let Some(inner) = inner.upgrade() else { return };
                    let topic = message
                        .get_channel_name()
                        .strip_prefix(inner.prefix.as_str())
                        .unwrap_or_default();
                    match decode(inner.node, message.get_payload_bytes()) {
                        Some(Received::Broadcast {
                            except: Some(from),
                            frame,
                        }) => inner.local.broadcast_from(from, topic, frame),
                        Some(Received::Broadcast {
                            except: None,
                            frame,
                        }) => inner.local.broadcast(topic, frame),
                        Some(Received::Topic(frame)) => inner.local.deliver_topic(topic, &frame),
                        Some(Received::Presence(node, announcement)) => {
                            inner.heard_presence(node, announcement);
                        }
                        None => {}
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

/// Runs the queued commands on one connection, reconnecting when one fails. A broadcast
/// that fails is dropped (counted in `dropped`); a topic message is retried until Redis is
/// back, since its subscribers would otherwise miss a number.
async fn publisher(inner: Weak<Inner>, client: redis::Client, mut queue: mpsc::Receiver<Command>) {
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    let mut attempt = 0;
    while let Some(command) = queue.recv().await {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let mut command = Some(command);
        while let Some(current) = command.take() {
            if matches!(current, Command::Publish { .. })
                && !strong.subscribed.load(Ordering::SeqCst)
            {
                // This process's subscribers receive a topic message through the subscription:
                // publishing while it is down would skip them.
                command = Some(current);
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            if connection.is_none() {
                let connect = client.get_multiplexed_async_connection();
                match tokio::time::timeout(Duration::from_secs(2), connect).await {
                    Ok(Ok(conn)) => {
                        connection = Some(conn);
                        attempt = 0;
                    }
                    _ => {
                        strong.publishing.store(false, Ordering::SeqCst);
                        attempt += 1;
                        command = unreachable(&strong, current);
                        if command.is_some() {
                            tokio::time::sleep(backoff(attempt)).await;
                        }
                        continue;
                    }
                }
            }
            let conn = connection.as_mut().expect("connected above");
            let timed = !matches!(current, Command::Replay { .. });
            let started = std::time::Instant::now();
            match run(&strong, conn, current).await {
                Ok(()) => {
                    if timed {
                        strong.publish_latency.observe_duration(started.elapsed());
                    }
                    strong.publishing.store(true, Ordering::SeqCst);
                }
                Err((err, retry)) => {
                    strong.publishing.store(false, Ordering::SeqCst);
                    *strong.last_error.lock().unwrap() = Some(err.to_string());
                    tracing::warn!(%err, "redis publish failed");
                    let lost = err.is_io_error()
                        || err.is_connection_dropped()
                        || err.is_connection_refusal()
                        || err.is_timeout();
                    if lost {
                        connection = None;
                    }
                    match retry {
                        Some(retry) if lost => {
                            attempt += 1;
                            tokio::time::sleep(backoff(attempt)).await;
                            command = Some(retry);
                        }
                        _ => {
                            strong.dropped.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
        }
    }
}

/// Redis cannot be reached for `command`: a broadcast stays local, a replay is answered
/// "gone" (by its caller's timeout), a topic message is kept for a retry.
fn unreachable(inner: &Inner, command: Command) -> Option<Command> {
    match command {
        Command::Publish { .. } => Some(command),
        Command::Broadcast { .. } => {
            inner.dropped.fetch_add(1, Ordering::SeqCst);
            None
        }
        Command::Replay { .. } => None,
    }
}

/// Runs one command. On failure, a topic message comes back to be retried.
async fn run(
    inner: &Inner,
    conn: &mut redis::aio::MultiplexedConnection,
    command: Command,
) -> Result<(), (redis::RedisError, Option<Command>)> {
    match command {
        Command::Broadcast { channel, payload } => {
            let published: Result<i64, _> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&payload)
                .query_async(conn)
                .await;
            published.map(drop).map_err(|err| (err, None))
        }
        Command::Publish { topic, publication } => {
            let header = format!("{:032x} - topic", inner.node);
            let published: Result<String, _> = redis::cmd("EVAL")
                .arg(PUBLISH_SCRIPT)
                .arg(3)
                .arg(inner.counter_key(&topic))
                .arg(inner.stream_key(&topic))
                .arg(format!("{}{topic}", inner.prefix))
                .arg(Publication::HEAD)
                .arg(publication.tail())
                .arg(publication.push().text())
                .arg(header)
                .arg(inner.log_frames.load(Ordering::SeqCst))
                .arg(topic_origin())
                .query_async(conn)
                .await;
            match published {
                Ok(_) => Ok(()),
                Err(err) => Err((err, Some(Command::Publish { topic, publication }))),
            }
        }
        Command::Replay {
            topic,
            after,
            reply,
        } => {
            let answer: Result<Vec<String>, _> = redis::cmd("EVAL")
                .arg(REPLAY_SCRIPT)
                .arg(2)
                .arg(inner.counter_key(&topic))
                .arg(inner.stream_key(&topic))
                .arg(after)
                .query_async(conn)
                .await;
            let answer = answer.map_err(|err| (err, None))?;
            let _ = reply.send(replay_from(after, answer));
            Ok(())
        }
    }
}

/// Reads the replay script's answer.
fn replay_from(after: Seq, answer: Vec<String>) -> Replay {
    let mut answer = answer.into_iter();
    let head = answer.next().and_then(|h| h.parse().ok()).unwrap_or(after);
    match answer.next().as_deref() {
        Some("held") => Replay::Held(
            answer
                .map(|text| Outgoing::new("msg", None, text))
                .collect(),
        ),
        _ => Replay::Gone { head },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_messages_round_trip_and_own_ones_are_skipped() {
        let frame = Outgoing::push(r#"{"type":"push","payload":1}"#);
        let from = SessionId::from_u128(5);
        let payload = encode(7, Some(from), &frame);
        assert!(decode(7, &payload).is_none());
        let Some(Received::Broadcast {
            except,
            frame: decoded,
        }) = decode(8, &payload)
        else {
            panic!("not a broadcast");
        };
        assert_eq!(except, Some(from));
        assert_eq!(decoded.text(), frame.text());
        assert_eq!(decoded.kind(), "push");
        assert!(decode(8, b"garbage").is_none());

        // What the publish script sends: read by every process, the publisher's too.
        let topic = format!(
            "{:032x} - topic 12\n{{\"type\":\"msg\",\"seq\":12}}\n{{\"type\":\"push\"}}",
            7u128
        );
        let Some(Received::Topic(frame)) = decode(7, topic.as_bytes()) else {
            panic!("not a topic message");
        };
        assert_eq!(frame.seq(), 12);
        assert_eq!(frame.sequenced().text(), r#"{"type":"msg","seq":12}"#);
        assert_eq!(frame.push().text(), r#"{"type":"push"}"#);
    }
}
