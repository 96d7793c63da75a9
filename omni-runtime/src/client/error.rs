//! Why a message could not go, or got no answer: what [`Client::send`], [`Client::acked`]
//! and [`Client::request`] return.
//!
//! [`Client::send`]: crate::client::Client::send
//! [`Client::acked`]: crate::client::Client::acked
//! [`Client::request`]: crate::client::Client::request

use crate::TransportError;

/// Why [`Client::acked`](crate::client::Client::acked) has no acknowledgement to report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The server answered the message with an `error` frame: `rejected` when the
    /// handler returned an `Err`, `handler_failed` when it panicked, `bad_payload`, ….
    #[error("the server refused the message ({code}): {message}")]
    Rejected {
        /// The v1 error code.
        code: crate::ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The client was closed before the server answered.
    #[error("the client closed before the server answered")]
    Closed,
    /// The server (or the URL) refused the client for good before it answered.
    #[error("the client was refused before the server answered: {0}")]
    Refused(TransportError),
    /// This client never gave out the `ref`, or it was answered too long ago to be
    /// remembered (the client remembers as many answers as its queue holds).
    #[error("no message with this ref is waiting, or was answered lately")]
    Unknown,
}

/// Why a [`Client::request`](crate::client::Client::request) got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The message could not be queued.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The server answered the message with an `error` frame, or the client ended first.
    #[error(transparent)]
    Answer(#[from] AckError),
    /// The handler acknowledged the message without replying to it.
    #[error("the server handled the message without replying")]
    NoReply,
    /// No answer came within the client's request timeout (`request_timeout`, default 60 s).
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// Why a message could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The queue of unacknowledged messages is full: the server is unreachable or slow.
    #[error("{capacity} messages are already waiting for the server")]
    QueueFull {
        /// The queue's size.
        capacity: usize,
    },
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// The server (or the URL) refused the client for good: a 403 or 404, a TLS failure, a
    /// server that no longer serves this build. The stream said so, once, as a
    /// `TransportState::Error` (or `Incompatible`).
    #[error("the client was refused: {0}")]
    Refused(TransportError),
    /// The message could not be encoded.
    #[error("could not encode the message: {0}")]
    Encode(String),
    /// The encoded message is larger than the server accepts (see
    /// [`ClientBuilder::max_message_bytes`](crate::client::ClientBuilder::max_message_bytes));
    /// it would never be acknowledged.
    #[error("the message is {size} bytes; the server accepts at most {limit}")]
    TooLarge {
        /// The encoded frame's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}
