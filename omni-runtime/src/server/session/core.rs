//! A session's protocol-level state: its sequence and resume log ([`log`](super::log)), its
//! topics ([`topics`](super::topics)) and its current connection, behind one lock. The state
//! machines are plain types; this module only holds them together, encodes what the handler
//! sends and hands the frames they return to the connection. Shared by every transport; the
//! handler is beside it, in [`handler`](super::handler).

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use futures_util::future::BoxFuture;

use serde::Serialize;

use super::gate::Gate;
use super::log::{Log, Refs, Since};
use super::store::{Claimed, Outcome, Save, Saving};
pub(crate) use super::topics::TopicSync;
use super::topics::Topics;
use crate::context::{SessionGone, Sink};
use crate::presence::Mode;
use crate::pubsub::{Member, PresenceFrames};
use crate::server::conn::{Conn, Item, Refresh, Stop};
use crate::server::encoded::{Outgoing, Publication, TopicFrame};
use crate::server::endpoint::Shared;
use crate::server::metrics::Metrics;
use crate::wire::Codec;
use crate::{Cursors, Effect, ErrorCode, Protocol, Ref, Seq, ServerFrame, SessionId};

/// How an attach went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resumed {
    /// A fresh session, or a resume from within the log: the frames after `after` follow.
    Exactly,
    /// The resume point is gone: `reset` was sent; the handler must start afresh.
    Reset,
}

/// The protocol-level state of one session.
pub(crate) struct SessionCore<P> {
    pub(crate) id: SessionId,
    /// This session, for what runs later on its behalf (a presence refresh).
    me: Weak<Self>,
    pub(crate) shared: Arc<Shared>,
    inner: Mutex<Inner>,
    /// Starts a topic's catch-up once the future given resolves (the connection drained):
    /// set by the session around this core, as the catch-up may run its handler's snapshot.
    catch_up: OnceLock<CatchUp>,
    protocol: PhantomData<fn() -> P>,
}

/// See [`SessionCore::on_behind`].
pub(crate) type CatchUp = Box<dyn Fn(String, BoxFuture<'static, ()>) + Send + Sync>;

struct Inner {
    log: Log,
    refs: Refs,
    topics: Topics,
    conn: Option<Conn>,
    /// Topics whose presence the client was shown: after a reconnect it gets their lists
    /// again, even an empty one (it may hold entries that left while it was away).
    presence_shown: HashSet<String>,
    /// Topics whose presence frame was dropped (the connection was falling behind): a
    /// refresh is queued that sends the whole list when the connection reaches it; their
    /// frames are not queued meanwhile.
    presence_stale: HashSet<String>,
    /// With a session store: what waits for it to be saved.
    gate: Option<Gate>,
    /// Another process took the session over from the store: this one no longer serves it.
    claimed_elsewhere: bool,
    /// Bumped on every attach, so a late expiry timer can tell it is stale.
    generation: u64,
    /// The client said it is leaving (a page's goodbye): the end of the connection attached
    /// now is a leave, not a drop. A new connection clears it: the client came back.
    leaving: bool,
    ended: bool,
}

impl Inner {
    /// Queues `item` for the current connection without waiting: a full queue closes that
    /// connection as a slow consumer, so nobody else is held up by it.
    /// With a session store, an item waits while a change before it is being saved.
    fn deliver(&mut self, item: Item, metrics: &Metrics) {
        if let Some((item, conn)) = self.passed(item) {
            conn.queue(item, metrics);
        }
    }

    /// Queues `item` even past the queue's bound: a replay, bounded by the log it comes from
    /// (a resume's, or a topic catch-up's, sent once the connection has drained).
    fn deliver_over(&mut self, item: Item, metrics: &Metrics) {
        if let Some((item, conn)) = self.passed(item) {
            conn.queue_over(item, metrics);
        }
    }

    /// `item` and the connection to queue it on, unless the gate holds it (a save before
    /// it is pending) or no connection is attached.
    fn passed(&mut self, item: Item) -> Option<(Item, &Conn)> {
        let item = match &mut self.gate {
            Some(gate) => gate.hold(item)?,
            None => item,
        };
        Some((item, self.conn.as_ref()?))
    }

    /// Gives back what the session held; its numbering stays, for a late resume to be
    /// told `reset`.
    fn release(&mut self) {
        self.log.clear();
        self.refs.clear();
        self.topics.clear();
        self.presence_shown = HashSet::new();
        self.presence_stale = HashSet::new();
    }

    /// Queues an ephemeral frame for the current connection; a connection falling behind
    /// drops it rather than being closed. Returns whether it was queued.
    fn deliver_ephemeral(&self, frame: Outgoing, metrics: &Metrics) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|conn| conn.queue_ephemeral(frame, metrics))
    }
}

