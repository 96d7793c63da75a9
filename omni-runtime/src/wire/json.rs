//! The JSON form of frames.
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

use serde::Serialize;
use serde::de::DeserializeOwned;
#[cfg(feature = "server")]
use serde_json::value::RawValue;

use super::error::{DecodeError, EncodeError};
use super::fields::Fields;
#[cfg(feature = "server")]
use super::frame::Ref;
use super::frame::{ClientFrame, ServerFrame};
use crate::presence::Diff;

/// Decodes a payload that an envelope decode kept as raw JSON (the mux routes a frame on its
/// envelope and hands the component its payload): an error is the `bad_payload` the whole
/// frame's decode would have given, naming `reference` and `id`.
#[cfg(feature = "server")]
pub(crate) fn decode_payload<C: DeserializeOwned>(
    raw: &RawValue,
    reference: Option<Ref>,
    id: Option<&str>,
) -> Result<C, DecodeError> {
    serde_json::from_str(raw.get()).map_err(|e| {
        DecodeError::bad_payload(
            super::error::without_position(&e),
            reference,
            id.map(str::to_owned),
            super::fields::json_kind(raw),
        )
    })
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
                compatible: f.optional(|f| &mut f.compatible, "compatible")?,
                session: f.optional(|f| &mut f.session, "session")?,
                after: f.optional(|f| &mut f.after, "after")?,
                topics: f.optional(|f| &mut f.topics, "topics")?,
                traceparent: f.traceparent(),
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
                compatible: f.optional(|f| &mut f.compatible, "compatible")?,
                topics: f.optional(|f| &mut f.topics, "topics")?,
                traceparent: f.traceparent(),
                presence: f.optional(|f| &mut f.presence, "presence")?,
                client: f.optional(|f| &mut f.client, "client")?,
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
            "presence_count" => ServerFrame::PresenceCount {
                topic: f.required(|f| &mut f.topic, "topic")?,
                keys: f.required(|f| &mut f.keys, "keys")?,
                entries: f.required(|f| &mut f.entries, "entries")?,
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
    use crate::ErrorCode;

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
