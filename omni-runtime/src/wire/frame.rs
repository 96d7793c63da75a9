//! The v1 wire frames.
//!
//! Every frame is a JSON object whose first key is `"type"`. A client sends [`ClientFrame`]s
//! and a server answers with [`ServerFrame`]s; both are generic over the payload, which is the
//! protocol's wire enum in adjacently tagged form (`{"kind":"Send","data":…}`).
//! `docs/PROTOCOL.md` shows one exact example of every frame.
//!
//! Decoding reads the frame's envelope once, keeping the payload as borrowed raw JSON, and then
//! decodes the payload once into its type. It never panics: anything malformed is a
//! [`DecodeError`](crate::DecodeError) whose [`code`](crate::DecodeError::code) is `bad_frame` or `bad_payload`, with the
//! frame's `ref` and `id` kept when they could be read, so the error frame can name them.
//!
//! ```
//! use omni::{ClientFrame, ErrorCode, ServerFrame};
//! use serde_json::{Value, json};
//!
//! let hello = ClientFrame::<Value>::decode(br#"{"type":"hello","version":"00ff00ff00ff00ff"}"#)?;
//! assert!(matches!(hello, ClientFrame::Hello { .. }));
//!
//! let err = ClientFrame::<u32>::decode(br#"{"type":"msg","payload":"x","ref":3}"#).unwrap_err();
//! assert_eq!(err.code(), ErrorCode::BadPayload);
//! assert_eq!(ServerFrame::<()>::from(&err).encode()?,
//!     r#"{"type":"error","code":"bad_payload","message":"invalid type: string \"x\", expected u32","ref":3}"#);
//!
//! let push = ServerFrame::Push { payload: json!({"kind": "Presence", "data": {"online": 2}}), topic: None, id: None };
//! assert_eq!(push.encode()?, r#"{"type":"push","payload":{"data":{"online":2},"kind":"Presence"}}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::Codec;
use super::trace::TraceParent;
use crate::SessionId;
use crate::presence::{Diff, List, Modes};

/// A sequence number: the position of a sequenced server frame in its session, from 1.
/// `0` means "nothing yet" in `welcome` and `hello.after`.
pub type Seq = u64;

/// A client-chosen reference echoed by the `ack` or `error` that answers a `msg`.
pub type Ref = u64;

/// A client's topic cursors: for each sequenced topic, the last topic sequence number it
/// holds. Sent in `hello` (or the connect URL) to resume topics, on any server.
pub type Cursors = std::collections::BTreeMap<String, Seq>;

/// Whether `codec` is JSON, the default a `welcome` leaves unsaid.
fn is_json(codec: &Codec) -> bool {
    *codec == Codec::Json
}

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame<C> {
    /// Optional first frame: checks the protocol version, or resumes a session.
    Hello {
        /// The protocol's name.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        protocol: Option<String>,
        /// The client's schema id: a server serves it when it is the server's own, one of the
        /// older ids the server still serves, or when the client declares the server's id
        /// compatible (see `compatible`); otherwise `version_mismatch`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        version: Option<String>,
        /// The ids of the older schemas the client's build still talks to: a server built from
        /// one of them serves this (newer) client.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        compatible: Option<Vec<String>>,
        /// The session to resume.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        session: Option<SessionId>,
        /// The last sequence number the client holds; replay starts after it.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        after: Option<Seq>,
        /// Topic cursors. Present (even empty), it says the client follows sequenced topics:
        /// their messages then arrive as `msg` frames with `topic`, and the topics named
        /// resume after their cursor.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional, type = "Record<string, number>")]
        topics: Option<Cursors>,
        /// The client's W3C trace context: the server's spans for this session join its
        /// trace. A malformed one is ignored; servers that predate it ignore the field.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional, type = "string")]
        traceparent: Option<TraceParent>,
    },
    /// A client message.
    Msg {
        /// The protocol's client wire enum.
        payload: C,
        /// Echoed by the `ack` or `error` that answers this frame.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        reference: Option<Ref>,
        /// Mux only: the component the message is for.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// Mux: start component `id` of `module`, with a signed token.
    Join {
        /// The component's id, chosen by the client, unique on its socket.
        id: String,
        /// The registered module to start.
        module: String,
        /// The signed token carrying the module, props and expiry.
        token: String,
        /// The component's earlier session, to resume it as `hello` does on `/ws`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        session: Option<SessionId>,
        /// With `session`: the last sequence number the client holds for the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        after: Option<Seq>,
        /// The client's schema id for the module's protocol, checked as `hello`'s is.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        version: Option<String>,
        /// The older schema ids the client's build still talks to, as in `hello`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        compatible: Option<Vec<String>>,
        /// The component's topic cursors, as in `hello`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional, type = "Record<string, number>")]
        topics: Option<Cursors>,
        /// The client's W3C trace context for the component's session, as in `hello`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional, type = "string")]
        traceparent: Option<TraceParent>,
        /// What the component is shown of each topic's presence, as the connect URL's
        /// `presence` parameter says for a connection; absent, every topic's whole list.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional, type = "Record<string, \"list\" | \"count\" | \"none\">")]
        presence: Option<Modes>,
        /// The client's id, as the connect URL's `client` parameter gives it for a
        /// connection: the key of each message the component sends stays the same in a new
        /// session.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        client: Option<String>,
    },
    /// Mux: stop component `id`.
    Leave {
        /// The component's id.
        id: String,
    },
}

impl<C> ClientFrame<C> {
    /// A `msg` frame without `ref` or `id`.
    pub fn msg(payload: C) -> Self {
        Self::Msg {
            payload,
            reference: None,
            id: None,
        }
    }

    /// The frame's `ref`, if it is a `msg` that has one.
    pub fn reference(&self) -> Option<Ref> {
        match self {
            Self::Msg { reference, .. } => *reference,
            _ => None,
        }
    }

    /// The frame's `type` as it appears on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::Msg { .. } => "msg",
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
        }
    }
}

