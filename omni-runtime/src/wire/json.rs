//! The JSON form of frames: the one place that knows their field table.
//!
//! A frame is decoded in two steps: its envelope (the `type` and the other small fields, with
//! the payload kept as borrowed raw JSON), then the payload, once, into its type. This is
//! about twice as fast as a `#[serde(tag = "type")]` enum, which buffers the whole frame to find
//! its tag, and it lets a payload error still report the frame's `ref` and `id`.
//!
//! ```
//! use omni::{ClientFrame, ErrorCode};
//!
//! let err = ClientFrame::<serde_json::Value>::decode(b"{\"type\":\"dance\"}").unwrap_err();
//! assert_eq!(err.code(), ErrorCode::BadFrame);
//! assert_eq!(err.to_string(), "unknown frame type `dance`");
//! ```

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::frame::{ClientFrame, Cursors, ErrorCode, Ref, Seq, ServerFrame};
use crate::SessionId;
use crate::presence::{Diff, List};

/// A frame that could not be decoded.
///
/// Carries the `ref` and component `id` when the envelope was readable, so the `error` frame
/// sent back can name the message it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    code: ErrorCode,
    message: String,
    reference: Option<Ref>,
    id: Option<String>,
}

impl DecodeError {
    pub(crate) fn bad_frame(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::BadFrame,
            message: message.into(),
            reference: None,
            id: None,
        }
    }

    /// `bad_frame` (the frame itself is malformed) or `bad_payload` (the frame is well formed
    /// but its payload is not a message of the protocol).
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The `ref` of the offending frame, when it could be read.
    pub fn reference(&self) -> Option<Ref> {
        self.reference
    }

    /// The component `id` of the offending frame, when it could be read.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

impl<S> From<&DecodeError> for ServerFrame<S> {
    fn from(err: &DecodeError) -> Self {
        ServerFrame::Error {
            code: err.code,
            message: err.message.clone(),
            reference: err.reference,
            id: err.id.clone(),
        }
    }
}

/// A frame that could not be encoded: a payload whose `Serialize` impl failed, or a map with
/// keys JSON cannot hold.
#[derive(Debug, thiserror::Error)]
#[error("could not encode frame: {0}")]
pub struct EncodeError(Box<dyn std::error::Error + Send + Sync>);

impl From<serde_json::Error> for EncodeError {
    fn from(err: serde_json::Error) -> Self {
        Self(Box::new(err))
    }
}

impl From<rmp_serde::encode::Error> for EncodeError {
    fn from(err: rmp_serde::encode::Error) -> Self {
        Self(Box::new(err))
    }
}

/// A frame's field as read: absent (or `null`), a value, or present with the wrong type. A
/// wrong type is kept as the decoder's message and reported only by a frame type that uses
/// the field, so keys of other frame types, or keys a newer peer adds, never reject a frame.
pub(super) enum Field<T> {
    Absent,
    Value(T),
    Bad(String),
}

impl<T> Field<T> {
    fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// The field table: every field any v1 frame has besides `type` and `payload`, with its type
/// and its key. The one list the fast and the careful readers are both made from.
macro_rules! field_table {
    ($($field:ident: $ty:ty = $key:literal,)*) => {
        /// Every field any v1 frame has, read from one frame.
        pub(super) struct Fields<P> {
            /// The frame's `type`: borrowed for the frame types v1 knows.
            pub(super) kind: Cow<'static, str>,
            /// The frame's `ref` and `id`, for errors.
            named: (Option<Ref>, Option<String>),
            pub(super) payload: Field<P>,
            $($field: Field<$ty>,)*
        }

        impl<P> Fields<P> {
            pub(super) fn empty() -> Self {
                Fields {
                    kind: Cow::Borrowed(""),
                    named: (None, None),
                    payload: Field::Absent,
                    $($field: Field::Absent,)*
                }
            }

            /// The careful MessagePack path: one field's value, read on its own.
            pub(super) fn put_packed(&mut self, key: Key, value: rmpv::Value) {
                match key {
                    $(Key::$field => self.$field = super::msgpack::lenient(value),)*
                    Key::Type | Key::Payload | Key::Other => {}
                }
            }

            /// The careful path's fields: each read on its own from the raw envelope.
            fn from_envelope(env: Envelope<'_>, payload: Field<P>) -> Self {
                Fields {
                    kind: kind_name(&env.kind),
                    named: (None, None),
                    payload,
                    $($field: lenient(env.$field),)*
                }
            }

            /// The fast path: reads the value of `key` into its field.
            fn put<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: Key,
                map: &mut A,
            ) -> Result<(), A::Error> {
                match key {
                    $(Key::$field => put(map, &mut self.$field),)*
                    Key::Type | Key::Payload | Key::Other => {
                        map.next_value::<serde::de::IgnoredAny>().map(drop)
                    }
                }
            }
        }

        /// A key's name in the frame.
        pub(super) fn key_str(key: Key) -> &'static str {
            match key {
                Key::Type => "type",
                Key::Payload => "payload",
                $(Key::$field => $key,)*
                Key::Other => "?",
            }
        }

