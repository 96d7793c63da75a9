//! The JSON form of frames: the one place that knows their field table.
//!
//! A frame is decoded in two steps: its envelope (the `type` and the other small fields, with
//! the payload kept as borrowed raw JSON), then the payload, once, into its type. This is
//! about twice as fast as a `#[serde(tag = "type")]` enum, which buffers the whole frame to find
//! its tag, and it lets a payload error still report the frame's `ref` and `id`.
//!
//! ```
//! use omni_runtime::{ClientFrame, ErrorCode};
//!
//! let err = ClientFrame::<serde_json::Value>::decode(b"{\"type\":\"dance\"}").unwrap_err();
//! assert_eq!(err.code(), ErrorCode::BadFrame);
//! assert_eq!(err.to_string(), "unknown frame type `dance`");
//! ```

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::SessionId;
use crate::frame::{ClientFrame, Cursors, ErrorCode, Ref, Seq, ServerFrame};

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
pub struct EncodeError(#[from] serde_json::Error);

/// A frame's field as read: absent (or `null`), a value, or present with the wrong type. A
/// wrong type is kept as the decoder's message and reported only by a frame type that uses
/// the field, so keys of other frame types, or keys a newer peer adds, never reject a frame.
enum Field<T> {
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

/// Every field any v1 frame has, read from one frame.
struct Fields<P> {
    kind: String,
    /// The frame's `ref` and `id`, for errors.
    named: (Option<Ref>, Option<String>),
    payload: Field<P>,
    reference: Field<Ref>,
    id: Field<String>,
    protocol: Field<String>,
    version: Field<String>,
    session: Field<SessionId>,
    after: Field<Seq>,
    module: Field<String>,
    token: Field<String>,
    seq: Field<Seq>,
    resumed: Field<bool>,
    topic: Field<String>,
    topics: Field<Cursors>,
    code: Field<ErrorCode>,
    message: Field<String>,
}

impl<P: DeserializeOwned> Fields<P> {
    /// Reads a frame's fields. The fast path decodes every field, payload included, in one
    /// pass; it gives up on anything unusual (a wrong type anywhere, a bad payload, not JSON),
    /// and then the careful path reads each field on its own so the error can be precise and
    /// name the frame's `ref` and `id`. Both accept exactly the same frames.
    fn read(bytes: &[u8]) -> Result<Self, DecodeError> {
        let fast = serde_json::from_slice::<Fast<P>>(bytes);
        Self::or_carefully(fast, bytes)
    }

    /// [`read`](Self::read) for text already known to be UTF-8 (a WebSocket text frame, which
    /// the WebSocket layer validated): strings are not checked a second time.
    fn read_str(text: &str) -> Result<Self, DecodeError> {
        let fast = serde_json::from_str::<Fast<P>>(text);
        Self::or_carefully(fast, text.as_bytes())
    }

    fn or_carefully(
        fast: Result<Fast<P>, serde_json::Error>,
        bytes: &[u8],
    ) -> Result<Self, DecodeError> {
        let mut fields = match fast {
            Ok(Fast(fields)) => fields,
            Err(_) => Self::read_carefully(bytes)?,
        };
        // Kept aside because building the frame moves the fields out.
        fields.named = (
            fields.reference.value().copied(),
            fields.id.value().cloned(),
        );
        Ok(fields)
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
        let fields = Fields {
            kind: env.kind.into_owned(),
            named: (None, None),
            payload,
            reference: lenient(env.reference),
            id: lenient(env.id),
            protocol: lenient(env.protocol),
            version: lenient(env.version),
            session: lenient(env.session),
            after: lenient(env.after),
            module: lenient(env.module),
            token: lenient(env.token),
            seq: lenient(env.seq),
            resumed: lenient(env.resumed),
            topic: lenient(env.topic),
            topics: lenient(env.topics),
            code: lenient(env.code),
            message: lenient(env.message),
        };
        Ok(fields.named())
    }
}

impl<P> Fields<P> {
    /// Keeps the `ref` and `id` aside for errors, since building the frame moves fields out.
    fn named(mut self) -> Self {
        self.named = (self.reference.value().copied(), self.id.value().cloned());
        self
    }

    /// A `bad_frame` error that names this frame's `ref` and `id` when they were readable.
    fn bad(&self, message: String) -> DecodeError {
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
        const KINDS: [&str; 11] = [
            "hello", "msg", "join", "leave", "welcome", "push", "ack", "error", "reset", "joined",
            "left",
        ];
        KINDS.into_iter().find(|k| *k == self.kind).unwrap_or("")
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

/// Every field of every frame type, left as raw JSON, for the careful path.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    #[serde(rename = "ref", borrow, default)]
    reference: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    protocol: Option<&'a RawValue>,
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    session: Option<&'a RawValue>,
    #[serde(borrow, default)]
    after: Option<&'a RawValue>,
    #[serde(borrow, default)]
    module: Option<&'a RawValue>,
    #[serde(borrow, default)]
    token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    seq: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resumed: Option<&'a RawValue>,
    #[serde(borrow, default)]
    topic: Option<&'a RawValue>,
    #[serde(borrow, default)]
    topics: Option<&'a RawValue>,
    #[serde(borrow, default)]
    code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

/// A present `payload` is `Some` even when it is `null` (a unit payload); only a missing key is
/// `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// The fast path: every key decoded straight into its type, in one pass over the bytes.
struct Fast<P>(Fields<P>);

/// The keys the fast path knows; any other is skipped.
#[derive(Deserialize, Clone, Copy)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Type,
    Payload,
    #[serde(rename = "ref")]
    Reference,
    Id,
    Protocol,
    Version,
    Session,
    After,
    Module,
    Token,
    Seq,
    Resumed,
    Topic,
    Topics,
    Code,
    Message,
    #[serde(other)]
    Other,
}

impl<'de, P: DeserializeOwned> Deserialize<'de> for Fast<P> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FastVisitor(std::marker::PhantomData))
    }
}

