//! Topics and fan-out: who receives a broadcast.
//!
//! A [`PubSub`] keeps, for each topic, the sessions subscribed to it, and hands every
//! broadcast to them. A broadcast arrives already encoded, so it is serialized once however
//! many subscribers there are, and every subscriber receives the same shared bytes.
//!
//! A topic may also be *sequenced*: what is [`publish`](PubSub::publish)ed on it is numbered
//! by the topic and kept in a bounded log, so a subscriber that comes back with the last
//! number it holds gets exactly what it missed ([`replay`](PubSub::replay)), on any server
//! sharing the backend.
//! [`LocalPubSub`] does this within one process; `RedisPubSub` (feature `redis`) spans
//! processes, delivering to its own process's subscribers through a `LocalPubSub` and to the
//! others through Redis.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use omni::pubsub::{LocalPubSub, Member, Outgoing, PubSub};
//! use omni::SessionId;
//!
//! /// A member that keeps what it receives.
//! #[derive(Default)]
//! struct Inbox(Mutex<Vec<String>>);
//! impl Member for Inbox {
//!     fn deliver(&self, frame: Outgoing) {
//!         self.0.lock().unwrap().push(frame.text().to_owned());
//!     }
//! }
//!
//! let pubsub = LocalPubSub::new();
//! let (a, b) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
//! let (ida, idb) = (SessionId::from_u128(1), SessionId::from_u128(2));
//! pubsub.register(ida, a.clone());
//! pubsub.register(idb, b.clone());
//! pubsub.subscribe(ida, "room");
//! pubsub.subscribe(idb, "room");
//!
//! pubsub.broadcast_from(ida, "room", Outgoing::push(r#"{"type":"push","payload":1}"#.into()));
//! assert!(a.0.lock().unwrap().is_empty());
//! assert_eq!(b.0.lock().unwrap().len(), 1);
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisHealth, RedisPubSub};

use crate::SessionId;
use crate::presence::registry::Changes;
use crate::presence::{self, List, Meta};
pub use crate::server::encoded::{Outgoing, Publication, TopicFrame};
use crate::wire::Seq;

/// How often, at most, a topic's presence changes go out, by default.
pub const PRESENCE_INTERVAL: Duration = Duration::from_millis(100);

/// What a sequenced topic holds after a subscriber's cursor.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Replay {
    /// Every message after the cursor, in order (`msg` frames): nothing was lost.
    Held(Vec<Outgoing>),
    /// Some are no longer in the log (or the log is unreachable): the subscriber must start
    /// again from the topic's current number, `head`.
    Gone {
        /// The topic's last number.
        head: Seq,
    },
}

/// Something that receives broadcasts: a session, wherever its connection currently is.
pub trait Member: Send + Sync + 'static {
    /// Hands `frame` (an ephemeral `push`) to the member. Must not block: a member falling
    /// behind drops it (and counts it) rather than slowing the broadcaster.
    fn deliver(&self, frame: Outgoing);

    /// Hands a message of sequenced `topic` to the member, in the topic's order. By default
    /// the member receives it as an ordinary broadcast (its `push` form).
    fn deliver_topic(&self, topic: &str, frame: &TopicFrame) {
        let _ = topic;
        self.deliver(frame.push().clone());
    }

    /// Hands the member a presence frame of `topic`: `diff` when it changed (the member may
    /// send `state()`, the whole list, instead: after it dropped a diff, say), or the state
    /// when `diff` is `None` (it subscribed, or reconnected). By default it receives the diff,
    /// or the state.
    fn deliver_presence(
        &self,
        topic: &str,
        diff: Option<&Outgoing>,
        state: &mut dyn FnMut() -> Outgoing,
    ) {
        let _ = topic;
        self.deliver(diff.cloned().unwrap_or_else(state));
    }
}

