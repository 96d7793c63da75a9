//! The codec seam: everything that knows the bytes of an encoded frame.
//!
//! Frames are typed values ([`ClientFrame`], [`ServerFrame`]) everywhere but here. This module
//! turns them into bytes and back (JSON today, in one field table), and owns the
//! encoded form the runtime moves around once a frame is encoded: [`Outgoing`], the shared
//! bytes of one server frame that every recipient of a broadcast receives as they are. The
//! few edits the runtime makes to encoded frames without decoding them — numbering a topic
//! message, naming a mux component — are made here too, so transports and pub/sub treat
//! frames as opaque bytes and a binary codec can take JSON's place behind this seam.
//!
//! ```
//! use omni::{ClientFrame, ErrorCode};
//!
//! let err = ClientFrame::<serde_json::Value>::decode(b"{\"type\":\"dance\"}").unwrap_err();
//! assert_eq!(err.code(), ErrorCode::BadFrame);
//! assert_eq!(err.to_string(), "unknown frame type `dance`");
//! ```
//!
//! [`ClientFrame`]: crate::ClientFrame
//! [`ServerFrame`]: crate::ServerFrame

#[cfg(feature = "server")]
mod encoded;
mod json;

#[cfg(feature = "server")]
pub(crate) use self::encoded::ComponentId;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use self::encoded::{Outgoing, Publication, TopicFrame};
#[cfg(feature = "server")]
pub(crate) use self::json::decode_payload;
pub use self::json::{DecodeError, EncodeError};
