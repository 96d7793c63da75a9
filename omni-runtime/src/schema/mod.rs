//! The structural schema of a protocol: what travels, how old and new builds stay compatible,
//! and the check that catches a breaking change before it ships.
//!
//! `#[omni::protocol]` describes every `#[client]` and `#[server]` variant, and `#[omni::wire]`
//! every type they carry, field by field, with serde's renames, defaults and tagging honoured.
//! [`schema`] returns that description as a [`Schema`]: a document that serialises to stable,
//! diff-friendly JSON and whose [`id`](Schema::id) is the protocol's version
//! ([`Protocol::version`]). [`compare`] tells which differences between two schemas break a
//! rolling deploy, where old and new builds read each other's messages both ways; [`check`]
//! runs it in the app's tests against the schemas of released versions, kept as files.
//!
//! ```
//! use omni::schema::{Shape, Tagging, TypeDef};
//!
//! #[omni::wire]
//! #[serde(rename_all = "camelCase")]
//! pub struct ChatMessage {
//!     pub text: String,
//!     pub sent_at: u64,
//!     #[serde(default)]
//!     pub mood: Option<Mood>,
//! }
//!
//! #[omni::wire]
//! #[serde(tag = "type")]
//! pub enum Mood {
//!     Happy,
//!     Grumpy { reason: String },
//! }
//!
//! #[omni::protocol]
//! pub enum Msg {
//!     #[client]
//!     Send(ChatMessage),
//!     #[server]
//!     Upsert(Vec<ChatMessage>),
//! }
//!
//! let schema = omni::schema::schema::<Msg>();
//! let TypeDef::Struct(message) = &schema.types["ChatMessage"] else { unreachable!() };
//! assert_eq!(message.fields["sentAt"].shape, Shape::U64);
//! assert!(!message.fields["mood"].required);
//! let TypeDef::Enum(mood) = &schema.types["Mood"] else { unreachable!() };
//! assert_eq!(mood.tagging, Tagging::Internal { tag: "type".into() });
//!
//! // The document round-trips, and its id is the protocol's version.
//! let text = schema.to_json();
//! assert_eq!(omni::schema::Schema::from_json(&text)?, schema);
//! assert_eq!(schema.id(), <Msg as omni::Protocol>::version());
//! # Ok::<(), omni::schema::SchemaError>(())
//! ```
//!
//! A field type with no [`Describe`] impl (a plain serde type) still travels; the schema
//! knows it by name only ([`Shape::Opaque`]), and the macro warns on it. `#[serde(flatten)]`
//! on a field of a struct type inlines that struct's fields; a flattened field of any other
//! type is opaque, as is a field with `#[serde(with = ...)]` or its halves.

mod check;
mod compare;
mod describe;
mod json;
mod model;
mod served;

pub use self::check::{CheckError, Checked, RECORD_VAR, check, check_schema, compatible, kept};
pub use self::compare::{Change, Report, Severity, compare};
#[doc(hidden)]
pub use self::describe::probe;
pub use self::describe::{Describe, Registry};
pub use self::model::{
    EnumDef, FORMAT, Field, Payload, Schema, SchemaError, Shape, StructDef, Tagging, TypeDef,
};
// Read by the server and the client runtimes; a build with neither has no use for it.
#[cfg_attr(
    not(any(feature = "server", feature = "client")),
    allow(unused_imports)
)]
pub(crate) use self::served::kinds;
pub use self::served::served;

use crate::Protocol;

/// The schema of protocol `P`: the same as [`Protocol::schema`].
pub fn schema<P: Protocol>() -> Schema {
    P::schema()
}