/// A topic registry and broadcaster.
pub trait PubSub: Send + Sync + 'static {
    /// Makes `member` reachable as `id`. A member registered again replaces the earlier one.
    fn register(&self, id: SessionId, member: Arc<dyn Member>);
    /// Forgets `id` and all its subscriptions.
    fn unregister(&self, id: SessionId);
    /// Subscribes `id` to `topic`. Returns false if it already was.
    fn subscribe(&self, id: SessionId, topic: &str) -> bool;
    /// Unsubscribes `id` from `topic`. Returns false if it was not subscribed.
    fn unsubscribe(&self, id: SessionId, topic: &str) -> bool;
    /// Delivers `frame` to every subscriber of `topic`.
    fn broadcast(&self, topic: &str, frame: Outgoing);
    /// Delivers `frame` to every subscriber of `topic` except `from`.
    fn broadcast_from(&self, from: SessionId, topic: &str, frame: Outgoing);
    /// Numbers `publication` as the next message of sequenced `topic`, logs it, and delivers
    /// it to every subscriber of `topic` (on every process sharing the backend), in order.
    fn publish(&self, topic: &str, publication: Publication);
    /// The messages of `topic` after number `after`, if the log still holds all of them.
    fn replay(&self, topic: &str, after: Seq) -> BoxFuture<'static, Replay>;
    /// Tracks session `id` under `key` in `topic`'s presence (see [`crate::presence`]).
    fn track(&self, id: SessionId, topic: &str, key: &str, meta: Meta);
    /// Stops tracking session `id` under `key` in `topic`.
    fn untrack(&self, id: SessionId, topic: &str, key: &str);
    /// Stops tracking session `id` anywhere: it ended.
    fn untrack_all(&self, id: SessionId);
    /// Hands `member` the `presence_state` of `topic` if anyone is tracked there, or if
    /// `always`. Returns whether it did.
    fn show_presence(&self, topic: &str, member: &dyn Member, always: bool) -> bool;
    /// Who is on `topic` now, on every process sharing the backend.
    fn presence(&self, topic: &str) -> List;
    /// Whether the backend can carry messages between processes now; `Err` says why not.
    /// An in-process backend always can.
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
    /// `topic`'s `presence_state` frame now (empty if nobody is tracked there). `then` runs
    /// before any later change can be sent to subscribers.
    fn presence_state(&self, topic: &str, then: &mut dyn FnMut()) -> Outgoing;
    /// After each change to `topic`'s presence, and to each new subscriber with the list,
    /// delivers the frame `watcher` makes from the list (if any) to the topic's subscribers
    /// in this process.
    fn watch_presence(&self, topic: &str, watcher: PresenceWatcher);
}

/// Makes a frame from a topic's presence list: see [`PubSub::watch_presence`].
pub type PresenceWatcher = Box<dyn Fn(&List) -> Option<Outgoing> + Send + Sync>;

/// Messages a sequenced topic keeps for replay, by default.
pub const TOPIC_LOG: usize = 1024;

/// Where a topic's numbering starts: the current time in microseconds. A topic whose number
/// and log are lost (a restarted process, a Redis without persistence) starts again above
/// every number it gave before, so a subscriber's old cursor can never be mistaken for a
/// position in the new numbering: it reads as "gone", and the subscriber gets a snapshot.
pub fn topic_origin() -> Seq {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as Seq)
}

/// One sequenced topic's number and log, in process.
struct TopicLog {
    head: Seq,
    frames: VecDeque<Outgoing>,
}

impl Default for TopicLog {
    fn default() -> Self {
        Self {
            head: topic_origin(),
            frames: VecDeque::new(),
        }
    }
}

impl TopicLog {
    fn replay(&self, after: Seq) -> Replay {
        let oldest = self.head + 1 - self.frames.len() as Seq;
        if after > self.head || after + 1 < oldest {
            return Replay::Gone { head: self.head };
        }
        let skip = (after + 1 - oldest) as usize;
        Replay::Held(self.frames.iter().skip(skip).cloned().collect())
    }
}

/// In-process pub/sub: the default backend.
///
/// Presence diffs go out at most once per [`presence_interval`](Self::with_presence_interval)
/// per topic, from a timer started by the first change after a quiet spell.
pub struct LocalPubSub {
    local: Arc<Local>,
}

struct Local {
    /// Read-locked by every broadcast, which delivers while it iterates (a delivery only
    /// queues a frame, and never calls back into the registry); write-locked to register and
    /// subscribe.
    inner: RwLock<Registry>,
    logs: Mutex<HashMap<String, Arc<Mutex<TopicLog>>>>,
    log_frames: usize,
    /// Locked before `inner` (a flush delivers while it holds both), never after.
    presence: Mutex<presence::registry::Registry>,
    /// In microseconds.
    presence_interval: AtomicU64,
    flush_due: AtomicBool,
    /// With a backend that spans processes: takes this process's own presence changes after
    /// each flush, to tell the others.
    on_changes: OnceLock<Box<dyn Fn(Changes) + Send + Sync>>,
    watchers: RwLock<HashMap<String, Vec<PresenceWatcher>>>,
}

impl Default for LocalPubSub {
    fn default() -> Self {
        Self::with_topic_log(TOPIC_LOG)
    }
}