impl<P: Protocol> SessionCore<P> {
    pub(crate) fn new(id: SessionId, shared: Arc<Shared>, props: &serde_json::Value) -> Arc<Self> {
        let limits = &shared.limits;
        let gate = shared.saver.as_ref().map(|_| Gate::new(1, props));
        let core = Arc::new_cyclic(|me| Self {
            id,
            me: me.clone(),
            inner: Mutex::new(Inner {
                log: Log::new(limits.log_frames, limits.log_bytes),
                refs: Refs::new(limits.remembered_refs),
                topics: Topics::default(),
                conn: None,
                presence_shown: HashSet::new(),
                presence_stale: HashSet::new(),
                gate,
                claimed_elsewhere: false,
                generation: 0,
                leaving: false,
                ended: false,
            }),
            shared: shared.clone(),
            catch_up: OnceLock::new(),
            protocol: PhantomData,
        });
        shared.pubsub.register(id, core.clone());
        core
    }

    /// A session another process saved in the store, resumed here: its log and the messages
    /// it handled are as the store had them, and its saves go under the new claim.
    pub(crate) fn restore(id: SessionId, shared: Arc<Shared>, claimed: Claimed) -> Arc<Self> {
        let core = Self::new(id, shared, &claimed.props);
        {
            let mut inner = core.lock();
            inner.log.restore(claimed.last_seq, claimed.frames);
            for reference in claimed.refs {
                inner.refs.insert(reference);
            }
            let mut gate = Gate::new(claimed.epoch, &claimed.props);
            gate.client = claimed.client;
            inner.gate = Some(gate);
        }
        core
    }

    /// The id the client gave itself, kept with the session in the store.
    pub(crate) fn set_client(&self, client: Option<Arc<str>>) {
        if let Some(gate) = &mut self.lock().gate {
            gate.client = client;
        }
    }

    /// Whether another process took the session over: it is not to be resumed here.
    pub(crate) fn claimed_elsewhere(&self) -> bool {
        self.lock().claimed_elsewhere
    }

    /// The claim this process holds the session under, with a store.
    pub(crate) fn epoch(&self) -> Option<u64> {
        self.lock().gate.as_ref().map(Gate::epoch)
    }

    /// Records a change the store must have before the items after it go, and hands the
    /// session to the saver if it is not queued there.
    fn record(&self, inner: &mut Inner, change: impl FnOnce(&mut Gate) -> bool) {
        if let Some(gate) = &mut inner.gate
            && change(gate)
        {
            self.schedule();
        }
    }

    fn schedule(&self) {
        if let Some(saver) = &self.shared.saver {
            let me: Weak<dyn Saving> = self.me.clone();
            saver.schedule(me);
        }
    }

