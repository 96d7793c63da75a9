//! Helpers for tests that drive a real server over real sockets.
#![allow(dead_code)] // Each test file uses a part.

pub mod balancer;
pub mod cluster;
pub mod demo;
pub mod echo;
pub mod feed;
pub mod own_redis;
pub mod proxy;
pub mod relay;
pub mod stuck;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use omni::axum::Router;
use omni::{ClientFrame, ServerFrame};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Serves `router` on a free loopback port.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = omni::axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { omni::axum::serve(listener, router).await.unwrap() });
    addr
}

/// Polls `condition` until it holds, or panics saying what did not happen after [`PATIENCE`].
/// For states that announce no change (a Redis link's health, a registry).
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client speaking v1 frames.
pub struct Client {
    pub socket: Socket,
}

impl Client {
    /// Connects to `ws://addr{path}`.
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}"))
            .await
            .expect("websocket connects");
        Self { socket }
    }

    /// Connects with a receive buffer of a few KiB, so that when this client stops reading
    /// the server's writes to it back up within a few MiB.
    pub async fn connect_with_small_window(addr: SocketAddr, path: &str) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (socket, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}{path}"),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("websocket connects");
        Self { socket }
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.socket
            .send(Message::Text(text.into().into()))
            .await
            .unwrap();
    }

    /// Sends a client frame.
    pub async fn send<C: Serialize>(&mut self, frame: ClientFrame<C>) {
        self.send_text(frame.encode().unwrap()).await;
    }

    /// Sends `payload` as a `msg` with `reference`.
    pub async fn msg<C: Serialize>(&mut self, payload: C, reference: u64) {
        self.send(ClientFrame::Msg {
            payload,
            reference: Some(reference),
            id: None,
        })
        .await;
    }

    /// The next text frame, decoded; panics after [`PATIENCE`].
    pub async fn next<S: DeserializeOwned>(&mut self) -> ServerFrame<S> {
        match self.next_message().await {
            Some(Message::Text(text)) => ServerFrame::decode(text.as_bytes())
                .unwrap_or_else(|e| panic!("undecodable server frame {text}: {e}")),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next message of any kind, or `None` once the connection is closed.
    pub async fn next_message(&mut self) -> Option<Message> {
        match tokio::time::timeout(PATIENCE, self.socket.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(Some(Err(_)) | None) => None,
            Err(_) => panic!("no frame within {PATIENCE:?}"),
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.next_message().await? {
                Message::Close(frame) => return frame.map(|f| u16::from(f.code)),
                _ => continue,
            }
        }
    }

    /// Whether nothing arrives within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.socket.next())
            .await
            .is_err()
    }
}
