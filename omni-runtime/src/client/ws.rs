//! The WebSocket transport.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::link::{Ended, Link, Step, fatal_init, refused};
use super::{Config, url_for};
use crate::Protocol;

/// One WebSocket connection, from connect to its end.
pub(crate) async fn connection<P: Protocol>(link: &mut Link<P>, config: &Config) -> Ended {
    let url = match url_for(
        &config.url,
        "ws",
        true,
        link.resume_point(),
        Some(&link.topics),
    ) {
        Ok(url) => url,
        Err(message) => return fatal_init(message),
    };
    let ws_config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let connect = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config), true);
    let (mut socket, _) = match tokio::time::timeout(config.connect_timeout, connect).await {
        Err(_) => return Ended::dropped("connect timed out", false),
        Ok(Err(WsError::Http(response))) => {
            let status = response.status().as_u16();
            let ended = Ended {
                code: status,
                reason: format!("handshake refused with HTTP {status}"),
                connected: false,
                fatal: None,
            };
            return refused(ended, status);
        }
        Ok(Err(err)) => return Ended::dropped(err.to_string(), false),
        Ok(Ok(connected)) => connected,
    };

    // The server refuses a client built from another version of the protocol enum.
    if socket
        .send(Message::Text(super::hello::<P>(None, None).into()))
        .await
        .is_err()
    {
        return Ended::dropped("connection closed", false);
    }
    let mut connected = false;
    let mut last_heard = Instant::now();
    let heartbeat = config.heartbeat;
    let mut ticks = tokio::time::interval(heartbeat.interval);
    ticks.tick().await;
    let mut closed = link.shared.closed.subscribe();
    let closed = super::closed(&mut closed);
    tokio::pin!(closed);
    loop {
        tokio::select! {
            incoming = socket.next() => {
                last_heard = Instant::now();
                let message = match incoming {
                    Some(Ok(message)) => message,
                    Some(Err(err)) => return Ended::dropped(err.to_string(), connected),
                    None => return Ended::dropped("connection closed", connected),
                };
                match message {
                    Message::Text(text) => match link.on_text(text.as_bytes()).await {
                        Step::Continue => {}
                        Step::Welcomed => {
                            connected = true;
                            // Everything unanswered goes again on a new connection; the
                            // server acknowledges what it already handled without redoing it.
                            link.shared.outbox.lock().unwrap().reconnected();
                            if let Err(ended) = flush(&mut socket, &link.shared).await {
                                return ended.connected_if(connected);
                            }
                        }
                        Step::Gap => {
                            let _ = socket.close(None).await;
                            return Ended::dropped("missed frames; resuming", connected);
                        }
                        Step::Fatal(error) => {
                            let _ = socket.close(None).await;
                            return Ended { code: 1008, reason: error.to_string(), connected, fatal: Some(error) };
                        }
                    },
                    Message::Close(frame) => {
                        let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                        return Ended { code, reason, connected, fatal: None };
                    }
                    _ => {}
                }
            }
            _ = link.shared.wake.notified(), if connected => {
                if let Err(ended) = flush(&mut socket, &link.shared).await {
                    return ended.connected_if(connected);
                }
            }
            _ = ticks.tick() => {
                if let Err(ended) = beat(&mut socket, last_heard, heartbeat, connected).await {
                    return ended;
                }
            }
            _ = &mut closed => return close(&mut socket, connected).await,
        }
    }
}

/// One heartbeat tick: the connection is over if nothing was heard for too long (half-open:
/// the peer is gone without a word); otherwise it is probed with a ping.
pub(crate) async fn beat(
    socket: &mut Socket,
    last_heard: Instant,
    heartbeat: super::Heartbeat,
    connected: bool,
) -> Result<(), Ended> {
    if last_heard.elapsed() > heartbeat.interval + heartbeat.timeout {
        return Err(Ended::dropped("heartbeat timed out", connected));
    }
    if socket
        .send(Message::Ping(Default::default()))
        .await
        .is_err()
    {
        return Err(Ended::dropped("ping failed", connected));
    }
    Ok(())
}

/// The application closed the client: closes the socket.
pub(crate) async fn close(socket: &mut Socket, connected: bool) -> Ended {
    let _ = socket.close(None).await;
    Ended {
        code: 1000,
        reason: "closed by the client".into(),
        connected,
        fatal: None,
    }
}

/// A client's WebSocket.
pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends the outbox's unsent frames in one write.
pub(crate) async fn flush(socket: &mut Socket, shared: &super::Shared) -> Result<(), Ended> {
    let frames = shared
        .outbox
        .lock()
        .unwrap()
        .take_unsent(super::outbox::Batch::ALL);
    for text in frames {
        socket
            .feed(Message::Text(text.into()))
            .await
            .map_err(|e| Ended::dropped(e.to_string(), true))?;
    }
    socket
        .flush()
        .await
        .map_err(|e| Ended::dropped(e.to_string(), true))
}
