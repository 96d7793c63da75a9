//! The writer of a WebSocket: the one task that writes to the socket.
//!
//! A connection's reader decodes client frames and runs the handler; everything that goes
//! out — replies, broadcasts, replays, errors, the close — reaches the socket through the
//! connection's queue and this task. So a handler that awaits (a database call) never holds
//! up its client's broadcasts, and a client that stops reading is noticed by its writer alone:
//! its queue overflows, or one write makes no progress for the write timeout.

use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::{oneshot, watch};

use super::conn::{ConnRx, Item, Stop, shutting_down};
use super::encoded::Wire;
use super::limits::Limits;
use crate::{ErrorCode, ServerFrame};

/// Frames written before one flush, at most: a reply and its `ack` leave in one write, and a
/// long queue still reaches the socket in bounded pieces.
const BATCH: usize = 64;

/// How a writer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The server closed the connection (with this close frame), or the reader ended first.
    Closed(Option<Stop>),
    /// A write made no progress for the write timeout: the client stopped reading.
    Stuck,
    /// The socket failed.
    Gone,
}

/// The writing half of one WebSocket, and what it drains.
pub(crate) struct Writer {
    sink: SplitSink<WebSocket, Message>,
    rx: ConnRx,
    shutdown: watch::Receiver<bool>,
    timeout: Duration,
    max_frame_bytes: usize,
    wire: Wire,
}

/// What, besides the queue, ends a writer.
enum Control {
    /// The stop signal fired.
    Stop,
    /// The endpoint is shutting down.
    Shutdown,
    /// The reader is done.
    ReaderGone,
}

/// Why the write loop stopped.
enum Halt {
    Close(Option<Stop>),
    Failed(Ended),
}

impl Writer {
    pub(crate) fn new(
        sink: SplitSink<WebSocket, Message>,
        rx: ConnRx,
        shutdown: watch::Receiver<bool>,
        limits: &Limits,
        wire: Wire,
    ) -> Self {
        Self {
            sink,
            rx,
            shutdown,
            timeout: limits.write_timeout,
            max_frame_bytes: limits.max_frame_bytes,
            wire,
        }
    }

    /// Writes the queue until the connection is closed: by the server (a queued close, the
    /// stop signal, shutdown), by a failed or stuck write, or because `reader_gone` fired
    /// (the client closed; what it did not read no longer matters).
    pub(crate) async fn run(mut self, reader_gone: oneshot::Receiver<()>) -> Ended {
        // What ends the loop besides the queue, made once: a turn of the loop polls it again,
        // it never builds and registers it anew.
        let mut stop = self.rx.stop.clone();
        let mut shutdown = self.shutdown.clone();
        let mut control = pin!(async {
            tokio::select! {
                biased;
                _ = stop.changed() => Control::Stop,
                () = shutting_down(&mut shutdown) => Control::Shutdown,
                _ = reader_gone => Control::ReaderGone,
            }
        });
        let halt = loop {
            tokio::select! {
                // Writing first keeps the queue short while a client floods the reader.
                biased;
                item = self.rx.frames.recv() => match item {
                    Some(item) => match self.write(item).await {
                        Ok(None) => {}
                        Ok(Some(stop)) => break Halt::Close(Some(stop)),
                        Err(halt) => break halt,
                    },
                    // Every handle is gone: the session ended or moved this connection on, and
                    // says why through the stop signal (4000 when it was resumed elsewhere).
                    None => break self.stopped().await,
                },
                control = &mut control => match control {
                    Control::Stop => break self.stopped().await,
                    Control::Shutdown => break Halt::Close(Some(Stop::GOING_AWAY)),
                    Control::ReaderGone => {
                        // A close the client sent is answered by the WebSocket layer on flush.
                        let _ = bounded(self.timeout, self.sink.flush()).await;
                        break Halt::Close(None);
                    }
                },
            }
        };
        match halt {
            Halt::Close(stop) => {
                if let Some(stop) = stop {
                    let close = Message::Close(Some(CloseFrame {
                        code: stop.code,
                        reason: Utf8Bytes::from_static(stop.reason),
                    }));
                    let _ = bounded(self.timeout, self.sink.send(close)).await;
                }
                Ended::Closed(stop)
            }
            Halt::Failed(ended) => ended,
        }
    }

