//! A `hello` on a session's connection: the version check, and where the connection goes
//! from there (a replay on its own session, or a move onto the session it resumes).

use std::sync::Arc;

use super::core::Resumed;
use super::handler::Session;
use super::registry::Sessions;
use crate::server::conn::Stop;
use crate::{Cursors, Dispatch, ErrorCode, Protocol, Seq, SessionId};

/// Where a connection goes after a frame.
pub(crate) enum Flow<P: Protocol, H> {
    Continue,
    /// A `hello` resumed another session onto this connection.
    Switch(Arc<Session<P, H>>),
}

/// What a `hello` says of the client's build.
pub(crate) struct Version {
    pub(crate) protocol: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) compatible: Vec<String>,
}

/// What a `hello` asks to resume.
pub(crate) struct Resume {
    pub(crate) session: Option<SessionId>,
    pub(crate) after: Option<Seq>,
    pub(crate) topics: Option<Cursors>,
}

impl<P, H> Sessions<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    /// Checks the version, then resumes or replays what `resume` asks.
    pub(crate) async fn hello(
        &self,
        session: &Arc<Session<P, H>>,
        conn_id: u64,
        version: Version,
        resume: Resume,
    ) -> Flow<P, H> {
        let checked = self.served.check(
            P::NAME,
            version.protocol.as_deref(),
            version.version.as_deref(),
            &version.compatible,
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
                return match self
                    .move_to(session, conn_id, id, after.unwrap_or(0), topics)
                    .await
                {
                    Some(target) => Flow::Switch(target),
                    None => Flow::Continue,
                };
            }
        };
        session.follow(topics, false).await;
        flow
    }

    async fn replay(&self, session: &Arc<Session<P, H>>, after: Seq) -> Flow<P, H> {
        if session.core.replay_after(after) == Resumed::Reset {
            session.restart().await;
        }
        Flow::Continue
    }
}
