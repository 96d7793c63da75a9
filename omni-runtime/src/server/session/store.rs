//! Sessions kept outside the process: a [`SessionStore`] holds each session's resume state
//! (its sequence, the frames its log keeps, the client messages it handled), so a client
//! whose server process died, or whose load balancer sent it elsewhere, resumes on another
//! process exactly. The [`Saver`] is the one task per endpoint that writes the sessions'
//! changes, many sessions to one round trip, and lets each session's held frames go once
//! they are saved (see [`gate`](super::gate)).

// The only store is Redis's: without it, nothing makes or reads a save.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::gate::Unsaved;
use crate::server::encoded::Outgoing;
use crate::{Ref, Seq, SessionId};

/// How long one round of saves may take before the sessions waiting on it let their frames
/// go unsaved: a store that stalls slows clients by this much, then no more. (Redis's own
/// client gives up on an answer after as long.)
const SAVE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a claim may take before the client is treated as unknown (and reset).
const CLAIM_TIMEOUT: Duration = Duration::from_secs(2);

/// Sessions saved in one round trip, at most.
const BATCH: usize = 256;

/// Where an endpoint keeps its sessions' resume state, so that any server process sharing
/// the store can resume them. Made by a backend
/// ([`RedisPubSub::session_store`](crate::pubsub::RedisPubSub::session_store)) and given to
/// [`EndpointBuilder::session_store`](crate::server::EndpointBuilder::session_store).
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
/// struct Parrot;
///
/// impl EchoHandler for Parrot {
///     async fn connected(&mut self, cx: &mut Context<Echo>) -> HandlerResult {
///         if cx.moved() {
///             // Resumed from the store: this handler is new, the client's session is not.
///         }
///         Ok(())
///     }
///
///     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
///         cx.send(EchoFromServer::Heard(text));
///         Ok(())
///     }
/// }
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisPubSub::connect("redis://127.0.0.1:6379/")?;
/// let sessions = redis.session_store();
/// let endpoint = Endpoint::<Echo, _>::builder(|| Parrot)
///     .pubsub(Arc::new(redis))
///     .session_store(sessions)
///     .build();
/// # let _ = endpoint;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionStore {
    pub(crate) store: Arc<dyn Store>,
}

impl SessionStore {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionStore")
    }
}

/// A backend that keeps sessions.
pub(crate) trait Store: Send + Sync + 'static {
    /// Writes each session's changes; answers for each, in order.
    fn save<'a>(&'a self, saves: &'a [Save]) -> BoxFuture<'a, Vec<Outcome>>;

    /// Takes session `id` over: bumps its claim, so the process that held it can save no
    /// more, and returns its state; `None` when the store does not have it.
    fn claim(&self, id: SessionId) -> BoxFuture<'_, Option<Claimed>>;

    /// The claim session `id` is held under now; `None` when the store does not have it.
    fn epoch(&self, id: SessionId) -> BoxFuture<'_, Result<Option<u64>, ()>>;

    /// Keeps the state of sessions `ids` (live here, maybe idle) from expiring.
    fn touch<'a>(&'a self, ids: &'a [SessionId]) -> BoxFuture<'a, ()>;

    /// How long the store keeps an untouched session: it is touched a few times within it.
    fn expiry(&self) -> Duration;

    /// The session ended: its state goes, unless another process claimed it since `epoch`.
    fn forget(&self, id: SessionId, epoch: u64) -> BoxFuture<'_, ()>;
}

/// One session's changes, for [`Store::save`].
#[derive(Debug)]
pub(crate) struct Save {
    pub(crate) id: SessionId,
    pub(crate) unsaved: Unsaved,
    /// How many frames the session's log holds now: the store keeps as many.
    pub(crate) keep: usize,
    /// How many handled refs the session remembers.
    pub(crate) remembered: usize,
    pub(crate) client: Option<Arc<str>>,
    /// As JSON.
    pub(crate) props: Arc<str>,
}

/// How a save went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Saved,
    /// Another process claimed the session: this one no longer serves it.
    Claimed,
    /// The store could not be reached in time: the frames go unsaved (the session is still
    /// exact within this process; a resume elsewhere across the gap gets `reset`).
    Failed,
}

