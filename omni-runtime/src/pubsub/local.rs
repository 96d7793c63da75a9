//! [`LocalPubSub`]: topics, sequenced logs and presence within one process.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::backend::{
    Member, PRESENCE_INTERVAL, PresenceFrames, PresenceWatcher, PubSub, Replay, Report, TOPIC_LOG,
    topic_origin,
};
use crate::SessionId;
use crate::presence::registry::Changes;
use crate::presence::{self, List, Meta};
use crate::server::encoded::{Outgoing, Publication, TopicFrame};
use crate::server::metrics::Histogram;
use crate::wire::Seq;

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
    /// How many members each broadcast reached.
    fanout: Histogram,
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
                fanout: Histogram::counts(),
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

    /// The topics session `id` is subscribed to.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn topics_of(&self, id: SessionId) -> Vec<String> {
        self.local
            .read()
            .subscriptions
            .get(&id)
            .map(|topics| topics.iter().cloned().collect())
            .unwrap_or_default()
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
            self.fanout.observe(0);
            return;
        };
        let mut reached = 0;
        for (id, member) in subscribers {
            if Some(*id) != except {
                deliver(member.as_ref());
                reached += 1;
            }
        }
        self.fanout.observe(reached);
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
            let mut frames = Frames {
                presence: &mut presence,
                topic: &topic,
                diff: Some(Outgoing::presence_diff(&topic, &diff)),
            };
            self.each(&topic, None, |member| {
                member.deliver_presence(&topic, &mut frames);
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

/// One presence change (or showing) of a topic: the registry makes and keeps each frame, once
/// for all the members given it.
struct Frames<'a> {
    presence: &'a mut presence::registry::Registry,
    topic: &'a str,
    diff: Option<Outgoing>,
}

impl PresenceFrames for Frames<'_> {
    fn diff(&self) -> Option<&Outgoing> {
        self.diff.as_ref()
    }

    fn state(&mut self) -> Outgoing {
        match self.presence.state(self.topic, true) {
            Some(state) => state,
            None => Outgoing::presence_state(self.topic, &List::new()),
        }
    }

    fn count(&mut self) -> Outgoing {
        self.presence.count(self.topic)
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
        if presence.list(topic).is_none() && !always {
            return false;
        }
        let mut frames = Frames {
            presence: &mut presence,
            topic,
            diff: None,
        };
        member.deliver_presence(topic, &mut frames);
        for derived in self.local.derived(topic, &presence) {
            member.deliver(derived);
        }
        true
    }

    fn presence(&self, topic: &str) -> List {
        self.lock_presence()
            .list(topic)
            .cloned()
            .unwrap_or_default()
    }

    fn presence_count(&self, topic: &str) -> Outgoing {
        self.lock_presence().count(topic)
    }

    fn presence_state(&self, topic: &str, then: &mut dyn FnMut()) -> Outgoing {
        let mut presence = self.lock_presence();
        then();
        presence
            .state(topic, true)
            .unwrap_or_else(|| Outgoing::presence_state(topic, &List::new()))
    }

    fn report(&self) -> Report {
        Report {
            topics: self.local.read().topics.len(),
            presence_entries: self.lock_presence().len(),
            fanout: Some(self.local.fanout.read(1.0)),
            redis: None,
        }
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
        Outgoing::push(r#"{"type":"push","payload":0}"#)
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
        Publication::new(&template, Outgoing::push(push)).unwrap()
    }

    fn texts(replay: Replay) -> Vec<String> {
        match replay {
            Replay::Held(frames) => frames.iter().map(|f| f.text().into_owned()).collect(),
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
