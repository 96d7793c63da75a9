//! The frames' field table, which both codecs read: every key a frame may carry, its type,
//! and the one-pass reader that fills them, leaving a field of the wrong type to be reported
//! only by a frame type that uses it.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::error::{DecodeError, without_position};
use super::frame::{Cursors, ErrorCode, Ref, Seq};
use super::trace::TraceParent;
use crate::SessionId;
use crate::presence::{List, Modes};

/// A frame's field as read: absent (or `null`), a value, or present with the wrong type. A
/// wrong type is kept as the decoder's message and reported only by a frame type that uses
/// the field, so keys of other frame types, or keys a newer peer adds, never reject a frame.
pub(super) enum Field<T> {
    Absent,
    Value(T),
    Bad(String),
}

impl<T> Field<T> {
    pub(super) fn value(&self) -> Option<&T> {
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
            /// The `kind` of a payload that did not decode, for the error.
            pub(super) payload_kind: Option<String>,
            $(pub(super) $field: Field<$ty>,)*
        }

        impl<P> Fields<P> {
            pub(super) fn empty() -> Self {
                Fields {
                    kind: Cow::Borrowed(""),
                    named: (None, None),
                    payload: Field::Absent,
                    payload_kind: None,
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
                    payload_kind: None,
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
    compatible: Vec<String> = "compatible",
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
    traceparent: String = "traceparent",
    presence: Modes = "presence",
    client: String = "client",
    keys: u64 = "keys",
    entries: u64 = "entries",
}

/// The frame types of v1.
const KINDS: [&str; 14] = [
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
    "presence_count",
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
    pub(super) fn read(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        self.read_with(serde_json::Deserializer::from_slice(bytes), bytes)
    }

    /// [`read`](Self::read) for text already known to be UTF-8 (a WebSocket text frame, which
    /// the WebSocket layer validated): strings are not checked a second time.
    pub(super) fn read_str(&mut self, text: &str) -> Result<(), DecodeError> {
        self.read_with(serde_json::Deserializer::from_str(text), text.as_bytes())
    }

    pub(super) fn read_with<'de, R: serde_json::de::Read<'de>>(
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

    pub(super) fn read_carefully(bytes: &[u8]) -> Result<Self, DecodeError> {
        let env: Envelope<'_> =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::bad_frame(e.to_string()))?;
        let payload = match env.payload {
            None => Field::Absent,
            Some(raw) => match serde_json::from_str(raw.get()) {
                Ok(value) => Field::Value(value),
                Err(e) => Field::Bad(without_position(&e)),
            },
        };
        let kind = match (&payload, env.payload) {
            (Field::Bad(_), Some(raw)) => json_kind(raw),
            _ => None,
        };
        let mut fields = Self::from_envelope(env, payload);
        fields.payload_kind = kind;
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
            kind: None,
        }
    }

    /// An optional field, moved out; present with the wrong type is a `bad_frame` naming it.
    pub(super) fn optional<T>(
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

    /// The `traceparent`, if it is a valid one: unlike every other field, a malformed one
    /// (or one of the wrong type) is dropped, not refused, as W3C Trace Context asks.
    pub(super) fn traceparent(&mut self) -> Option<TraceParent> {
        match std::mem::replace(&mut self.traceparent, Field::Absent) {
            Field::Value(text) => TraceParent::parse(&text),
            Field::Absent | Field::Bad(_) => None,
        }
    }

    /// A field the frame cannot do without.
    pub(super) fn required<T>(
        &mut self,
        pick: impl FnOnce(&mut Self) -> &mut Field<T>,
        name: &str,
    ) -> Result<T, DecodeError> {
        self.optional(pick, name)?
            .ok_or_else(|| self.bad(format!("`{}` frame needs `{name}`", self.kind)))
    }

    /// The payload: missing is a `bad_frame`, undecodable a `bad_payload`.
    pub(super) fn payload(&mut self) -> Result<P, DecodeError> {
        match std::mem::replace(&mut self.payload, Field::Absent) {
            Field::Value(v) => Ok(v),
            Field::Absent => Err(self.bad(format!("`{}` frame needs `payload`", self.kind))),
            Field::Bad(message) => Err(DecodeError::bad_payload(
                message,
                self.named.0,
                self.named.1.clone(),
                self.payload_kind.take(),
            )),
        }
    }

    /// The frame's type as a static string, or `""` when no v1 frame has that type, so that
    /// matching on it does not hold a borrow of the fields.
    pub(super) fn known_kind(&self) -> &'static str {
        match self.kind {
            Cow::Borrowed(kind) => kind,
            Cow::Owned(_) => "",
        }
    }

    pub(super) fn unknown(&self) -> DecodeError {
        self.bad(format!("unknown frame type `{}`", self.kind))
    }
}

/// The `kind` a JSON payload names, if it is an object with a string `kind`.
pub(super) fn json_kind(raw: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Kind {
        kind: String,
    }
    serde_json::from_str::<Kind>(raw.get()).ok().map(|k| k.kind)
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
