//! What every transport shares once frames arrive: the resume point, turning server frames
//! into the application's messages, and answering the outbox.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Shared;
use crate::TransportState;
use crate::{Cursors, ErrorCode, Protocol, Seq, ServerFrame, SessionId, TransportError};

/// What a frame asks of the transport.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Continue,
    /// `welcome` arrived: the outbox may be flushed.
    Welcomed,
    /// The server refused this client for good.
    Fatal(TransportError),
    /// A sequenced frame arrived ahead of one that never came (it was lost with another
    /// connection): resume from the last one held, so that nothing is skipped.
    Gap,
}

/// The client's side of its session.
pub(crate) struct Link<P: Protocol> {
    pub(crate) shared: Arc<Shared>,
    tx: mpsc::Sender<P>,
    pub(crate) session: Option<SessionId>,
    pub(crate) last_seq: Seq,
    /// The last number held of each sequenced topic, sent on every reconnect so that the
    /// server (any server) replays what followed.
    pub(crate) topics: Cursors,
    /// Topics reset to a number (`reset` with `topic`) whose snapshot may not have arrived:
    /// the cursor moves only with the first message after it, so a connection lost before
    /// the snapshot came asks for the reset, and the snapshot, again.
    resets: Cursors,
}

impl<P: Protocol> Link<P> {
    pub(crate) fn new(shared: Arc<Shared>, tx: mpsc::Sender<P>) -> Self {
        Self {
            shared,
            tx,
            session: None,
            last_seq: 0,
            topics: Cursors::new(),
            resets: Cursors::new(),
        }
    }

    /// Hands a message to the application. Waiting here when the application is slow to
    /// read is the back-pressure: the transport stops reading meanwhile.
    pub(crate) async fn emit(&self, msg: P) {
        // An application that dropped its receiver simply stops hearing.
        let _ = self.tx.send(msg).await;
    }

    pub(crate) async fn state(&self, state: TransportState) {
        self.emit(P::transport(state)).await;
    }

    /// The resume point to put in a connect URL or `hello`.
    pub(crate) fn resume_point(&self) -> Option<(SessionId, Seq)> {
        self.session.map(|s| (s, self.last_seq))
    }

    /// Decodes and applies one server frame.
    pub(crate) async fn on_text(&mut self, text: &[u8]) -> Step {
        match ServerFrame::<P::Server>::decode(text) {
            Ok(frame) => self.on_frame(frame).await,
            Err(err) => {
                let message = err.to_string();
                self.state(TransportState::Error(TransportError::Decode { message }))
                    .await;
                Step::Continue
            }
        }
    }

    pub(crate) async fn on_frame(&mut self, frame: ServerFrame<P::Server>) -> Step {
        match frame {
            ServerFrame::Welcome { session, seq, .. } => {
                if self.session != Some(session) {
                    // A session of its own (first connect, or the old one is gone: `reset`
                    // follows then).
                    self.last_seq = seq;
                    self.session = Some(session);
                    *self.shared.session.lock().unwrap() = Some(session);
                }
                self.state(TransportState::Connected { session }).await;
                Step::Welcomed
            }
            ServerFrame::Msg {
                seq,
                payload,
                topic: Some(topic),
                ..
            } => {
                let held = match self.resets.get(&topic) {
                    Some(&reset) => Some(reset),
                    None => self.topics.get(&topic).copied(),
                };
                match held {
                    Some(held) if seq <= held => return Step::Continue,
                    Some(held) if seq > held + 1 => {
                        tracing::debug!(%topic, seq, held, "topic sequence gap; resuming");
                        return Step::Gap;
                    }
                    // The first message of a topic starts its numbering for this client.
                    _ => {}
                }
                self.resets.remove(&topic);
                self.topics.insert(topic, seq);
                self.emit(P::from_server(payload)).await;
                Step::Continue
            }
            ServerFrame::Msg { seq, payload, .. } => {
                if seq <= self.last_seq {
                    // Already held: a replay overlapping what arrived another way.
                    return Step::Continue;
                }
                if seq > self.last_seq + 1 {
                    tracing::debug!(seq, held = self.last_seq, "sequence gap; resuming");
                    return Step::Gap;
                }
                self.last_seq = seq;
                self.emit(P::from_server(payload)).await;
                Step::Continue
            }
            ServerFrame::Push { payload, .. } => {
                self.emit(P::from_server(payload)).await;
                Step::Continue
            }
            ServerFrame::Ack { reference, .. } => {
                self.shared.outbox.answered(reference);
                Step::Continue
            }
            ServerFrame::Error {
                code,
                message,
                reference,
                ..
            } => {
                if let Some(reference) = reference {
                    self.shared.outbox.answered(reference);
                }
                let error = TransportError::Rejected { code, message };
                if code == ErrorCode::VersionMismatch {
                    return Step::Fatal(error);
                }
                self.state(TransportState::Error(error)).await;
                Step::Continue
            }
            ServerFrame::Reset {
                seq,
                topic: Some(topic),
                ..
            } => {
                self.resets.insert(topic.clone(), seq);
                self.state(TransportState::TopicReset { topic }).await;
                Step::Continue
            }
            ServerFrame::Reset { seq, .. } => {
                self.last_seq = seq;
                self.state(TransportState::Reset).await;
                Step::Continue
            }
            ServerFrame::Joined { .. } | ServerFrame::Left { .. } => Step::Continue,
        }
    }
}
