//! A session's handler: running its methods and hooks one at a time, refusing what it
//! refuses, replacing it when it panics, and keeping `connected` and `disconnected` in pairs.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;

use super::core::{SessionCore, TopicSync};
use crate::pubsub::Replay;
use crate::server::metrics::Metrics;
use crate::{Context, Cursors, Dispatch, ErrorCode, HandlerResult, Protocol, Ref, SessionId};

/// Makes a fresh handler for each session (and again after a handler fails), from the props
/// of the session (a mux component's verified token props; `null` on a plain endpoint).
pub(crate) type Factory<H> = Box<dyn Fn(&serde_json::Value) -> H + Send + Sync>;

/// A session: its protocol state and its handler.
pub(crate) struct Session<P: Protocol, H> {
    pub(crate) core: Arc<SessionCore<P>>,
    props: serde_json::Value,
    factory: Arc<Factory<H>>,
    state: tokio::sync::Mutex<State<P, H>>,
}

struct State<P: Protocol, H> {
    handler: H,
    cx: Context<P>,
    /// Whether this handler's `connected` hook ran and its `disconnected` has not: the two
    /// come in pairs whatever happens (resume, displacement, reset, a panic, leave).
    connected: bool,
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

impl<P: Protocol, H> Session<P, H> {
    /// A session over `core` whose handler `factory` makes from `props`; `cx` is its context.
    pub(crate) fn new(
        core: Arc<SessionCore<P>>,
        cx: Context<P>,
        props: serde_json::Value,
        factory: Arc<Factory<H>>,
    ) -> Self {
        Self {
            core,
            state: tokio::sync::Mutex::new(State {
                handler: factory(&props),
                cx,
                connected: false,
            }),
            props,
            factory,
        }
    }

    /// The extensions of the request that is the session's connection now.
    pub(crate) async fn set_extensions(&self, extensions: axum::http::Extensions) {
        self.state.lock().await.cx.set_extensions(extensions);
    }

    /// The id the session's client gave itself, which keys its messages from now on.
    pub(crate) async fn set_client(&self, client: Option<Arc<str>>) {
        self.core.set_client(client.clone());
        self.state.lock().await.cx.set_client(client);
    }

    /// Marks the session as resumed from the store (its handler sees [`Context::moved`]).
    pub(crate) async fn set_moved(&self) {
        self.state.lock().await.cx.set_moved(true);
    }

    /// The extensions its handler sees now.
    pub(crate) async fn extensions(&self) -> axum::http::Extensions {
        self.state.lock().await.cx.extensions().clone()
    }

    pub(crate) fn id(&self) -> SessionId {
        self.core.id
    }
}

impl<P, H> Session<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    /// Runs the handler method for one client message.
    pub(crate) async fn dispatch(&self, payload: P::Client, reference: Option<Ref>) {
        if let Some(r) = reference
            && self.core.already_handled(r)
        {
            // A resend of a message already handled (the client missed the ack).
            self.core.acknowledge(r);
            return;
        }
        let mut state = self.state.lock().await;
        let State { handler, cx, .. } = &mut *state;
        let started = Instant::now();
        cx.set_reference(reference);
        let outcome = AssertUnwindSafe(P::dispatch(handler, cx, payload))
            .catch_unwind()
            .await;
        cx.set_reference(None);
        let metrics = &self.core.shared.metrics;
        metrics.handler_duration.observe_duration(started.elapsed());
        let mut effects = cx.take_effects();
        match outcome {
            // The effects, then the ack, then the catch-ups of the topics it subscribed to.
            Ok(Ok(())) => {
                metrics.sent(&effects);
                let syncs = self.core.apply(&mut effects, reference);
                state.cx.recycle(effects);
                if !syncs.is_empty() {
                    // Only after a subscribe; boxed like every rare branch of a message.
                    Box::pin(self.sync(&mut state, syncs)).await;
                }
            }
            // The handler refused the message: the error answers it, what the method did
            // before refusing is dropped, and the handler keeps its state.
            Ok(Err(err)) => {
                Metrics::bump(&metrics.handler_rejections);
                tracing::debug!(session = %self.id(), %err, "handler refused a message");
                state.cx.recycle(effects);
                let message = err.to_string();
                self.core.error(ErrorCode::Rejected, message, reference);
            }
            Err(panic) => {
                drop(state);
                Box::pin(self.fail(panic_message(&*panic), reference)).await;
            }
        }
    }

    /// Runs the `connected` hook, unless the handler is connected already. A failing hook is
    /// reported, not retried.
    pub(crate) async fn connect(&self) {
        let mut state = self.state.lock().await;
        if state.connected {
            return;
        }
        state.connected = true;
        let syncs = self.run_hook(&mut state, Hook::Connected).await;
        self.sync(&mut state, syncs).await;
    }

    /// Runs the `disconnected` hook of a connected handler: the one answer to its
    /// `connected`.
    pub(crate) async fn disconnect(&self) {
        let mut state = self.state.lock().await;
        self.disconnect_locked(&mut state).await;
    }

