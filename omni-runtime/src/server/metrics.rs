//! Counters an application can export (to Prometheus, logs, a health page).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) connections_opened: AtomicU64,
    pub(crate) connections_closed: AtomicU64,
    pub(crate) sessions_created: AtomicU64,
    pub(crate) sessions_resumed: AtomicU64,
    pub(crate) sessions_reset: AtomicU64,
    pub(crate) sessions_expired: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) handler_failures: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) broadcasts: AtomicU64,
    pub(crate) ephemeral_dropped: AtomicU64,
}

impl Metrics {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            connections_opened: get(&self.connections_opened),
            connections_closed: get(&self.connections_closed),
            sessions_created: get(&self.sessions_created),
            sessions_resumed: get(&self.sessions_resumed),
            sessions_reset: get(&self.sessions_reset),
            sessions_expired: get(&self.sessions_expired),
            frames_in: get(&self.frames_in),
            frames_out: get(&self.frames_out),
            decode_errors: get(&self.decode_errors),
            handler_failures: get(&self.handler_failures),
            slow_consumers: get(&self.slow_consumers),
            broadcasts: get(&self.broadcasts),
            ephemeral_dropped: get(&self.ephemeral_dropped),
        }
    }
}

/// A point-in-time copy of an endpoint's counters, from
/// [`Endpoint::metrics`](super::Endpoint::metrics). All counts are since the endpoint was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Connections accepted (ws, sse; an HTTP request is not a connection).
    pub connections_opened: u64,
    /// Connections that ended.
    pub connections_closed: u64,
    /// Sessions started.
    pub sessions_created: u64,
    /// Resumes that found their session.
    pub sessions_resumed: u64,
    /// Resumes answered with `reset`.
    pub sessions_reset: u64,
    /// Sessions dropped after their grace period.
    pub sessions_expired: u64,
    /// Client frames received.
    pub frames_in: u64,
    /// Server frames queued to connections.
    pub frames_out: u64,
    /// Client frames answered with `bad_frame` or `bad_payload`.
    pub decode_errors: u64,
    /// Handler errors and panics.
    pub handler_failures: u64,
    /// Connections closed as `slow_consumer`.
    pub slow_consumers: u64,
    /// Broadcasts made.
    pub broadcasts: u64,
    /// Ephemeral frames (`push`, presence) not queued to a connection that was falling
    /// behind: it stays open, and its next presence frame is the whole list.
    pub ephemeral_dropped: u64,
}
