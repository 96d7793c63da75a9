//! What every session of one endpoint shares: its limits, pub/sub, metrics, open-connection
//! count and shutdown signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use crate::pubsub::PubSub;
use crate::server::conn::{Conn, ConnRx, connection};
use crate::server::limits::Limits;
use crate::server::metrics::Metrics;
use crate::server::session::Saver;
use crate::server::shutdown::tracker::Tracker;

/// What an endpoint's sessions share.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    /// The endpoint's open connections, which a graceful shutdown waits for.
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) pubsub: Arc<dyn PubSub>,
    /// Where sessions are saved for other processes to resume, if anywhere.
    pub(crate) saver: Option<Saver>,
    pub(crate) metrics: Metrics,
    pub(crate) shutdown: watch::Sender<bool>,
    next_conn: AtomicU64,
}

impl Shared {
    /// The shared state of an endpoint counting into `metrics`.
    pub(crate) fn new(
        metrics: Metrics,
        limits: Limits,
        pubsub: Arc<dyn PubSub>,
        saver: Option<Saver>,
    ) -> Self {
        Self {
            limits,
            tracker: Arc::default(),
            pubsub,
            saver,
            metrics,
            shutdown: watch::channel(false).0,
            next_conn: AtomicU64::new(1),
        }
    }

    /// A new connection's handle, and the ends its transport reads.
    pub(crate) fn connection(&self, live: bool) -> (Conn, ConnRx) {
        connection(
            self.next_conn_id(),
            self.limits.outbound_queue,
            self.limits.outbound_queue_bytes,
            live,
        )
    }

    /// An id for a connection to one of this endpoint's sessions.
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}