        /// Every field of every frame type, left as raw JSON, for the careful path.
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(rename = "type", borrow)]
            kind: Cow<'a, str>,
            #[serde(borrow, default, deserialize_with = "present")]
            payload: Option<&'a RawValue>,
            $(
                #[serde(rename = $key, borrow, default)]
                $field: Option<&'a RawValue>,
            )*
        }

        /// The keys the fast path knows; any other is skipped.
        #[derive(Clone, Copy)]
        #[allow(non_camel_case_types)]
        pub(super) enum Key {
            Type,
            Payload,
            $($field,)*
            Other,
        }

        impl Key {
            fn named(name: &str) -> Key {
                match name {
                    "type" => Key::Type,
                    "payload" => Key::Payload,
                    $($key => Key::$field,)*
                    _ => Key::Other,
                }
            }
        }
    };
}

/// Only a string names a field. serde's derived identifiers also take a field's position
/// (`0` for `type`) and its name as bytes, which would let a MessagePack map with integer or
/// `bin` keys name fields that PROTOCOL.md says it cannot; such keys are skipped instead.
impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl serde::de::Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a frame key")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(Key::named(name))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Key, E> {
        Ok(Key::Other)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Key, E> {
        Ok(Key::Other)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Key, E> {
        Ok(Key::Other)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Key, E> {
        Ok(Key::Other)
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Key, E> {
        Ok(Key::Other)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Key, E> {
        Ok(Key::Other)
    }
}

field_table! {
    reference: Ref = "ref",
    id: String = "id",
    protocol: String = "protocol",
    version: String = "version",
    session: SessionId = "session",
    after: Seq = "after",
    module: String = "module",
    token: String = "token",
    seq: Seq = "seq",
    resumed: bool = "resumed",
    topic: String = "topic",
    topics: Cursors = "topics",
    code: ErrorCode = "code",
    message: String = "message",
    state: List = "state",
    joins: List = "joins",
    leaves: List = "leaves",
    codec: String = "codec",
}

/// The frame types of v1.
const KINDS: [&str; 13] = [
    "hello",
    "msg",
    "join",
    "leave",
    "welcome",
    "push",
    "ack",
    "error",
    "reset",
    "joined",
    "left",
    "presence_state",
    "presence_diff",
];

/// A frame's `type` as kept: a v1 type without an allocation, any other as read.
pub(super) fn kind_name(kind: &str) -> Cow<'static, str> {
    match KINDS.into_iter().find(|k| *k == kind) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(kind.to_owned()),
    }
}

impl<P: DeserializeOwned> Fields<P> {
    /// Reads a frame's fields into `self` (made [`empty`](Self::empty)). The fast path decodes
    /// every field, payload included, in one pass, in place; it gives up on anything unusual
    /// (a wrong type anywhere, a bad payload, not JSON), and then the careful path reads each
    /// field on its own so the error can be precise and name the frame's `ref` and `id`. Both
    /// accept exactly the same frames.
    fn read(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        self.read_with(serde_json::Deserializer::from_slice(bytes), bytes)
    }

    /// [`read`](Self::read) for text already known to be UTF-8 (a WebSocket text frame, which
    /// the WebSocket layer validated): strings are not checked a second time.
    fn read_str(&mut self, text: &str) -> Result<(), DecodeError> {
        self.read_with(serde_json::Deserializer::from_str(text), text.as_bytes())
    }

    fn read_with<'de, R: serde_json::de::Read<'de>>(
        &mut self,
        mut de: serde_json::Deserializer<R>,
        bytes: &[u8],
    ) -> Result<(), DecodeError> {
        let fast = serde::de::DeserializeSeed::deserialize(Fast(self), &mut de);
        if fast.and_then(|()| de.end()).is_ok() {
            self.name();
        } else {
            *self = Self::read_carefully(bytes)?;
        }
        Ok(())
    }

    fn read_carefully(bytes: &[u8]) -> Result<Self, DecodeError> {
        let env: Envelope<'_> =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::bad_frame(e.to_string()))?;
        let payload = match env.payload {
            None => Field::Absent,
            Some(raw) => match serde_json::from_str(raw.get()) {
                Ok(value) => Field::Value(value),
                Err(e) => Field::Bad(without_position(&e)),
            },
        };
        let mut fields = Self::from_envelope(env, payload);
        fields.name();
        Ok(fields)
    }
}

impl<P> Fields<P> {
    /// Keeps the `ref` and `id` aside for errors, since building the frame moves fields out.
    pub(super) fn name(&mut self) {
        self.named = (self.reference.value().copied(), self.id.value().cloned());
    }

    /// A `bad_frame` error that names this frame's `ref` and `id` when they were readable.
    pub(super) fn bad(&self, message: String) -> DecodeError {
        DecodeError {
            code: ErrorCode::BadFrame,
            message,
            reference: self.named.0,
            id: self.named.1.clone(),
        }
    }

    /// An optional field, moved out; present with the wrong type is a `bad_frame` naming it.
    fn optional<T>(
        &mut self,
        pick: impl FnOnce(&mut Self) -> &mut Field<T>,
        name: &str,
    ) -> Result<Option<T>, DecodeError> {
        match std::mem::replace(pick(self), Field::Absent) {
            Field::Absent => Ok(None),
            Field::Value(v) => Ok(Some(v)),
            Field::Bad(why) => {
                Err(self.bad(format!("`{}` frame has a bad `{name}`: {why}", self.kind)))
            }
        }
    }

    /// A field the frame cannot do without.
    fn required<T>(
        &mut self,
        pick: impl FnOnce(&mut Self) -> &mut Field<T>,
        name: &str,
    ) -> Result<T, DecodeError> {
        self.optional(pick, name)?
            .ok_or_else(|| self.bad(format!("`{}` frame needs `{name}`", self.kind)))
    }

    /// The payload: missing is a `bad_frame`, undecodable a `bad_payload`.
    fn payload(&mut self) -> Result<P, DecodeError> {
        match std::mem::replace(&mut self.payload, Field::Absent) {
            Field::Value(v) => Ok(v),
            Field::Absent => Err(self.bad(format!("`{}` frame needs `payload`", self.kind))),
            Field::Bad(message) => Err(DecodeError {
                code: ErrorCode::BadPayload,
                ..self.bad(message)
            }),
        }
    }

    /// The frame's type as a static string, or `""` when no v1 frame has that type, so that
    /// matching on it does not hold a borrow of the fields.
    fn known_kind(&self) -> &'static str {
        match self.kind {
            Cow::Borrowed(kind) => kind,
            Cow::Owned(_) => "",
        }
    }

    fn unknown(&self) -> DecodeError {
        self.bad(format!("unknown frame type `{}`", self.kind))
    }
}

