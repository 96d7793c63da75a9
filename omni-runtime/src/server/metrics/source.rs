//! What the exporter reads of an endpoint or a mux, so that an endpoint and a mux describe
//! themselves without knowing the exporter.

use std::sync::Arc;

use super::{Metrics, Transport};
use crate::pubsub::PubSub;

/// What [`Prometheus`](super::prometheus::Prometheus) reads: an endpoint's sessions, or a mux's sockets.
pub(crate) trait Source: Send + Sync + 'static {
    fn metrics(&self) -> &Metrics;
    /// Sessions held now; `None` for a mux, whose sessions are its modules'.
    fn sessions(&self) -> Option<usize>;
    fn pubsub(&self) -> Option<Arc<dyn PubSub>>;
    /// The transports it serves.
    fn transports(&self) -> &'static [Transport] {
        &Transport::ALL
    }
}
