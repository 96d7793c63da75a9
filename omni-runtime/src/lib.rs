//! The runtime behind [`omni`](https://docs.rs/omni): the v1 wire frames and their codec, the
//! [`Protocol`] trait that `#[omni::protocol]` implements, the per-connection [`Context`] a
//! handler works with, the [`TransportState`] a client reports, and TypeScript export.
//!
//! Users depend on the `omni` crate, which re-exports everything here; this crate exists so
//! the macro crate and the runtime can be built separately.
//!
//! ```
//! use omni::wire::{ClientFrame, ServerFrame};
//!
//! let frame: ClientFrame<serde_json::Value> =
//!     ClientFrame::decode(br#"{"type":"msg","payload":{"kind":"FetchAll"},"ref":7}"#).unwrap();
//! assert_eq!(frame.reference(), Some(7));
//!
//! let ack: ServerFrame<()> = ServerFrame::Ack { reference: 7, id: None };
//! assert_eq!(ack.encode().unwrap(), r#"{"type":"ack","ref":7}"#);
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
pub mod context;
pub mod presence;
pub mod protocol;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod pubsub;
pub mod schema;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
pub mod session;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod test;
pub mod token;
pub mod transport;
pub mod typescript;
pub mod wire;

#[cfg(feature = "server")]
#[doc(hidden)]
pub use axum;
pub use context::{Context, Effect, MessageKey, Sender, SessionGone};
pub use protocol::{BoxError, Dispatch, HandlerResult, Protocol};
pub use session::SessionId;
pub use transport::{TransportError, TransportState};
pub use wire::{ClientFrame, Cursors, ErrorCode, Ref, Seq, ServerFrame};
pub use wire::{DecodeError, EncodeError};
