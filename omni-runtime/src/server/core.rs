//! A session's protocol-level state: its sequence numbers, the log kept for resume, its
//! current connection and its topics. Everything here works on encoded frames and is shared
//! by every transport; the handler lives one level up, in the hub.

use std::collections::{HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use tokio::sync::watch;

use super::conn::{Conn, ConnRx, Item, Stop, connection};
use super::limits::Limits;
use super::metrics::Metrics;
use crate::codec::{Outgoing, Publication, TopicFrame};
use crate::context::{SessionGone, Sink};
use crate::pubsub::{Member, PubSub};
use crate::{Cursors, Effect, ErrorCode, Protocol, Ref, Seq, ServerFrame, SessionId};

/// What an endpoint's sessions share.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) pubsub: Arc<dyn PubSub>,
    pub(crate) metrics: Metrics,
    pub(crate) shutdown: watch::Sender<bool>,
    next_conn: AtomicU64,
}

impl Shared {
    pub(crate) fn new(limits: Limits, pubsub: Arc<dyn PubSub>) -> Self {
        Self {
            limits,
            pubsub,
            metrics: Metrics::default(),
            shutdown: watch::channel(false).0,
            next_conn: AtomicU64::new(1),
        }
    }

    /// A new connection's handle, and the ends its transport reads.
    pub(crate) fn connection(&self, live: bool) -> (Conn, ConnRx) {
        connection(self.next_conn_id(), self.limits.outbound_queue, live)
    }

    /// An id for a connection to one of this endpoint's sessions.
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}

/// How an attach went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resumed {
    /// A fresh session, or a resume from within the log: the frames after `after` follow.
    Exactly,
    /// The resume point is gone: `reset` was sent; the handler must start afresh.
    Reset,
}

/// What a subscription to a sequenced topic needs before its messages flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopicSync {
    /// The client holds no usable resume point: the handler's `snapshot` of the topic.
    Snapshot(String),
    /// The client holds the topic up to `after`: what followed, from the topic's log.
    Replay { topic: String, after: Seq },
}

/// Where a subscription's topic messages stand.
enum TopicState {
    /// Catching up (a replay or snapshot is under way): live messages wait here, so that
    /// they follow what the catch-up sends.
    Buffering(Vec<TopicFrame>),
    /// Messages go straight to the client; `last` is the last number it was sent.
    Live { last: Option<Seq> },
}

/// The protocol-level state of one session.
pub(crate) struct SessionCore<P> {
    pub(crate) id: SessionId,
    pub(crate) shared: Arc<Shared>,
    inner: Mutex<Inner>,
    protocol: PhantomData<fn() -> P>,
}

struct Inner {
    last_seq: Seq,
    log: VecDeque<Outgoing>,
    conn: Option<Conn>,
    topics: HashSet<String>,
    /// `Some` once the client said it follows sequenced topics (a `topics` field in `hello`
    /// or the connect URL): the cursors it gave, each taken when its topic is caught up.
    cursors: Option<Cursors>,
    topic_states: HashMap<String, TopicState>,
    handled: VecDeque<Ref>,
    handled_set: HashSet<Ref>,
    /// Bumped on every attach, so a late expiry timer can tell it is stale.
    generation: u64,
    ended: bool,
}

impl<P: Protocol> SessionCore<P> {
    pub(crate) fn new(id: SessionId, shared: Arc<Shared>) -> Arc<Self> {
        let core = Arc::new(Self {
            id,
            shared: shared.clone(),
            inner: Mutex::new(Inner {
                last_seq: 0,
                log: VecDeque::new(),
                conn: None,
                topics: HashSet::new(),
                cursors: None,
                topic_states: HashMap::new(),
                handled: VecDeque::new(),
                handled_set: HashSet::new(),
                generation: 0,
                ended: false,
            }),
            protocol: PhantomData,
        });
        shared.pubsub.register(id, core.clone());
        core
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent before anything that can panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `conn` in front of the session, replacing (and closing) any earlier connection.
    /// Sends `welcome` when asked, then the frames after `after`, or `reset` when they are no
    /// longer all in the log.
    /// Returns how the resume went, and whether a live connection was displaced (its
    /// `disconnected` hook is then due).
    pub(crate) fn attach(&self, conn: Conn, after: Option<Seq>, welcome: bool) -> (Resumed, bool) {
        let mut inner = self.lock();
        inner.generation += 1;
        let displaced = inner.conn.replace(conn).is_some_and(|old| {
            old.displace();
            old.live
        });
        if welcome {
            let frame = ServerFrame::<()>::Welcome {
                session: self.id,
                seq: inner.last_seq,
                resumed: after.is_some(),
                protocol: P::NAME.to_owned(),
                version: P::VERSION.to_owned(),
                id: None,
            };
            self.deliver_encoded(&mut inner, &frame);
        }
        let resumed = match after {
            None => Resumed::Exactly,
            Some(after) => self.replay(&mut inner, after),
        };
        (resumed, displaced)
    }

    /// Sends `reset`: the client's state derives from frames this session cannot replay.
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        self.send_reset(&mut inner);
    }

