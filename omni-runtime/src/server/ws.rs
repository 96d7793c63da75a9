//! The WebSocket transport: per connection a reader, which decodes client frames and runs the
//! handler, and a [`Writer`] task, which owns the socket's sink.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::conn::{ConnRx, Stop};
use super::encoded::Wire;
use super::limits::Limits;
use super::metrics::{FrameIn, Metrics, Transport};
use super::query::Follow;
use super::session::{Attached, Sessions};
use super::writer::{Ended, Writer};
use crate::wire::{Codec, TraceParent};
use crate::{ClientFrame, DecodeError, Dispatch, ErrorCode, Protocol, Seq, SessionId};

/// Runs one WebSocket connection, speaking `codec`, until either side closes it.
///
/// A plain function around the connection's future, so that what is only needed to start
/// it (the socket before its split, the resume parameters) is not kept in the future for the
/// connection's life: an idle connection is mostly this future, and it is made small.
pub(crate) fn run<P, H>(
    hub: Arc<Sessions<P, H>>,
    socket: WebSocket,
    resume: Option<(SessionId, Seq)>,
    follow: Follow,
    extensions: axum::http::Extensions,
    codec: Codec,
    trace: Option<TraceParent>,
) -> impl Future<Output = ()> + Send + use<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let shared = hub.shared.clone();
    // Counted until the close frame is written: a graceful shutdown waits for it.
    let open_guard = shared.tracker.enter();
    shared.metrics.opened(Transport::Ws, codec);
    let (mut conn, rx) = shared.connection(true);
    conn.codec = codec;
    conn.show_presence_as(follow.presence);
    conn.client = follow.client;
    let conn_id = conn.id;
    let stopper = conn.stopper();
    let span = tracing::info_span!(
        "omni.ws",
        session = tracing::field::Empty,
        conn = conn_id,
        traceparent = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some(parent) = trace {
        super::trace::adopt(&span, parent);
    }
    let (mut stream, mut writer) = split(
        socket,
        rx,
        shared.shutdown.subscribe(),
        &shared.limits,
        Wire::new::<P::Server>(codec),
        &span,
    );
    // Boxed: run once, and much larger than the rest of the connection's future.
    let open = Box::pin(Attached::open(
        hub,
        resume,
        conn,
        extensions,
        Value::Null,
        follow.topics,
    ));

    async move {
        let _open = open_guard;
        let attached = open.await;
        // The span this future runs in: not kept apart from it.
        tracing::Span::current()
            .record("session", tracing::field::display(attached.session().id()));
        let max = shared.limits.max_frame_bytes;
        let mut reader = Session { attached, codec };
        let leaving = read_loop(
            &mut stream,
            &mut writer,
            &shared.metrics,
            max,
            &stopper,
            &mut reader,
        )
        .await;
        writer.finish(&shared.metrics).await;
        let closed = async {
            if leaving {
                reader.attached.closed_leaving().await;
            } else {
                reader.attached.closed().await;
            }
        };
        Box::pin(closed).await;
        shared.metrics.closed(Transport::Ws, codec);
    }
    .instrument(span)
}

/// What a socket's reader does with the frames that arrive: the one read loop,
/// [`read_loop`], serves both a session's socket (`/ws`) and a mux socket.
pub(crate) trait Reader: Send {
    /// A text or binary frame within the size limit.
    fn frame(&mut self, incoming: Incoming) -> impl Future<Output = ()> + Send;

    /// Something else the reader waits for beside the socket (a mux: one of its components
    /// ending). Never, by default. Must be cancel safe: a frame may arrive first.
    fn other(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// Reads the socket until the client closes it, it breaks the WebSocket contract (the writer
/// is told to close with the code that says why) or the writer ends (the server closed it, or
/// a write failed). Returns whether the client's close frame said it is leaving for good.
pub(crate) async fn read_loop<R: Reader>(
    stream: &mut SplitStream<WebSocket>,
    writer: &mut WriterTask,
    metrics: &Metrics,
    max: usize,
    stopper: &watch::Sender<Option<Stop>>,
    reader: &mut R,
) -> bool {
    loop {
        let incoming = tokio::select! {
            ended = &mut writer.task => {
                writer.ended(ended, metrics);
                return false;
            }
            () = reader.other() => continue,
            incoming = stream.next() => incoming,
        };
        // Once the writer has closed, a close frame is only the client's answer.
        let leaving = says_leaving(&incoming) && !writer.task.is_finished();
        match read(incoming, max) {
            Incoming::Skip => {}
            Incoming::Refused(stop) => {
                stopper.send_replace(Some(stop));
                return false;
            }
            Incoming::End => return leaving,
            incoming => reader.frame(incoming).await,
        }
    }
}

/// A session's socket: each frame is decoded in the connection's codec and handed to the
/// session.
struct Session<P: Protocol, H> {
    attached: Attached<P, H>,
    codec: Codec,
}

impl<P, H> Reader for Session<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    async fn frame(&mut self, incoming: Incoming) {
        let Some(frame) = decode::<P::Client>(incoming, self.codec) else {
            let (code, message) = wrong_kind(self.codec);
            let core = &self.attached.session().core;
            core.shared
                .metrics
                .frame_in(Transport::Ws, FrameIn::Invalid);
            Metrics::bump(&core.shared.metrics.decode_errors);
            core.error(code, message.into(), None);
            return;
        };
        if self.attached.handle(frame).await {
            let id = self.attached.session().id();
            tracing::Span::current().record("session", tracing::field::display(id));
        }
    }
}

/// A connection's writer task, seen from its reader.
pub(crate) struct WriterTask {
    pub(crate) task: JoinHandle<Ended>,
    reader_gone: Option<oneshot::Sender<()>>,
    done: bool,
}

impl WriterTask {
    /// The writer ended on its own (the server closed the connection, or a write failed).
    pub(crate) fn ended(
        &mut self,
        ended: Result<Ended, tokio::task::JoinError>,
        metrics: &Metrics,
    ) {
        self.done = true;
        if let Ok(Ended::Stuck) = ended {
            Metrics::bump(&metrics.slow_consumers);
            Metrics::bump(&metrics.write_timeouts);
        }
    }

