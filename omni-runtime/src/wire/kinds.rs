//! A message's kind without encoding it ([`Kinds`]): what counts messages by kind on the path
//! of every message, and names them in logs.
//!
//! `#[omni::protocol]` implements it for both wire enums with a `match`, so finding a
//! message's kind is a jump, never a serialization or a string comparison.
//!
//! ```
//! use omni::wire::Kinds;
//!
//! #[omni::protocol]
//! enum Chat {
//!     #[client]
//!     Say(String),
//!     #[client]
//!     #[omni(rename = "wave")]
//!     Wave,
//!     #[server]
//!     Said { text: String },
//! }
//!
//! assert_eq!(ChatFromClient::KINDS, ["Say", "wave"]);
//! assert_eq!(ChatFromClient::Wave.kind_index(), 1);
//! assert_eq!(ChatFromClient::Say("hi".into()).kind(), "Say");
//! ```

/// The kinds of a wire enum (`MsgFromClient` or `MsgFromServer`): each variant's wire name,
/// the `kind` it travels under, and which one a message is.
pub trait Kinds {
    /// Each variant's wire name, in declaration order. A variant behind a `#[cfg]` that is off
    /// keeps its place, so an index means the same variant in every build of the enum.
    const KINDS: &'static [&'static str];

    /// Where this message's variant is in [`KINDS`](Self::KINDS).
    fn kind_index(&self) -> usize;

    /// This message's wire name.
    fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }
}