struct FastVisitor<P>(std::marker::PhantomData<P>);

impl<'de, P: DeserializeOwned> serde::de::Visitor<'de> for FastVisitor<P> {
    type Value = Fast<P>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a frame object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Fast<P>, A::Error> {
        use serde::de::Error;

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

        let mut kind = None;
        let mut f = Fields {
            kind: String::new(),
            named: (None, None),
            payload: Field::Absent,
            reference: Field::Absent,
            id: Field::Absent,
            protocol: Field::Absent,
            version: Field::Absent,
            session: Field::Absent,
            after: Field::Absent,
            module: Field::Absent,
            token: Field::Absent,
            seq: Field::Absent,
            resumed: Field::Absent,
            topic: Field::Absent,
            topics: Field::Absent,
            code: Field::Absent,
            message: Field::Absent,
        };
        // One bit per known key: a repeated key is left to the careful path, which rejects it.
        let mut seen = 0u32;
        while let Some(key) = map.next_key::<Key>()? {
            let bit = 1 << key as u32;
            if !matches!(key, Key::Other) && seen & bit != 0 {
                return Err(A::Error::custom("repeated key"));
            }
            seen |= bit;
            match key {
                Key::Type => kind = Some(map.next_value::<String>()?),
                Key::Payload => f.payload = Field::Value(map.next_value::<P>()?),
                Key::Reference => put(&mut map, &mut f.reference)?,
                Key::Id => put(&mut map, &mut f.id)?,
                Key::Protocol => put(&mut map, &mut f.protocol)?,
                Key::Version => put(&mut map, &mut f.version)?,
                Key::Session => put(&mut map, &mut f.session)?,
                Key::After => put(&mut map, &mut f.after)?,
                Key::Module => put(&mut map, &mut f.module)?,
                Key::Token => put(&mut map, &mut f.token)?,
                Key::Seq => put(&mut map, &mut f.seq)?,
                Key::Resumed => put(&mut map, &mut f.resumed)?,
                Key::Topic => put(&mut map, &mut f.topic)?,
                Key::Topics => put(&mut map, &mut f.topics)?,
                Key::Code => put(&mut map, &mut f.code)?,
                Key::Message => put(&mut map, &mut f.message)?,
                Key::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        f.kind = kind.ok_or_else(|| A::Error::missing_field("type"))?;
        Ok(Fast(f))
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
        Self::from_fields(Fields::read(bytes)?)
    }

    /// Decodes one frame from JSON text: the same as [`decode`](Self::decode), without
    /// checking again that the text is UTF-8.
    pub fn decode_str(text: &str) -> Result<Self, DecodeError> {
        Self::from_fields(Fields::read_str(text)?)
    }

    fn from_fields(mut f: Fields<C>) -> Result<Self, DecodeError> {
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
        Self::from_fields(Fields::read(bytes)?)
    }

    fn from_fields(mut f: Fields<S>) -> Result<Self, DecodeError> {
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
        ClientFrame::from_fields(Fields::read_carefully(bytes)?)
    }

    fn careful_server(bytes: &[u8]) -> Result<ServerFrame<Value>, DecodeError> {
        ServerFrame::from_fields(Fields::read_carefully(bytes)?)
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
