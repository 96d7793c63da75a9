//! The sessions of one endpoint, from the first connection to the end: opening a session or
//! resuming one onto a new connection, moving a connection between sessions, and ending a
//! session once its client is gone for the grace period (or the linger, when it said goodbye).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::core::{Resumed, SessionCore};
use super::handler::{Factory, Session};
use super::store::Saver;
use crate::server::conn::Conn;
use crate::server::endpoint::Shared;
use crate::server::metrics::Metrics;
use crate::wire::hello::Served;
use crate::{Context, Cursors, Dispatch, Protocol, Sender, Seq, SessionId};

/// Sessions touched in the store in one round trip, at most.
const TOUCHED_AT_ONCE: usize = 1024;

/// An endpoint's sessions, by id.
pub(crate) struct Sessions<P: Protocol, H> {
    pub(crate) shared: Arc<Shared>,
    /// The builds of the protocol this endpoint serves.
    pub(crate) served: Arc<Served>,
    factory: Arc<Factory<H>>,
    sessions: Mutex<HashMap<SessionId, Arc<Session<P, H>>>>,
}

impl<P, H> Sessions<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    pub(crate) fn new(shared: Arc<Shared>, factory: Factory<H>) -> Self {
        Self {
            shared,
            served: crate::schema::served::<P>(),
            factory: Arc::new(factory),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// With a session store: touches every session held here in the store on the store's
    /// schedule, so that one idle for longer than the store's expiry, its client still
    /// connected, can still be resumed elsewhere.
    pub(crate) fn keep_in_store(self: &Arc<Self>) {
        let Some(every) = self.shared.saver.as_ref().map(Saver::touch_every) else {
            return;
        };
        let sessions = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(strong) = sessions.upgrade() else {
                    return;
                };
                let ids: Vec<SessionId> = strong.sessions().keys().copied().collect();
                let shared = strong.shared.clone();
                drop(strong);
                if let Some(saver) = &shared.saver {
                    for chunk in ids.chunks(TOUCHED_AT_ONCE) {
                        saver.touch(chunk).await;
                    }
                }
            }
        });
    }

    pub(super) fn sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session<P, H>>>> {
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
        let core = SessionCore::<P>::new(id, self.shared.clone(), &props);
        Metrics::bump(&self.shared.metrics.sessions_created);
        self.register(core, extensions, &props)
    }

    fn register(
        &self,
        core: Arc<SessionCore<P>>,
        extensions: axum::http::Extensions,
        props: &serde_json::Value,
    ) -> Arc<Session<P, H>> {
        let id = core.id;
        let sender = Sender::new(core.clone());
        let mut cx = Context::with_sender(id, sender);
        cx.set_extensions(extensions);
        let session = Arc::new(Session::new(core, cx, props.clone(), self.factory.clone()));
        session.catch_up_when_behind();
        self.sessions().insert(id, session.clone());
        session
    }

    /// Session `id`, held here, or else taken over from the session store (another process
    /// served it: the second value is then `true`, and its handler is new).
    async fn find(&self, id: SessionId) -> Option<(Arc<Session<P, H>>, bool)> {
        if let Some(session) = self.get(id) {
            let current = !session.core.claimed_elsewhere()
                && match (&self.shared.saver, session.core.epoch()) {
                    (Some(saver), Some(epoch)) => saver.still_held(id, epoch).await,
                    _ => true,
                };
            if current {
                return Some((session, false));
            }
            // It moved on and came back: what this process held is stale. Its handler, if
            // still connected, is disconnected: the hooks stay in pairs.
            self.sessions().remove(&id);
            session.disconnect().await;
            session.core.end();
        }
        let claimed = self.shared.saver.as_ref()?.claim(id).await?;
        let (props, client) = (claimed.props.clone(), claimed.client.clone());
        let core = SessionCore::restore(id, self.shared.clone(), claimed);
        let session = self.register(core, axum::http::Extensions::new(), &props);
        session.set_moved().await;
        session.set_client(client).await;
        tracing::debug!(session = %id, "session taken over from the store");
        Some((session, true))
    }

    /// Opens a connection onto a session: the one `resume` names if it is still held
    /// (replaying what the client missed), otherwise a new one. A live connection runs the
    /// `connected` hook.
    pub(crate) async fn open(
        &self,
        resume: Option<(SessionId, Seq)>,
        conn: Conn,
        extensions: axum::http::Extensions,
        props: serde_json::Value,
        topics: Option<Cursors>,
    ) -> Arc<Session<P, H>> {
        let live = conn.live;
        let client = conn.client.clone();
        if let Some((id, after)) = resume
            && let Some((session, moved)) = self.find(id).await
        {
            self.resume_onto(&session, conn, after, extensions, topics, moved)
                .await;
            return session;
        }
        let session = self.create(extensions, props);
        session.set_client(client).await;
        session.core.attach(conn, None, true);
        // A new session has no subscriptions yet: its `connected` hook's subscribe uses them.
        let _ = session.core.follow_topics(topics, false);
        if let Some((_, after)) = resume {
            // The client held state from a session that is gone: tell it to drop it.
            tracing::debug!(session = %session.id(), after, "resume of an unknown session");
            session.core.reset();
        }
        if live {
            session.connect().await;
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
        moved: bool,
    ) {
        let live = conn.live;
        session.set_extensions(extensions).await;
        if conn.client.is_some() {
            session.set_client(conn.client.clone()).await;
        }
        let (resumed, displaced) = session.core.attach(conn, Some(after), true);
        // A session taken over has no subscriptions yet: its `connected` hook makes them
        // again, and the cursors wait for it.
        session.follow(topics, !moved).await;
        if displaced {
            // The client came back before its old connection was noticed gone.
            session.disconnect().await;
        }
        match resumed {
            Resumed::Exactly if moved => Metrics::bump(&self.shared.metrics.sessions_moved),
            Resumed::Exactly => Metrics::bump(&self.shared.metrics.sessions_resumed),
            Resumed::Reset => session.restart().await,
        }
        // What changed in its topics' presence while it was away.
        session.core.show_presence_again();
        if live {
            session.connect().await;
        }
    }

    /// Moves connection `conn_id` from `session` (the fresh one it got on connect, which ends
    /// unused) to the session `target` it resumes; returns `target` when it moved (not when
    /// `target` is gone: the connection then stays, reset, on `session`).
    pub(crate) async fn move_to(
        &self,
        session: &Arc<Session<P, H>>,
        conn_id: u64,
        target: SessionId,
        after: Seq,
        topics: Option<Cursors>,
    ) -> Option<Arc<Session<P, H>>> {
        let Some((target, moved)) = self.find(target).await else {
            // Nothing to resume: the client keeps this session, and drops what it derived
            // from the old one (its topics may still resume).
            session.core.reset();
            session.follow(topics, false).await;
            return None;
        };
        let (conn, _) = session.core.detach(conn_id)?;
        if conn.live {
            session.disconnect().await;
        }
        self.sessions().remove(&session.id());
        session.core.end();
        let extensions = session.extensions().await;
        self.resume_onto(&target, conn, after, extensions, topics, moved)
            .await;
        Some(target)
    }

    /// The connection `conn_id` has gone: runs the `disconnected` hook (live connections) and
    /// starts the grace period after which the session ends; only the linger when the client
    /// said it is leaving (`leaving`: its close frame said so; or a goodbye on the session).
    pub(crate) async fn closed(
        self: &Arc<Self>,
        session: &Arc<Session<P, H>>,
        conn_id: u64,
        leaving: bool,
    ) {
        let Some((conn, generation)) = session.core.detach(conn_id) else {
            return;
        };
        if conn.live {
            session.disconnect().await;
        }
        // Read after the detach: a goodbye that comes later finds no connection and starts
        // the linger itself; a connection that attached since has made this timer stale.
        let wait = if leaving || session.core.leaving() {
            self.linger()
        } else {
            self.shared.limits.grace
        };
        self.expire_after(session, generation, wait);
    }

    /// The client of session `id` says it is leaving (a page's goodbye): the session ends the
    /// linger after its connection goes, or after now if it has gone already.
    pub(crate) fn goodbye(self: &Arc<Self>, id: SessionId) {
        let Some(session) = self.get(id) else {
            return;
        };
        if let Some(generation) = session.core.goodbye() {
            self.expire_after(&session, generation, self.linger());
        }
    }

    /// How long a session outlives a client that said it is leaving.
    fn linger(&self) -> Duration {
        let limits = &self.shared.limits;
        limits.linger.min(limits.grace)
    }

    /// Ends `session` after `wait`, unless a connection attached since `generation`.
    fn expire_after(
        self: &Arc<Self>,
        session: &Arc<Session<P, H>>,
        generation: u64,
        wait: Duration,
    ) {
        let hub = Arc::downgrade(self);
        let session = Arc::downgrade(session);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let (Some(hub), Some(session)) = (hub.upgrade(), session.upgrade()) {
                hub.expire(&session, generation);
            }
        });
    }

    /// Mux: the client left component `conn_id` for good: runs the `disconnected` hook and
    /// ends the session without a grace period.
    pub(crate) async fn leave(&self, session: &Arc<Session<P, H>>, conn_id: u64) {
        if session.core.detach(conn_id).is_none() {
            return;
        }
        session.disconnect().await;
        self.sessions().remove(&session.id());
        session.core.end();
    }

    fn expire(&self, session: &Arc<Session<P, H>>, generation: u64) {
        let id = session.id();
        let mut sessions = self.sessions();
        // The one registered under its id may be another by now (taken over from the store).
        if !sessions
            .get(&id)
            .is_some_and(|held| Arc::ptr_eq(held, session))
        {
            return;
        }
        if session.core.expire(generation) {
            sessions.remove(&id);
            Metrics::bump(&self.shared.metrics.sessions_expired);
            tracing::debug!(session = %id, "session expired");
        }
    }
}