#[derive(Default)]
struct Registry {
    members: HashMap<SessionId, Arc<dyn Member>>,
    /// Each topic's subscribers with their members, so a broadcast looks nothing up.
    topics: HashMap<String, HashMap<SessionId, Arc<dyn Member>>>,
    subscriptions: HashMap<SessionId, HashSet<String>>,
}

impl LocalPubSub {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry whose sequenced topics each keep their last `frames` messages.
    pub fn with_topic_log(frames: usize) -> Self {
        Self::build(
            frames,
            PRESENCE_INTERVAL,
            format!("{:x}", rand::random::<u32>()),
        )
    }

    /// Sends each topic's presence changes at most once per `interval` (default 100 ms), as
    /// one `presence_diff`: a burst of joins costs each subscriber one frame per interval.
    pub fn with_presence_interval(self, interval: Duration) -> Self {
        self.set_presence_interval(interval);
        self
    }

    pub(crate) fn set_presence_interval(&self, interval: Duration) {
        let micros = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
        self.local
            .presence_interval
            .store(micros, Ordering::Relaxed);
    }

    fn build(frames: usize, interval: Duration, ref_prefix: String) -> Self {
        Self {
            local: Arc::new(Local {
                inner: RwLock::default(),
                logs: Mutex::default(),
                log_frames: frames.max(1),
                presence: Mutex::new(presence::registry::Registry::new(ref_prefix)),
                presence_interval: AtomicU64::new(
                    u64::try_from(interval.as_micros()).unwrap_or(u64::MAX),
                ),
                flush_due: AtomicBool::new(false),
                on_changes: OnceLock::new(),
                watchers: RwLock::default(),
            }),
        }
    }

    fn topic_log(&self, topic: &str) -> Arc<Mutex<TopicLog>> {
        let mut logs = self
            .local
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        logs.entry(topic.to_owned()).or_default().clone()
    }

    /// Delivers an already numbered message of `topic` to this process's subscribers.
    pub(crate) fn deliver_topic(&self, topic: &str, frame: &TopicFrame) {
        self.local
            .each(topic, None, |member| member.deliver_topic(topic, frame));
    }

    /// How many sessions are subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.local.read().topics.get(topic).map_or(0, HashMap::len)
    }

    fn fan_out(&self, topic: &str, frame: Outgoing, except: Option<SessionId>) {
        self.local
            .each(topic, except, |member| member.deliver(frame.clone()));
    }

    pub(crate) fn lock_presence(&self) -> MutexGuard<'_, presence::registry::Registry> {
        self.local.lock_presence()
    }

    /// Runs `change` on the presence registry; if it changed anything, a flush is due.
    pub(crate) fn change_presence(
        &self,
        change: impl FnOnce(&mut presence::registry::Registry) -> bool,
    ) {
        let changed = change(&mut self.lock_presence());
        if changed {
            Local::schedule_flush(&self.local);
        }
    }

    /// Has this process's own presence changes handed to `tell` after each flush (once),
    /// under the presence lock: `tell` must only queue them.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_presence_changes(&self, tell: impl Fn(Changes) + Send + Sync + 'static) {
        let _ = self.local.on_changes.set(Box::new(tell));
    }
}

impl Local {
    /// Calls `deliver` for every member subscribed to `topic` except `except`.
    fn each(&self, topic: &str, except: Option<SessionId>, mut deliver: impl FnMut(&dyn Member)) {
        let registry = self.read();
        let Some(subscribers) = registry.topics.get(topic) else {
            return;
        };
        for (id, member) in subscribers {
            if Some(*id) != except {
                deliver(member.as_ref());
            }
        }
    }