fn lenient<T: DeserializeOwned>(raw: Option<&RawValue>) -> Field<T> {
    match raw.map(|raw| serde_json::from_str::<Option<T>>(raw.get())) {
        None | Some(Ok(None)) => Field::Absent,
        Some(Ok(Some(value))) => Field::Value(value),
        Some(Err(e)) => Field::Bad(without_position(&e)),
    }
}

/// A present `payload` is `Some` even when it is `null` (a unit payload); only a missing key is
/// `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// The fast path: every key decoded straight into its field, in one pass over the bytes.
pub(super) struct Fast<'f, P>(pub(super) &'f mut Fields<P>);

impl<'de, P: DeserializeOwned> serde::de::DeserializeSeed<'de> for Fast<'_, P> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, P: DeserializeOwned> serde::de::Visitor<'de> for Fast<'_, P> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a frame object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::Error;

        let f = self.0;
        // One bit per known key: a repeated key is left to the careful path, which rejects it.
        let mut seen = 0u32;
        while let Some(key) = map.next_key::<Key>()? {
            let bit = 1 << key as u32;
            if !matches!(key, Key::Other) && seen & bit != 0 {
                return Err(A::Error::custom("repeated key"));
            }
            seen |= bit;
            match key {
                Key::Type => f.kind = map.next_value_seed(KindSeed)?,
                Key::Payload => f.payload = Field::Value(map.next_value::<P>()?),
                key => f.put(key, &mut map)?,
            }
        }
        if seen & (1 << Key::Type as u32) == 0 {
            return Err(A::Error::missing_field("type"));
        }
        Ok(())
    }
}

