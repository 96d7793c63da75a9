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
    },
    Replay {
        topic: String,
        after: Seq,
        reply: oneshot::Sender<Replay>,
    },
}
