//! A WebSocket peer that stops: it completes the handshake, may send one frame, and then
//! neither reads nor writes again while keeping the connection open, as a server does that is
//! wedged, or whose path died without a word. A client writing to it soon has its writes stuck.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

pub struct Stuck {
    pub addr: SocketAddr,
    accepted: Arc<AtomicU64>,
}

impl Stuck {
    /// Listens on a free loopback port; every connection gets `first` (if any) and then
    /// silence. Connections are held for `hold`, then dropped, so nothing outlives the test
    /// for long.
    pub async fn start(first: Option<String>, hold: Duration) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        // A small receive buffer, so that a client's writes back up after a few KiB.
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(16).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let first = first.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    if let Some(text) = first {
                        let _ = ws.send(Message::Text(text.into())).await;
                    }
                    tokio::time::sleep(hold).await;
                    drop(ws);
                });
            }
        });
        Self { addr, accepted }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// A `welcome` for a fresh session of `protocol`, as a server sends it on connect.
pub fn welcome(protocol: &str) -> String {
    format!(
        r#"{{"type":"welcome","session":"{:032x}","seq":0,"resumed":false,"protocol":"{protocol}","version":"0"}}"#,
        7u128
    )
}

/// The `welcome` of mux component `id`.
pub fn component_welcome(protocol: &str, id: &str) -> String {
    let welcome = welcome(protocol);
    format!(r#"{},"id":"{id}"}}"#, welcome.trim_end_matches('}'))
}