    // The registries hold no invariant a panic elsewhere could break halfway.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_presence(&self) -> MutexGuard<'_, presence::registry::Registry> {
        self.presence.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the interval after which the presence changes go out, unless one runs.
    fn schedule_flush(local: &Arc<Local>) {
        if local.flush_due.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let weak = Arc::downgrade(local);
                let interval =
                    Duration::from_micros(local.presence_interval.load(Ordering::Relaxed));
                runtime.spawn(async move {
                    tokio::time::sleep(interval).await;
                    if let Some(local) = weak.upgrade() {
                        local.flush_presence();
                    }
                });
            }
            // Outside a runtime (a unit test): at once.
            Err(_) => local.flush_presence(),
        }
    }

    /// Sends every topic's presence diff to its subscribers, then hands this process's own
    /// changes on. Each diff is encoded once for all its subscribers.
    fn flush_presence(&self) {
        self.flush_due.store(false, Ordering::Release);
        let mut presence = self.lock_presence();
        let diffs = presence.flush();
        let changes = presence.take_changes();
        // Told under the lock, so that the other processes hear this process's changes in the
        // order they were made.
        if !changes.is_empty()
            && let Some(tell) = self.on_changes.get()
        {
            tell(changes);
        }
        for (topic, diff) in diffs {
            let frame = Outgoing::presence_diff(&topic, &diff);
            let mut state = None;
            self.each(&topic, None, |member| {
                member.deliver_presence(&topic, Some(&frame), &mut || {
                    state
                        .get_or_insert_with(|| {
                            presence
                                .state(&topic, true)
                                .unwrap_or_else(|| frame.clone())
                        })
                        .clone()
                });
            });
            for derived in self.derived(&topic, &presence) {
                self.each(&topic, None, |member| member.deliver(derived.clone()));
            }
        }
    }

    /// The frames the watchers of `topic` make from its list.
    fn derived(&self, topic: &str, presence: &presence::registry::Registry) -> Vec<Outgoing> {
        let watchers = self.watchers.read().unwrap_or_else(PoisonError::into_inner);
        let Some(watchers) = watchers.get(topic) else {
            return Vec::new();
        };
        let empty = List::new();
        let list = presence.list(topic).unwrap_or(&empty);
        watchers.iter().filter_map(|watch| watch(list)).collect()
    }
}

impl PubSub for LocalPubSub {
    fn register(&self, id: SessionId, member: Arc<dyn Member>) {
        let mut registry = self.local.write();
        // Registered again: its subscriptions follow the new member.
        for topic in registry.subscriptions.get(&id).cloned().unwrap_or_default() {
            if let Some(subscribers) = registry.topics.get_mut(&topic) {
                subscribers.insert(id, member.clone());
            }
        }
        registry.members.insert(id, member);
    }

    fn unregister(&self, id: SessionId) {
        let mut registry = self.local.write();
        registry.members.remove(&id);
        for topic in registry.subscriptions.remove(&id).unwrap_or_default() {
            if let Some(subscribers) = registry.topics.get_mut(&topic) {
                subscribers.remove(&id);
                if subscribers.is_empty() {
                    registry.topics.remove(&topic);
                }
            }
        }
    }

    fn subscribe(&self, id: SessionId, topic: &str) -> bool {
        let mut registry = self.local.write();
        // Only a registered session can receive anything.
        let Some(member) = registry.members.get(&id).cloned() else {
            return false;
        };
        registry
            .subscriptions
            .entry(id)
            .or_default()
            .insert(topic.to_owned());
        registry
            .topics
            .entry(topic.to_owned())
            .or_default()
            .insert(id, member)
            .is_none()
    }

    fn unsubscribe(&self, id: SessionId, topic: &str) -> bool {
        let mut registry = self.local.write();
        if let Some(topics) = registry.subscriptions.get_mut(&id) {
            topics.remove(topic);
        }
        let Some(subscribers) = registry.topics.get_mut(topic) else {
            return false;
        };
        let removed = subscribers.remove(&id).is_some();
        if subscribers.is_empty() {
            registry.topics.remove(topic);
        }
        removed
    }

    fn broadcast(&self, topic: &str, frame: Outgoing) {
        self.fan_out(topic, frame, None);
    }

    fn broadcast_from(&self, from: SessionId, topic: &str, frame: Outgoing) {
        self.fan_out(topic, frame, Some(from));
    }

    fn publish(&self, topic: &str, publication: Publication) {
        let log = self.topic_log(topic);
        // Held while delivering, so two publishers on one topic never deliver out of order.
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        log.head += 1;
        let frame = publication.numbered(log.head);
        log.frames.push_back(frame.sequenced().clone());
        if log.frames.len() > self.local.log_frames {
            log.frames.pop_front();
        }
        self.deliver_topic(topic, &frame);
    }

