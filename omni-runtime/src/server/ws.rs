//! The WebSocket transport: one task per connection, reading client frames and writing the
//! connection's outbound queue.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
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
                _ = stop.changed() => {
                    let reason = *stop.borrow_and_update();
                    if reason == Some(Stop::SLOW_CONSUMER) {
                        // Skips the full queue: this is the one frame that must get through.
                        let frame = ServerFrame::<()>::error(
                            ErrorCode::SlowConsumer,
                            "the connection could not keep up with its messages",
                        );
                        send_frame(&mut socket, &frame).await;
                    }
                    break reason;
                }
                _ = shutting_down(&mut shutdown) => break Some(Stop::GOING_AWAY),
                incoming = socket.recv() => {
                    let text = match incoming {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_))) => {
                            session.core.error(
                                ErrorCode::BadFrame,
                                "frames are JSON text; binary frames are not accepted".into(),
                                None,
                            );
                            continue;
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_))) | None => break None,
                        Some(Err(err)) if too_large(&err) => {
                            send_frame(&mut socket, &too_large_frame(max)).await;
                            break Some(Stop::TOO_LARGE);
                        }
                        Some(Err(err)) => {
                            tracing::debug!(%err, "websocket read failed");
                            break None;
                        }
                    };
                    if text.len() > max {
                        send_frame(&mut socket, &too_large_frame(max)).await;
                        break Some(Stop::TOO_LARGE);
                    }
                    let frame: Result<ClientFrame<P::Client>, DecodeError> =
                        ClientFrame::decode(text.as_bytes());
                    if let Flow::Switch(to) = hub.handle(&session, conn_id, frame).await {
                        tracing::Span::current().record("session", tracing::field::display(to.id()));
                        session = to;
                    }
                }
            }
        };
        if let Some(stop) = reason {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: stop.code,
                    reason: Utf8Bytes::from_static(stop.reason),
                })))
                .await;
        }
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

pub(crate) fn too_large_frame(max: usize) -> ServerFrame<()> {
    ServerFrame::error(
        ErrorCode::TooLarge,
        format!("a frame may be at most {max} bytes"),
    )
}

pub(crate) async fn send_frame(socket: &mut WebSocket, frame: &ServerFrame<()>) {
    if let Ok(text) = frame.encode() {
        let _ = socket.send(Message::Text(text.into())).await;
    }
}

/// Whether a read failed because a message exceeded tungstenite's own size limit (which is
/// set above ours, so this only happens for frames far too large to even buffer).
pub(crate) fn too_large(err: &axum::Error) -> bool {
    let text = err.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big")
}