/// A session's state as the store had it.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub(crate) epoch: u64,
    pub(crate) last_seq: Seq,
    /// The frames the log kept, the last numbered `last_seq`.
    pub(crate) frames: Vec<Outgoing>,
    /// Handled refs, oldest first.
    pub(crate) refs: Vec<Ref>,
    pub(crate) client: Option<Arc<str>>,
    pub(crate) props: serde_json::Value,
}

/// A session as the saver sees it.
pub(crate) trait Saving: Send + Sync {
    /// Its changes since the last save, if any.
    fn unsaved(&self) -> Option<Save>;
    /// The store answered for the changes up to `upto`.
    fn saved(&self, upto: u64, outcome: Outcome);
}

/// An endpoint's store, and the task that writes to it.
pub(crate) struct Saver {
    store: Arc<dyn Store>,
    queue: mpsc::UnboundedSender<Weak<dyn Saving>>,
}

impl Saver {
    /// Starts the saving task (it ends when the endpoint goes). Needs a tokio runtime.
    pub(crate) fn start(store: SessionStore) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(save_loop(store.store.clone(), rx));
        Self {
            store: store.store,
            queue,
        }
    }

    /// Queues `session`, which has changes to save. A session is queued at most once at a
    /// time (its gate says when), so the queue holds at most one entry per session.
    pub(crate) fn schedule(&self, session: Weak<dyn Saving>) {
        let _ = self.queue.send(session);
    }

    /// Takes session `id` over from the store, if it has it.
    pub(crate) async fn claim(&self, id: SessionId) -> Option<Claimed> {
        match tokio::time::timeout(CLAIM_TIMEOUT, self.store.claim(id)).await {
            Ok(claimed) => claimed,
            Err(_) => {
                tracing::warn!(session = %id, "the session store did not answer a claim in time");
                None
            }
        }
    }

    /// Whether this process still holds session `id` under claim `epoch`: nobody took it over
    /// since (a client that went to another process and came back finds a stale copy here).
    /// When the store cannot tell, the copy here is taken to be current.
    pub(crate) async fn still_held(&self, id: SessionId, epoch: u64) -> bool {
        match tokio::time::timeout(CLAIM_TIMEOUT, self.store.epoch(id)).await {
            Ok(Ok(Some(held))) => held == epoch,
            Ok(Ok(None) | Err(())) | Err(_) => true,
        }
    }

    /// Keeps the sessions `ids` in the store, on a schedule of [`touch_every`](Self::touch_every).
    pub(crate) async fn touch(&self, ids: &[SessionId]) {
        let _ = tokio::time::timeout(CLAIM_TIMEOUT, self.store.touch(ids)).await;
    }

    /// How often the sessions held here are touched: an idle one stays resumable elsewhere.
    pub(crate) fn touch_every(&self) -> Duration {
        (self.store.expiry() / 3).max(Duration::from_millis(100))
    }

    /// Session `id` ended here: its state goes from the store (in the background).
    pub(crate) fn forget(&self, id: SessionId, epoch: u64) {
        let store = self.store.clone();
        tokio::spawn(async move { store.forget(id, epoch).await });
    }
}

/// Saves what the queued sessions changed, a batch per round trip, and tells each how it went.
async fn save_loop(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Weak<dyn Saving>>) {
    let mut queued = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut queued, BATCH).await > 0 {
        let mut sessions = Vec::with_capacity(queued.len());
        let mut saves = Vec::with_capacity(queued.len());
        for session in queued.drain(..) {
            let Some(session) = session.upgrade() else {
                continue;
            };
            match session.unsaved() {
                Some(save) => {
                    saves.push(save);
                    sessions.push(session);
                }
                // Nothing new: whatever it held may go.
                None => session.saved(0, Outcome::Saved),
            }
        }
        if saves.is_empty() {
            continue;
        }
        let outcomes = match tokio::time::timeout(SAVE_TIMEOUT, store.save(&saves)).await {
            Ok(outcomes) => outcomes,
            Err(_) => {
                tracing::warn!(
                    sessions = saves.len(),
                    "the session store did not answer in time"
                );
                Vec::new()
            }
        };
        for (i, (session, save)) in sessions.iter().zip(&saves).enumerate() {
            let outcome = outcomes.get(i).copied().unwrap_or(Outcome::Failed);
            session.saved(save.unsaved.upto, outcome);
        }
    }
}
