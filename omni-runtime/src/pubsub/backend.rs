//! What a pub/sub backend is: the [`PubSub`] trait a backend implements, the [`Member`] a
//! session is to it, and the rules every backend keeps (where a topic's numbering starts, how
//! much a topic's log holds).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::SessionId;
use crate::presence::{List, Meta};
use crate::server::encoded::{Outgoing, Publication, TopicFrame};
use crate::server::metrics::Read;
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

    /// Hands the member a presence frame of `topic`, chosen from `frames`: its diff when it
    /// changed (the member may send the whole list instead: after it dropped a diff, say),
    /// the state when there is no diff (it subscribed, or reconnected), or the count, for a
    /// client that asked only for that. By default it receives the diff, or the state.
    fn deliver_presence(&self, topic: &str, frames: &mut dyn PresenceFrames) {
        let _ = topic;
        let frame = match frames.diff() {
            Some(diff) => diff.clone(),
            None => frames.state(),
        };
        self.deliver(frame);
    }
}

/// The frames of one presence change of a topic, as a backend hands them to its members: each
/// made on first demand, and once for all the members that are given it.
pub trait PresenceFrames {
    /// What changed, or `None` when the member is being shown the topic (it subscribed, or
    /// its client reconnected).
    fn diff(&self) -> Option<&Outgoing>;
    /// The topic's whole list (`presence_state`).
    fn state(&mut self) -> Outgoing;
    /// How many keys and entries the topic has (`presence_count`).
    fn count(&mut self) -> Outgoing;
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
    /// Resolves once what is published on `topic` from now on reaches this process's
    /// subscribers to it. A backend spanning processes may need a round trip to start
    /// receiving a topic after its first subscriber here; a session waits for this before it
    /// takes the handler's snapshot of the topic, so that no message falls between the
    /// snapshot and the live ones. By default at once.
    fn listening(&self, topic: &str) -> BoxFuture<'static, ()> {
        let _ = topic;
        Box::pin(std::future::ready(()))
    }
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
    /// `topic`'s `presence_count` frame now: by default counted from
    /// [`presence`](Self::presence).
    fn presence_count(&self, topic: &str) -> Outgoing {
        let list = self.presence(topic);
        Outgoing::presence_count(topic, list.len(), list.values().map(Vec::len).sum())
    }
    /// After each change to `topic`'s presence, and to each new subscriber with the list,
    /// delivers the frame `watcher` makes from the list (if any) to the topic's subscribers
    /// in this process.
    fn watch_presence(&self, topic: &str, watcher: PresenceWatcher);

    /// What the backend tells the metrics when they are read. Not public API: a backend of
    /// an application's own reports nothing.
    #[doc(hidden)]
    fn report(&self) -> Report {
        Report::default()
    }
}

/// What a backend reports to the metrics (see [`PubSub::report`]). Not public API.
#[doc(hidden)]
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
pub struct Report {
    /// Topics with a subscriber in this process.
    pub(crate) topics: usize,
    /// Presence entries this process knows, its own and other processes'.
    pub(crate) presence_entries: usize,
    /// How many sessions each broadcast reached in this process.
    pub(crate) fanout: Option<Read>,
    pub(crate) redis: Option<RedisReport>,
}

/// How a backend's link to Redis is doing.
#[derive(Debug)]
#[cfg_attr(not(all(feature = "redis", feature = "prometheus")), allow(dead_code))]
pub(crate) struct RedisReport {
    /// Both connections are up.
    pub(crate) up: bool,
    pub(crate) reconnects: u64,
    /// Broadcasts not published to other processes.
    pub(crate) dropped: u64,
    /// How long a publish took, in seconds.
    pub(crate) publish: Read,
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
