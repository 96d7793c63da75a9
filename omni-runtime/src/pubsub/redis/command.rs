//! Work for the publishing connection.

use tokio::sync::oneshot;

use crate::Seq;
use crate::pubsub::backend::Replay;
use crate::server::encoded::Publication;

/// Work for the publishing connection, in order.
pub(super) enum Command {
    /// On `topic`'s channel, or on the node channel (`None`).
    Broadcast {
        topic: Option<String>,
        payload: Vec<u8>,
    },
    Publish {
        topic: String,
        publication: Publication,
        /// Names this message in the topic's log, so that a retry finds it there if the
        /// attempt before it was carried out (its answer lost with the connection).
        id: u64,
        /// Sent before and failed: the script first looks for `id` in the log.
        retry: bool,
    },
    Replay {
        topic: String,
        after: Seq,
        reply: oneshot::Sender<Replay>,
    },
}
