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

use crate::SessionId;
use crate::frame::{ClientFrame, ErrorCode, Ref, Seq, ServerFrame};

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

/// The union of every frame's fields, with the payload left as raw JSON. Unknown keys are
/// ignored so that newer peers can add fields.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(rename = "ref", default)]
    reference: Option<Ref>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    session: Option<SessionId>,
    #[serde(default)]
    after: Option<Seq>,
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    seq: Option<Seq>,
    #[serde(default)]
    resumed: Option<bool>,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    code: Option<ErrorCode>,
    #[serde(default)]
    message: Option<String>,
}

impl<'a> Envelope<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|e| DecodeError::frame(e.to_string()))
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

    fn required<T>(&self, field: Option<T>, name: &str) -> Result<T, DecodeError> {
        field.ok_or_else(|| self.bad(format!("`{}` frame needs `{name}`", self.kind)))
    }

    fn payload<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        let raw = self.required(self.payload, "payload")?;
        serde_json::from_str(raw.get()).map_err(|e| DecodeError {
            code: ErrorCode::BadPayload,
            message: without_position(&e),
            reference: self.reference,
            id: self.id.clone(),
        })
    }

    fn unknown(&self) -> DecodeError {
        self.bad(format!("unknown frame type `{}`", self.kind))
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
        let env = Envelope::parse(bytes)?;
        let frame = match &*env.kind {
            "hello" => ClientFrame::Hello {
                protocol: env.protocol.clone(),
                version: env.version.clone(),
                session: env.session,
                after: env.after,
            },
            "msg" => ClientFrame::Msg {
                payload: env.payload()?,
                reference: env.reference,
                id: env.id.clone(),
            },
            "join" => ClientFrame::Join {
                id: env.required(env.id.clone(), "id")?,
                module: env.required(env.module.clone(), "module")?,
                token: env.required(env.token.clone(), "token")?,
            },
            "leave" => ClientFrame::Leave {
                id: env.required(env.id.clone(), "id")?,
            },
            _ => return Err(env.unknown()),
        };
        Ok(frame)
    }
}

impl<S: DeserializeOwned> ServerFrame<S> {
    /// Decodes one frame from JSON bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let env = Envelope::parse(bytes)?;
        let frame = match &*env.kind {
            "welcome" => ServerFrame::Welcome {
                session: env.required(env.session, "session")?,
                seq: env.required(env.seq, "seq")?,
                resumed: env.resumed.unwrap_or(false),
                protocol: env.protocol.clone().unwrap_or_default(),
                version: env.version.clone().unwrap_or_default(),
                id: env.id.clone(),
            },
            "msg" => ServerFrame::Msg {
                seq: env.required(env.seq, "seq")?,
                payload: env.payload()?,
                reference: env.reference,
                id: env.id.clone(),
            },
            "push" => ServerFrame::Push {
                payload: env.payload()?,
                topic: env.topic.clone(),
                id: env.id.clone(),
            },
            "ack" => ServerFrame::Ack {
                reference: env.required(env.reference, "ref")?,
                id: env.id.clone(),
            },
            "error" => ServerFrame::Error {
                code: env.required(env.code, "code")?,
                message: env.message.clone().unwrap_or_default(),
                reference: env.reference,
                id: env.id.clone(),
            },
            "reset" => ServerFrame::Reset {
                seq: env.required(env.seq, "seq")?,
                id: env.id.clone(),
            },
            "joined" => ServerFrame::Joined {
                id: env.required(env.id.clone(), "id")?,
            },
            "left" => ServerFrame::Left {
                id: env.required(env.id.clone(), "id")?,
            },
            _ => return Err(env.unknown()),
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
