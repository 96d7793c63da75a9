//! Serving a router with the defaults a server facing the internet needs.
//!
//! `axum::serve` is a fine start, but it sets no timer on its connections, so a client that
//! sends half a request line is held open forever, and it knows nothing of upgraded
//! connections at shutdown. [`Server`] serves the same router with a header read timeout,
//! `TCP_NODELAY` (omni's frames are small and interactive), and, given a [`Shutdown`], a
//! graceful stop that closes every WebSocket and event stream with 1001 and waits for them.
//! [`bind`] makes its listener with an accept backlog of your choosing.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use omni::server::{Endpoint, Server, Shutdown};
//! use omni::{Context, HandlerResult};
//!
//! #[omni::protocol]
//! #[derive(Debug, Clone, PartialEq)]
//! enum Echo {
//!     #[client]
//!     Say(String),
//!     #[server]
//!     Heard(String),
//! }
//!
//! struct Parrot;
//!
//! impl EchoHandler for Parrot {
//!     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
//!         cx.send(EchoFromServer::Heard(text));
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
//! let app = omni::axum::Router::new().nest("/omni", endpoint.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! Server::new()
//!     .header_read_timeout(Duration::from_secs(5))
//!     .shutdown(Shutdown::new().endpoint(&endpoint))
//!     .serve(listener, app)
//!     .await
//! # }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};

use super::io::Watched;
use super::shutdown::Shutdown;

/// How a router is served: HTTP/1 and HTTP/2 (h2c, or over TLS when the config offers `h2` by
/// ALPN), the peer's address for `ConnectInfo<SocketAddr>`, a header read timeout, a write
/// timeout, `TCP_NODELAY`, and a graceful shutdown.
#[derive(Clone)]
#[must_use]
pub struct Server {
    header_read_timeout: Duration,
    write_timeout: Duration,
    shutdown: Option<Shutdown>,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// How long a client may take over its TLS handshake.
#[cfg(feature = "tls")]
const HANDSHAKE: Duration = Duration::from_secs(10);

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A header read timeout of 10 s, a write timeout of 5 s, no graceful shutdown.
    pub fn new() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            shutdown: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// How long a client may take to send a request's headers, and to send its first byte
    /// at all (after the TLS handshake, on HTTPS); a slower one is disconnected, so that
    /// stalled requests and silent sockets hold no connection open.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a write to a client may make no progress at all before the connection is
    /// dropped, on every transport: a response, an event stream, a WebSocket. A client that
    /// reads slowly but steadily is never cut. A connection dropped so is reset, so that the
    /// kernel does not go on holding what it could not send.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Stops on SIGINT or SIGTERM: stops accepting, closes every connection of `shutdown`'s
    /// endpoints and muxes with 1001, and waits for them (and for HTTP requests in flight)
    /// for its drain time before [`serve`](Self::serve) returns.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Serves HTTPS and WSS with `config` (rustls) instead of plain HTTP: a client's
    /// handshake is bounded like its headers, and shutdown waits for one under way too.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
    }

    /// Serves `router` on `listener` until the shutdown signal (forever without one).
    pub async fn serve(self, listener: TcpListener, router: Router) -> std::io::Result<()> {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let graceful = GracefulShutdown::new();
        let signal = match &self.shutdown {
            Some(shutdown) => futures_util::future::Either::Left(shutdown.signal()),
            None => futures_util::future::Either::Right(std::future::pending()),
        };
        let mut signal = std::pin::pin!(signal);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors, mostly: a moment later some are free again.
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            let _ = tcp.set_nodelay(true);
            let tcp = Watched::new(tcp, self.header_read_timeout, self.write_timeout);
            // As `into_make_service_with_connect_info` does: `ConnectInfo<SocketAddr>` works.
            let service =
                tower_layer::Layer::layer(&axum::Extension(ConnectInfo(peer)), router.clone());
            let service = TowerToHyperService::new(service);
            // Watched from the start, so that shutdown also waits for a handshake under way.
            let (builder, watcher) = (builder.clone(), graceful.watcher());
            #[cfg(feature = "tls")]
            let tls = self.tls.clone();
            tokio::spawn(async move {
                #[cfg(feature = "tls")]
                if let Some(acceptor) = tls {
                    let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                        Ok(Ok(mut stream)) => {
                            stream.get_mut().0.expect_request();
                            stream
                        }
                        // A client that does not trust the certificate says so, and is gone.
                        Ok(Err(err)) => return tracing::debug!(%err, "TLS handshake failed"),
                        Err(_) => return tracing::debug!("TLS handshake timed out"),
                    };
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    return ended(watcher.watch(connection.into_owned()).await);
                }
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                ended(watcher.watch(connection.into_owned()).await);
            });
        }
        drop(listener);
        if let Some(shutdown) = &self.shutdown {
            // HTTP requests in flight finish; upgraded connections were closed by the signal.
            let _ = tokio::time::timeout(shutdown.drain_time(), graceful.shutdown()).await;
            shutdown.drained().await;
        }
        Ok(())
    }
}

/// A listener on `addr` whose kernel queue holds up to `backlog` connections not yet accepted.
///
/// `TcpListener::bind` asks for 1024. When thousands of clients reconnect at once (after a
/// restart, or a network blip), a short queue overflows and the kernel drops their handshakes,
/// which they retry only after a backoff; a long queue lets the server take them at its own
/// pace. The kernel caps `backlog` at `net.core.somaxconn` on Linux. Like tokio's `bind`, it
/// sets `SO_REUSEADDR`, so a restarted server binds the port its predecessor left.
/// Call it inside a tokio runtime.
///
/// ```no_run
/// use omni::server::{Server, bind};
///
/// # async fn run(app: omni::axum::Router) -> std::io::Result<()> {
/// let listener = bind(([127, 0, 0, 1], 3000), 8192)?;
/// Server::new().serve(listener, app).await
/// # }
/// ```
pub fn bind(addr: impl Into<SocketAddr>, backlog: u32) -> std::io::Result<TcpListener> {
    let addr = addr.into();
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Logs how a connection ended, if not well.
fn ended(outcome: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(err) = outcome {
        tracing::debug!(%err, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn bind_listens_with_the_backlog_and_accepts() {
        let listener = bind(([127, 0, 0, 1], 0), 4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        client.write_all(b"hi").await.unwrap();
        let mut got = [0; 2];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hi");
    }
}