/// Reads a field into its slot: `null` is absent.
fn put<'de, T: Deserialize<'de>, A: serde::de::MapAccess<'de>>(
    map: &mut A,
    slot: &mut Field<T>,
) -> Result<(), A::Error> {
    *slot = match map.next_value::<Option<T>>()? {
        Some(v) => Field::Value(v),
        None => Field::Absent,
    };
    Ok(())
}

/// Reads a `type` without allocating for the types v1 knows.
struct KindSeed;

impl<'de> serde::de::DeserializeSeed<'de> for KindSeed {
    type Value = Cow<'static, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KindSeed {
    type Value = Cow<'static, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a frame type")
    }

    fn visit_str<E: serde::de::Error>(self, kind: &str) -> Result<Self::Value, E> {
        Ok(kind_name(kind))
    }
}

/// Decodes a payload that an envelope decode kept as raw JSON (the mux routes a frame on its
/// envelope and hands the component its payload): an error is the `bad_payload` the whole
/// frame's decode would have given, naming `reference` and `id`.
#[cfg(feature = "server")]
pub(crate) fn decode_payload<C: DeserializeOwned>(
    raw: &RawValue,
    reference: Option<Ref>,
    id: Option<&str>,
) -> Result<C, DecodeError> {
    serde_json::from_str(raw.get()).map_err(|e| DecodeError {
        code: ErrorCode::BadPayload,
        message: without_position(&e),
        reference,
        id: id.map(str::to_owned),
    })
}

/// serde_json's message without its " at line L column C" suffix, which for a payload would
/// point into the payload's own text rather than the frame.
fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match message.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => message,
    }
}

impl<C: DeserializeOwned> ClientFrame<C> {
    /// Decodes one frame from JSON bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut fields = Fields::empty();
        fields.read(bytes)?;
        Self::from_fields(&mut fields)
    }

    /// Decodes one frame from JSON text: the same as [`decode`](Self::decode), without
    /// checking again that the text is UTF-8.
    pub fn decode_str(text: &str) -> Result<Self, DecodeError> {
        let mut fields = Fields::empty();
        fields.read_str(text)?;
        Self::from_fields(&mut fields)
    }

    pub(super) fn from_fields(f: &mut Fields<C>) -> Result<Self, DecodeError> {
        let frame = match f.known_kind() {
            "hello" => ClientFrame::Hello {
                protocol: f.optional(|f| &mut f.protocol, "protocol")?,
                version: f.optional(|f| &mut f.version, "version")?,
                session: f.optional(|f| &mut f.session, "session")?,
                after: f.optional(|f| &mut f.after, "after")?,
                topics: f.optional(|f| &mut f.topics, "topics")?,
            },
            "msg" => ClientFrame::Msg {
                reference: f.optional(|f| &mut f.reference, "ref")?,
                id: f.optional(|f| &mut f.id, "id")?,
                payload: f.payload()?,
            },
            "join" => ClientFrame::Join {
                id: f.required(|f| &mut f.id, "id")?,
                module: f.required(|f| &mut f.module, "module")?,
                token: f.required(|f| &mut f.token, "token")?,
                session: f.optional(|f| &mut f.session, "session")?,
                after: f.optional(|f| &mut f.after, "after")?,
                version: f.optional(|f| &mut f.version, "version")?,
                topics: f.optional(|f| &mut f.topics, "topics")?,
            },
            "leave" => ClientFrame::Leave {
                id: f.required(|f| &mut f.id, "id")?,
            },
            _ => return Err(f.unknown()),
        };
        Ok(frame)
    }
}