    /// The reader is done: lets the writer finish what it is doing (a `too_large` close, the
    /// answer to the client's close) and waits for it. Every write is bounded by the write
    /// timeout, so this is too.
    pub(crate) async fn finish(mut self, metrics: &Metrics) {
        self.reader_gone.take();
        if !self.done {
            let ended = (&mut self.task).await;
            self.ended(ended, metrics);
        }
    }
}

/// Splits `socket`: its sink goes to a new writer task draining `rx`, its stream stays with
/// the caller, the reader.
pub(crate) fn split(
    socket: WebSocket,
    rx: ConnRx,
    shutdown: watch::Receiver<bool>,
    limits: &Limits,
    wire: Wire,
    span: &tracing::Span,
) -> (SplitStream<WebSocket>, WriterTask) {
    let (sink, stream) = socket.split();
    let (reader_gone, gone) = oneshot::channel();
    let writer = Writer::new(sink, rx, shutdown, limits, wire);
    let task = tokio::spawn(writer.run(gone).instrument(span.clone()));
    let writer = WriterTask {
        task,
        reader_gone: Some(reader_gone),
        done: false,
    };
    (stream, writer)
}

/// What a read from the socket gave.
pub(crate) enum Incoming {
    /// A text frame within the size limit.
    Text(Utf8Bytes),
    /// A binary frame within the size limit.
    Binary(Bytes),
    /// A ping or pong.
    Skip,
    /// The client broke the WebSocket contract (a frame over the size limit, a text frame
    /// that is not UTF-8): the writer says why and closes with this code.
    Refused(Stop),
    /// The client closed the connection, or it failed.
    End,
}

/// Sorts out one read, enforcing the frame size limit `max`.
pub(crate) fn read(incoming: Option<Result<Message, axum::Error>>, max: usize) -> Incoming {
    match incoming {
        Some(Ok(Message::Text(text))) if text.len() > max => Incoming::Refused(Stop::TOO_LARGE),
        Some(Ok(Message::Text(text))) => Incoming::Text(text),
        Some(Ok(Message::Binary(bytes))) if bytes.len() > max => Incoming::Refused(Stop::TOO_LARGE),
        Some(Ok(Message::Binary(bytes))) => Incoming::Binary(bytes),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Incoming::Skip,
        Some(Ok(Message::Close(_))) | None => Incoming::End,
        Some(Err(err)) => {
            let cause = std::error::Error::source(&err)
                .and_then(|source| source.downcast_ref::<tungstenite::Error>());
            match cause {
                Some(tungstenite::Error::Capacity(_)) => Incoming::Refused(Stop::TOO_LARGE),
                Some(tungstenite::Error::Utf8(_)) => Incoming::Refused(Stop::INVALID_UTF8),
                _ => {
                    tracing::debug!(%err, "websocket read failed");
                    Incoming::End
                }
            }
        }
    }
}

/// Whether a read is a close frame saying the client is leaving for good: 1000 (normal
/// closure: `client.close()`) or 1001 (going away: a closed tab). A close without a code, or
/// with another one, is a client that means to come back (it closes to resume after a gap).
pub(crate) fn says_leaving(incoming: &Option<Result<Message, axum::Error>>) -> bool {
    matches!(incoming, Some(Ok(Message::Close(Some(frame)))) if matches!(frame.code, 1000 | 1001))
}

/// Decodes a text or binary frame in `codec`; `None` for a frame of the other kind, which is
/// answered with [`wrong_kind`]'s error.
pub(crate) fn decode<C: serde::de::DeserializeOwned>(
    incoming: Incoming,
    codec: Codec,
) -> Option<Result<ClientFrame<C>, DecodeError>> {
    match (incoming, codec) {
        (Incoming::Binary(bytes), Codec::MsgPack) => Some(ClientFrame::decode_msgpack(&bytes)),
        (Incoming::Text(text), Codec::Json) => Some(ClientFrame::decode_str(text.as_str())),
        _ => None,
    }
}

/// The error a frame of the wrong kind for the connection's codec gets.
pub(crate) fn wrong_kind(codec: Codec) -> (ErrorCode, &'static str) {
    let message = match codec {
        Codec::MsgPack => {
            "frames on this connection are MessagePack, in binary frames; text frames are not accepted"
        }
        _ => {
            "frames are JSON text; binary frames are not accepted (connect with `?codec=msgpack` for MessagePack)"
        }
    };
    (ErrorCode::BadFrame, message)
}

/// An upgrade with the endpoint's read buffer and size limits.
pub(crate) fn configure(upgrade: WebSocketUpgrade, limits: &Limits) -> WebSocketUpgrade {
    // Our own check at `max_frame_bytes` answers with `too_large` and a clean close;
    // tungstenite's limit only stops frames too large to be worth buffering at all, and then
    // the close may be lost to a reset connection.
    let hard = limits.max_frame_bytes.saturating_mul(4).max(1024 * 1024);
    upgrade
        .read_buffer_size(limits.read_buffer_bytes)
        .max_message_size(hard)
        .max_frame_size(hard)
}
