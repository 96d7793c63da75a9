//! The WebSocket transport: one task per connection, reading client frames and writing the
//! connection's outbound queue.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures_util::SinkExt;
use tracing::Instrument;

use super::core::{ConnRx, Item, Stop, shutting_down};
use super::hub::{Flow, Hub};
use super::metrics::Metrics;
use crate::SessionId;
use crate::{ClientFrame, Cursors, DecodeError, Dispatch, ErrorCode, Protocol, Seq, ServerFrame};

/// Runs one WebSocket connection until either side closes it.
pub(crate) async fn run<P, H>(
    hub: Arc<Hub<P, H>>,
    mut socket: WebSocket,
    resume: Option<(SessionId, Seq)>,
    topics: Option<Cursors>,
    extensions: axum::http::Extensions,
) where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let shared = hub.shared.clone();
    Metrics::bump(&shared.metrics.connections_opened);
    let (
        conn,
        ConnRx {
            mut frames,
            mut stop,
        },
    ) = shared.connection(true);
    let conn_id = conn.id;
    let mut session = hub
        .open(resume, conn, extensions, serde_json::Value::Null, topics)
        .await;
    let mut shutdown = shared.shutdown.subscribe();
    let max = shared.limits.max_frame_bytes;
    let span = tracing::info_span!("omni.ws", session = %session.id(), conn = conn_id);

    async {
        let reason = loop {
            tokio::select! {
                // Writing first keeps the queue short when a client floods us with messages.
                biased;
                item = frames.recv() => match write(&mut socket, item, &mut frames, &mut Vec::new()).await {
                    Ok(None) => {}
                    Ok(Some(stop)) => break Some(stop),
                    Err(()) => break None,
                },
                _ = stop.changed() => break stopped(&mut socket, &mut stop).await,
                _ = shutting_down(&mut shutdown) => break Some(Stop::GOING_AWAY),
                incoming = socket.recv() => {
                    let text = match read(&mut socket, incoming, max).await {
                        Incoming::Text(text) => text,
                        Incoming::Binary => {
                            let (code, message) = binary();
                            session.core.error(code, message.into(), None);
                            continue;
                        }
                        Incoming::Skip => continue,
                        Incoming::End(stop) => break stop,
                    };
                    let frame: Result<ClientFrame<P::Client>, DecodeError> =
                        ClientFrame::decode(text.as_bytes());
                    if let Flow::Switch(to) = hub.handle(&session, conn_id, frame).await {
                        tracing::Span::current().record("session", tracing::field::display(to.id()));
                        session = to;
                    }
                }
            }
        };
        close(&mut socket, reason).await;
        hub.closed(&session, conn_id).await;
        Metrics::bump(&shared.metrics.connections_closed);
    }
    .instrument(span)
    .await;
}

/// Writes `first` and whatever else is already queued (up to a batch), then flushes once:
/// a reply and its `ack` leave in one write. Returns a close that was queued, if any; `Err`
/// when the socket is gone. Mux components that stopped are announced with `left` and
/// added to `left`.
pub(crate) async fn write(
    socket: &mut WebSocket,
    first: Option<Item>,
    frames: &mut tokio::sync::mpsc::Receiver<Item>,
    left: &mut Vec<std::sync::Arc<str>>,
) -> Result<Option<Stop>, ()> {
    const BATCH: usize = 64;
    let mut item = first;
    for written in 1.. {
        match item {
            Some(Item::Frame(frame)) => {
                let message = Message::Text(frame.bytes().clone());
                socket.feed(message).await.map_err(drop)?;
            }
            Some(Item::Replay(frames)) => {
                for frame in frames {
                    let message = Message::Text(frame.bytes().clone());
                    socket.feed(message).await.map_err(drop)?;
                }
            }
            Some(Item::Left(id)) => {
                let frame = ServerFrame::<()>::Left { id: id.to_string() };
                if let Ok(text) = frame.encode() {
                    socket
                        .feed(Message::Text(text.into()))
                        .await
                        .map_err(drop)?;
                }
                left.push(id);
            }
            Some(Item::Close(stop)) => {
                socket.flush().await.map_err(drop)?;
                return Ok(Some(stop));
            }
            None => return Err(()),
        }
        if written == BATCH {
            break;
        }
        match frames.try_recv() {
            Ok(next) => item = Some(next),
            Err(_) => break,
        }
    }
    socket.flush().await.map_err(drop)?;
    Ok(None)
}