impl<S: DeserializeOwned> ServerFrame<S> {
    /// Decodes one frame from JSON bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut fields = Fields::empty();
        fields.read(bytes)?;
        Self::from_fields(&mut fields)
    }

    pub(super) fn from_fields(f: &mut Fields<S>) -> Result<Self, DecodeError> {
        let frame = match f.known_kind() {
            "welcome" => ServerFrame::Welcome {
                session: f.required(|f| &mut f.session, "session")?,
                seq: f.required(|f| &mut f.seq, "seq")?,
                resumed: f.optional(|f| &mut f.resumed, "resumed")?.unwrap_or(false),
                protocol: f
                    .optional(|f| &mut f.protocol, "protocol")?
                    .unwrap_or_default(),
                version: f
                    .optional(|f| &mut f.version, "version")?
                    .unwrap_or_default(),
                // A codec this client does not know cannot be in force: it did not ask for it.
                codec: f
                    .optional(|f| &mut f.codec, "codec")?
                    .and_then(|name| name.parse().ok())
                    .unwrap_or_default(),
                id: f.optional(|f| &mut f.id, "id")?,
            },
            "msg" => ServerFrame::Msg {
                seq: f.required(|f| &mut f.seq, "seq")?,
                reference: f.optional(|f| &mut f.reference, "ref")?,
                topic: f.optional(|f| &mut f.topic, "topic")?,
                id: f.optional(|f| &mut f.id, "id")?,
                payload: f.payload()?,
            },
            "push" => ServerFrame::Push {
                topic: f.optional(|f| &mut f.topic, "topic")?,
                id: f.optional(|f| &mut f.id, "id")?,
                payload: f.payload()?,
            },
            "ack" => ServerFrame::Ack {
                reference: f.required(|f| &mut f.reference, "ref")?,
                id: f.optional(|f| &mut f.id, "id")?,
            },
            "error" => ServerFrame::Error {
                code: f.required(|f| &mut f.code, "code")?,
                message: f
                    .optional(|f| &mut f.message, "message")?
                    .unwrap_or_default(),
                reference: f.optional(|f| &mut f.reference, "ref")?,
                id: f.optional(|f| &mut f.id, "id")?,
            },
            "reset" => ServerFrame::Reset {
                seq: f.required(|f| &mut f.seq, "seq")?,
                topic: f.optional(|f| &mut f.topic, "topic")?,
                id: f.optional(|f| &mut f.id, "id")?,
            },
            "presence_state" => ServerFrame::PresenceState {
                topic: f.required(|f| &mut f.topic, "topic")?,
                state: f.required(|f| &mut f.state, "state")?,
                id: f.optional(|f| &mut f.id, "id")?,
            },
            "presence_diff" => ServerFrame::PresenceDiff {
                topic: f.required(|f| &mut f.topic, "topic")?,
                diff: Diff {
                    joins: f.optional(|f| &mut f.joins, "joins")?.unwrap_or_default(),
                    leaves: f.optional(|f| &mut f.leaves, "leaves")?.unwrap_or_default(),
                },
                id: f.optional(|f| &mut f.id, "id")?,
            },
            "joined" => ServerFrame::Joined {
                id: f.required(|f| &mut f.id, "id")?,
            },
            "left" => ServerFrame::Left {
                id: f.required(|f| &mut f.id, "id")?,
            },
            _ => return Err(f.unknown()),
        };
        Ok(frame)
    }
}