    /// The session ends here: unless another process has it, it goes from the store too.
    fn forget(&self, inner: &Inner) {
        if let (Some(gate), Some(saver), false) =
            (&inner.gate, &self.shared.saver, inner.claimed_elsewhere)
        {
            saver.forget(self.id, gate.epoch());
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent before anything that can panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Puts `conn` in front of the session, replacing (and closing) any earlier connection.
    /// Sends `welcome` when asked, then the frames after `after`, or `reset` when they are no
    /// longer all in the log.
    /// Returns how the resume went, and whether a live connection was displaced (its
    /// `disconnected` hook is then due).
    pub(crate) fn attach(&self, conn: Conn, after: Option<Seq>, welcome: bool) -> (Resumed, bool) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.leaving = false;
        // A refresh queued for the old connection goes with it; the new one is shown the
        // lists afresh (see `show_presence_again`).
        inner.presence_stale.clear();
        if let Some(gate) = &mut inner.gate {
            gate.drop_held();
        }
        let codec = conn.codec;
        let displaced = inner.conn.replace(conn).is_some_and(|old| {
            old.displace();
            old.live
        });
        if welcome {
            let frame = ServerFrame::<()>::Welcome {
                session: self.id,
                seq: inner.log.last_seq(),
                resumed: after.is_some(),
                protocol: P::NAME.to_owned(),
                version: P::version().to_owned(),
                codec,
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

    /// The number of the session's last sequenced frame.
    pub(crate) fn last_seq(&self) -> Seq {
        self.lock().log.last_seq()
    }

    /// Sends `reset`: the client's state derives from frames this session cannot replay.
    pub(crate) fn reset(&self) {
        self.send_reset(&mut self.lock());
    }

    fn send_reset(&self, inner: &mut Inner) {
        let frame = ServerFrame::<()>::Reset {
            seq: inner.log.last_seq(),
            topic: None,
            id: None,
        };
        self.deliver_encoded(inner, &frame);
        Metrics::bump(&self.metrics().sessions_reset);
    }

    /// Sends the logged frames after `after`, or `reset` if some of them are gone.
    pub(crate) fn replay_after(&self, after: Seq) -> Resumed {
        self.replay(&mut self.lock(), after)
    }

    fn replay(&self, inner: &mut Inner, after: Seq) -> Resumed {
        match inner.log.since(after) {
            Since::Held(missed) => {
                if !missed.is_empty() {
                    // Past the queue's bound (the `welcome` before it may still be queued): a
                    // replay is bounded by the log, and the connection is new.
                    inner.deliver_over(Item::Replay(missed, None), self.metrics());
                }
                Resumed::Exactly
            }
            Since::Gone => {
                self.send_reset(inner);
                Resumed::Reset
            }
        }
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

    /// The client says it is leaving. Returns the generation at which the session may
    /// expire now when no connection is attached (the goodbye came after its connection
    /// went); otherwise the attached connection's end is taken as a leave.
    pub(crate) fn goodbye(&self) -> Option<u64> {
        let mut inner = self.lock();
        if inner.ended {
            return None;
        }
        inner.leaving = true;
        inner.conn.is_none().then_some(inner.generation)
    }

    /// Whether the client said it is leaving since its last connection attached.
    pub(crate) fn leaving(&self) -> bool {
        self.lock().leaving
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
        inner.release();
        self.forget(&inner);
        drop(inner);
        self.shared.pubsub.unregister(self.id);
        self.shared.pubsub.untrack_all(self.id);
        true
    }

    /// Ends the session now (a fresh session abandoned by a resume, a mux component left).
    pub(crate) fn end(&self) {
        let mut inner = self.lock();
        inner.ended = true;
        if let Some(conn) = inner.conn.take() {
            conn.displace();
        }
        inner.release();
        self.forget(&inner);
        drop(inner);
        self.shared.pubsub.unregister(self.id);
        self.shared.pubsub.untrack_all(self.id);
    }

    /// Shows the client, once more, the presence of every topic it is subscribed to (it
    /// reconnected: it missed whatever changed meanwhile).
    pub(crate) fn show_presence_again(&self) {
        let topics: Vec<(String, bool)> = {
            let inner = self.lock();
            inner
                .topics
                .names()
                .map(|t| (t.clone(), inner.presence_shown.contains(t)))
                .collect()
        };
        for (topic, shown) in topics {
            self.shared.pubsub.show_presence(&topic, self, shown);
        }
    }

    /// Whether the client message `reference` was already handled in this session.
    pub(crate) fn already_handled(&self, reference: Ref) -> bool {
        self.lock().refs.contains(reference)
    }

    /// Acknowledges `reference` again (a resend of a message already handled).
    pub(crate) fn acknowledge(&self, reference: Ref) {
        self.lock()
            .deliver(Item::Frame(Outgoing::ack(reference), None), self.metrics());
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
        self.lock().deliver(Item::Close(stop), self.metrics());
    }

    /// Takes the client's topic cursors (see [`Topics::follow`]); returns the catch-ups due.
    pub(crate) fn follow_topics(&self, cursors: Option<Cursors>, resumed: bool) -> Vec<TopicSync> {
        let max = self.shared.limits.max_topics;
        self.lock().topics.follow(cursors, resumed, max)
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
        Metrics::bump(&self.metrics().sessions_reset);
    }

    /// Sends what the client missed of `topic` after `after`, then lets its messages flow.
    pub(crate) fn topic_replayed(&self, topic: &str, after: Seq, missed: Vec<Outgoing>) {
        let last = after + missed.len() as Seq;
        let mut inner = self.lock();
        if !missed.is_empty() {
            inner.deliver_over(Item::Replay(missed, None), self.metrics());
        }
        self.go_live(&mut inner, topic, Some(last));
    }

    /// The catch-up of `topic` is done (the client holds it up to `last`, if known): sends
    /// the messages that waited meanwhile, and lets the next ones flow.
    pub(crate) fn topic_live(&self, topic: &str, last: Option<Seq>) {
        self.go_live(&mut self.lock(), topic, last);
    }

    fn go_live(&self, inner: &mut Inner, topic: &str, last: Option<Seq>) {
        let waited = inner.topics.live(topic, last);
        if !waited.is_empty() {
            // One queue item, past the bound: a burst that waited never overflows the queue.
            inner.deliver_over(Item::Replay(waited, None), self.metrics());
        }
    }

    /// Sets what runs a topic's catch-up (see [`catch_up`](Self::catch_up)).
    pub(crate) fn on_behind(&self, catch_up: CatchUp) {
        let _ = self.catch_up.set(catch_up);
    }

    /// Starts catching up `topic`, which fell behind: returns the catch-up due, if it is
    /// still behind (a resume may have caught it up since).
    pub(crate) fn catch_up(&self, topic: &str) -> Option<TopicSync> {
        self.lock().topics.catch_up(topic)
    }

    /// Carries out a handler's effects, in order, then acknowledges `ack` (the client message
    /// they answer, which sequenced replies carry). The session is locked once for the whole
    /// run, and let go only around pub/sub calls, which may deliver back to this session.
    /// Returns the catch-ups due for topics it subscribed to.
    pub(crate) fn apply(&self, effects: &mut Vec<Effect<P>>, ack: Option<Ref>) -> Vec<TopicSync> {
        let mut syncs = Vec::new();
        let mut held: Option<MutexGuard<'_, Inner>> = None;
        for effect in effects.drain(..) {
            match effect {
                Effect::Send(msg) => {
                    let inner = held.get_or_insert_with(|| self.lock());
                    self.sequenced(inner, &msg, ack);
                }
                Effect::Push(msg) => {
                    let frame = ServerFrame::Push {
                        payload: &msg,
                        topic: None,
                        id: None,
                    };
                    if let Some(out) = self.encode(&frame) {
                        held.get_or_insert_with(|| self.lock())
                            .deliver_ephemeral(out, self.metrics());
                    }
                }
                Effect::Track { topic, key, meta } => {
                    held = None;
                    self.shared.pubsub.track(self.id, &topic, &key, meta);
                }
                Effect::Untrack { topic, key } => {
                    held = None;
                    self.shared.pubsub.untrack(self.id, &topic, &key);
                }
                Effect::Close => held
                    .get_or_insert_with(|| self.lock())
                    .deliver(Item::Close(Stop::CLOSED_BY_SERVER), self.metrics()),
                Effect::Subscribe(topic) => {
                    let inner = held.get_or_insert_with(|| self.lock());
                    match inner
                        .topics
                        .subscribe(&topic, self.shared.limits.max_topics)
                    {
                        Ok(Some(sync)) => {
                            held = None;
                            self.shared.pubsub.subscribe(self.id, &topic);
                            self.shared.pubsub.show_presence(&topic, self, false);
                            syncs.push(sync);
                        }
                        Ok(None) => {}
                        Err(full) => {
                            let frame = ServerFrame::<()>::error(
                                ErrorCode::TooLarge,
                                format!(
                                    "a session may subscribe to {} topics; not subscribed to `{topic}`",
                                    full.max
                                ),
                            );
                            self.deliver_encoded(inner, &frame);
                            tracing::warn!(session = %self.id, %topic, "topic limit reached");
                        }
                    }
                }
                Effect::Unsubscribe(topic) => {
                    let inner = held.get_or_insert_with(|| self.lock());
                    inner.topics.unsubscribe(&topic);
                    inner.presence_shown.remove(&topic);
                    inner.presence_stale.remove(&topic);
                    held = None;
                    self.shared.pubsub.unsubscribe(self.id, &topic);
                }
                Effect::Publish { topic, msg } => {
                    held = None;
                    self.publish(&topic, &msg);
                }
                Effect::Broadcast {
                    topic,
                    msg,
                    include_self,
                } => {
                    held = None;
                    self.broadcast(&topic, &msg, include_self);
                }
            }
        }
        if let Some(reference) = ack {
            let inner = held.get_or_insert_with(|| self.lock());
            inner.refs.insert(reference);
            self.record(inner, |gate| gate.handled(reference));
            let ack = match inner.conn.as_ref().map(|conn| conn.codec) {
                Some(Codec::MsgPack) => Outgoing::ack_packed(reference),
                _ => Outgoing::ack(reference),
            };
            inner.deliver(Item::Frame(ack, None), self.metrics());
        }
        syncs
    }

    fn sequenced(&self, inner: &mut Inner, msg: &P::Server, reference: Option<Ref>) {
        let seq = inner.log.next_seq();
        // A MessagePack connection's reply is encoded once, as MessagePack, and the log keeps
        // that form: it is written as JSON only if the session resumes on a JSON connection.
        let encoded = match inner.conn.as_ref().map(|conn| conn.codec) {
            Some(Codec::MsgPack) => Outgoing::msg_packed(seq, msg, reference),
            _ => Outgoing::msg(seq, msg, reference),
        };
        let out = match encoded {
            Ok(out) => out,
            Err(err) => {
                tracing::error!(session = %self.id, %err, "could not encode a server message");
                let error = ServerFrame::<()>::Error {
                    code: ErrorCode::HandlerFailed,
                    message: "a server message could not be encoded".into(),
                    reference,
                    id: None,
                };
                self.deliver_encoded(inner, &error);
                return;
            }
        };
        inner.log.push(out.clone());
        self.record(inner, |gate| gate.frame(&out));
        inner.deliver(Item::Frame(out, None), self.metrics());
    }

    fn publish(&self, topic: &str, msg: &P::Server) {
        let publication = match Publication::encode(topic, msg) {
            Ok(publication) => publication,
            Err(err) => {
                tracing::error!(session = %self.id, %err, "could not encode a topic message");
                return;
            }
        };
        Metrics::bump(&self.metrics().broadcasts);
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
        Metrics::bump(&self.metrics().broadcasts);
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
            inner.deliver(Item::Frame(out, None), self.metrics());
        }
    }
}

impl<P: Protocol> Member for SessionCore<P> {
    /// A broadcast is ephemeral: a connection falling behind drops it and stays open.
    fn deliver(&self, frame: Outgoing) {
        self.lock().deliver_ephemeral(frame, self.metrics());
    }

    fn deliver_presence(&self, topic: &str, frames: &mut dyn PresenceFrames) {
        let mut inner = self.lock();
        if !inner.presence_shown.contains(topic) {
            inner.presence_shown.insert(topic.to_owned());
        }
        let Some(mode) = inner.conn.as_ref().map(|c| c.presence_mode(topic)) else {
            // Nobody to tell now: the next connection is shown the whole list.
            return;
        };
        if inner.presence_stale.contains(topic) {
            // The refresh queued will carry this too.
            return;
        }
        let frame = match (mode, frames.diff()) {
            (Mode::None, _) => return,
            (Mode::Count, _) => frames.count(),
            (_, Some(diff)) => diff.clone(),
            (_, None) => frames.state(),
        };
        if inner.deliver_ephemeral(frame, self.metrics()) {
            return;
        }
        // Falling behind: when the connection gets to it, it is sent the whole list (or the
        // count) as it is then, which supersedes every frame it missed.
        inner.presence_stale.insert(topic.to_owned());
        let (me, topic) = (self.me.clone(), topic.to_owned());
        let refresh = Refresh::new(move || {
            let core = me.upgrade()?;
            let shared = core.shared.clone();
            if mode == Mode::Count {
                // Unmarked first: a change counted after this is sent after this count.
                core.lock().presence_stale.remove(&topic);
                return Some(shared.pubsub.presence_count(&topic));
            }
            Some(shared.pubsub.presence_state(&topic, &mut || {
                core.lock().presence_stale.remove(&topic);
            }))
        });
        if let Some(conn) = &inner.conn {
            conn.queue_refresh(refresh);
        }
    }

    fn deliver_topic(&self, topic: &str, frame: &TopicFrame) {
        let mut inner = self.lock();
        let Some(out) = inner.topics.deliver(topic, frame) else {
            return;
        };
        let item = Item::Frame(out, None);
        let limit = self.shared.limits.outbound_queue;
        let item = match &mut inner.gate {
            Some(gate) => match gate.hold_topic(item, (topic, frame.seq()), limit) {
                Ok(Some(item)) => item,
                Ok(None) => return,
                Err(_) => return self.fall_behind(&mut inner, topic, frame.seq()),
            },
            None => item,
        };
        let refused = inner
            .conn
            .as_ref()
            .is_some_and(|conn| conn.try_queue(item, self.metrics()).is_err());
        if refused {
            self.fall_behind(&mut inner, topic, frame.seq());
        }
    }
}

impl<P: Protocol> SessionCore<P> {
    /// The connection cannot take message `seq` of `topic` now (a burst: a backlog after an
    /// outage, a room that shouts), nor can the gate hold more. A sequenced topic is sent
    /// from its log once the connection has drained, rather than closing a client that
    /// reads; what has no number to catch up from (a push) closes it as before.
    fn fall_behind(&self, inner: &mut Inner, topic: &str, seq: Seq) {
        let metrics = self.metrics();
        // What the gate still holds of the topic is dropped: the catch-up sends it.
        let held = inner.gate.as_mut().and_then(|gate| gate.drop_topic(topic));
        let first = held.map_or(seq, |held| held.min(seq));
        let Some(conn) = &inner.conn else {
            return;
        };
        match self.catch_up.get() {
            Some(catch_up) if inner.topics.fall_behind(topic, first) => {
                Metrics::bump(&metrics.topic_catch_ups);
                catch_up(topic.to_owned(), Box::pin(conn.drained()));
            }
            _ => conn.slow_consumer(metrics),
        }
    }
}

impl<P: Protocol> Saving for SessionCore<P> {
    fn unsaved(&self) -> Option<Save> {
        let mut inner = self.lock();
        let keep = inner.log.len();
        let gate = inner.gate.as_mut()?;
        let unsaved = gate.take()?;
        Some(Save {
            id: self.id,
            unsaved,
            keep,
            remembered: self.shared.limits.remembered_refs,
            client: gate.client.clone(),
            props: gate.props.clone(),
        })
    }

    fn saved(&self, upto: u64, outcome: Outcome) {
        let mut inner = self.lock();
        let metrics = self.metrics();
        match outcome {
            Outcome::Saved => {}
            Outcome::Failed => Metrics::bump(&metrics.session_saves_failed),
            Outcome::Claimed => {
                // What it held was never saved, and the client resumed elsewhere from what
                // was: it goes, and so does this connection (the client has left it).
                tracing::debug!(session = %self.id, "session claimed by another process");
                inner.gate = None;
                inner.claimed_elsewhere = true;
                if let Some(conn) = &inner.conn {
                    conn.queue(Item::Close(Stop::REPLACED), metrics);
                }
                return;
            }
        }
        let Some(gate) = &mut inner.gate else {
            return;
        };
        let (ready, more) = gate.saved(upto);
        for (item, mark) in ready {
            let Some(conn) = &inner.conn else {
                break;
            };
            let Some(mark) = mark else {
                match item {
                    // A catch-up, bounded by its topic's log.
                    Item::Replay(..) => conn.queue_over(item, metrics),
                    item => {
                        conn.queue(item, metrics);
                    }
                }
                continue;
            };
            if inner.topics.is_behind(&mark.topic) {
                // Fell behind since: its catch-up sends this.
                continue;
            }
            if conn.try_queue(item, metrics).is_err() {
                self.fall_behind(&mut inner, &mark.topic, mark.seq);
            }
        }
        drop(inner);
        if more {
            self.schedule();
        }
    }
}

impl<P: Protocol> Sink<P> for SessionCore<P> {
    fn effect(&self, effect: Effect<P>) -> Result<(), SessionGone> {
        if self.lock().ended {
            return Err(SessionGone);
        }
        let mut effects = vec![effect];
        self.shared.metrics.sent(&effects);
        // A sender cannot subscribe, so nothing is left to catch up.
        let _ = self.apply(&mut effects, None);
        Ok(())
    }
}
