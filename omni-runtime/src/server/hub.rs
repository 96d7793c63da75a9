//! The sessions of one endpoint and their handlers: opening and resuming sessions, running
//! handler methods and hooks, and ending sessions whose grace period ran out.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use tracing::Instrument;

use super::conn::{Conn, Stop};
use super::metrics::Metrics;
use super::session::{Resumed, SessionCore, Shared, TopicSync};
use crate::pubsub::Replay;
use crate::wire::hello;
use crate::{ClientFrame, Context, DecodeError, Dispatch, ErrorCode, Protocol, Ref, Sender, Seq};
use crate::{Cursors, HandlerResult, SessionId};

/// Makes a fresh handler for each session (and again after a handler fails), from the props
/// of the session (a mux component's verified token props; `null` on a plain endpoint).
pub(crate) type Factory<H> = Box<dyn Fn(&serde_json::Value) -> H + Send + Sync>;

/// A session: its protocol state and its handler.
pub(crate) struct Session<P: Protocol, H> {
    pub(crate) core: Arc<SessionCore<P>>,
    props: serde_json::Value,
    state: tokio::sync::Mutex<State<P, H>>,
}

struct State<P: Protocol, H> {
    handler: H,
    cx: Context<P>,
    /// Whether this handler's `connected` hook ran and its `disconnected` has not: the two
    /// come in pairs whatever happens (resume, displacement, reset, a panic, leave).
    connected: bool,
}

impl<P: Protocol, H> Session<P, H> {
    /// The extensions of the request that is the session's connection now.
    pub(crate) async fn set_extensions(&self, extensions: axum::http::Extensions) {
        self.state.lock().await.cx.set_extensions(extensions);
    }

    pub(crate) fn id(&self) -> SessionId {
        self.core.id
    }
}

/// A connection attached to a session of a hub: what a transport holds to hand the session
/// client frames and, at the end, to say the connection is gone.
pub(crate) struct Attached<P: Protocol, H> {
    hub: Arc<Hub<P, H>>,
    session: Arc<Session<P, H>>,
    conn_id: u64,
}

impl<P, H> Attached<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    /// Opens `conn` onto a session: see [`Hub::open`].
    pub(crate) async fn open(
        hub: Arc<Hub<P, H>>,
        resume: Option<(SessionId, Seq)>,
        conn: Conn,
        extensions: axum::http::Extensions,
        props: serde_json::Value,
        topics: Option<Cursors>,
    ) -> Self {
        let conn_id = conn.id;
        let session = hub.open(resume, conn, extensions, props, topics).await;
        Self {
            hub,
            session,
            conn_id,
        }
    }

    /// Connection `conn_id` (already attached, or 0 for frames that arrive outside any
    /// connection of the session: an SSE stream's uplink) on `session`.
    pub(crate) fn new(hub: Arc<Hub<P, H>>, session: Arc<Session<P, H>>, conn_id: u64) -> Self {
        Self {
            hub,
            session,
            conn_id,
        }
    }

    pub(crate) fn session(&self) -> &Arc<Session<P, H>> {
        &self.session
    }

    /// Handles one client frame (or its decode error). A `hello` that resumes another
    /// session moves the connection onto it: returns true then.
    pub(crate) async fn handle(
        &mut self,
        frame: Result<ClientFrame<P::Client>, DecodeError>,
    ) -> bool {
        match self.hub.handle(&self.session, self.conn_id, frame).await {
            Flow::Continue => false,
            Flow::Switch(to) => {
                self.session = to;
                true
            }
        }
    }

    /// The connection has gone: see [`Hub::closed`].
    pub(crate) async fn closed(self) {
        self.hub.closed(&self.session, self.conn_id, false).await;
    }

    /// The client closed the connection saying it is leaving: the session ends after the
    /// linger rather than the grace period (see [`Hub::closed`]).
    pub(crate) async fn closed_leaving(self) {
        self.hub.closed(&self.session, self.conn_id, true).await;
    }

    /// Mux: the client left the component for good: see [`Hub::leave`].
    pub(crate) async fn leave(self) {
        self.hub.leave(&self.session, self.conn_id).await;
    }
}

/// Where a connection goes after a frame.
enum Flow<P: Protocol, H> {
    Continue,
    /// A `hello` resumed another session onto this connection.
    Switch(Arc<Session<P, H>>),
}

/// What a `hello` asks to resume.
struct Resume {
    session: Option<SessionId>,
    after: Option<Seq>,
    topics: Option<Cursors>,
}

/// Which hook to run.
#[derive(Clone)]
enum Hook {
    Connected,
    Disconnected,
    Snapshot(String),
}

/// Catch-ups one handler call may cause in a row (a snapshot may subscribe to more topics):
/// bounded, so that a handler subscribing in every snapshot cannot keep a session busy.
const MAX_SYNCS: usize = 256;

