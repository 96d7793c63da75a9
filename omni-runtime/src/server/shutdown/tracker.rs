//! Counting an endpoint's (or a mux's) open connections, so a shutdown can wait for the last.

use std::sync::Arc;

use tokio::sync::watch;

/// How many connections of an endpoint (or a mux) are open; shutdown waits for none.
#[derive(Debug)]
pub(crate) struct Tracker {
    open: watch::Sender<usize>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            open: watch::channel(0).0,
        }
    }
}

impl Tracker {
    /// Counts a connection until the guard is dropped, once its close frame is written.
    pub(crate) fn enter(self: &Arc<Self>) -> Open {
        self.open.send_modify(|n| *n += 1);
        Open(self.clone())
    }

    /// Resolves once no connection is open.
    pub(super) async fn idle(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }
}

/// One open connection, counted by its [`Tracker`].
pub(crate) struct Open(Arc<Tracker>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n -= 1);
    }
}