/// A frame sent by a server.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<S> {
    /// Sent on connect, and again (with `resumed: true`) when a `hello` resumes a session.
    Welcome {
        /// The session this connection belongs to.
        session: SessionId,
        /// The last sequence number sent in this session.
        seq: Seq,
        /// Whether an earlier session was resumed.
        resumed: bool,
        /// The protocol's name.
        protocol: String,
        /// The server's schema hash.
        version: String,
        /// The codec of this connection's frames. Written only when it is not JSON, so that
        /// a JSON connection's `welcome` is what it was before MessagePack: absent reads as
        /// JSON.
        #[serde(default, skip_serializing_if = "is_json")]
        #[ts(as = "Option<Codec>", optional)]
        codec: Codec,
        /// Mux only: the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// A sequenced server message: kept in the session's log and replayed on resume; or,
    /// with `topic`, a message of a sequenced topic, numbered and logged by the topic.
    Msg {
        /// This frame's sequence number: in the session, or in `topic` when it is set.
        seq: Seq,
        /// The protocol's server wire enum.
        payload: S,
        /// The client `ref` this message answers, if any.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        reference: Option<Ref>,
        /// The sequenced topic it was published on.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        topic: Option<String>,
        /// Mux only: the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// An ephemeral server message (pub/sub): never replayed.
    Push {
        /// The protocol's server wire enum.
        payload: S,
        /// The topic it was broadcast on, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        topic: Option<String>,
        /// Mux only: the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// The client message `ref` was handled.
    Ack {
        /// The client's `ref`.
        #[serde(rename = "ref")]
        reference: Ref,
        /// Mux only: the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// Something went wrong; the connection stays open unless the code says otherwise.
    Error {
        /// What went wrong, as a stable code.
        code: ErrorCode,
        /// A human-readable explanation.
        message: String,
        /// The `ref` of the client frame that caused it.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        reference: Option<Ref>,
        /// Mux only: the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// The client's resume point is no longer held: drop derived state; fresh state follows.
    Reset {
        /// The session's current sequence number (or `topic`'s); the next frame is `seq + 1`.
        seq: Seq,
        /// Set when only this topic's resume point is gone: drop what derives from the
        /// topic; the handler's snapshot of it follows.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        topic: Option<String>,
        /// Mux only: the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// A topic's whole presence list: sent when a session subscribes to a topic that has
    /// presence, and again after every reconnect. Replaces what the client held.
    PresenceState {
        /// The topic.
        topic: String,
        /// Every key tracked in the topic, with its entries.
        state: List,
        /// Mux only: the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// What changed in a topic's presence since the last `presence_diff` (coalesced): remove
    /// the leaves, then add the joins.
    PresenceDiff {
        /// The topic.
        topic: String,
        /// The joins and leaves.
        #[serde(flatten)]
        diff: Diff,
        /// Mux only: the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// How many are in a topic's presence: sent instead of `presence_state` and
    /// `presence_diff` to a client that asked for the topic's count, when it subscribes and
    /// after each change (coalesced as diffs are).
    PresenceCount {
        /// The topic.
        topic: String,
        /// How many keys are tracked (users, say).
        keys: u64,
        /// How many entries, over all keys (a user's tabs, say).
        entries: u64,
        /// Mux only: the component.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<String>,
    },
    /// Mux: component `id` started.
    Joined {
        /// The component.
        id: String,
    },
    /// Mux: component `id` stopped.
    Left {
        /// The component.
        id: String,
    },
}

impl<S> ServerFrame<S> {
    /// The same frame with its payload (of a `msg` or `push`) made into a `T` by `f`.
    pub fn map_payload<T>(self, f: impl FnOnce(S) -> T) -> ServerFrame<T> {
        match self {
            Self::Msg {
                seq,
                payload,
                reference,
                topic,
                id,
            } => ServerFrame::Msg {
                seq,
                payload: f(payload),
                reference,
                topic,
                id,
            },
            Self::Push { payload, topic, id } => ServerFrame::Push {
                payload: f(payload),
                topic,
                id,
            },
            Self::Welcome {
                session,
                seq,
                resumed,
                protocol,
                version,
                codec,
                id,
            } => ServerFrame::Welcome {
                session,
                seq,
                resumed,
                protocol,
                version,
                codec,
                id,
            },
            Self::Ack { reference, id } => ServerFrame::Ack { reference, id },
            Self::Error {
                code,
                message,
                reference,
                id,
            } => ServerFrame::Error {
                code,
                message,
                reference,
                id,
            },
            Self::Reset { seq, topic, id } => ServerFrame::Reset { seq, topic, id },
            Self::PresenceState { topic, state, id } => {
                ServerFrame::PresenceState { topic, state, id }
            }
            Self::PresenceDiff { topic, diff, id } => ServerFrame::PresenceDiff { topic, diff, id },
            Self::PresenceCount {
                topic,
                keys,
                entries,
                id,
            } => ServerFrame::PresenceCount {
                topic,
                keys,
                entries,
                id,
            },
            Self::Joined { id } => ServerFrame::Joined { id },
            Self::Left { id } => ServerFrame::Left { id },
        }
    }

    /// An `error` frame with no `ref` or `id`.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            reference: None,
            id: None,
        }
    }

    /// The frame's `type` as it appears on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::Msg { .. } => "msg",
            Self::Push { .. } => "push",
            Self::Ack { .. } => "ack",
            Self::Error { .. } => "error",
            Self::Reset { .. } => "reset",
            Self::PresenceState { .. } => "presence_state",
            Self::PresenceDiff { .. } => "presence_diff",
            Self::PresenceCount { .. } => "presence_count",
            Self::Joined { .. } => "joined",
            Self::Left { .. } => "left",
        }
    }

    /// The session sequence number of a sequenced (`msg`) frame; a topic's `msg` has its
    /// topic's numbering, not the session's, and gives `None`.
    pub fn seq(&self) -> Option<Seq> {
        match self {
            Self::Msg {
                seq, topic: None, ..
            } => Some(*seq),
            _ => None,
        }
    }
}

/// Declares the error codes once: each with its documentation and its name on the wire, from
/// which the enum, [`ErrorCode::ALL`] and [`ErrorCode::as_str`] are all made.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $code:ident = $name:literal,)*) => {
        /// The stable error codes of `error` frames.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, TS)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[doc = $doc])* #[ts(rename = $name)] $code,)*
            /// A code this build does not know (sent by a newer peer).
            #[ts(skip)]
            Unknown,
        }

        impl ErrorCode {
            /// Every code a v1 peer may send.
            pub const ALL: [ErrorCode; [$(error_codes!(@one $code)),*].len()] =
                [$(Self::$code),*];

            /// The code as written on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$code => $name,)*
                    Self::Unknown => "unknown",
                }
            }
        }
    };
    (@one $code:ident) => {
        ()
    };
}