    fn replay(&self, topic: &str, after: Seq) -> BoxFuture<'static, Replay> {
        let replay = self
            .topic_log(topic)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replay(after);
        Box::pin(std::future::ready(replay))
    }

    fn track(&self, id: SessionId, topic: &str, key: &str, meta: Meta) {
        self.change_presence(|p| p.track(id, topic, key, meta));
    }

    fn untrack(&self, id: SessionId, topic: &str, key: &str) {
        self.change_presence(|p| p.untrack(id, topic, key));
    }

    fn untrack_all(&self, id: SessionId) {
        self.change_presence(|p| p.untrack_session(id));
    }

    fn show_presence(&self, topic: &str, member: &dyn Member, always: bool) -> bool {
        // Held while the member queues it, so that no flush's diff can pass it.
        let mut presence = self.lock_presence();
        match presence.state(topic, always) {
            Some(state) => {
                member.deliver_presence(topic, None, &mut || state.clone());
                for derived in self.local.derived(topic, &presence) {
                    member.deliver(derived);
                }
                true
            }
            None => false,
        }
    }

    fn presence(&self, topic: &str) -> List {
        self.lock_presence()
            .list(topic)
            .cloned()
            .unwrap_or_default()
    }

    fn presence_state(&self, topic: &str, then: &mut dyn FnMut()) -> Outgoing {
        let mut presence = self.lock_presence();
        then();
        presence
            .state(topic, true)
            .unwrap_or_else(|| Outgoing::presence_state(topic, &List::new()))
    }

    fn watch_presence(&self, topic: &str, watcher: PresenceWatcher) {
        let mut watchers = self
            .local
            .watchers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        watchers.entry(topic.to_owned()).or_default().push(watcher);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Member for Count {
        fn deliver(&self, _: Outgoing) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn frame() -> Outgoing {
        Outgoing::push(r#"{"type":"push","payload":0}"#.into())
    }

    #[test]
    fn unregister_drops_every_subscription() {
        let pubsub = LocalPubSub::new();
        let member = Arc::new(Count::default());
        let id = SessionId::from_u128(7);
        pubsub.register(id, member.clone());
        assert!(pubsub.subscribe(id, "a"));
        assert!(!pubsub.subscribe(id, "a"));
        assert!(pubsub.subscribe(id, "b"));
        pubsub.broadcast("a", frame());
        pubsub.unregister(id);
        pubsub.broadcast("a", frame());
        pubsub.broadcast("b", frame());
        assert_eq!(member.0.load(Ordering::Relaxed), 1);
        assert_eq!(pubsub.subscribers("a"), 0);
    }

    fn publication(n: u32) -> Publication {
        let template = format!(r#"{{"type":"msg","seq":0,"payload":{n},"topic":"t"}}"#);
        let push = format!(r#"{{"type":"push","payload":{n},"topic":"t"}}"#);
        Publication::new(&template, Outgoing::push(push.into())).unwrap()
    }

    fn texts(replay: Replay) -> Vec<String> {
        match replay {
            Replay::Held(frames) => frames.iter().map(|f| f.text().to_owned()).collect(),
            Replay::Gone { head } => vec![format!("gone at {head}")],
        }
    }

    #[test]
    fn a_topic_replays_exactly_what_followed_a_cursor_while_its_log_holds_it() {
        let pubsub = LocalPubSub::with_topic_log(3);
        let before = topic_origin();
        for n in 1..=5 {
            pubsub.publish("t", publication(n));
        }
        let replay = |after| futures_util::FutureExt::now_or_never(pubsub.replay("t", after));
        // Numbering starts at the time the topic was first used.
        let Some(Replay::Gone { head: fifth }) = replay(0) else {
            panic!("0 is long gone");
        };
        assert!(fifth >= before + 5);
        let nth = |n: u64| fifth - 5 + n;
        assert_eq!(
            texts(replay(nth(3)).unwrap()),
            [
                format!(
                    r#"{{"type":"msg","seq":{},"payload":4,"topic":"t"}}"#,
                    nth(4)
                ),
                format!(
                    r#"{{"type":"msg","seq":{},"payload":5,"topic":"t"}}"#,
                    nth(5)
                ),
            ]
        );
        assert_eq!(
            texts(replay(nth(2)).unwrap()).len(),
            3,
            "the oldest held is 3"
        );
        assert!(texts(replay(nth(5)).unwrap()).is_empty(), "nothing missed");
        let gone = [format!("gone at {fifth}")];
        assert_eq!(texts(replay(nth(1)).unwrap()), gone, "2 was trimmed");
        assert_eq!(
            texts(replay(nth(9)).unwrap()),
            gone,
            "a cursor from the future"
        );
    }

    #[test]
    fn unsubscribe_stops_delivery_on_that_topic_only() {
        let pubsub = LocalPubSub::new();
        let member = Arc::new(Count::default());
        let id = SessionId::from_u128(8);
        pubsub.register(id, member.clone());
        pubsub.subscribe(id, "a");
        pubsub.subscribe(id, "b");
        assert!(pubsub.unsubscribe(id, "a"));
        assert!(!pubsub.unsubscribe(id, "a"));
        pubsub.broadcast("a", frame());
        pubsub.broadcast("b", frame());
        assert_eq!(member.0.load(Ordering::Relaxed), 1);
    }
}