    /// Writes `first` and whatever else is already queued (up to a batch), then flushes once.
    /// Returns a close that was queued, if any. Each socket operation is bounded by the write
    /// timeout on its own, so a client that reads slowly but steadily is served however long
    /// the batch takes, and one that stops reading is cut after one timeout.
    async fn write(&mut self, first: Item) -> Result<Option<Stop>, Halt> {
        write_batch(&mut self.sink, &mut self.rx, self.wire, self.timeout, first)
            .await
            .map_err(Halt::Failed)
    }

    /// The stop signal fired: tells the client why when it is its doing (it could not keep
    /// up, or sent a frame too large), skipping the queue, and closes.
    async fn stopped(&mut self) -> Halt {
        let stop = *self.rx.stop.borrow_and_update();
        let frame = match stop {
            Some(Stop::SLOW_CONSUMER) => Some(ServerFrame::<()>::error(
                ErrorCode::SlowConsumer,
                "the connection could not keep up with its messages",
            )),
            Some(Stop::TOO_LARGE) => Some(too_large(self.max_frame_bytes)),
            Some(Stop::INVALID_UTF8) => Some(ServerFrame::<()>::error(
                ErrorCode::BadFrame,
                "a text frame must be UTF-8",
            )),
            _ => None,
        };
        if let Some(frame) = frame
            && let Some(message) = self.wire.encode(&frame)
            && let Err(ended) = bounded(self.timeout, self.sink.send(message)).await
        {
            return Halt::Failed(ended);
        }
        Halt::Close(stop)
    }
}

/// See [`Writer::write`].
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut ConnRx,
    wire: Wire,
    timeout: Duration,
    first: Item,
) -> Result<Option<Stop>, Ended> {
    let mut item = first;
    for written in 1.. {
        match item.ready() {
            Item::Frame(frame, to) => {
                bounded(timeout, sink.feed(frame.message(wire, to.as_ref()))).await?;
            }
            Item::Replay(frames, to) => {
                for frame in &frames {
                    bounded(timeout, sink.feed(frame.message(wire, to.as_ref()))).await?;
                }
            }
            Item::Left(id) => {
                let left = ServerFrame::<()>::Left {
                    id: id.as_str().to_owned(),
                };
                if let Some(message) = wire.encode(&left) {
                    bounded(timeout, sink.feed(message)).await?;
                }
            }
            Item::Close(stop) => {
                bounded(timeout, sink.flush()).await?;
                return Ok(Some(stop));
            }
            // Made ready above.
            Item::Refresh(..) => {}
        }
        if written == BATCH {
            break;
        }
        match rx.frames.try_recv() {
            Some(next) => item = next,
            None => break,
        }
    }
    bounded(timeout, sink.flush()).await?;
    Ok(None)
}

/// One socket operation, bounded by the write timeout. Nearly every write completes at once
/// (into the socket's buffer): the timer is armed only for one that has to wait. An operation
/// writes at most one frame and what tungstenite buffered before it, so a client that takes
/// longer than the timeout over one operation has, for practical purposes, stopped reading.
async fn bounded<T>(
    timeout: Duration,
    op: impl Future<Output = Result<T, axum::Error>>,
) -> Result<T, Ended> {
    let mut op = pin!(op);
    let first = std::future::poll_fn(|cx| Poll::Ready(op.as_mut().poll(cx))).await;
    let outcome = match first {
        Poll::Ready(outcome) => Ok(outcome),
        Poll::Pending => tokio::time::timeout(timeout, op).await,
    };
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            tracing::debug!(%err, "websocket write failed");
            Err(Ended::Gone)
        }
        Err(_) => {
            tracing::warn!(
                ?timeout,
                "a write made no progress: closing as slow consumer"
            );
            Err(Ended::Stuck)
        }
    }
}

/// The `too_large` error for a frame over `max` bytes.
pub(crate) fn too_large(max: usize) -> ServerFrame<()> {
    ServerFrame::error(
        ErrorCode::TooLarge,
        format!("a frame may be at most {max} bytes"),
    )
}