pub(crate) struct Hub<P: Protocol, H> {
    pub(crate) shared: Arc<Shared>,
    factory: Factory<H>,
    sessions: Mutex<HashMap<SessionId, Arc<Session<P, H>>>>,
}

impl<P, H> Hub<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    pub(crate) fn new(shared: Arc<Shared>, factory: Factory<H>) -> Self {
        Self {
            shared,
            factory,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session<P, H>>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, id: SessionId) -> Option<Arc<Session<P, H>>> {
        self.sessions().get(&id).cloned()
    }

    pub(crate) fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// A new session, registered but not yet attached.
    pub(crate) fn create(
        &self,
        extensions: axum::http::Extensions,
        props: serde_json::Value,
    ) -> Arc<Session<P, H>> {
        let id = SessionId::from_u128(rand::random());
        let core = SessionCore::<P>::new(id, self.shared.clone());
        let sender = Sender::new(core.clone());
        let mut cx = Context::with_sender(id, sender);
        cx.set_extensions(extensions);
        let session = Arc::new(Session {
            core,
            state: tokio::sync::Mutex::new(State {
                handler: (self.factory)(&props),
                cx,
                connected: false,
            }),
            props,
        });
        self.sessions().insert(id, session.clone());
        Metrics::bump(&self.shared.metrics.sessions_created);
        session
    }

    /// Opens a connection onto a session: the one `resume` names if it is still held
    /// (replaying what the client missed), otherwise a new one. A live connection runs the
    /// `connected` hook.
    async fn open(
        &self,
        resume: Option<(SessionId, Seq)>,
        conn: Conn,
        extensions: axum::http::Extensions,
        props: serde_json::Value,
        topics: Option<Cursors>,
    ) -> Arc<Session<P, H>> {
        let live = conn.live;
        if let Some((id, after)) = resume
            && let Some(session) = self.get(id)
        {
            self.resume_onto(&session, conn, after, extensions, topics)
                .await;
            return session;
        }
        let session = self.create(extensions, props);
        session.core.attach(conn, None, true);
        // A new session has no subscriptions yet: its `connected` hook's subscribe uses them.
        let _ = session.core.follow_topics(topics, false);
        if let Some((_, after)) = resume {
            // The client held state from a session that is gone: tell it to drop it.
            tracing::debug!(session = %session.id(), after, "resume of an unknown session");
            session.core.reset();
        }
        if live {
            self.connect(&session).await;
        }
        session
    }

    async fn resume_onto(
        &self,
        session: &Arc<Session<P, H>>,
        conn: Conn,
        after: Seq,
        extensions: axum::http::Extensions,
        topics: Option<Cursors>,
    ) {
        let live = conn.live;
        session.state.lock().await.cx.set_extensions(extensions);
        let (resumed, displaced) = session.core.attach(conn, Some(after), true);
        self.follow(session, topics, true).await;
        if displaced {
            // The client came back before its old connection was noticed gone.
            self.disconnect(session).await;
        }
        match resumed {
            Resumed::Exactly => Metrics::bump(&self.shared.metrics.sessions_resumed),
            Resumed::Reset => self.restart(session).await,
        }
        // What changed in its topics' presence while it was away.
        session.core.show_presence_again();
        if live {
            self.connect(session).await;
        }
    }