    fn send_reset(&self, inner: &mut Inner) {
        let frame = ServerFrame::<()>::Reset {
            seq: inner.last_seq,
            topic: None,
            id: None,
        };
        self.deliver_encoded(inner, &frame);
        Metrics::bump(&self.shared.metrics.sessions_reset);
    }

    /// Sends the logged frames after `after`, or `reset` if some of them are gone.
    pub(crate) fn replay_after(&self, after: Seq) -> Resumed {
        let mut inner = self.lock();
        self.replay(&mut inner, after)
    }

    fn replay(&self, inner: &mut Inner, after: Seq) -> Resumed {
        let oldest = inner.log.front().and_then(Outgoing::seq);
        // Held exactly when every frame after `after` is still logged: `after` is the last
        // frame sent, or the frame just before the oldest one kept.
        let held = after == inner.last_seq
            || (after < inner.last_seq && oldest.is_some_and(|oldest| oldest <= after + 1));
        if !held {
            self.send_reset(inner);
            return Resumed::Reset;
        }
        let missed: Vec<Outgoing> = inner
            .log
            .iter()
            .filter(|f| f.seq().is_some_and(|seq| seq > after))
            .cloned()
            .collect();
        if !missed.is_empty() {
            self.deliver(inner, Item::Replay(missed, None));
        }
        Resumed::Exactly
    }

    /// Takes connection `conn_id` away from the session if it is still the current one.
    /// Returns it, with the generation at which the session may expire.
    pub(crate) fn detach(&self, conn_id: u64) -> Option<(Conn, u64)> {
        let mut inner = self.lock();
        if inner.conn.as_ref().is_some_and(|c| c.id == conn_id) {
            inner.conn.take().map(|conn| (conn, inner.generation))
        } else {
            None
        }
    }

    /// Whether a live connection (ws, sse) is attached.
    pub(crate) fn has_live_connection(&self) -> bool {
        self.lock().conn.as_ref().is_some_and(|c| c.live)
    }

    /// Ends the session if nothing attached since `generation`. Returns whether it ended.
    pub(crate) fn expire(&self, generation: u64) -> bool {
        let mut inner = self.lock();
        if inner.ended || inner.conn.is_some() || inner.generation != generation {
            return false;
        }
        inner.ended = true;
        drop(inner);
        self.shared.pubsub.unregister(self.id);
        true
    }

    /// Ends the session now (a fresh session abandoned by a resume).
    pub(crate) fn end(&self) {
        let mut inner = self.lock();
        inner.ended = true;
        if let Some(conn) = inner.conn.take() {
            conn.displace();
        }
        drop(inner);
        self.shared.pubsub.unregister(self.id);
    }

    /// Whether the client message `reference` was already handled in this session.
    pub(crate) fn already_handled(&self, reference: Ref) -> bool {
        self.lock().handled_set.contains(&reference)
    }

    /// Remembers `reference` as handled, and acknowledges it.
    pub(crate) fn handled(&self, reference: Ref) {
        let mut inner = self.lock();
        if inner.handled_set.insert(reference) {
            inner.handled.push_back(reference);
            if inner.handled.len() > self.shared.limits.remembered_refs
                && let Some(old) = inner.handled.pop_front()
            {
                inner.handled_set.remove(&old);
            }
        }
        self.deliver(&mut inner, Item::Frame(Outgoing::ack(reference), None));
    }

    /// Sends an `error` frame to the current connection.
    pub(crate) fn error(&self, code: ErrorCode, message: String, reference: Option<Ref>) {
        let frame = ServerFrame::<()>::Error {
            code,
            message,
            reference,
            id: None,
        };
        self.deliver_encoded(&mut self.lock(), &frame);
    }

    /// Queues a close of the current connection after what is already queued.
    pub(crate) fn close(&self, stop: Stop) {
        let mut inner = self.lock();
        self.deliver(&mut inner, Item::Close(stop));
    }

