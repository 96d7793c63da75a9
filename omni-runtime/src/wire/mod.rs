//! The wire contract: what a client and a server must agree on, written once.
//!
//! The frames of protocol v1 ([`ClientFrame`], [`ServerFrame`], [`ErrorCode`]), their two
//! codecs (JSON text and MessagePack binary, read through one field table), [`Bytes`], the
//! connect URL's parameters and the `omni-session` header ([`connect`]), the body of a
//! `POST /http` batch ([`batch`]), a message's kind without encoding it ([`Kinds`]), the rules a `hello` is checked by ([`hello`]) and the W3C
//! trace context a client may send ([`TraceParent`]). The Rust
//! client and the server both import it, and neither re-spells what it defines; it knows
//! nothing of sockets, axum or tokio. `docs/PROTOCOL.md` is its prose form.
//!
//! ```
//! use omni::wire::{ClientFrame, ErrorCode};
//!
//! let err = ClientFrame::<serde_json::Value>::decode(b"{\"type\":\"dance\"}").unwrap_err();
//! assert_eq!(err.code(), ErrorCode::BadFrame);
//! assert_eq!(err.to_string(), "unknown frame type `dance`");
//! ```

pub mod batch;
mod bytes;
mod codec;
pub mod connect;
mod error;
mod fields;
mod frame;
pub mod hello;
mod json;
mod kinds;
pub(crate) mod msgpack;
mod trace;

pub use self::bytes::Bytes;
pub use self::codec::{Codec, UnknownCodec};
pub use self::error::{DecodeError, EncodeError};
pub use self::frame::{ClientFrame, Cursors, ErrorCode, Ref, Seq, ServerFrame};
#[cfg(feature = "server")]
pub(crate) use self::json::decode_payload;
pub use self::kinds::Kinds;
pub use self::trace::{InvalidTraceParent, TRACEPARENT, TraceParent};