error_codes! {
    /// Not JSON, not an object, an unknown `type`, or a missing field.
    BadFrame = "bad_frame",
    /// The payload does not decode as the protocol's message.
    BadPayload = "bad_payload",
    /// The frame is larger than the limit (ws close 1009, HTTP 413).
    TooLarge = "too_large",
    /// The client's schema hash differs from the server's.
    VersionMismatch = "version_mismatch",
    /// Mux: the join token is tampered, expired, signed with another key or for another module.
    BadToken = "bad_token",
    /// Mux: no module of that name is registered.
    UnknownModule = "unknown_module",
    /// Mux: a component with that id is already joined.
    DuplicateId = "duplicate_id",
    /// Mux: no component with that id is joined.
    UnknownId = "unknown_id",
    /// The handler returned an error for the message (`ref`); the handler and its state are
    /// kept, and what it did before refusing is dropped.
    Rejected = "rejected",
    /// The handler panicked (or a hook failed); it was replaced by a fresh one, whose
    /// `connected` hook ran after the old one's `disconnected`.
    HandlerFailed = "handler_failed",
    /// The connection's outbound queue overflowed; it is closed.
    SlowConsumer = "slow_consumer",
    /// The message (its `ref`) is of a kind the server's build does not know: a newer
    /// client's, or one the server's build removed. The connection stays open.
    UnknownMessage = "unknown_message",
}

impl ErrorCode {
    /// Reads a code as written on the wire; a code this build does not know is
    /// [`ErrorCode::Unknown`] rather than an error, so newer servers stay readable.
    pub fn from_wire(code: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .unwrap_or(Self::Unknown)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::from_wire(&code))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