    /// Handles one decoded client frame (or its decode error) on `session`, whose current
    /// connection is `conn_id`.
    async fn handle(
        &self,
        session: &Arc<Session<P, H>>,
        conn_id: u64,
        frame: Result<ClientFrame<P::Client>, DecodeError>,
    ) -> Flow<P, H> {
        Metrics::bump(&self.shared.metrics.frames_in);
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => {
                Metrics::bump(&self.shared.metrics.decode_errors);
                tracing::debug!(session = %session.id(), %err, "undecodable client frame");
                session
                    .core
                    .error(err.code(), err.to_string(), err.reference());
                return Flow::Continue;
            }
        };
        match frame {
            ClientFrame::Msg {
                payload, reference, ..
            } => {
                let span = tracing::debug_span!("omni.msg", session = %session.id(), reference);
                self.dispatch(session, payload, reference)
                    .instrument(span)
                    .await;
                Flow::Continue
            }
            ClientFrame::Hello {
                protocol,
                version,
                session: resume,
                after,
                topics,
            } => {
                let resume = Resume {
                    session: resume,
                    after,
                    topics,
                };
                // Rare, and its future is large (a resume runs hooks and catch-ups): boxed, so
                // every connection's future stays small.
                Box::pin(self.hello(session, conn_id, protocol, version, resume)).await
            }
            ClientFrame::Join { .. } | ClientFrame::Leave { .. } => {
                session.core.error(
                    ErrorCode::BadFrame,
                    "`join` and `leave` are served on the mux endpoint".into(),
                    None,
                );
                Flow::Continue
            }
        }
    }

    async fn hello(
        &self,
        session: &Arc<Session<P, H>>,
        conn_id: u64,
        protocol: Option<String>,
        version: Option<String>,
        resume: Resume,
    ) -> Flow<P, H> {
        let checked = hello::check(
            P::NAME,
            P::version(),
            protocol.as_deref(),
            version.as_deref(),
        );
        if let Err(message) = checked {
            session
                .core
                .error(ErrorCode::VersionMismatch, message, None);
            session.core.close(Stop::VERSION_MISMATCH);
            return Flow::Continue;
        }
        let Resume {
            session: target,
            after,
            topics,
        } = resume;
        let own = target.is_none_or(|id| id == session.id());
        let last = session.core.last_seq();
        let flow = match (target, after) {
            (None, None) => Flow::Continue,
            // A point this connection's own session never reached: the client is confused,
            // not behind. Nothing attached or went, so its handler is not replaced (and no
            // hook runs); the client is told instead.
            (_, Some(after)) if own && after > last => {
                session.core.error(
                    ErrorCode::BadFrame,
                    format!("`after` {after} is past this session's last sequence number {last}"),
                    None,
                );
                Flow::Continue
            }
            // `after` alone, or naming this very session, replays on it (the HTTP transport
            // names its session in a header).
            (None, Some(after)) => self.replay(session, after).await,
            (Some(id), after) if id == session.id() => {
                self.replay(session, after.unwrap_or(0)).await
            }
            (Some(id), after) => {
                return self
                    .move_to(session, conn_id, id, after.unwrap_or(0), topics)
                    .await;
            }
        };
        self.follow(session, topics, false).await;
        flow
    }

    async fn replay(&self, session: &Arc<Session<P, H>>, after: Seq) -> Flow<P, H> {
        if session.core.replay_after(after) == Resumed::Reset {
            self.restart(session).await;
        }
        Flow::Continue
    }

    /// Moves connection `conn_id` from `session` (the fresh one it got on connect, which ends
    /// unused) to the session `target` it resumes.
    async fn move_to(
        &self,
        session: &Arc<Session<P, H>>,
        conn_id: u64,
        target: SessionId,
        after: Seq,
        topics: Option<Cursors>,
    ) -> Flow<P, H> {
        let Some(target) = self.get(target) else {
            // Nothing to resume: the client keeps this session, and drops what it derived
            // from the old one (its topics may still resume).
            session.core.reset();
            self.follow(session, topics, false).await;
            return Flow::Continue;
        };
        let Some((conn, _)) = session.core.detach(conn_id) else {
            return Flow::Continue;
        };
        if conn.live {
            self.disconnect(session).await;
        }
        self.sessions().remove(&session.id());
        session.core.end();
        let extensions = session.state.lock().await.cx.extensions().clone();
        self.resume_onto(&target, conn, after, extensions, topics)
            .await;
        Flow::Switch(target)
    }

    /// Runs the handler method for one client message.
    async fn dispatch(
        &self,
        session: &Arc<Session<P, H>>,
        payload: P::Client,
        reference: Option<Ref>,
    ) {
        if let Some(r) = reference
            && session.core.already_handled(r)
        {
            // A resend of a message already handled (the client missed the ack).
            session.core.acknowledge(r);
            return;
        }
        let mut state = session.state.lock().await;
        let State { handler, cx, .. } = &mut *state;
        let outcome = AssertUnwindSafe(P::dispatch(handler, cx, payload))
            .catch_unwind()
            .await;
        let mut effects = cx.take_effects();
        match outcome {
            // The effects, then the ack, then the catch-ups of the topics it subscribed to.
            Ok(Ok(())) => {
                let syncs = session.core.apply(&mut effects, reference);
                state.cx.recycle(effects);
                if !syncs.is_empty() {
                    // Only after a subscribe; boxed like every rare branch of a message.
                    Box::pin(self.sync(session, &mut state, syncs)).await;
                }
            }
            // The handler refused the message: the error answers it, what the method did
            // before refusing is dropped, and the handler keeps its state.
            Ok(Err(err)) => {
                Metrics::bump(&self.shared.metrics.handler_failures);
                tracing::debug!(session = %session.id(), %err, "handler refused a message");
                state.cx.recycle(effects);
                let message = err.to_string();
                session.core.error(ErrorCode::Rejected, message, reference);
            }
            Err(panic) => {
                drop(state);
                Box::pin(self.fail(session, panic_message(&*panic), reference)).await;
            }
        }
    }

    /// Runs the `connected` hook, unless the handler is connected already. A failing hook is
    /// reported, not retried.
    async fn connect(&self, session: &Arc<Session<P, H>>) {
        let mut state = session.state.lock().await;
        if state.connected {
            return;
        }
        state.connected = true;
        let syncs = self.run_hook(session, &mut state, Hook::Connected).await;
        self.sync(session, &mut state, syncs).await;
    }

    /// Runs the `disconnected` hook of a connected handler: the one answer to its
    /// `connected`.
    async fn disconnect(&self, session: &Arc<Session<P, H>>) {
        let mut state = session.state.lock().await;
        self.disconnect_locked(session, &mut state).await;
    }

    async fn disconnect_locked(&self, session: &Arc<Session<P, H>>, state: &mut State<P, H>) {
        if !state.connected {
            return;
        }
        state.connected = false;
        let syncs = self.run_hook(session, state, Hook::Disconnected).await;
        self.sync(session, state, syncs).await;
    }

    /// Runs a hook with the session's state already locked; returns the catch-ups its
    /// effects call for.
    async fn run_hook(
        &self,
        session: &Arc<Session<P, H>>,
        state: &mut State<P, H>,
        hook: Hook,
    ) -> Vec<TopicSync> {
        let State { handler, cx, .. } = state;
        let future = match hook {
            Hook::Connected => P::connected(handler, cx).boxed(),
            Hook::Disconnected => P::disconnected(handler, cx).boxed(),
            Hook::Snapshot(topic) => P::snapshot(handler, cx, topic).boxed(),
        };
        let outcome = AssertUnwindSafe(future).catch_unwind().await;
        let mut effects = cx.take_effects();
        match flatten(outcome) {
            Ok(()) => session.core.apply(&mut effects, None),
            Err(message) => {
                Metrics::bump(&self.shared.metrics.handler_failures);
                tracing::warn!(session = %session.id(), %message, "handler hook failed");
                // The fresh handler has not been connected: no `disconnected` is due to it.
                state.connected = false;
                state.handler = (self.factory)(&session.props);
                session.core.error(ErrorCode::HandlerFailed, message, None);
                Vec::new()
            }
        }
    }

    /// Takes the client's topic cursors and catches it up on the topics the session is
    /// already subscribed to (see [`SessionCore::follow_topics`]).
    async fn follow(&self, session: &Arc<Session<P, H>>, topics: Option<Cursors>, resumed: bool) {
        let syncs = session.core.follow_topics(topics, resumed);
        if !syncs.is_empty() {
            let mut state = session.state.lock().await;
            self.sync(session, &mut state, syncs).await;
        }
    }

    /// Catches the client up on topics: replays what it missed from each topic's log, or,
    /// when it holds nothing the log can continue, sends the handler's snapshot (after a
    /// `reset` for the topic if its resume point is gone). Live messages wait meanwhile.
    async fn sync(
        &self,
        session: &Arc<Session<P, H>>,
        state: &mut State<P, H>,
        syncs: Vec<TopicSync>,
    ) {
        let mut due: std::collections::VecDeque<TopicSync> = syncs.into();
        let mut done = 0;
        while let Some(sync) = due.pop_front() {
            done += 1;
            if done > MAX_SYNCS {
                tracing::warn!(session = %session.id(), "too many topic catch-ups in a row");
                // Their messages must not wait forever: they flow without a catch-up.
                for sync in std::iter::once(sync).chain(due) {
                    session.core.topic_live(sync.topic(), None);
                }
                break;
            }
            let (topic, head) = match sync {
                TopicSync::Replay { topic, after } => {
                    match self.shared.pubsub.replay(&topic, after).await {
                        Replay::Held(missed) => {
                            session.core.topic_replayed(&topic, after, missed);
                            continue;
                        }
                        Replay::Gone { head } => {
                            session.core.topic_reset(&topic, head);
                            (topic, Some(head))
                        }
                    }
                }
                TopicSync::Snapshot(topic) => (topic, None),
            };
            let more = self
                .run_hook(session, state, Hook::Snapshot(topic.clone()))
                .await;
            session.core.topic_live(&topic, head);
            due.extend(more);
        }
    }

    /// Reports a handler method that panicked and gives the session a fresh handler, which
    /// is connected again so it can restore its subscriptions (the old one is disconnected
    /// first, so whatever it counted is given back).
    async fn fail(&self, session: &Arc<Session<P, H>>, message: String, reference: Option<Ref>) {
        Metrics::bump(&self.shared.metrics.handler_failures);
        tracing::warn!(session = %session.id(), %message, "handler failed; restarting it");
        session
            .core
            .error(ErrorCode::HandlerFailed, message, reference);
        self.restart(session).await;
    }

    /// Replaces the session's handler with a fresh one, and connects it if a live connection
    /// is attached. A connected handler is disconnected first, so whatever it counted on
    /// connect is given back.
    async fn restart(&self, session: &Arc<Session<P, H>>) {
        {
            let mut state = session.state.lock().await;
            self.disconnect_locked(session, &mut state).await;
            state.handler = (self.factory)(&session.props);
            state.cx.take_effects();
        }
        if session.core.has_live_connection() {
            self.connect(session).await;
        }
    }

    /// The connection `conn_id` has gone: runs the `disconnected` hook (live connections) and
    /// starts the grace period after which the session ends; only the linger when the client
    /// said it is leaving (`leaving`: its close frame said so; or a goodbye on the session).
    async fn closed(self: &Arc<Self>, session: &Arc<Session<P, H>>, conn_id: u64, leaving: bool) {
        let Some((conn, generation)) = session.core.detach(conn_id) else {
            return;
        };
        if conn.live {
            self.disconnect(session).await;
        }
        // Read after the detach: a goodbye that comes later finds no connection and starts
        // the linger itself; a connection that attached since has made this timer stale.
        let wait = if leaving || session.core.leaving() {
            self.linger()
        } else {
            self.shared.limits.grace
        };
        self.expire_after(session.id(), generation, wait);
    }

    /// The client of session `id` says it is leaving (a page's goodbye): the session ends the
    /// linger after its connection goes, or after now if it has gone already.
    pub(crate) fn goodbye(self: &Arc<Self>, id: SessionId) {
        let Some(session) = self.get(id) else {
            return;
        };
        if let Some(generation) = session.core.goodbye() {
            self.expire_after(id, generation, self.linger());
        }
    }

    /// How long a session outlives a client that said it is leaving.
    fn linger(&self) -> Duration {
        let limits = &self.shared.limits;
        limits.linger.min(limits.grace)
    }

    /// Ends session `id` after `wait`, unless a connection attached since `generation`.
    fn expire_after(self: &Arc<Self>, id: SessionId, generation: u64, wait: Duration) {
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(hub) = hub.upgrade() {
                hub.expire(id, generation);
            }
        });
    }

    /// Mux: the client left component `conn_id` for good: runs the `disconnected` hook and
    /// ends the session without a grace period.
    async fn leave(&self, session: &Arc<Session<P, H>>, conn_id: u64) {
        if session.core.detach(conn_id).is_none() {
            return;
        }
        self.disconnect(session).await;
        self.sessions().remove(&session.id());
        session.core.end();
    }

    fn expire(&self, id: SessionId, generation: u64) {
        let mut sessions = self.sessions();
        let Some(session) = sessions.get(&id) else {
            return;
        };
        if session.core.expire(generation) {
            sessions.remove(&id);
            Metrics::bump(&self.shared.metrics.sessions_expired);
            tracing::debug!(session = %id, "session expired");
        }
    }
}