    /// Takes the client's topic cursors (from `hello` or the connect URL): from now on its
    /// topic messages are `msg` frames. Returns the catch-ups due for topics the session is
    /// already subscribed to: a replay where the client holds a cursor; and, when `resumed`
    /// (the client was away, and its topic messages went nowhere meanwhile), a snapshot
    /// where it holds none.
    pub(crate) fn follow_topics(&self, cursors: Option<Cursors>, resumed: bool) -> Vec<TopicSync> {
        let Some(mut cursors) = cursors else {
            return Vec::new();
        };
        let mut inner = self.lock();
        let mut syncs = Vec::new();
        for topic in inner.topics.clone() {
            let sync = match cursors.remove(&topic) {
                Some(after) => TopicSync::Replay {
                    topic: topic.clone(),
                    after,
                },
                None if resumed => TopicSync::Snapshot(topic.clone()),
                None => continue,
            };
            inner
                .topic_states
                .insert(topic, TopicState::Buffering(Vec::new()));
            syncs.push(sync);
        }
        inner.cursors = Some(cursors);
        syncs
    }

    /// The topic's log no longer holds what the client missed: sends `reset` for the topic
    /// (its messages keep waiting until [`topic_live`](Self::topic_live)).
    pub(crate) fn topic_reset(&self, topic: &str, head: Seq) {
        let frame = ServerFrame::<()>::Reset {
            seq: head,
            topic: Some(topic.to_owned()),
            id: None,
        };
        self.deliver_encoded(&mut self.lock(), &frame);
        Metrics::bump(&self.shared.metrics.sessions_reset);
    }

    /// Sends what the client missed of `topic` after `after`, then lets its messages flow.
    pub(crate) fn topic_replayed(&self, topic: &str, after: Seq, missed: Vec<Outgoing>) {
        let last = after + missed.len() as Seq;
        let mut inner = self.lock();
        if !missed.is_empty() {
            self.deliver(&mut inner, Item::Replay(missed, None));
        }
        self.go_live(&mut inner, topic, Some(last));
    }

    /// The catch-up of `topic` is done (the client holds it up to `last`, if known): sends
    /// the messages that waited meanwhile, and lets the next ones flow.
    pub(crate) fn topic_live(&self, topic: &str, last: Option<Seq>) {
        let mut inner = self.lock();
        self.go_live(&mut inner, topic, last);
    }

    fn go_live(&self, inner: &mut Inner, topic: &str, mut last: Option<Seq>) {
        let waiting = match inner.topic_states.get_mut(topic) {
            Some(TopicState::Buffering(waiting)) => std::mem::take(waiting),
            // Unsubscribed meanwhile, or already live.
            _ => return,
        };
        let following = inner.cursors.is_some();
        for frame in waiting {
            if following {
                if last.is_some_and(|last| frame.seq() <= last) {
                    continue;
                }
                last = Some(frame.seq());
                self.deliver(inner, Item::Frame(frame.sequenced().clone(), None));
            } else {
                self.deliver(inner, Item::Frame(frame.push().clone(), None));
            }
        }
        inner
            .topic_states
            .insert(topic.to_owned(), TopicState::Live { last });
    }

    /// Carries out a handler's effects, in order. `reference` is the client message they
    /// answer; sequenced replies carry it. Returns the catch-ups due for topics it
    /// subscribed to.
    pub(crate) fn apply(&self, effects: Vec<Effect<P>>, reference: Option<Ref>) -> Vec<TopicSync> {
        let mut syncs = Vec::new();
        for effect in effects {
            match effect {
                Effect::Send(msg) => self.sequenced(&msg, reference),
                Effect::Push(msg) => {
                    let frame = ServerFrame::Push {
                        payload: &msg,
                        topic: None,
                        id: None,
                    };
                    self.deliver_encoded(&mut self.lock(), &frame);
                }
                Effect::Subscribe(topic) => syncs.extend(self.subscribe(topic)),
                Effect::Unsubscribe(topic) => {
                    let mut inner = self.lock();
                    inner.topics.remove(&topic);
                    inner.topic_states.remove(&topic);
                    drop(inner);
                    self.shared.pubsub.unsubscribe(self.id, &topic);
                }
                Effect::Publish { topic, msg } => self.publish(&topic, &msg),
                Effect::Broadcast {
                    topic,
                    msg,
                    include_self,
                } => self.broadcast(&topic, &msg, include_self),
                Effect::Close => self.close(Stop::CLOSED_BY_SERVER),
            }
        }
        syncs
    }

    fn sequenced(&self, msg: &P::Server, reference: Option<Ref>) {
        let mut inner = self.lock();
        let seq = inner.last_seq + 1;
        let frame = ServerFrame::Msg {
            seq,
            payload: msg,
            reference,
            topic: None,
            id: None,
        };
        let Some(out) = self.encode(&frame) else {
            drop(inner);
            self.error(
                ErrorCode::HandlerFailed,
                "a server message could not be encoded".into(),
                reference,
            );
            return;
        };
        inner.last_seq = seq;
        inner.log.push_back(out.clone());
        if inner.log.len() > self.shared.limits.log_frames {
            inner.log.pop_front();
        }
        self.deliver(&mut inner, Item::Frame(out, None));
    }