    async fn disconnect_locked(&self, state: &mut State<P, H>) {
        if !state.connected {
            return;
        }
        state.connected = false;
        let syncs = self.run_hook(state, Hook::Disconnected).await;
        self.sync(state, syncs).await;
    }

    /// Runs a hook with the session's state already locked; returns the catch-ups its
    /// effects call for.
    async fn run_hook(&self, state: &mut State<P, H>, hook: Hook) -> Vec<TopicSync> {
        let State { handler, cx, .. } = state;
        let future = match hook {
            Hook::Connected => P::connected(handler, cx).boxed(),
            Hook::Disconnected => P::disconnected(handler, cx).boxed(),
            Hook::Snapshot(topic) => P::snapshot(handler, cx, topic).boxed(),
        };
        let outcome = AssertUnwindSafe(future).catch_unwind().await;
        let mut effects = cx.take_effects();
        match flatten(outcome) {
            Ok(()) => {
                self.core.shared.metrics.sent(&effects);
                self.core.apply(&mut effects, None)
            }
            Err(message) => {
                Metrics::bump(&self.core.shared.metrics.hook_failures);
                tracing::warn!(session = %self.id(), %message, "handler hook failed");
                // The fresh handler has not been connected: no `disconnected` is due to it.
                state.connected = false;
                state.handler = (self.factory)(&self.props);
                self.core.error(ErrorCode::HandlerFailed, message, None);
                Vec::new()
            }
        }
    }

    /// Lets the core hand this session the topics its connection fell behind on: each is
    /// caught up from its log (or given the handler's snapshot, past the log) once the
    /// connection has drained.
    pub(crate) fn catch_up_when_behind(self: &Arc<Self>) {
        let session = Arc::downgrade(self);
        self.core.on_behind(Box::new(move |topic, drained| {
            let session = session.clone();
            tokio::spawn(async move {
                drained.await;
                let Some(session) = session.upgrade() else {
                    return;
                };
                let mut state = session.state.lock().await;
                if let Some(sync) = session.core.catch_up(&topic) {
                    session.sync(&mut state, vec![sync]).await;
                }
            });
        }));
    }

    /// Takes the client's topic cursors and catches it up on the topics the session is
    /// already subscribed to (see [`SessionCore::follow_topics`]).
    pub(crate) async fn follow(&self, topics: Option<Cursors>, resumed: bool) {
        let syncs = self.core.follow_topics(topics, resumed);
        if !syncs.is_empty() {
            let mut state = self.state.lock().await;
            self.sync(&mut state, syncs).await;
        }
    }

    /// Catches the client up on topics: replays what it missed from each topic's log, or,
    /// when it holds nothing the log can continue, sends the handler's snapshot (after a
    /// `reset` for the topic if its resume point is gone). Live messages wait meanwhile.
    async fn sync(&self, state: &mut State<P, H>, syncs: Vec<TopicSync>) {
        let mut due: std::collections::VecDeque<TopicSync> = syncs.into();
        let mut done = 0;
        while let Some(sync) = due.pop_front() {
            done += 1;
            if done > MAX_SYNCS {
                tracing::warn!(session = %self.id(), "too many topic catch-ups in a row");
                // Their messages must not wait forever: they flow without a catch-up.
                for sync in std::iter::once(sync).chain(due) {
                    self.core.topic_live(sync.topic(), None);
                }
                break;
            }
            let (topic, head) = match sync {
                TopicSync::Replay { topic, after } => {
                    match self.core.shared.pubsub.replay(&topic, after).await {
                        Replay::Held(missed) => {
                            self.core.topic_replayed(&topic, after, missed);
                            continue;
                        }
                        Replay::Gone { head } => {
                            Metrics::bump(&self.core.shared.metrics.replay_fallbacks);
                            self.core.topic_reset(&topic, head);
                            (topic, Some(head))
                        }
                    }
                }
                TopicSync::Snapshot(topic) => {
                    self.core.shared.pubsub.listening(&topic).await;
                    (topic, None)
                }
            };
            let more = self.run_hook(state, Hook::Snapshot(topic.clone())).await;
            self.core.topic_live(&topic, head);
            due.extend(more);
        }
    }

    /// Reports a handler method that panicked and gives the session a fresh handler, which
    /// is connected again so it can restore its subscriptions (the old one is disconnected
    /// first, so whatever it counted is given back).
    async fn fail(&self, message: String, reference: Option<Ref>) {
        Metrics::bump(&self.core.shared.metrics.handler_panics);
        tracing::warn!(session = %self.id(), %message, "handler failed; restarting it");
        self.core
            .error(ErrorCode::HandlerFailed, message, reference);
        self.restart().await;
    }

    /// Replaces the session's handler with a fresh one, and connects it if a live connection
    /// is attached. A connected handler is disconnected first, so whatever it counted on
    /// connect is given back.
    pub(crate) async fn restart(&self) {
        {
            let mut state = self.state.lock().await;
            self.disconnect_locked(&mut state).await;
            state.handler = (self.factory)(&self.props);
            state.cx.take_effects();
        }
        if self.core.has_live_connection() {
            self.connect().await;
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