impl<C: Serialize> ClientFrame<C> {
    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> Result<String, EncodeError> {
        Ok(serde_json::to_string(self)?)
    }
}

impl<S: Serialize> ServerFrame<S> {
    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> Result<String, EncodeError> {
        Ok(serde_json::to_string(self)?)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn careful_client(bytes: &[u8]) -> Result<ClientFrame<Value>, DecodeError> {
        ClientFrame::from_fields(&mut Fields::read_carefully(bytes)?)
    }

    fn careful_server(bytes: &[u8]) -> Result<ServerFrame<Value>, DecodeError> {
        ServerFrame::from_fields(&mut Fields::read_carefully(bytes)?)
    }

    /// Frame-like objects: real and junk types, each known key with a value of a right or a
    /// wrong type, keys repeated, in any order.
    fn frame_like() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            (0u64..5).prop_map(|n| n.to_string()),
            Just("-1".to_owned()),
            Just(r#""0123456789abcdef0123456789abcdef""#.to_owned()),
            Just(r#""bad_token""#.to_owned()),
            Just(r#""x""#.to_owned()),
            Just(r#"{"kind":"A"}"#.to_owned()),
            Just("[1,{}]".to_owned()),
        ];
        let key = prop_oneof![
            Just("type"),
            Just("payload"),
            Just("ref"),
            Just("id"),
            Just("protocol"),
            Just("version"),
            Just("session"),
            Just("after"),
            Just("module"),
            Just("token"),
            Just("seq"),
            Just("resumed"),
            Just("topic"),
            Just("code"),
            Just("message"),
            Just("extra"),
        ];
        let kind = prop_oneof![
            Just("hello"),
            Just("msg"),
            Just("join"),
            Just("leave"),
            Just("welcome"),
            Just("push"),
            Just("ack"),
            Just("error"),
            Just("reset"),
            Just("joined"),
            Just("left"),
            Just("dance"),
        ];
        (
            kind,
            0usize..4,
            proptest::collection::vec((key, value), 0..8),
        )
            .prop_map(|(kind, at, pairs)| {
                let mut parts: Vec<String> =
                    pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                parts.insert(at.min(parts.len()), format!("\"type\":\"{kind}\""));
                format!("{{{}}}", parts.join(","))
            })
    }

    proptest! {
        /// The one-pass reader is an optimisation only: it decodes exactly what the careful
        /// reader decodes, and fails exactly where it fails, with the same error.
        #[test]
        fn fast_and_careful_paths_agree(text in frame_like()) {
            let bytes = text.as_bytes();
            prop_assert_eq!(ClientFrame::<Value>::decode(bytes), careful_client(bytes));
            prop_assert_eq!(ServerFrame::<Value>::decode(bytes), careful_server(bytes));
        }
    }

    #[test]
    fn missing_fields_name_the_field_and_keep_the_ref() {
        let err = ClientFrame::<Value>::decode(br#"{"type":"msg","ref":9}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadFrame);
        assert_eq!(err.to_string(), "`msg` frame needs `payload`");
        assert_eq!(err.reference(), Some(9));

        let err = ClientFrame::<Value>::decode(br#"{"type":"join","id":"c1","module":"chat"}"#)
            .unwrap_err();
        assert_eq!(err.to_string(), "`join` frame needs `token`");
        assert_eq!(err.id(), Some("c1"));
    }

    #[test]
    fn payload_errors_keep_ref_and_id() {
        let err =
            ClientFrame::<u8>::decode(br#"{"type":"msg","payload":300,"ref":4,"id":"counter"}"#)
                .unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadPayload);
        assert_eq!((err.reference(), err.id()), (Some(4), Some("counter")));
    }

    #[test]
    fn not_an_object_is_a_bad_frame() {
        for input in [&b"[]"[..], b"\"msg\"", b"", b"{", b"\xff", b"{\"type\":7}"] {
            let err = ClientFrame::<Value>::decode(input).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadFrame, "{input:?}");
        }
    }

    #[test]
    fn unknown_keys_are_ignored_and_escaped_types_read() {
        let frame =
            ClientFrame::<Value>::decode(br#"{"type":"le\u0061ve","id":"a","extra":[1,2]}"#)
                .unwrap();
        assert_eq!(frame, ClientFrame::Leave { id: "a".into() });
    }

    #[test]
    fn fields_of_other_frame_types_are_not_checked() {
        let frame = ClientFrame::<Value>::decode(
            br#"{"type":"msg","payload":null,"ref":3,"code":5,"seq":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            frame,
            ClientFrame::Msg {
                payload: Value::Null,
                reference: Some(3),
                id: None
            }
        );
        let err =
            ClientFrame::<Value>::decode(br#"{"type":"hello","after":"x","ref":1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`hello` frame has a bad `after`: invalid type: string \"x\", expected u64"
        );
    }

    #[test]
    #[cfg(feature = "server")]
    fn an_envelope_then_its_payload_decode_as_the_whole_frame_does() {
        for text in [
            r#"{"type":"msg","payload":300,"ref":4,"id":"counter"}"#,
            r#"{"type":"msg","payload":7,"id":"c"}"#,
            r#"{"type":"msg","payload":"x","ref":1}"#,
        ] {
            let whole = ClientFrame::<u8>::decode(text.as_bytes());
            assert_eq!(ClientFrame::<u8>::decode_str(text), whole);
            let Ok(ClientFrame::Msg {
                payload,
                reference,
                id,
            }) = ClientFrame::<Box<RawValue>>::decode_str(text)
            else {
                panic!("the envelope of {text} decodes");
            };
            let payload = decode_payload::<u8>(&payload, reference, id.as_deref());
            match whole {
                Ok(ClientFrame::Msg { payload: p, .. }) => assert_eq!(payload, Ok(p)),
                Err(err) => assert_eq!(payload, Err(err)),
                Ok(other) => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn floats_decode_to_the_nearest_double_and_round_trip() {
        // serde_json's fast float parser is off by one unit in the last place here.
        let text = r#"{"type":"msg","payload":6.777777777777777e+64}"#;
        let expected: f64 = "6.777777777777777e+64".parse().unwrap();
        let Ok(ClientFrame::Msg { payload, .. }) = ClientFrame::<f64>::decode(text.as_bytes())
        else {
            panic!("decodes");
        };
        assert_eq!(payload.to_bits(), expected.to_bits());
        assert_eq!(ClientFrame::msg(payload).encode().unwrap(), text);
    }

    #[test]
    fn unit_payloads_round_trip() {
        let frame = ServerFrame::Push {
            payload: (),
            topic: None,
            id: None,
        };
        let text = frame.encode().unwrap();
        assert_eq!(ServerFrame::<()>::decode(text.as_bytes()).unwrap(), frame);
    }

    #[test]
    fn unknown_error_codes_still_decode() {
        let frame = ServerFrame::<Value>::decode(
            br#"{"type":"error","code":"rate_limited","message":"slow down"}"#,
        )
        .unwrap();
        assert_eq!(frame, ServerFrame::error(ErrorCode::Unknown, "slow down"));
    }

    #[test]
    fn server_frames_round_trip() {
        let frames = [
            ServerFrame::Msg {
                topic: None,
                seq: 3,
                payload: json!({"kind": "Presence", "data": {"online": 1}}),
                reference: Some(2),
                id: None,
            },
            ServerFrame::Reset {
                topic: None,
                seq: 10,
                id: Some("c".into()),
            },
            ServerFrame::Joined { id: "c".into() },
        ];
        for frame in frames {
            let text = frame.encode().unwrap();
            assert_eq!(
                ServerFrame::<Value>::decode(text.as_bytes()).unwrap(),
                frame
            );
        }
    }
}
