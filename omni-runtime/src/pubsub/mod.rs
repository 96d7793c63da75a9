//! Topics and fan-out: who receives a broadcast.
//!
//! A [`PubSub`] keeps, for each topic, the sessions subscribed to it, and hands every
//! broadcast to them. A broadcast arrives already encoded, so it is serialized once however
//! many subscribers there are, and every subscriber receives the same shared bytes.
//! [`LocalPubSub`] does this within one process; `RedisPubSub` (feature `redis`) spans
//! processes, delivering to its own process's subscribers through a `LocalPubSub` and to the
//! others through Redis.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use omni_runtime::pubsub::{LocalPubSub, Member, Outgoing, PubSub};
//! use omni_runtime::SessionId;
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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ws::Utf8Bytes;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisHealth, RedisPubSub};

use crate::SessionId;
use crate::frame::Seq;

/// One encoded server frame on its way to a connection: the JSON text, shared by every
/// recipient, and what a transport needs to know without parsing it (SSE writes `event:` and
/// `id:` lines from it).
#[derive(Clone, Debug)]
pub struct Outgoing {
    kind: &'static str,
    seq: Option<Seq>,
    text: Utf8Bytes,
}

impl Outgoing {
    /// An encoded frame of type `kind`, sequenced if `seq` is set.
    pub fn new(kind: &'static str, seq: Option<Seq>, text: Utf8Bytes) -> Self {
        Self { kind, seq, text }
    }

    /// An encoded `push` frame.
    pub fn push(text: Utf8Bytes) -> Self {
        Self::new("push", None, text)
    }

    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The frame's `seq`, for sequenced frames.
    pub fn seq(&self) -> Option<Seq> {
        self.seq
    }

    /// The frame's JSON text.
    pub fn text(&self) -> &str {
        self.text.as_str()
    }

    /// The frame's JSON text as shared bytes (cloning it does not copy the text).
    pub fn bytes(&self) -> &Utf8Bytes {
        &self.text
    }
}

/// Something that receives broadcasts: a session, wherever its connection currently is.
pub trait Member: Send + Sync + 'static {
    /// Hands `frame` to the member. Must not block: a member whose queue is full drops its
    /// connection (`slow_consumer`) rather than slowing the broadcaster.
    fn deliver(&self, frame: Outgoing);
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
}

/// In-process pub/sub: the default backend.
#[derive(Default)]
pub struct LocalPubSub {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    members: HashMap<SessionId, Arc<dyn Member>>,
    topics: HashMap<String, HashSet<SessionId>>,
    subscriptions: HashMap<SessionId, HashSet<String>>,
}

impl LocalPubSub {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions are subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.lock().topics.get(topic).map_or(0, HashSet::len)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // The registry holds no invariant a panic elsewhere could break halfway.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fan_out(&self, topic: &str, frame: Outgoing, except: Option<SessionId>) {
        // Collect the recipients first so that delivery (which locks each member) happens
        // outside the registry lock.
        let recipients: Vec<Arc<dyn Member>> = {
            let registry = self.lock();
            let Some(ids) = registry.topics.get(topic) else {
                return;
            };
            ids.iter()
                .filter(|id| Some(**id) != except)
                .filter_map(|id| registry.members.get(id).cloned())
                .collect()
        };
        for member in recipients {
            member.deliver(frame.clone());
        }
    }
}

impl PubSub for LocalPubSub {
    fn register(&self, id: SessionId, member: Arc<dyn Member>) {
        self.lock().members.insert(id, member);
    }

    fn unregister(&self, id: SessionId) {
        let mut registry = self.lock();
        registry.members.remove(&id);
        for topic in registry.subscriptions.remove(&id).unwrap_or_default() {
            if let Some(ids) = registry.topics.get_mut(&topic) {
                ids.remove(&id);
                if ids.is_empty() {
                    registry.topics.remove(&topic);
                }
            }
        }
    }

    fn subscribe(&self, id: SessionId, topic: &str) -> bool {
        let mut registry = self.lock();
        registry
            .subscriptions
            .entry(id)
            .or_default()
            .insert(topic.to_owned());
        registry
            .topics
            .entry(topic.to_owned())
            .or_default()
            .insert(id)
    }

    fn unsubscribe(&self, id: SessionId, topic: &str) -> bool {
        let mut registry = self.lock();
        if let Some(topics) = registry.subscriptions.get_mut(&id) {
            topics.remove(topic);
        }
        let Some(ids) = registry.topics.get_mut(topic) else {
            return false;
        };
        let removed = ids.remove(&id);
        if ids.is_empty() {
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