/// The connection's stop signal fired: says why to a slow consumer, and returns the stop.
pub(crate) async fn stopped(
    socket: &mut WebSocket,
    stop: &mut tokio::sync::watch::Receiver<Option<Stop>>,
) -> Option<Stop> {
    let reason = *stop.borrow_and_update();
    if reason == Some(Stop::SLOW_CONSUMER) {
        // Skips the full queue: this is the one frame that must get through.
        let frame = ServerFrame::<()>::error(
            ErrorCode::SlowConsumer,
            "the connection could not keep up with its messages",
        );
        send_frame(socket, &frame).await;
    }
    reason
}

/// What a read from the socket gave.
pub(crate) enum Incoming {
    /// A text frame within the size limit.
    Text(Utf8Bytes),
    /// A binary frame: answered with [`binary`]'s error.
    Binary,
    /// A ping or pong.
    Skip,
    /// The connection is over, with the close to send if any (`too_large` was sent).
    End(Option<Stop>),
}

/// Sorts out one read, enforcing the frame size limit `max`.
pub(crate) async fn read(
    socket: &mut WebSocket,
    incoming: Option<Result<Message, axum::Error>>,
    max: usize,
) -> Incoming {
    let text = match incoming {
        Some(Ok(Message::Text(text))) => text,
        Some(Ok(Message::Binary(_))) => return Incoming::Binary,
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Incoming::Skip,
        Some(Ok(Message::Close(_))) | None => return Incoming::End(None),
        Some(Err(err)) if too_large(&err) => {
            send_frame(socket, &too_large_frame(max)).await;
            return Incoming::End(Some(Stop::TOO_LARGE));
        }
        Some(Err(err)) => {
            tracing::debug!(%err, "websocket read failed");
            return Incoming::End(None);
        }
    };
    if text.len() > max {
        send_frame(socket, &too_large_frame(max)).await;
        return Incoming::End(Some(Stop::TOO_LARGE));
    }
    Incoming::Text(text)
}

/// The error a binary frame gets.
pub(crate) fn binary() -> (ErrorCode, &'static str) {
    (
        ErrorCode::BadFrame,
        "frames are JSON text; binary frames are not accepted",
    )
}

/// Sends the close frame for `reason`, if the server is the one closing.
pub(crate) async fn close(socket: &mut WebSocket, reason: Option<Stop>) {
    if let Some(stop) = reason {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: stop.code,
                reason: Utf8Bytes::from_static(stop.reason),
            })))
            .await;
    }
}

/// An upgrade with the endpoint's read buffer and size limits.
pub(crate) fn configure(upgrade: WebSocketUpgrade, limits: &super::Limits) -> WebSocketUpgrade {
    // Our own check at `max_frame_bytes` answers with `too_large` and a clean close;
    // tungstenite's limit only stops frames too large to be worth buffering at all, and then
    // the close may be lost to a reset connection.
    let hard = limits.max_frame_bytes.saturating_mul(4).max(1024 * 1024);
    upgrade
        .read_buffer_size(limits.read_buffer_bytes)
        .max_message_size(hard)
        .max_frame_size(hard)
}

fn too_large_frame(max: usize) -> ServerFrame<()> {
    ServerFrame::error(
        ErrorCode::TooLarge,
        format!("a frame may be at most {max} bytes"),
    )
}

async fn send_frame(socket: &mut WebSocket, frame: &ServerFrame<()>) {
    if let Ok(text) = frame.encode() {
        let _ = socket.send(Message::Text(text.into())).await;
    }
}

/// Whether a read failed because a message exceeded tungstenite's own size limit (which is
/// set above ours, so this only happens for frames far too large to even buffer).
fn too_large(err: &axum::Error) -> bool {
    let text = err.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big")
}
