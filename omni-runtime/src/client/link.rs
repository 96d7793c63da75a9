//! What every transport shares once frames arrive: the resume point, turning server frames
//! into the application's messages, and answering the outbox.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::de::IgnoredAny;

use tokio::sync::mpsc;

use super::connect::{ConnectInfo, Hook};
use super::error::AckError;
use super::shared::Shared;
use super::wire::{self, Frame};
use crate::TransportError;
use crate::TransportState;
use crate::presence::List;
use crate::wire::Codec;
use crate::wire::connect::Connect;
use crate::{Cursors, DecodeError, ErrorCode, Protocol, Seq, ServerFrame, SessionId};

/// A server message as this build reads it: one of its protocol's, or one of a kind it does
/// not know (a newer server's), which is counted and reported, never fatal.
pub(crate) enum Incoming<S> {
    Known(S),
    Unknown(String),
}

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
    /// The application's connect hook.
    pub(crate) hook: Option<Hook<P::Client>>,
    /// What the hook made for this connection, to go before the queue.
    greeting: Vec<Frame>,
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
            hook: None,
            greeting: Vec::new(),
        }
    }

    /// Runs the connect hook for a connection into `session`, keeping its frames for
    /// [`take_greeting`](Self::take_greeting).
    pub(crate) async fn greet(&mut self, session: SessionId, resumed: bool) {
        let Some(hook) = &self.hook else {
            return;
        };
        let messages = hook(ConnectInfo { session, resumed });
        let mut failed = Vec::new();
        self.greeting.clear();
        for msg in &messages {
            match self.shared.outbox.stamp(|r| self.shared.encode(msg, r)) {
                Ok(frame) => self.greeting.push(frame),
                Err(err) => failed.push(err),
            }
        }
        for err in failed {
            let message = format!("the connect hook's message: {err}");
            self.state(TransportState::Error(TransportError::Send { message }))
                .await;
        }
    }

    /// The connect hook's frames for this connection, once.
    pub(crate) fn take_greeting(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.greeting)
    }

    /// Hands a message to the application. Waiting here when the application is slow to
    /// read is the back-pressure: the transport stops reading meanwhile.
    pub(crate) async fn emit(&self, msg: P) {
        // An application that dropped its receiver simply stops hearing.
        let _ = self.tx.send(msg).await;
    }

    pub(crate) async fn state(&self, state: TransportState) {
        match &state {
            TransportState::Connected { session } => self.shared.first_outcome(Ok(*session)),
            TransportState::Unauthorized { reason } => {
                let reason = reason.clone();
                self.shared
                    .first_outcome(Err(TransportError::Unauthorized { reason }));
            }
            _ => {}
        }
        self.emit(P::transport(state)).await;
    }

    /// The resume point to put in a connect URL or `hello`.
    pub(crate) fn resume_point(&self) -> Option<(SessionId, Seq)> {
        self.session.map(|s| (s, self.last_seq))
    }

    /// What a connect of this link asks for in `codec`: its resume point, its topics, the
    /// presence it wants shown, and its client id.
    pub(crate) fn connect_params(&self, codec: Codec) -> Connect {
        let mut connect = Connect::new(codec)
            .topics(self.topics.clone())
            .presence(self.shared.presence_modes.clone());
        if let Some((session, after)) = self.resume_point() {
            connect = connect.resume(session, after);
        }
        connect.client = Some(self.shared.client_id.to_string());
        connect
    }

    /// Decodes (in the client's codec) and applies one server frame.
    pub(crate) async fn receive(&mut self, bytes: &[u8]) -> Step {
        match wire::decode::<P::Server>(self.shared.codec, bytes) {
            Ok(frame) => self.on_incoming(frame.map_payload(Incoming::Known)).await,
            Err(err) => match self.unknown(&err, bytes) {
                Some(frame) => self.on_incoming(frame).await,
                None => {
                    self.undecodable(err.to_string()).await;
                    Step::Continue
                }
            },
        }
    }

    /// A frame whose payload did not decode because this build has no such server message
    /// (a newer server's, during a deploy), read again without its payload: it still counts
    /// in the sequence, so nothing is lost or asked for again.
    fn unknown(&self, err: &DecodeError, bytes: &[u8]) -> Option<ServerFrame<Incoming<P::Server>>> {
        let kind = err.payload_kind()?;
        if err.code() != ErrorCode::BadPayload || crate::schema::kinds::<P>().server.contains(kind)
        {
            return None;
        }
        let frame = wire::decode::<IgnoredAny>(self.shared.codec, bytes).ok()?;
        Some(frame.map_payload(|_| Incoming::Unknown(kind.to_owned())))
    }

    /// Hands a server message to the application, or reports one this build does not know.
    async fn deliver(&self, payload: Incoming<P::Server>) {
        match payload {
            Incoming::Known(msg) => self.emit(P::from_server(msg)).await,
            Incoming::Unknown(kind) => {
                self.shared.unknown.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(kind, "a server message this build does not know");
                self.state(TransportState::UnknownMessage { kind }).await;
            }
        }
    }

    /// Reports a server frame that could not be read; the connection goes on.
    pub(crate) async fn undecodable(&self, message: String) {
        self.state(TransportState::Error(TransportError::Decode { message }))
            .await;
    }

    #[cfg(test)]
    pub(crate) async fn on_frame(&mut self, frame: ServerFrame<P::Server>) -> Step {
        self.on_incoming(frame.map_payload(Incoming::Known)).await
    }

    async fn on_incoming(&mut self, frame: ServerFrame<Incoming<P::Server>>) -> Step {
        match frame {
            ServerFrame::Welcome {
                session,
                seq,
                codec,
                ..
            } => {
                if codec != self.shared.codec {
                    let answered = format!("a `welcome` naming {codec}");
                    let message = wire::refused(self.shared.codec, &answered);
                    return Step::Fatal(TransportError::Init { message });
                }
                let fresh = self.session != Some(session);
                if fresh {
                    // A session of its own (first connect, or the old one is gone: `reset`
                    // follows then).
                    self.last_seq = seq;
                    self.session = Some(session);
                    *self.shared.session.lock().unwrap() = Some(session);
                }
                self.state(TransportState::Connected { session }).await;
                self.greet(session, !fresh).await;
                if fresh {
                    // The new session's subscriptions bring their own lists: what was held
                    // belonged to the old one.
                    let lists = std::mem::take(&mut *self.shared.presence.lock().unwrap());
                    for (topic, mut held) in lists {
                        let diff = held.replace(List::new());
                        if !diff.is_empty() {
                            self.shared.presence_changed(topic, diff);
                        }
                    }
                }
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
                self.deliver(payload).await;
                Step::Continue
            }
            ServerFrame::Msg {
                seq,
                payload,
                reference,
                ..
            } => {
                if seq <= self.last_seq {
                    // Already held: a replay overlapping what arrived another way.
                    return Step::Continue;
                }
                if seq > self.last_seq + 1 {
                    tracing::debug!(seq, held = self.last_seq, "sequence gap; resuming");
                    return Step::Gap;
                }
                self.last_seq = seq;
                if let (Some(reference), Incoming::Known(payload)) = (reference, &payload) {
                    self.shared.replied(reference, payload);
                }
                self.deliver(payload).await;
                Step::Continue
            }
            ServerFrame::Push { payload, .. } => {
                self.deliver(payload).await;
                Step::Continue
            }
            ServerFrame::Ack { reference, .. } => {
                self.shared.outbox.answered(reference, Ok(()));
                Step::Continue
            }
            ServerFrame::Error {
                code,
                message,
                reference,
                ..
            } => {
                if let Some(reference) = reference {
                    // The outcome of that message, for whoever awaits it (`acked`): a refused
                    // message is not a fault of the connection, so the stream does not hear of it.
                    let refused = AckError::Rejected { code, message };
                    self.shared.outbox.answered(reference, Err(refused));
                    return Step::Continue;
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
            ServerFrame::PresenceState { topic, state, .. } => {
                // After a reconnect the list comes again: only what changed meanwhile is news.
                let diff = {
                    let mut lists = self.shared.presence.lock().unwrap();
                    lists.entry(topic.clone()).or_default().replace(state)
                };
                if !diff.is_empty() {
                    self.shared.presence_changed(topic, diff);
                }
                Step::Continue
            }
            ServerFrame::PresenceDiff { topic, diff, .. } => {
                {
                    let mut lists = self.shared.presence.lock().unwrap();
                    lists.entry(topic.clone()).or_default().apply(&diff);
                }
                self.shared.presence_changed(topic, diff);
                Step::Continue
            }
            ServerFrame::PresenceCount {
                topic,
                keys,
                entries,
                ..
            } => {
                let count = crate::presence::Count::new(keys, entries);
                self.shared.presence_counted(topic, count);
                Step::Continue
            }
            ServerFrame::Joined { .. } | ServerFrame::Left { .. } => Step::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::Notify;

    use super::*;
    use crate::client::options::Settings;
    use crate::protocol::tests_support::{Echo, EchoFromServer};

    type Frame = ServerFrame<EchoFromServer>;

    fn link() -> (Link<Echo>, mpsc::Receiver<Echo>) {
        let shared = Arc::new(Shared::new(&Settings::default(), Arc::new(Notify::new())));
        let (tx, rx) = mpsc::channel(64);
        (Link::new(shared, tx), rx)
    }

    fn welcome(session: u128, seq: Seq) -> Frame {
        ServerFrame::Welcome {
            session: SessionId::from_u128(session),
            seq,
            resumed: false,
            protocol: "Echo".into(),
            version: "0".into(),
            codec: crate::wire::Codec::Json,
            id: None,
        }
    }

    fn msg(seq: Seq, topic: Option<&str>) -> Frame {
        ServerFrame::Msg {
            seq,
            payload: EchoFromServer::Heard(format!("{seq}")),
            reference: None,
            topic: topic.map(str::to_owned),
            id: None,
        }
    }

    fn reset(seq: Seq, topic: Option<&str>) -> Frame {
        ServerFrame::Reset {
            seq,
            topic: topic.map(str::to_owned),
            id: None,
        }
    }

    /// What the application was handed since the last call.
    fn heard(rx: &mut mpsc::Receiver<Echo>) -> Vec<Echo> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[tokio::test]
    async fn sequenced_messages_arrive_once_in_order_and_a_gap_asks_to_resume() {
        let (mut link, mut rx) = link();
        assert_eq!(link.on_frame(welcome(1, 0)).await, Step::Welcomed);
        let session = SessionId::from_u128(1);
        assert_eq!(
            heard(&mut rx),
            [Echo::Transport(TransportState::Connected { session })]
        );
        assert_eq!(link.on_frame(msg(1, None)).await, Step::Continue);
        assert_eq!(link.on_frame(msg(2, None)).await, Step::Continue);
        // A replay overlapping what arrived is dropped.
        assert_eq!(link.on_frame(msg(2, None)).await, Step::Continue);
        assert_eq!(
            heard(&mut rx),
            [Echo::Heard("1".into()), Echo::Heard("2".into())]
        );
        // 3 was lost with another connection: resume from 2 rather than skip it.
        assert_eq!(link.on_frame(msg(4, None)).await, Step::Gap);
        assert!(heard(&mut rx).is_empty());
        assert_eq!(link.resume_point(), Some((session, 2)));
        // The same session welcomed again (a resume) keeps the resume point.
        assert_eq!(link.on_frame(welcome(1, 9)).await, Step::Welcomed);
        assert_eq!(link.resume_point(), Some((session, 2)));
    }

    #[tokio::test]
    async fn a_server_message_this_build_does_not_know_is_reported_and_keeps_its_number() {
        let (mut link, mut rx) = link();
        link.on_frame(welcome(1, 0)).await;
        heard(&mut rx);
        assert_eq!(link.on_frame(msg(1, None)).await, Step::Continue);
        let newer = br#"{"type":"msg","seq":2,"payload":{"kind":"Shouted","data":"HI"}}"#;
        assert_eq!(link.receive(newer).await, Step::Continue);
        // 3 follows 2 without a gap: the unknown message took its place in the sequence.
        assert_eq!(link.on_frame(msg(3, None)).await, Step::Continue);
        let push = br#"{"type":"push","payload":{"kind":"Whispered"}}"#;
        assert_eq!(link.receive(push).await, Step::Continue);
        assert_eq!(
            heard(&mut rx),
            [
                Echo::Heard("1".into()),
                Echo::Transport(TransportState::UnknownMessage {
                    kind: "Shouted".into()
                }),
                Echo::Heard("3".into()),
                Echo::Transport(TransportState::UnknownMessage {
                    kind: "Whispered".into()
                }),
            ]
        );
        assert_eq!(link.shared.unknown.load(Ordering::Relaxed), 2);
        // A known kind that does not decode is a decode error, as before.
        let broken = br#"{"type":"msg","seq":4,"payload":{"kind":"Heard","data":7}}"#;
        assert_eq!(link.receive(broken).await, Step::Continue);
        assert!(matches!(
            &heard(&mut rx)[..],
            [Echo::Transport(TransportState::Error(
                TransportError::Decode { .. }
            ))]
        ));
    }

    #[tokio::test]
    async fn a_welcome_in_another_codec_than_asked_is_fatal() {
        let (mut link, mut rx) = link();
        let ServerFrame::Welcome {
            session,
            seq,
            resumed,
            protocol,
            version,
            id,
            ..
        } = welcome(1, 0)
        else {
            unreachable!()
        };
        let packed = ServerFrame::Welcome {
            session,
            seq,
            resumed,
            protocol,
            version,
            codec: crate::wire::Codec::MsgPack,
            id,
        };
        let Step::Fatal(TransportError::Init { message }) = link.on_frame(packed).await else {
            panic!("a JSON client welcomed as MessagePack goes on");
        };
        assert!(message.contains("naming msgpack"), "{message}");
        assert_eq!(link.session, None, "the welcome is not taken");
        assert!(heard(&mut rx).is_empty());
    }

    #[tokio::test]
    async fn a_reset_moves_the_resume_point_and_a_new_session_starts_its_own() {
        let (mut link, mut rx) = link();
        link.on_frame(welcome(1, 0)).await;
        link.on_frame(msg(1, None)).await;
        assert_eq!(link.on_frame(reset(40, None)).await, Step::Continue);
        assert_eq!(link.last_seq, 40);
        assert_eq!(link.on_frame(msg(41, None)).await, Step::Continue);
        let heard = heard(&mut rx);
        assert_eq!(
            heard[heard.len() - 2..],
            [
                Echo::Transport(TransportState::Reset),
                Echo::Heard("41".into())
            ]
        );
        // The server lost the session (a restart): a new one, numbered from its welcome.
        link.on_frame(welcome(2, 0)).await;
        assert_eq!(link.resume_point(), Some((SessionId::from_u128(2), 0)));
        assert_eq!(link.on_frame(msg(1, None)).await, Step::Continue);
    }

    #[tokio::test]
    async fn a_topic_cursor_moves_with_the_first_message_after_its_reset() {
        let (mut link, mut rx) = link();
        link.on_frame(welcome(1, 0)).await;
        // The first message of a topic starts its numbering.
        link.on_frame(msg(5, Some("room"))).await;
        assert_eq!(link.topics["room"], 5);
        assert_eq!(link.on_frame(msg(7, Some("room"))).await, Step::Gap);
        assert_eq!(link.on_frame(reset(20, Some("room"))).await, Step::Continue);
        // Until the snapshot's first message arrives, a reconnect asks from 5 again, and
        // is told of the reset (and sent the snapshot) again.
        assert_eq!(link.topics["room"], 5);
        // What the reset already covers is not applied; a jump past it is a gap.
        assert_eq!(link.on_frame(msg(20, Some("room"))).await, Step::Continue);
        assert_eq!(link.on_frame(msg(22, Some("room"))).await, Step::Gap);
        assert_eq!(link.topics["room"], 5);
        assert_eq!(link.on_frame(msg(21, Some("room"))).await, Step::Continue);
        assert_eq!(link.topics["room"], 21);
        assert_eq!(link.on_frame(msg(22, Some("room"))).await, Step::Continue);
        let topic = "room".to_owned();
        assert_eq!(
            heard(&mut rx)[1..],
            [
                Echo::Heard("5".into()),
                Echo::Transport(TransportState::TopicReset { topic }),
                Echo::Heard("21".into()),
                Echo::Heard("22".into()),
            ]
        );
        // Topics number themselves: the session's numbering is untouched.
        assert_eq!(link.last_seq, 0);
    }

    #[tokio::test]
    async fn answers_empty_the_outbox_and_a_version_refusal_is_fatal() {
        let (mut link, mut rx) = link();
        for _ in 0..3 {
            link.shared
                .outbox
                .push(|r| Ok::<_, ()>(wire::Frame::Text(format!("m{r}"))))
                .unwrap()
                .unwrap();
        }
        link.on_frame(ServerFrame::Ack {
            reference: 1,
            id: None,
        })
        .await;
        let refused = ServerFrame::Error {
            code: ErrorCode::BadPayload,
            message: "no".into(),
            reference: Some(2),
            id: None,
        };
        assert_eq!(link.on_frame(refused).await, Step::Continue);
        assert_eq!(
            link.shared.outbox.len(),
            1,
            "an error answers its message too"
        );
        assert!(
            heard(&mut rx).is_empty(),
            "the message's outcome, not the connection's: the stream does not hear of it"
        );
        let mismatch = ServerFrame::Error {
            code: ErrorCode::VersionMismatch,
            message: "another build".into(),
            reference: None,
            id: None,
        };
        assert!(matches!(
            link.on_frame(mismatch).await,
            Step::Fatal(TransportError::Rejected {
                code: ErrorCode::VersionMismatch,
                ..
            })
        ));
        // A frame that does not decode is reported, and changes nothing.
        assert_eq!(link.receive(b"{\"type\":\"nope\"}").await, Step::Continue);
        assert!(matches!(
            &heard(&mut rx)[..],
            [Echo::Transport(TransportState::Error(
                TransportError::Decode { .. }
            ))]
        ));
    }
}
