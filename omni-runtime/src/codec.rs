//! JSON encoding and decoding of frames.
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

use crate::frame::{ClientFrame, ErrorCode, Ref, ServerFrame};

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
    fn frame(message: impl Into<String>) -> Self {
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

/// Every field a frame may have, each left as raw JSON until the frame's type asks for it, so
/// a key that another frame type uses (or a newer peer adds) is never type-checked here.
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
    code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

/// A present `payload` is `Some` even when it is `null` (a unit payload); only a missing key is
/// `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// The envelope of one frame, with its `ref` and `id` read up front so that every error about
/// the frame can name them.
struct Parsed<'a> {
    env: Envelope<'a>,
    reference: Option<Ref>,
    id: Option<String>,
}

impl<'a> Parsed<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let env: Envelope<'a> =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::frame(e.to_string()))?;
        // Read leniently here: a malformed `ref` or `id` is reported when the frame needs it.
        let reference = env
            .reference
            .and_then(|raw| serde_json::from_str(raw.get()).ok());
        let id = env.id.and_then(|raw| serde_json::from_str(raw.get()).ok());
        Ok(Parsed { env, reference, id })
    }

    /// Builds a `bad_frame` error that keeps this frame's `ref` and `id`.
    fn bad(&self, message: String) -> DecodeError {
        DecodeError {
            code: ErrorCode::BadFrame,
            message,
            reference: self.reference,
            id: self.id.clone(),
        }
    }

    /// Reads an optional field as `T`; a present field of the wrong type is a `bad_frame`.
    fn optional<T: DeserializeOwned>(
        &self,
        field: Option<&RawValue>,
        name: &str,
    ) -> Result<Option<T>, DecodeError> {
        field
            .map(|raw| {
                serde_json::from_str(raw.get()).map_err(|e| {
                    self.bad(format!(
                        "`{}` frame has a bad `{name}`: {}",
                        self.env.kind,
                        without_position(&e)
                    ))
                })
            })
            .transpose()
    }

    /// Reads a field the frame cannot do without.
    fn required<T: DeserializeOwned>(
        &self,
        field: Option<&RawValue>,
        name: &str,
    ) -> Result<T, DecodeError> {
        self.optional(field, name)?
            .ok_or_else(|| self.bad(format!("`{}` frame needs `{name}`", self.env.kind)))
    }

    fn payload<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        let raw = self
            .env
            .payload
            .ok_or_else(|| self.bad(format!("`{}` frame needs `payload`", self.env.kind)))?;
        serde_json::from_str(raw.get()).map_err(|e| DecodeError {
            code: ErrorCode::BadPayload,
            message: without_position(&e),
            reference: self.reference,
            id: self.id.clone(),
        })
    }

    fn unknown(&self) -> DecodeError {
        self.bad(format!("unknown frame type `{}`", self.env.kind))
    }
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
        let p = Parsed::parse(bytes)?;
        let e = &p.env;
        let frame = match &*e.kind {
            "hello" => ClientFrame::Hello {
                protocol: p.optional(e.protocol, "protocol")?,
                version: p.optional(e.version, "version")?,
                session: p.optional(e.session, "session")?,
                after: p.optional(e.after, "after")?,
            },
            "msg" => ClientFrame::Msg {
                reference: p.optional(e.reference, "ref")?,
                id: p.optional(e.id, "id")?,
                payload: p.payload()?,
            },
            "join" => ClientFrame::Join {
                id: p.required(e.id, "id")?,
                module: p.required(e.module, "module")?,
                token: p.required(e.token, "token")?,
            },
            "leave" => ClientFrame::Leave {
                id: p.required(e.id, "id")?,
            },
            _ => return Err(p.unknown()),
        };
        Ok(frame)
    }
}

impl<S: DeserializeOwned> ServerFrame<S> {
    /// Decodes one frame from JSON bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let p = Parsed::parse(bytes)?;
        let e = &p.env;
        let frame = match &*e.kind {
            "welcome" => ServerFrame::Welcome {
                session: p.required(e.session, "session")?,
                seq: p.required(e.seq, "seq")?,
                resumed: p.optional(e.resumed, "resumed")?.unwrap_or(false),
                protocol: p.optional(e.protocol, "protocol")?.unwrap_or_default(),
                version: p.optional(e.version, "version")?.unwrap_or_default(),
                id: p.optional(e.id, "id")?,
            },
            "msg" => ServerFrame::Msg {
                seq: p.required(e.seq, "seq")?,
                reference: p.optional(e.reference, "ref")?,
                id: p.optional(e.id, "id")?,
                payload: p.payload()?,
            },
            "push" => ServerFrame::Push {
                topic: p.optional(e.topic, "topic")?,
                id: p.optional(e.id, "id")?,
                payload: p.payload()?,
            },
            "ack" => ServerFrame::Ack {
                reference: p.required(e.reference, "ref")?,
                id: p.optional(e.id, "id")?,
            },
            "error" => ServerFrame::Error {
                code: p.required(e.code, "code")?,
                message: p.optional(e.message, "message")?.unwrap_or_default(),
                reference: p.optional(e.reference, "ref")?,
                id: p.optional(e.id, "id")?,
            },
            "reset" => ServerFrame::Reset {
                seq: p.required(e.seq, "seq")?,
                id: p.optional(e.id, "id")?,
            },
            "joined" => ServerFrame::Joined {
                id: p.required(e.id, "id")?,
            },
            "left" => ServerFrame::Left {
                id: p.required(e.id, "id")?,
            },
            _ => return Err(p.unknown()),
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
    use serde_json::{Value, json};

    use super::*;

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
                seq: 3,
                payload: json!({"kind": "Presence", "data": {"online": 1}}),
                reference: Some(2),
                id: None,
            },
            ServerFrame::Reset {
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