/// A handler outcome, with a panic turned into its message.
fn flatten(outcome: Result<HandlerResult, Box<dyn std::any::Any + Send>>) -> Result<(), String> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(panic) => Err(panic_message(&*panic)),
    }
}

/// What a panic said, for the `error` frame.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .map_or_else(
            || "the handler panicked".to_owned(),
            |m| format!("the handler panicked: {m}"),
        )
}

#[cfg(test)]
mod pairing {
    //! Hook pairing as a property, checked after every step against a model of the hub:
    //! whatever a client does, each session's hooks alternate `connected`, `disconnected`,
    //! starting with `connected`; each runs exactly when the model says, on the handler it
    //! says; the hub holds exactly the model's sessions; and a session whose grace period ran
    //! out has had its `disconnected` and is gone.

    use std::collections::{BTreeSet, HashMap};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use proptest::prelude::*;
    use tokio::time::Instant;

    use super::*;
    use crate::protocol::tests_support::{Echo, EchoFromClient, EchoFromServer};
    use crate::server::{Endpoint, Limits};

    const SLOTS: usize = 3;
    const LOG_FRAMES: u64 = 2;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Connected,
        Disconnected,
    }

    /// A hook that ran: on which session, and on which of the handlers made (numbered from 1
    /// in the order the factory made them).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Event {
        session: SessionId,
        handler: u64,
        kind: Kind,
    }

    type Events = Arc<Mutex<Vec<Event>>>;

    /// Only records its hooks: the runtime catches a panicking hook, so every assertion is
    /// made by the test body.
    struct Recorder {
        events: Events,
        number: u64,
    }

    impl Recorder {
        fn record(&self, cx: &Context<Echo>, kind: Kind) {
            self.events.lock().unwrap().push(Event {
                session: cx.session(),
                handler: self.number,
                kind,
            });
        }
    }

    impl Dispatch<Recorder> for Echo {
        async fn dispatch(
            _: &mut Recorder,
            cx: &mut Context<Echo>,
            msg: EchoFromClient,
        ) -> HandlerResult {
            let EchoFromClient::Say(text) = msg;
            match text.as_str() {
                "panic" => panic!("asked to"),
                "fail" => Err("asked to".into()),
                // A sequenced reply: the log decides whether a later resume is exact.
                _ => {
                    cx.send(EchoFromServer::Heard(text));
                    Ok(())
                }
            }
        }

        async fn connected(me: &mut Recorder, cx: &mut Context<Echo>) -> HandlerResult {
            me.record(cx, Kind::Connected);
            Ok(())
        }

        async fn disconnected(me: &mut Recorder, cx: &mut Context<Echo>) -> HandlerResult {
            me.record(cx, Kind::Disconnected);
            Ok(())
        }
    }

    /// A resume point, relative to the last number the resumed session sent.
    #[derive(Debug, Clone, Copy)]
    enum After {
        Zero,
        Last,
        Behind(u64),
        Ahead,
    }

    impl After {
        fn of(self, last: Seq) -> Seq {
            match self {
                After::Zero => 0,
                After::Last => last,
                After::Behind(n) => last.saturating_sub(n),
                After::Ahead => last + 1,
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// Opens a connection in `slot` (closing what was there): a new session, or a resume
        /// of `from`'s session at `after`.
        Open {
            slot: usize,
            from: Option<usize>,
            after: After,
        },
        /// `hello` resuming `from`'s session (its own when `from == slot`, or when `from` is
        /// empty) at `after`.
        Hello {
            slot: usize,
            from: usize,
            after: After,
        },
        Say {
            slot: usize,
            what: &'static str,
        },
        Close {
            slot: usize,
        },
        Leave {
            slot: usize,
        },
        Wait {
            ms: u64,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        let slot = 0..SLOTS;
        let after = prop_oneof![
            Just(After::Zero),
            Just(After::Last),
            (1u64..4).prop_map(After::Behind),
            Just(After::Ahead),
        ];
        prop_oneof![
            (slot.clone(), proptest::option::of(0..SLOTS), after.clone())
                .prop_map(|(slot, from, after)| Step::Open { slot, from, after }),
            (slot.clone(), 0..SLOTS, after).prop_map(|(slot, from, after)| Step::Hello {
                slot,
                from,
                after
            }),
            (
                slot.clone(),
                prop_oneof![Just("hi"), Just("panic"), Just("fail")]
            )
                .prop_map(|(slot, what)| Step::Say { slot, what }),
            slot.clone().prop_map(|slot| Step::Close { slot }),
            slot.prop_map(|slot| Step::Leave { slot }),
            (0u64..80).prop_map(|ms| Step::Wait { ms }),
        ]
    }

    /// What the hub should hold of one session.
    #[derive(Debug)]
    struct Modeled {
        handler: u64,
        connected: bool,
        conn: Option<u64>,
        /// In the hub's registry.
        held: bool,
        /// When it ends if nothing attaches before.
        expires: Option<Instant>,
        last_seq: Seq,
        /// Frames its log keeps.
        logged: u64,
    }

    /// The hub as the docs describe it, run beside the real one.
    struct Model {
        sessions: HashMap<SessionId, Modeled>,
        /// Each slot's session and connection id.
        slots: [Option<(SessionId, u64)>; SLOTS],
        handlers_made: u64,
        grace: Duration,
        /// The hooks due since the last check, in order.
        expected: Vec<Event>,
    }

    impl Model {
        fn session(&mut self, id: SessionId) -> &mut Modeled {
            self.sessions.get_mut(&id).expect("a modeled session")
        }

        fn last_seq(&self, id: SessionId) -> Seq {
            self.sessions[&id].last_seq
        }

        fn hook(&mut self, id: SessionId, kind: Kind) {
            let handler = self.sessions[&id].handler;
            self.expected.push(Event {
                session: id,
                handler,
                kind,
            });
        }

        fn create(&mut self, id: SessionId, conn: u64) {
            self.handlers_made += 1;
            self.sessions.insert(
                id,
                Modeled {
                    handler: self.handlers_made,
                    connected: false,
                    conn: Some(conn),
                    held: true,
                    expires: None,
                    last_seq: 0,
                    logged: 0,
                },
            );
            self.connect(id);
        }

        fn connect(&mut self, id: SessionId) {
            let session = self.session(id);
            if !session.connected {
                session.connected = true;
                self.hook(id, Kind::Connected);
            }
        }

        fn disconnect(&mut self, id: SessionId) {
            let session = self.session(id);
            if session.connected {
                session.connected = false;
                self.hook(id, Kind::Disconnected);
            }
        }

        /// A fresh handler, connected if a connection is attached.
        fn restart(&mut self, id: SessionId) {
            self.disconnect(id);
            self.handlers_made += 1;
            let handler = self.handlers_made;
            let session = self.session(id);
            session.handler = handler;
            if session.conn.is_some() {
                self.connect(id);
            }
        }

        /// Whether the log holds every frame after `after`.
        fn exact(&self, id: SessionId, after: Seq) -> bool {
            let s = &self.sessions[&id];
            after == s.last_seq
                || (after < s.last_seq && s.logged > 0 && s.last_seq - s.logged <= after)
        }

        fn replay(&mut self, id: SessionId, after: Seq) {
            if !self.exact(id, after) {
                self.restart(id);
            }
        }

        fn resume_onto(&mut self, id: SessionId, conn: u64, after: Seq) {
            let exact = self.exact(id, after);
            let session = self.session(id);
            let displaced = session.conn.replace(conn).is_some();
            session.expires = None;
            if displaced {
                self.disconnect(id);
            }
            if !exact {
                self.restart(id);
            }
            self.connect(id);
        }

        /// Takes `conn` off `id` if it is still its connection.
        fn detach(&mut self, id: SessionId, conn: u64) -> bool {
            let session = self.session(id);
            if session.conn == Some(conn) {
                session.conn = None;
                true
            } else {
                false
            }
        }

        fn end(&mut self, id: SessionId) {
            let session = self.session(id);
            session.held = false;
            session.conn = None;
            session.expires = None;
            session.logged = 0;
        }

        fn closed(&mut self, slot: usize, now: Instant) {
            if let Some((id, conn)) = self.slots[slot].take()
                && self.detach(id, conn)
            {
                self.disconnect(id);
                let grace = self.grace;
                self.session(id).expires = Some(now + grace);
            }
        }

        fn leave(&mut self, slot: usize) {
            if let Some((id, conn)) = self.slots[slot].take()
                && self.detach(id, conn)
            {
                self.disconnect(id);
                self.end(id);
            }
        }

        fn say(&mut self, slot: usize, what: &str) {
            let Some((id, _)) = self.slots[slot] else {
                return;
            };
            match what {
                "panic" => self.restart(id),
                "hi" => {
                    let session = self.session(id);
                    session.last_seq += 1;
                    session.logged = (session.logged + 1).min(LOG_FRAMES);
                }
                _ => {}
            }
        }

        /// The `after` a `hello` from `slot` carries, and the session it names.
        fn hello_target(&self, slot: usize, from: usize, after: After) -> (Option<SessionId>, Seq) {
            let own = self.slots[slot].map(|(id, _)| id);
            let target = self.slots[from].map(|(id, _)| id);
            let relative_to = target.or(own).map_or(0, |id| self.last_seq(id));
            (target, after.of(relative_to))
        }

        fn hello(&mut self, slot: usize, target: Option<SessionId>, after: Seq) {
            let Some((own, conn)) = self.slots[slot] else {
                return;
            };
            match target {
                Some(target) if target != own => {
                    // Moves onto a session still held, if this connection is still its own
                    // session's; the session it leaves ends.
                    if !self.sessions[&target].held || !self.detach(own, conn) {
                        return;
                    }
                    self.disconnect(own);
                    self.end(own);
                    self.resume_onto(target, conn, after);
                    self.slots[slot] = Some((target, conn));
                }
                // A point its own session never reached is refused: nothing changes.
                _ if after > self.last_seq(own) => {}
                _ => self.replay(own, after),
            }
        }

        /// Ends the sessions whose grace period ran out by `now`; returns them.
        fn expire(&mut self, now: Instant) -> Vec<SessionId> {
            let mut ended = Vec::new();
            for (id, session) in &mut self.sessions {
                if session.held
                    && session.conn.is_none()
                    && session.expires.is_some_and(|t| t <= now)
                {
                    session.held = false;
                    session.expires = None;
                    session.logged = 0;
                    ended.push(*id);
                }
            }
            ended
        }
    }

    /// Lets the tasks due at this instant (expiry timers) run; the paused clock stays put.
    async fn settle() {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    /// Checks the hooks that ran, the sessions held and the slots against the model.
    fn check(
        step: &dyn std::fmt::Debug,
        model: &mut Model,
        events: &Events,
        last_hook: &mut HashMap<SessionId, Kind>,
        hub: &Hub<Echo, Recorder>,
        slots: &[Option<Attached<Echo, Recorder>>],
    ) -> Result<(), TestCaseError> {
        let expired = model.expire(Instant::now());
        let ran = std::mem::take(&mut *events.lock().unwrap());
        for event in &ran {
            let before = last_hook.insert(event.session, event.kind);
            prop_assert!(
                matches!(
                    (before, event.kind),
                    (None | Some(Kind::Disconnected), Kind::Connected)
                        | (Some(Kind::Connected), Kind::Disconnected)
                ),
                "{:?} after {:?} on session {} at {:?}",
                event.kind,
                before,
                event.session,
                step
            );
        }
        let expected = std::mem::take(&mut model.expected);
        prop_assert_eq!(&ran, &expected, "hooks run by {:?}", step);
        let held: BTreeSet<SessionId> = hub.sessions().keys().copied().collect();
        let modeled: BTreeSet<SessionId> = model
            .sessions
            .iter()
            .filter(|(_, s)| s.held)
            .map(|(id, _)| *id)
            .collect();
        prop_assert_eq!(&held, &modeled, "sessions held after {:?}", step);
        for id in expired {
            prop_assert!(
                !held.contains(&id),
                "session {} outlived its grace period",
                id
            );
            prop_assert_ne!(
                last_hook.get(&id),
                Some(&Kind::Connected),
                "session {} ended without `disconnected`",
                id
            );
        }
        let attached: Vec<Option<(SessionId, u64)>> = slots
            .iter()
            .map(|a| a.as_ref().map(|a| (a.session().id(), a.conn_id)))
            .collect();
        prop_assert_eq!(&attached[..], &model.slots[..], "slots after {:?}", step);
        Ok(())
    }

    async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
        let events = Events::default();
        let made = Arc::new(AtomicU64::new(0));
        let grace = Duration::from_millis(50);
        let endpoint = {
            let events = events.clone();
            Endpoint::<Echo, _>::builder(move || Recorder {
                events: events.clone(),
                number: made.fetch_add(1, Ordering::Relaxed) + 1,
            })
            .limits(Limits {
                grace,
                log_frames: LOG_FRAMES as usize,
                ..Limits::default()
            })
            .build()
        };
        let hub = endpoint.hub().clone();
        let mut model = Model {
            sessions: HashMap::new(),
            slots: [None; SLOTS],
            handlers_made: 0,
            grace,
            expected: Vec::new(),
        };
        let mut last_hook = HashMap::new();
        let mut slots: Vec<Option<Attached<Echo, Recorder>>> = (0..SLOTS).map(|_| None).collect();
        let mut receivers = Vec::new();
        for step in &steps {
            match *step {
                Step::Open { slot, from, after } => {
                    let resume = from
                        .and_then(|f| model.slots[f])
                        .map(|(id, _)| (id, after.of(model.last_seq(id))));
                    model.closed(slot, Instant::now());
                    if let Some(old) = slots[slot].take() {
                        old.closed().await;
                    }
                    let (conn, rx) = hub.shared.connection(true);
                    let conn_id = conn.id;
                    receivers.push(rx);
                    let attached = Attached::open(
                        hub.clone(),
                        resume,
                        conn,
                        axum::http::Extensions::new(),
                        serde_json::Value::Null,
                        None,
                    )
                    .await;
                    match resume {
                        Some((target, after)) if model.sessions[&target].held => {
                            model.resume_onto(target, conn_id, after);
                            model.slots[slot] = Some((target, conn_id));
                        }
                        _ => {
                            let id = attached.session().id();
                            prop_assert!(
                                !model.sessions.contains_key(&id),
                                "a new session expected, got {}",
                                id
                            );
                            model.create(id, conn_id);
                            model.slots[slot] = Some((id, conn_id));
                        }
                    }
                    slots[slot] = Some(attached);
                }
                Step::Hello { slot, from, after } => {
                    let (target, after) = model.hello_target(slot, from, after);
                    model.hello(slot, target, after);
                    if let Some(attached) = slots[slot].as_mut() {
                        let hello = ClientFrame::Hello {
                            protocol: None,
                            version: None,
                            session: target,
                            after: Some(after),
                            topics: None,
                        };
                        attached.handle(Ok(hello)).await;
                    }
                }
                Step::Say { slot, what } => {
                    model.say(slot, what);
                    if let Some(attached) = slots[slot].as_mut() {
                        let msg = ClientFrame::msg(EchoFromClient::Say(what.into()));
                        attached.handle(Ok(msg)).await;
                    }
                }
                Step::Close { slot } => {
                    model.closed(slot, Instant::now());
                    if let Some(attached) = slots[slot].take() {
                        attached.closed().await;
                    }
                }
                Step::Leave { slot } => {
                    model.leave(slot);
                    if let Some(attached) = slots[slot].take() {
                        attached.leave().await;
                    }
                }
                Step::Wait { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            }
            settle().await;
            check(step, &mut model, &events, &mut last_hook, &hub, &slots)?;
        }
        // Every connection goes; past the grace period nothing is left.
        for (slot, attached) in slots.iter_mut().enumerate() {
            model.closed(slot, Instant::now());
            if let Some(attached) = attached.take() {
                attached.closed().await;
            }
        }
        tokio::time::sleep(grace + Duration::from_millis(1)).await;
        settle().await;
        check(
            &"the end",
            &mut model,
            &events,
            &mut last_hook,
            &hub,
            &slots,
        )?;
        prop_assert_eq!(
            endpoint.sessions(),
            0,
            "a session outlived its grace period"
        );
        for (session, kind) in &last_hook {
            prop_assert_eq!(
                *kind,
                Kind::Disconnected,
                "session {} ended connected",
                session
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_connected_has_exactly_one_disconnected(
            steps in proptest::collection::vec(step(), 1..24),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(run(steps))?;
        }
    }
}
