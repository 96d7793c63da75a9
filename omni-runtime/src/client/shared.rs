//! The state a client's handles and its connection task share: the queue, the session, the
//! requests waiting for their reply, and how the client ended. Every transport, and every
//! component of a mux, reaches its client through one [`Shared`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use super::error::SendError;
use super::options::Settings;
use super::outbox::Outbox;
use super::wire::{self, Frame};
use crate::presence::Held;
use crate::wire::{Codec, TraceParent};
use crate::{ClientFrame, Ref, SessionId, TransportError};

/// Takes a copy of a request's reply, type-erased so the link needs no `Clone` bound.
pub(crate) type Reply = Box<dyn FnOnce(&(dyn std::any::Any + Send)) + Send>;

/// What the client and its background task share.
pub(crate) struct Shared {
    pub(crate) outbox: Outbox,
    max_message_bytes: usize,
    /// The encoding of the connection's frames, both ways.
    pub(crate) codec: Codec,
    /// The trace context sent in `hello` and `join`.
    pub(crate) traceparent: Option<TraceParent>,
    /// Something was queued, the window opened, or (for a mux component) it was closed.
    /// Shared by every component of a mux, whose one task serves them all.
    pub(crate) wake: Arc<Notify>,
    /// The application asks to connect now (after refused credentials, or during a
    /// backoff). Shared by every component of a mux, which all ride one socket.
    pub(crate) reconnect: Arc<Notify>,
    pub(crate) closed: watch::Sender<bool>,
    /// Why the client ended for good, when the server (or its URL) refused it: what `send`
    /// and `acked` answer with afterwards.
    refusal: Mutex<Option<TransportError>>,
    /// The first outcome of connecting: welcomed into a session, or refused.
    pub(crate) outcome: watch::Sender<Option<Result<SessionId, TransportError>>>,
    /// The requests waiting for their reply, by `ref`: each takes a copy of the first
    /// sequenced message that answers it (see [`Client::request`](crate::client::Client::request)).
    pub(crate) requests: Mutex<HashMap<Ref, Reply>>,
    pub(crate) session: Mutex<Option<SessionId>>,
    /// Presence changes, for whoever listens ([`Client::presence_changes`]).
    ///
    /// [`Client::presence_changes`]: super::Client::presence_changes
    pub(crate) presence_changes: tokio::sync::broadcast::Sender<crate::presence::Change>,
    /// How long `Client::request` waits for an answer.
    pub(crate) request_timeout: std::time::Duration,
    /// Server messages of kinds this build does not know, so far.
    pub(crate) unknown: std::sync::atomic::AtomicU64,
    /// Each topic's presence list, as the server's `presence_state` and `presence_diff`
    /// frames left it.
    pub(crate) presence: Mutex<BTreeMap<String, Held>>,
    /// This client's id, chosen when it is made: the messages it sends again to a new session
    /// keep their key there (see `wire::connect::CLIENT`).
    pub(crate) client_id: Arc<str>,
    /// What the client asked to be shown of each topic's presence.
    pub(crate) presence_modes: crate::presence::Modes,
    /// The count of each topic the client asked only to count, as the server last said.
    pub(crate) presence_counts: Mutex<BTreeMap<String, crate::presence::Count>>,
    /// Mux only: the component's id, which every `msg` names.
    pub(crate) component: Option<Arc<str>>,
}

impl Shared {
    /// Ends the client for good because of `error`: what was waiting is told why.
    pub(crate) fn refuse(&self, error: TransportError) {
        *self.refusal.lock().unwrap() = Some(error.clone());
        self.first_outcome(Err(error));
        self.closed.send_replace(true);
        self.wake.notify_one();
    }

    /// Records how connecting went, unless it is already known.
    pub(crate) fn first_outcome(&self, outcome: Result<SessionId, TransportError>) {
        self.outcome.send_if_modified(|held| {
            let first = held.is_none();
            if first {
                *held = Some(outcome);
            }
            first
        });
    }

    /// `payload` answered the message `reference`: a request waiting for it takes a copy.
    pub(crate) fn replied(&self, reference: Ref, payload: &(dyn std::any::Any + Send)) {
        if let Some(take) = self.requests.lock().unwrap().remove(&reference) {
            take(payload);
        }
    }

    /// The refusal that ended the client, if one did.
    pub(crate) fn refusal(&self) -> Option<TransportError> {
        self.refusal.lock().unwrap().clone()
    }

    /// `msg` as this client's `msg` frame with `reference`, if the server accepts its size.
    pub(crate) fn encode(
        &self,
        msg: &impl serde::Serialize,
        reference: Ref,
    ) -> Result<Frame, SendError> {
        let frame = ClientFrame::Msg {
            payload: msg,
            reference: Some(reference),
            id: self.component.as_deref().map(str::to_owned),
        };
        let frame =
            wire::encode(self.codec, &frame).map_err(|err| SendError::Encode(err.to_string()))?;
        let limit = self.max_message_bytes;
        if frame.len() > limit {
            return Err(SendError::TooLarge {
                size: frame.len(),
                limit,
            });
        }
        Ok(frame)
    }

    pub(crate) fn new(settings: &Settings, wake: Arc<Notify>) -> Self {
        Self {
            outbox: Outbox::new(settings.queue, settings.window, wake.clone()),
            max_message_bytes: settings.max_message_bytes,
            request_timeout: settings.request_timeout,
            codec: settings.codec,
            traceparent: settings.traceparent,
            wake,
            reconnect: Arc::new(Notify::new()),
            closed: watch::channel(false).0,
            refusal: Mutex::new(None),
            outcome: watch::channel(None).0,
            requests: Mutex::default(),
            session: Mutex::new(None),
            presence: Mutex::default(),
            presence_modes: crate::presence::Modes::default(),
            client_id: format!("{:032x}", rand::random::<u128>()).into(),
            presence_counts: Mutex::default(),
            unknown: std::sync::atomic::AtomicU64::new(0),
            presence_changes: tokio::sync::broadcast::channel(PRESENCE_CHANGES).0,
            component: None,
        }
    }
}

/// Presence changes a listener may fall behind by before it misses some (it is told, and
/// `Client::presence` still has the whole list).
const PRESENCE_CHANGES: usize = 1024;

impl Shared {
    /// Tells the presence listeners, if any, that `topic` changed.
    pub(crate) fn presence_changed(&self, topic: String, diff: crate::presence::Diff) {
        self.tell_presence(crate::presence::Change {
            topic,
            diff,
            count: None,
        });
    }

    /// A topic's new count, for a client that asked only to count it.
    pub(crate) fn presence_counted(&self, topic: String, count: crate::presence::Count) {
        let before = self
            .presence_counts
            .lock()
            .unwrap()
            .insert(topic.clone(), count);
        if before != Some(count) {
            self.tell_presence(crate::presence::Change {
                topic,
                diff: crate::presence::Diff::default(),
                count: Some(count),
            });
        }
    }

    fn tell_presence(&self, change: crate::presence::Change) {
        if self.presence_changes.receiver_count() > 0 {
            let _ = self.presence_changes.send(change);
        }
    }
}