    fn subscribe(&self, topic: String) -> Option<TopicSync> {
        let mut inner = self.lock();
        if inner.topics.contains(&topic) {
            return None;
        }
        let max = self.shared.limits.max_topics;
        if inner.topics.len() >= max {
            let frame = ServerFrame::<()>::error(
                ErrorCode::TooLarge,
                format!("a session may subscribe to {max} topics; not subscribed to `{topic}`"),
            );
            self.deliver_encoded(&mut inner, &frame);
            tracing::warn!(session = %self.id, %topic, "topic limit reached");
            return None;
        }
        inner.topics.insert(topic.clone());
        // Messages wait until the client is caught up: they must follow the replay or the
        // snapshot.
        inner
            .topic_states
            .insert(topic.clone(), TopicState::Buffering(Vec::new()));
        let cursor = inner.cursors.as_mut().and_then(|c| c.remove(&topic));
        drop(inner);
        self.shared.pubsub.subscribe(self.id, &topic);
        Some(match cursor {
            Some(after) => TopicSync::Replay { topic, after },
            None => TopicSync::Snapshot(topic),
        })
    }

    fn publish(&self, topic: &str, msg: &P::Server) {
        let publication = match Publication::encode(topic, msg) {
            Ok(publication) => publication,
            Err(err) => {
                tracing::error!(session = %self.id, %err, "could not encode a topic message");
                return;
            }
        };
        Metrics::bump(&self.shared.metrics.broadcasts);
        self.shared.pubsub.publish(topic, publication);
    }

    fn broadcast(&self, topic: &str, msg: &P::Server, include_self: bool) {
        let frame = ServerFrame::Push {
            payload: msg,
            topic: Some(topic.to_owned()),
            id: None,
        };
        // Encoded once; every subscriber gets the same bytes.
        let Some(out) = self.encode(&frame) else {
            return;
        };
        Metrics::bump(&self.shared.metrics.broadcasts);
        if include_self {
            self.shared.pubsub.broadcast(topic, out);
        } else {
            self.shared.pubsub.broadcast_from(self.id, topic, out);
        }
    }

    fn encode<S: Serialize>(&self, frame: &ServerFrame<S>) -> Option<Outgoing> {
        match Outgoing::encode(frame) {
            Ok(out) => Some(out),
            Err(err) => {
                tracing::error!(session = %self.id, %err, "could not encode a server frame");
                None
            }
        }
    }

    fn deliver_encoded<S: Serialize>(&self, inner: &mut Inner, frame: &ServerFrame<S>) {
        if let Some(out) = self.encode(frame) {
            self.deliver(inner, Item::Frame(out, None));
        }
    }

    /// Queues `item` for the current connection without waiting: a full queue closes that
    /// connection as a slow consumer, so nobody else is held up by it.
    fn deliver(&self, inner: &mut Inner, item: Item) {
        if let Some(conn) = &inner.conn {
            conn.queue(item, &self.shared.metrics);
        }
    }
}

impl<P: Protocol> Member for SessionCore<P> {
    fn deliver(&self, frame: Outgoing) {
        let mut inner = self.lock();
        SessionCore::deliver(self, &mut inner, Item::Frame(frame, None));
    }

    fn deliver_topic(&self, topic: &str, frame: &TopicFrame) {
        let mut inner = self.lock();
        let following = inner.cursors.is_some();
        match inner.topic_states.get_mut(topic) {
            Some(TopicState::Buffering(waiting)) => {
                waiting.push(frame.clone());
                return;
            }
            Some(TopicState::Live { last }) if following => {
                // A replay and the live stream may overlap: each number goes once.
                if last.is_some_and(|last| frame.seq() <= last) {
                    return;
                }
                *last = Some(frame.seq());
            }
            _ => {}
        }
        let out = if following {
            frame.sequenced()
        } else {
            frame.push()
        };
        SessionCore::deliver(self, &mut inner, Item::Frame(out.clone(), None));
    }
}

impl<P: Protocol> Sink<P> for SessionCore<P> {
    fn effect(&self, effect: Effect<P>) -> Result<(), SessionGone> {
        if self.lock().ended {
            return Err(SessionGone);
        }
        // A sender cannot subscribe, so nothing is left to catch up.
        let _ = self.apply(vec![effect], None);
        Ok(())
    }
}
