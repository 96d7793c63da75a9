//! What a client's transport is doing, as an ordinary message.
//!
//! `#[omni::protocol]` adds a variant to the user's enum (named `Transport` unless renamed)
//! that holds a [`TransportState`], so an application's update function sees connection
//! changes in the same stream as server messages and can show "offline" or "Sending…".
//!
//! ```
//! use omni::{TransportError, TransportState};
//!
//! fn banner(state: &TransportState) -> String {
//!     match state {
//!         TransportState::Connected { .. } => "online".into(),
//!         TransportState::Reconnecting { attempt, delay } => {
//!             format!("retry {attempt} in {} ms", delay.as_millis())
//!         }
//!         TransportState::Error(TransportError::Rejected { code, .. }) => format!("refused: {code}"),
//!         _ => "offline".into(),
//!     }
//! }
//! assert_eq!(banner(&TransportState::Connecting), "offline");
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, SessionId};

/// A change in the client's connection to the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportState {
    /// A connection attempt has started.
    Connecting,
    /// The server welcomed this client into `session`.
    Connected {
        /// The session the server assigned or resumed.
        session: SessionId,
    },
    /// The connection closed. `code` is the WebSocket close code (1006 when the connection
    /// dropped without one) or the HTTP status.
    Disconnected {
        /// Close code or HTTP status.
        code: u16,
        /// The peer's reason, or what the client observed.
        reason: String,
    },
    /// The client waits `delay` before its `attempt`-th reconnection attempt.
    Reconnecting {
        /// 1 for the first retry after a drop.
        attempt: u32,
        /// Backoff with jitter applied.
        delay: Duration,
    },
    /// The server no longer held the client's resume point: drop state derived from earlier
    /// server messages; fresh state follows.
    Reset,
    /// The server no longer held what the client missed of sequenced `topic`: drop state
    /// derived from that topic's messages; the handler's snapshot of it follows.
    TopicReset {
        /// The topic.
        topic: String,
    },
    /// The server refused the client's credentials (HTTP 401), or the credentials provider
    /// failed. The client does not retry: it keeps its queue and waits until the application
    /// calls `reconnect` (having signed in again, say), then calls the provider and connects.
    Unauthorized {
        /// The server's status or the provider's error.
        reason: String,
    },
    /// The server does not serve this build of the protocol (`version_mismatch`): `reason`
    /// names what changed (a removed message, a new required field) or says the server does
    /// not know this build's schema. The client does not retry: a newer build is needed.
    Incompatible {
        /// The server's reason.
        reason: String,
    },
    /// The server sent a message of a kind this build does not know (a newer server's,
    /// during a deploy): it is counted ([`Client::unknown_messages`]) and skipped, its place in
    /// the sequence kept, and the connection goes on.
    ///
    /// [`Client::unknown_messages`]: crate::client::Client::unknown_messages
    UnknownMessage {
        /// The message's `kind`.
        kind: String,
    },
    /// Something failed; the connection may still be up.
    Error(TransportError),
}

impl TransportState {
    /// The state that reports `error`, which ended the client for good: a refused version is
    /// [`Incompatible`](Self::Incompatible), anything else an [`Error`](Self::Error).
    #[cfg(feature = "client")]
    pub(crate) fn fatal(error: TransportError) -> Self {
        match error {
            TransportError::Rejected {
                code: ErrorCode::VersionMismatch,
                message,
            } => Self::Incompatible { reason: message },
            error => Self::Error(error),
        }
    }
}

/// Why a transport reports an error.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, thiserror::Error,
)]
#[serde(tag = "error", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportError {
    /// The transport could not be set up (a bad URL, a refused handshake).
    #[error("could not connect: {message}")]
    Init {
        /// What went wrong.
        message: String,
    },
    /// TLS with the server failed for a reason retrying does not fix: its certificate is not
    /// trusted (unknown issuer, expired, issued for another name), or it shares no protocol
    /// version or cipher suite with the client.
    #[error("TLS with the server failed: {message}")]
    Tls {
        /// rustls's reason.
        message: String,
    },
    /// A frame from the server did not decode.
    #[error("could not decode a server frame: {message}")]
    Decode {
        /// The decoder's message.
        message: String,
    },
    /// A message could not be sent (queue full, encode failure, socket error).
    #[error("could not send: {message}")]
    Send {
        /// What went wrong.
        message: String,
    },
    /// The server refused the client's credentials (HTTP 401, or a failing credentials
    /// provider); the client waits for `Client::reconnect`.
    #[error("not authorized: {reason}")]
    Unauthorized {
        /// The server's (or the provider's) reason.
        reason: String,
    },
    /// The server answered with an `error` frame that names no message (`version_mismatch`,
    /// a refused mux join, an undecodable frame). An error answering one message (its `ref`)
    /// is that message's outcome, reported by `Client::acked`.
    #[error("server refused ({code}): {message}")]
    Rejected {
        /// The v1 error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
}
