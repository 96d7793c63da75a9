//! A connection attached to a session: what a transport holds to hand the session the frames
//! its client sends and, at the end, to say the connection is gone.

use std::sync::Arc;

use tracing::{Instrument, Span};

use super::handler::Session;
use super::hello::{Flow, Resume, Version};
use super::registry::Sessions;
use crate::server::conn::Conn;
use crate::server::metrics::{FrameIn, Metrics, Transport};
use crate::server::trace;
use crate::wire::TraceParent;
use crate::{ClientFrame, Cursors, DecodeError, Dispatch, ErrorCode, Protocol, Seq, SessionId};

/// A connection attached to a session of an endpoint: what a transport holds to hand the session
/// client frames and, at the end, to say the connection is gone.
pub(crate) struct Attached<P: Protocol, H> {
    sessions: Arc<Sessions<P, H>>,
    session: Arc<Session<P, H>>,
    pub(super) conn_id: u64,
    /// The label its client's frames are counted under.
    transport: Transport,
    /// The session's span on this connection, which each message's span is a child of: a
    /// child of the connection's span, or of the client's trace once its `hello` names one.
    span: Span,
    /// The trace context the client's `hello` sent, kept for the span of a session it
    /// resumes.
    trace: Option<TraceParent>,
}

impl<P, H> Attached<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    /// Opens `conn` onto a session: see [`Sessions::open`].
    pub(crate) async fn open(
        sessions: Arc<Sessions<P, H>>,
        resume: Option<(SessionId, Seq)>,
        conn: Conn,
        extensions: axum::http::Extensions,
        props: serde_json::Value,
        topics: Option<Cursors>,
    ) -> Self {
        let conn_id = conn.id;
        let transport = conn.transport;
        let session = sessions.open(resume, conn, extensions, props, topics).await;
        Self {
            span: session_span(session.id(), None),
            sessions,
            session,
            conn_id,
            transport,
            trace: None,
        }
    }

    /// Connection `conn_id` (already attached, or 0 for frames that arrive outside any
    /// connection of the session: an SSE stream's uplink) on `session`. Its frames come in
    /// HTTP requests.
    pub(crate) fn new(
        sessions: Arc<Sessions<P, H>>,
        session: Arc<Session<P, H>>,
        conn_id: u64,
    ) -> Self {
        Self {
            span: session_span(session.id(), None),
            sessions,
            session,
            conn_id,
            transport: Transport::Http,
            trace: None,
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
        let metrics = &self.sessions.shared.metrics;
        let kind = match &frame {
            Ok(ClientFrame::Msg { .. }) => FrameIn::Msg,
            Ok(ClientFrame::Hello { .. }) => FrameIn::Hello,
            Ok(ClientFrame::Join { .. }) => FrameIn::Join,
            Ok(ClientFrame::Leave { .. }) => FrameIn::Leave,
            Err(_) => FrameIn::Invalid,
        };
        metrics.frame_in(self.transport, kind);
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => {
                if let Some(kind) = unknown_kind::<P>(&err) {
                    // A newer client's message (or one this build removed): answered, so the
                    // client's call settles, and the connection goes on.
                    Metrics::bump(&metrics.unknown_messages);
                    metrics.messages_in.unknown();
                    tracing::debug!(session = %self.session.id(), kind, "unknown client message");
                    let message = format!(
                        "this server's build of protocol `{}` has no client message `{kind}`",
                        P::NAME
                    );
                    let core = &self.session.core;
                    core.error(ErrorCode::UnknownMessage, message, err.reference());
                    return false;
                }
                Metrics::bump(&metrics.decode_errors);
                tracing::debug!(session = %self.session.id(), %err, "undecodable client frame");
                self.session
                    .core
                    .error(err.code(), err.to_string(), err.reference());
                return false;
            }
        };
        let flow = match frame {
            ClientFrame::Msg {
                payload, reference, ..
            } => {
                let kind = metrics.messages_in.count(&payload);
                let span = tracing::debug_span!(parent: &self.span, "omni.msg", kind, reference);
                self.session
                    .dispatch(payload, reference)
                    .instrument(span)
                    .await;
                Flow::Continue
            }
            ClientFrame::Hello {
                protocol,
                version,
                compatible,
                session: resume,
                after,
                topics,
                traceparent,
            } => {
                if let Some(parent) = traceparent {
                    // The connection's span has started: it gets the fields, and a new span
                    // for the session gets the parent.
                    trace::record(&Span::current(), parent);
                    self.trace = Some(parent);
                    self.span = session_span(self.session.id(), self.trace);
                }
                let resume = Resume {
                    session: resume,
                    after,
                    topics,
                };
                let version = Version {
                    protocol,
                    version,
                    compatible: compatible.unwrap_or_default(),
                };
                // Rare, and its future is large (a resume runs hooks and catch-ups): boxed, so
                // every connection's future stays small.
                Box::pin(
                    self.sessions
                        .hello(&self.session, self.conn_id, version, resume),
                )
                .await
            }
            ClientFrame::Join { .. } | ClientFrame::Leave { .. } => {
                self.session.core.error(
                    ErrorCode::BadFrame,
                    "`join` and `leave` are served on the mux endpoint".into(),
                    None,
                );
                Flow::Continue
            }
        };
        match flow {
            Flow::Continue => false,
            Flow::Switch(to) => {
                self.span = session_span(to.id(), self.trace);
                self.session = to;
                true
            }
        }
    }

    /// The connection has gone: see [`Sessions::closed`].
    pub(crate) async fn closed(self) {
        self.sessions
            .closed(&self.session, self.conn_id, false)
            .await;
    }

    /// The client closed the connection saying it is leaving: the session ends after the
    /// linger rather than the grace period (see [`Sessions::closed`]).
    pub(crate) async fn closed_leaving(self) {
        self.sessions
            .closed(&self.session, self.conn_id, true)
            .await;
    }

    /// Mux: the client left the component for good: see [`Sessions::leave`].
    pub(crate) async fn leave(self) {
        self.sessions.leave(&self.session, self.conn_id).await;
    }
}

/// A span for `session`'s handling on one connection, in the current span (the connection's),
/// joining the client's trace when it sent one.
fn session_span(session: SessionId, trace: Option<TraceParent>) -> Span {
    let span = tracing::info_span!(
        "omni.session",
        %session,
        traceparent = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some(parent) = trace {
        trace::adopt(&span, parent);
    }
    span
}

/// The kind of a client message that did not decode because `P`'s build has no such message
/// (rather than because it is malformed).
fn unknown_kind<P: Protocol>(err: &DecodeError) -> Option<&str> {
    let kind = err.payload_kind()?;
    (err.code() == ErrorCode::BadPayload && !crate::schema::kinds::<P>().client.contains(kind))
        .then_some(kind)
}
