//! The dialer: connects, runs one connection until it ends, and reconnects with backoff until
//! the client is closed or refused for good. Written once for every transport and for the
//! mux; what one connection does is the [`Dial`] implementor's business.

use std::future::Future;

use tokio::sync::{Notify, watch};

use super::config::Backoff;
use super::tls;
use crate::{TransportError, TransportState};

/// How a connection attempt ended.
pub(crate) struct Ended {
    /// WebSocket close code, HTTP status, or 1006 when the connection just dropped.
    pub(crate) code: u16,
    pub(crate) reason: String,
    /// Whether the server welcomed us on this connection.
    pub(crate) connected: bool,
    /// Set when retrying cannot help (the server refused us).
    pub(crate) fatal: Option<TransportError>,
    /// The server (HTTP 401) or the credentials provider refused: retrying with the same
    /// credentials cannot help, but the application may sign in again.
    pub(crate) unauthorized: bool,
}

impl Ended {
    pub(crate) fn dropped(reason: impl Into<String>, connected: bool) -> Self {
        Self {
            code: 1006,
            reason: reason.into(),
            connected,
            fatal: None,
            unauthorized: false,
        }
    }

    /// No credentials to connect with: the provider failed.
    pub(crate) fn unauthorized(reason: String) -> Self {
        Self {
            // Nothing was attempted, so nothing went down.
            code: 0,
            reason,
            connected: false,
            fatal: None,
            unauthorized: true,
        }
    }

    /// Marks the connection as having been welcomed, if it was.
    pub(crate) fn connected_if(mut self, connected: bool) -> Self {
        self.connected |= connected;
        self
    }

    /// The server refused this client for good, on a connection it had welcomed or not.
    pub(crate) fn fatal(error: TransportError, connected: bool) -> Self {
        Self {
            code: 1008,
            reason: error.to_string(),
            connected,
            fatal: Some(error),
            unauthorized: false,
        }
    }

    /// An attempt that got no response: a TLS failure retrying cannot fix is fatal, anything
    /// else (refused, unreachable, cut short) is retried.
    pub(crate) fn failed(err: &(dyn std::error::Error + 'static)) -> Self {
        match tls::permanent(err) {
            Some(error) => Self {
                // No response: nothing went down (see `dial`).
                code: 0,
                reason: error.to_string(),
                connected: false,
                fatal: Some(error),
                unauthorized: false,
            },
            None => Self::dropped(err.to_string(), false),
        }
    }

    /// The application closed the client.
    pub(crate) fn closed(connected: bool) -> Self {
        Self {
            code: 1000,
            reason: "closed by the client".into(),
            connected,
            fatal: None,
            unauthorized: false,
        }
    }

    /// An HTTP response the connection could not use: 401 waits for the application (see
    /// [`dial`]), another status that retrying will not change (403, 404) is fatal.
    pub(crate) fn refused(status: u16, reason: String, connected: bool) -> Self {
        let fatal = matches!(status, 403 | 404).then(|| TransportError::Init {
            message: reason.clone(),
        });
        Self {
            code: status,
            reason,
            connected,
            fatal,
            unauthorized: status == 401,
        }
    }
}

/// The client cannot even try: a URL it cannot use.
pub(crate) fn fatal_init(message: String) -> Ended {
    Ended {
        code: 0,
        reason: message.clone(),
        connected: false,
        fatal: Some(TransportError::Init { message }),
        unauthorized: false,
    }
}

/// What the dialer dials.
pub(crate) trait Dial: Send {
    /// One connection, from the attempt to its end.
    fn connection(&mut self) -> impl Future<Output = Ended> + Send;

    /// Tells the application (every component, on a mux) how the transport is doing.
    fn report(&mut self, state: TransportState) -> impl Future<Output = ()> + Send;

    /// The client (every component, on a mux) is refused for good, for `error`, which was
    /// just reported.
    fn refused(&mut self, error: &TransportError);
}

/// Resolves once `rx` says closed (or its sender is gone).
pub(crate) async fn closed(rx: &mut watch::Receiver<bool>) {
    loop {
        let done = *rx.borrow_and_update();
        if done || rx.changed().await.is_err() {
            return;
        }
    }
}

/// Connects, runs the connection, and reconnects with `backoff` until `closing` says closed
/// or a connection ends for good (then `closing` is set, which ends the client).
///
/// Credentials refused by a connection attempt are not retried: the dialer reports
/// `Unauthorized` and waits for `reconnect` (the application signed in again), keeping
/// everything queued. Refused later on a connection they had opened (an HTTP request of a
/// session that was up), they are taken as expired and the next attempt, which asks the
/// provider again, follows as after a drop. `reconnect` also cuts a backoff delay short.
pub(crate) async fn dial(
    target: &mut impl Dial,
    backoff: Backoff,
    closing: &watch::Sender<bool>,
    reconnect: &Notify,
) {
    let mut attempt: u32 = 0;
    let mut closed_rx = closing.subscribe();
    loop {
        target.report(TransportState::Connecting).await;
        let ended = target.connection().await;
        tracing::debug!(code = ended.code, reason = %ended.reason, "connection ended");
        // A connection that never got as far as a response (refused, unreachable) is not
        // one that went down.
        if ended.connected || ended.code != 0 {
            let state = TransportState::Disconnected {
                code: ended.code,
                reason: ended.reason.clone(),
            };
            target.report(state).await;
        }
        if let Some(error) = ended.fatal {
            target.report(TransportState::fatal(error.clone())).await;
            target.refused(&error);
            closing.send_replace(true);
            return;
        }
        if *closing.borrow() {
            return;
        }
        // Credentials refused on a connection they had opened have expired, most likely: the
        // next attempt asks the provider for fresh ones. Refused on the way in, they are wrong.
        if ended.unauthorized && !ended.connected {
            // Listening before the state is out, so that a `reconnect` made as soon as the
            // application hears it is not missed.
            let retry = reconnect.notified();
            tokio::pin!(retry);
            retry.as_mut().enable();
            let reason = ended.reason;
            target.report(TransportState::Unauthorized { reason }).await;
            tokio::select! {
                () = retry => {}
                _ = closed(&mut closed_rx) => return,
            }
            attempt = 0;
            continue;
        }
        // A connection that was up starts the count again: it is a new outage.
        attempt = if ended.connected { 1 } else { attempt + 1 };
        let delay = backoff.delay(attempt);
        target
            .report(TransportState::Reconnecting { attempt, delay })
            .await;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            () = reconnect.notified() => {}
            _ = closed(&mut closed_rx) => return,
        }
    }
}
