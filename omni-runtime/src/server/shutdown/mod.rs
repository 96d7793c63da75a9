//! Graceful shutdown: on SIGINT or SIGTERM, every connection gets a close frame (1001) and
//! the process waits, for a bounded time, until each has actually been written.
//!
//! axum's graceful shutdown stops accepting and waits for HTTP connections, but a WebSocket
//! or an event stream lives on its own once upgraded: a server that returns from
//! `axum::serve` and exits drops them mid-write, and most clients see a reset instead of a
//! closing handshake. [`Shutdown`] closes them and waits for them.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use omni::server::{Endpoint, Shutdown};
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
//! let shutdown = Shutdown::new().endpoint(&endpoint).drain(Duration::from_secs(5));
//! let app = omni::axum::Router::new().nest("/omni", endpoint.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! omni::axum::serve(listener, app)
//!     .with_graceful_shutdown(shutdown.signal())
//!     .await?;
//! // Every client has its close frame before the process exits.
//! shutdown.drained().await;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

pub(super) mod tracker;

use self::tracker::Tracker;
use super::endpoint::Endpoint;
use super::metrics::Metrics;
use super::mux::Mux;
use crate::{Dispatch, Protocol};

/// Something that closes its connections on request and says when they are gone.
trait Target: Send + Sync {
    fn close_all(&self);
    fn tracker(&self) -> Arc<Tracker>;
    /// Whether it can serve a new client now.
    fn ready(&self) -> Result<(), String>;
    /// Its counters, where the drain's length is kept.
    fn metrics(&self) -> &Metrics;
}

impl<P, H> Target for Endpoint<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    fn close_all(&self) {
        self.shutdown();
    }

    fn tracker(&self) -> Arc<Tracker> {
        self.registry().shared.tracker.clone()
    }

    fn ready(&self) -> Result<(), String> {
        self.registry().shared.pubsub.ready()
    }

    fn metrics(&self) -> &Metrics {
        &self.registry().shared.metrics
    }
}

impl Target for Mux {
    fn close_all(&self) {
        self.shutdown();
    }

    fn tracker(&self) -> Arc<Tracker> {
        self.connections()
    }

    fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    fn metrics(&self) -> &Metrics {
        Mux::metrics(self)
    }
}

/// The endpoints and muxes of one server, shut down together: on a signal every connection
/// gets 1001, and [`drained`](Self::drained) waits until each close frame is written.
#[derive(Clone)]
#[must_use]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    targets: Mutex<Vec<Box<dyn Target>>>,
    drain: Mutex<Duration>,
    /// Set when the shutdown starts, before any connection is closed.
    draining: AtomicBool,
    /// When it started, for the length of the drain.
    started: Mutex<Option<Instant>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Nothing to shut down yet; the drain time is 10 s.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                targets: Mutex::new(Vec::new()),
                drain: Mutex::new(Duration::from_secs(10)),
                draining: AtomicBool::new(false),
                started: Mutex::new(None),
            }),
        }
    }

    /// Closes `endpoint`'s connections too.
    pub fn endpoint<P, H>(self, endpoint: &Endpoint<P, H>) -> Self
    where
        P: Protocol + Dispatch<H>,
        H: Send + 'static,
    {
        self.add(Box::new(endpoint.clone()))
    }

    /// Closes `mux`'s sockets too.
    pub fn mux(self, mux: &Mux) -> Self {
        self.add(Box::new(mux.clone()))
    }

    /// How long [`drained`](Self::drained) waits for the last connection at most.
    pub fn drain(self, drain: Duration) -> Self {
        *self
            .inner
            .drain
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = drain;
        self
    }

    pub(crate) fn drain_time(&self) -> Duration {
        *self
            .inner
            .drain
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn add(self, target: Box<dyn Target>) -> Self {
        self.inner
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(target);
        self
    }

    /// Resolves on SIGINT or SIGTERM (what a terminal, systemd, docker and Kubernetes send),
    /// after closing every connection with 1001. Hand it to axum's
    /// `with_graceful_shutdown`, which then stops accepting.
    pub fn signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            signalled().await;
            tracing::info!("shutting down: closing every connection");
            this.now();
        }
    }

    /// Closes every connection with 1001 now, without a signal. Readiness turns false first,
    /// so a load balancer polling [`readyz`](Self::health) stops sending new clients before
    /// the first close frame is written.
    pub fn now(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(Instant::now);
        for target in self
            .inner
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            target.close_all();
        }
    }

    /// Whether a new client would be served now: not draining, and every endpoint's pub/sub
    /// backend reachable (Redis, when configured). `Err` says why not.
    pub fn ready(&self) -> Result<(), String> {
        if self.inner.draining.load(Ordering::SeqCst) {
            return Err("draining: the server is shutting down".to_owned());
        }
        self.inner
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .try_for_each(|target| target.ready())
    }

    /// `GET /healthz` (200 while the process serves) and `GET /readyz` (200 when
    /// [`ready`](Self::ready), 503 with the reason otherwise: draining, or Redis unreachable),
    /// for a load balancer or an orchestrator's probes. Mount them where the app wants them,
    /// behind its own middleware if they must not be public.
    ///
    /// ```
    /// use omni::axum::Router;
    /// use omni::server::Shutdown;
    ///
    /// let shutdown = Shutdown::new();
    /// let app: Router = Router::new().merge(shutdown.health());
    /// ```
    pub fn health<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let this = self.clone();
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/readyz",
                get(move || {
                    let ready = this.ready();
                    async move {
                        match ready {
                            Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
                            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                        }
                    }
                }),
            )
    }

    /// Waits until every connection has written its close frame, or the drain time has
    /// passed. Returns whether all of them made it. Call it after `axum::serve` returns,
    /// before the process exits.
    pub async fn drained(&self) -> bool {
        let trackers: Vec<Arc<Tracker>> = self
            .inner
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|t| t.tracker())
            .collect();
        let drain = *self
            .inner
            .drain
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let all = futures_util::future::join_all(trackers.iter().map(|t| t.idle()));
        let done = tokio::time::timeout(drain, all).await.is_ok();
        let started = *self
            .inner
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let took = started.map(|at| at.elapsed()).unwrap_or_default();
        for target in self
            .inner
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            target.metrics().drained(took);
        }
        if done {
            tracing::info!(?took, "every connection closed");
        } else {
            tracing::warn!(?drain, "connections still open after the drain time");
        }
        done
    }
}

/// SIGINT or SIGTERM; Ctrl-C where there are no Unix signals.
async fn signalled() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                tracing::error!("cannot listen for SIGINT and SIGTERM; shutdown waits forever");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tracker_is_idle_once_every_connection_is_gone() {
        let tracker = Arc::new(Tracker::default());
        tracker.idle().await;
        let (a, b) = (tracker.enter(), tracker.enter());
        drop(a);
        let idle = tracker.idle();
        tokio::pin!(idle);
        assert!(futures_util::FutureExt::now_or_never(idle.as_mut()).is_none());
        drop(b);
        idle.await;
    }
}
