//! The MessagePack form of frames: the same frames, as maps with the same keys as in JSON.
//!
//! A frame is written by `rmp-serde` with structs as maps, so `{"type":"ack","ref":3}` is the
//! map `{"type": "ack", "ref": 3}`. It is read by the JSON decoder's own field table (the
//! one-pass reader works on any serde format); when that fails, the frame is read into
//! values and each field decoded on its own, so the error says which field is wrong and names
//! the frame's `ref` and `id`, exactly as for JSON.
//!
//! ```
//! use omni::{ClientFrame, ServerFrame};
//!
//! let frame = ServerFrame::<String>::Ack { reference: 3, id: None };
//! let bytes = frame.encode_msgpack()?;
//! assert_eq!(bytes, b"\x82\xa4type\xa3ack\xa3ref\x03");
//! assert_eq!(ServerFrame::<String>::decode_msgpack(&bytes)?, frame);
//!
//! let err = ClientFrame::<String>::decode_msgpack(b"\xc1").unwrap_err();
//! assert_eq!(err.code(), omni::ErrorCode::BadFrame);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::fields::{Fast, Field, Fields, Key, key_str, kind_name};
use super::frame::{ClientFrame, ServerFrame};
use super::{DecodeError, EncodeError};

/// How deep a frame may nest, as in JSON: deeper is a `bad_frame`, never a stack overflow.
const MAX_DEPTH: usize = 128;

/// Encodes `value` as MessagePack, structs as maps: the form every frame and payload takes.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    // A reply's frame fits, as in the JSON templates: no growing on the way.
    let mut out = Vec::with_capacity(128);
    value.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())?;
    Ok(out)
}

/// The length of the MessagePack value `bytes` starts with, read from its markers alone
/// (nothing is decoded), or `None` if the bytes end before it does.
/// Every value takes at least one byte, so the walk ends within `bytes.len()` steps whatever
/// lengths the markers claim.
fn value_len(bytes: &[u8]) -> Option<usize> {
    let (mut at, mut pending) = (0usize, 1usize);
    while pending > 0 {
        pending -= 1;
        let marker = *bytes.get(at)?;
        at += 1;
        // The fixed forms, which nearly every frame is made of, first; neither sum can
        // overflow, as each step adds at most 31 to either.
        match marker {
            // 0xc1 is unused: a reader refuses it; counted as one byte, as rmpv does.
            0x00..=0x7f | 0xc0..=0xc3 | 0xe0..=0xff => {}
            0x80..=0x8f => pending += 2 * usize::from(marker & 0x0f),
            0x90..=0x9f => pending += usize::from(marker & 0x0f),
            0xa0..=0xbf => at += usize::from(marker & 0x1f),
            _ => {
                let (skip, nested) = sized(bytes, at, marker)?;
                at = at.checked_add(skip)?;
                pending = pending.checked_add(nested)?;
            }
        }
    }
    (at <= bytes.len()).then_some(at)
}

/// For a marker with a size (0xc4 to 0xdf): the bytes after it and the values nested in it.
fn sized(bytes: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
    // A big-endian length of `n` bytes at `at`.
    let len = |n: usize| -> Option<usize> {
        let raw = bytes.get(at..at.checked_add(n)?)?;
        Some(
            raw.iter()
                .fold(0usize, |sum, b| (sum << 8) | usize::from(*b)),
        )
    };
    Some(match marker {
        0xc4 | 0xd9 => (1 + len(1)?, 0),
        0xc5 | 0xda => (2 + len(2)?, 0),
        0xc6 | 0xdb => (4 + len(4)?, 0),
        0xc7 => (2 + len(1)?, 0),
        0xc8 => (3 + len(2)?, 0),
        0xc9 => (5 + len(4)?, 0),
        0xcc | 0xd0 => (1, 0),
        0xcd | 0xd1 => (2, 0),
        0xca | 0xce | 0xd2 => (4, 0),
        0xcb | 0xcf | 0xd3 => (8, 0),
        0xd4 => (2, 0),
        0xd5 => (3, 0),
        0xd6 => (5, 0),
        0xd7 => (9, 0),
        0xd8 => (17, 0),
        0xdc => (2, len(2)?),
        0xdd => (4, len(4)?),
        0xde => (2, 2 * len(2)?),
        0xdf => (4, len(4)?.checked_mul(2)?),
        _ => return None,
    })
}

impl<P: DeserializeOwned> Fields<P> {
    /// Reads a MessagePack frame's fields into `self` (made empty): in one pass when the frame
    /// is well formed, else field by field, for a precise error.
    fn read_packed(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        // Read in place: strings are borrowed from `bytes`, not copied into a buffer first.
        let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
        de.set_max_depth(MAX_DEPTH);
        let fast = serde::de::DeserializeSeed::deserialize(Fast(self), &mut de);
        // That reader does not say where it stopped: the frame's markers do.
        if fast.is_ok() && value_len(bytes) == Some(bytes.len()) {
            self.name();
        } else {
            *self = Self::read_packed_carefully(bytes)?;
        }
        Ok(())
    }

    fn read_packed_carefully(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut rest = bytes;
        let value = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH)
            .map_err(|e| DecodeError::bad_frame(format!("not MessagePack: {e}")))?;
        if !rest.is_empty() {
            return Err(DecodeError::bad_frame(
                "trailing bytes after the frame".to_owned(),
            ));
        }
        let rmpv::Value::Map(pairs) = value else {
            return Err(DecodeError::bad_frame(format!(
                "a frame is a map, not {}",
                what(&value)
            )));
        };
        let mut fields = Self::empty();
        let mut seen = 0u32;
        for (key, value) in pairs {
            // Read as the one-pass reader reads keys, so both accept the same frames.
            let Ok(key) = read::<Key>(&key) else {
                continue;
            };
            let bit = 1 << key as u32;
            if !matches!(key, Key::Other) && seen & bit != 0 {
                let name = key_str(key);
                return Err(DecodeError::bad_frame(format!("duplicate field `{name}`")));
            }
            seen |= bit;
            match key {
                Key::Type => match value {
                    rmpv::Value::String(s) if s.as_str().is_some() => {
                        fields.kind = kind_name(s.as_str().unwrap_or_default());
                    }
                    other => {
                        return Err(DecodeError::bad_frame(format!(
                            "a frame's `type` is a string, not {}",
                            what(&other)
                        )));
                    }
                },
                Key::Payload => {
                    let kind = packed_kind(&value);
                    fields.payload = decoded(value);
                    if matches!(fields.payload, Field::Bad(_)) {
                        fields.payload_kind = kind;
                    }
                }
                Key::Other => {}
                key => fields.put_packed(key, value),
            }
        }
        if seen & (1 << Key::Type as u32) == 0 {
            return Err(DecodeError::bad_frame("missing field `type`".to_owned()));
        }
        fields.name();
        Ok(fields)
    }
}

/// A field's value decoded on its own: `nil` is absent, a wrong type kept as the message.
pub(super) fn lenient<T: DeserializeOwned>(value: rmpv::Value) -> Field<T> {
    match read::<Option<T>>(&value) {
        Ok(None) => Field::Absent,
        Ok(Some(value)) => Field::Value(value),
        Err(message) => Field::Bad(message),
    }
}

/// A payload decoded on its own: `nil` is a value (a unit payload), as in JSON.
/// The `kind` a MessagePack payload names, if it is a map with a string `kind`.
fn packed_kind(value: &rmpv::Value) -> Option<String> {
    let rmpv::Value::Map(entries) = value else {
        return None;
    };
    entries.iter().find_map(|(key, value)| match (key, value) {
        (rmpv::Value::String(k), rmpv::Value::String(v)) if k.as_str() == Some("kind") => {
            v.as_str().map(str::to_owned)
        }
        _ => None,
    })
}

fn decoded<T: DeserializeOwned>(value: rmpv::Value) -> Field<T> {
    match read::<T>(&value) {
        Ok(value) => Field::Value(value),
        Err(message) => Field::Bad(message),
    }
}

/// Decodes one value of a frame as `T` with the one-pass reader's own decoder (written out
/// again, since `rmpv`'s decoding from values differs in places, such as enums): the careful
/// path then accepts exactly what the fast one does.
fn read<T: DeserializeOwned>(value: &rmpv::Value) -> Result<T, String> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, value).map_err(|e| e.to_string())?;
    let mut de = rmp_serde::Deserializer::new(&bytes[..]);
    de.set_max_depth(MAX_DEPTH);
    T::deserialize(&mut de).map_err(|err| {
        // `rmp-serde` names a wrong type by its marker ("wrong msgpack marker FixStr(1)");
        // decoding from values says what was expected, as serde_json does.
        match rmpv::ext::from_value::<T>(value.clone()) {
            Err(rmpv::ext::Error::Syntax(message)) => message,
            Ok(_) => err.to_string(),
        }
    })
}

/// A value's kind, for errors.
fn what(value: &rmpv::Value) -> &'static str {
    match value {
        rmpv::Value::Nil => "nil",
        rmpv::Value::Boolean(_) => "a boolean",
        rmpv::Value::Integer(_) => "an integer",
        rmpv::Value::F32(_) | rmpv::Value::F64(_) => "a float",
        rmpv::Value::String(_) => "a string",
        rmpv::Value::Binary(_) => "binary",
        rmpv::Value::Array(_) => "an array",
        rmpv::Value::Map(_) => "a map",
        rmpv::Value::Ext(..) => "an extension",
    }
}

impl<C: DeserializeOwned> ClientFrame<C> {
    /// Decodes one frame from MessagePack.
    pub fn decode_msgpack(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut fields = Fields::empty();
        fields.read_packed(bytes)?;
        Self::from_fields(&mut fields)
    }
}

impl<S: DeserializeOwned> ServerFrame<S> {
    /// Decodes one frame from MessagePack.
    pub fn decode_msgpack(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut fields = Fields::empty();
        fields.read_packed(bytes)?;
        Self::from_fields(&mut fields)
    }
}

impl<C: Serialize> ClientFrame<C> {
    /// Encodes the frame as MessagePack: a map with the keys of its JSON form.
    pub fn encode_msgpack(&self) -> Result<Vec<u8>, EncodeError> {
        to_vec(self)
    }
}

impl<S: Serialize> ServerFrame<S> {
    /// Encodes the frame as MessagePack: a map with the keys of its JSON form.
    pub fn encode_msgpack(&self) -> Result<Vec<u8>, EncodeError> {
        to_vec(self)
    }
}

#[cfg(feature = "server")]
/// Re-encodes a server frame the runtime holds as JSON into MessagePack, reading its payload
/// as `S`, so that what `S` writes differently in a binary format ([`Bytes`](super::Bytes):
/// base64 text in JSON, `bin` here) takes its binary form. A payload `S` does not read (a
/// frame of another protocol on a shared topic) is carried as JSON values.
pub(crate) fn transcode<S: DeserializeOwned + Serialize>(json: &[u8]) -> Vec<u8> {
    let packed = match ServerFrame::<S>::decode(json) {
        Ok(frame) => to_vec(&frame).map_err(|err| err.to_string()),
        Err(_) => ServerFrame::<serde_json::Value>::decode(json)
            .map_err(|err| err.to_string())
            .and_then(|frame| to_vec(&frame).map_err(|err| err.to_string())),
    };
    // The runtime wrote this JSON itself, so it always reads back; were it ever not to, the
    // client gets an empty message it reports as undecodable, and the server says why.
    packed.unwrap_or_else(|err| {
        tracing::error!(%err, "a frame could not be re-encoded as MessagePack");
        Vec::new()
    })
}

#[cfg(feature = "server")]
/// The other way: writes a MessagePack server frame the runtime holds (a reply on a
/// MessagePack session) as JSON, reading its payload as `S`, for a session that resumes on a
/// JSON connection. What `S` reads from `bin` ([`Bytes`](super::Bytes)) it writes as base64
/// text, as it would have written it in the first place.
pub(crate) fn untranscode<S: DeserializeOwned + Serialize>(packed: &[u8]) -> Vec<u8> {
    let json = match ServerFrame::<S>::decode_msgpack(packed) {
        Ok(frame) => frame.encode().map_err(|err| err.to_string()),
        Err(_) => ServerFrame::<serde_json::Value>::decode_msgpack(packed)
            .map_err(|err| err.to_string())
            .and_then(|frame| frame.encode().map_err(|err| err.to_string())),
    };
    // As above: the runtime wrote these bytes itself, so they always read back.
    json.map(String::into_bytes).unwrap_or_else(|err| {
        tracing::error!(%err, "a frame could not be re-encoded as JSON");
        Vec::new()
    })
}

#[cfg(feature = "server")]
/// [`transcode`] for one protocol, as a plain function a connection keeps.
pub(crate) type Transcode = fn(&[u8]) -> Vec<u8>;

#[cfg(feature = "server")]
/// Adds `"id": id` to an encoded frame map: a mux component's frames are shared untagged and
/// tagged by their recipient's writer, as in JSON. `None` if `frame` is not a map.
pub(crate) fn tagged(frame: &[u8], id: &str) -> Option<Vec<u8>> {
    let (len, head) = match *frame.first()? {
        b @ 0x80..=0x8f => (usize::from(b & 0x0f), 1),
        0xde => (
            usize::from(u16::from_be_bytes([*frame.get(1)?, *frame.get(2)?])),
            3,
        ),
        0xdf => (
            u32::from_be_bytes([
                *frame.get(1)?,
                *frame.get(2)?,
                *frame.get(3)?,
                *frame.get(4)?,
            ]) as usize,
            5,
        ),
        _ => return None,
    };
    let mut out = Vec::with_capacity(frame.len() + id.len() + 8);
    let len = len + 1;
    // Writing into a vector cannot fail.
    let _ = rmp::encode::write_map_len(&mut out, u32::try_from(len).ok()?);
    out.extend_from_slice(&frame[head..]);
    let _ = rmp::encode::write_str(&mut out, "id");
    let _ = rmp::encode::write_str(&mut out, id);
    Some(out)
}

/// The elements of a MessagePack array of frames (a `POST /http` body), each as its own bytes,
/// so one bad frame does not hide the others; `None` if `body` is not an array.
pub(crate) fn split_array(body: &[u8]) -> Option<Result<Vec<&[u8]>, DecodeError>> {
    let mut cursor = std::io::Cursor::new(body);
    let len = match body.first()? {
        0x90..=0x9f | 0xdc | 0xdd => rmp::decode::read_array_len(&mut cursor).ok()?,
        _ => return None,
    };
    let mut items = Vec::new();
    for _ in 0..len {
        let start = cursor.position() as usize;
        let mut de = rmp_serde::Deserializer::new(&mut cursor);
        de.set_max_depth(MAX_DEPTH);
        if let Err(e) = serde::Deserialize::deserialize(&mut de).map(|serde::de::IgnoredAny| ()) {
            return Some(Err(DecodeError::bad_frame(format!("not MessagePack: {e}"))));
        }
        items.push(&body[start..cursor.position() as usize]);
    }
    if cursor.position() as usize != body.len() {
        return Some(Err(DecodeError::bad_frame(
            "trailing bytes after the frames".to_owned(),
        )));
    }
    Some(Ok(items))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rmpv::Value;

    use super::*;
    use crate::ErrorCode;

    fn careful_client(bytes: &[u8]) -> Result<ClientFrame<serde_json::Value>, DecodeError> {
        ClientFrame::from_fields(&mut Fields::read_packed_carefully(bytes)?)
    }

    fn careful_server(bytes: &[u8]) -> Result<ServerFrame<serde_json::Value>, DecodeError> {
        ServerFrame::from_fields(&mut Fields::read_packed_carefully(bytes)?)
    }

    fn packed(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).unwrap();
        out
    }

    /// Frame-like maps: real and junk types, each known key with a value of a right or a wrong
    /// type (binary, negative, a float, integer keys), keys repeated, in any order.
    fn frame_like() -> impl Strategy<Value = Vec<u8>> {
        let value = prop_oneof![
            Just(Value::Nil),
            Just(Value::Boolean(true)),
            (0u64..5).prop_map(Value::from),
            Just(Value::from(-1)),
            Just(Value::F64(1.5)),
            Just(Value::from("0123456789abcdef0123456789abcdef")),
            Just(Value::from("x")),
            Just(Value::Binary(vec![1, 2])),
            Just(Value::Map(vec![(Value::from("kind"), Value::from("A"))])),
            Just(Value::Array(vec![Value::from(1), Value::Map(vec![])])),
        ];
        let key = prop_oneof![
            Just(Value::from("type")),
            Just(Value::from("payload")),
            Just(Value::from("ref")),
            Just(Value::from("id")),
            Just(Value::from("session")),
            Just(Value::from("after")),
            Just(Value::from("module")),
            Just(Value::from("token")),
            Just(Value::from("seq")),
            Just(Value::from("topic")),
            Just(Value::from("code")),
            Just(Value::from("codec")),
            Just(Value::from("extra")),
            Just(Value::from(2)),
        ];
        let kind = prop_oneof![
            Just(Value::from("hello")),
            Just(Value::from("msg")),
            Just(Value::from("join")),
            Just(Value::from("leave")),
            Just(Value::from("welcome")),
            Just(Value::from("ack")),
            Just(Value::from("error")),
            Just(Value::from("reset")),
            Just(Value::from("dance")),
            Just(Value::from(7)),
        ];
        (
            kind,
            0usize..4,
            proptest::collection::vec((key, value), 0..8),
        )
            .prop_map(|(kind, at, mut pairs)| {
                pairs.insert(at.min(pairs.len()), (Value::from("type"), kind));
                packed(&Value::Map(pairs))
            })
    }

    proptest! {
        /// The markers give a value's length exactly: what rmpv reads, with anything after it.
        #[test]
        fn value_len_is_where_a_value_ends(value in packed_value(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut bytes = packed(&value);
            let end = bytes.len();
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(value_len(&bytes), Some(end));
            prop_assert_eq!(value_len(&bytes[..end - 1]), None);
        }

        /// Arbitrary bytes: where rmpv reads a value, the same length; never a panic.
        #[test]
        fn value_len_agrees_with_rmpv(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let mut rest = &bytes[..];
            if rmpv::decode::read_value(&mut rest).is_ok() {
                prop_assert_eq!(value_len(&bytes), Some(bytes.len() - rest.len()));
            }
        }
    }

    /// Any MessagePack value, of every marker family.
    fn packed_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Boolean),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f32>().prop_map(Value::F32),
            any::<f64>().prop_map(Value::F64),
            ".{0,40}".prop_map(Value::from),
            (0usize..300).prop_map(|n| Value::from("s".repeat(n))),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Binary),
            (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(tag, data)| Value::Ext(tag, data)),
        ];
        leaf.prop_recursive(3, 40, 20, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..20).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner), 0..20).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        /// The one-pass reader is an optimisation only: it decodes exactly what the careful
        /// reader decodes, and fails exactly where it fails, with the same error.
        #[test]
        fn fast_and_careful_paths_agree(bytes in frame_like()) {
            prop_assert_eq!(ClientFrame::decode_msgpack(&bytes), careful_client(&bytes));
            prop_assert_eq!(ServerFrame::decode_msgpack(&bytes), careful_server(&bytes));
        }

        /// Any bytes at all: a typed error or a frame, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let errors = [
                ClientFrame::<serde_json::Value>::decode_msgpack(&bytes).err(),
                ServerFrame::<serde_json::Value>::decode_msgpack(&bytes).err(),
            ];
            for err in errors.into_iter().flatten() {
                prop_assert!(matches!(err.code(), ErrorCode::BadFrame | ErrorCode::BadPayload));
            }
        }

        /// Bytes that start like a frame (a map) and go wrong anywhere after.
        #[test]
        fn corrupted_frames_never_panic(
            bytes in frame_like(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = bytes;
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = ClientFrame::<serde_json::Value>::decode_msgpack(&bytes);
            let _ = ServerFrame::<serde_json::Value>::decode_msgpack(&bytes);
            #[cfg(any(feature = "server", feature = "client"))]
            let _ = split_array(&bytes);
        }

        /// Every frame that decodes round-trips through both codecs unchanged.
        #[test]
        fn frames_round_trip_in_both_codecs(bytes in frame_like()) {
            if let Ok(frame) = ClientFrame::<serde_json::Value>::decode_msgpack(&bytes) {
                let json = frame.encode().unwrap();
                prop_assert_eq!(&ClientFrame::decode(json.as_bytes()).unwrap(), &frame);
                let packed = frame.encode_msgpack().unwrap();
                prop_assert_eq!(&ClientFrame::decode_msgpack(&packed).unwrap(), &frame);
            }
            if let Ok(frame) = ServerFrame::<serde_json::Value>::decode_msgpack(&bytes) {
                let json = frame.encode().unwrap();
                prop_assert_eq!(&ServerFrame::decode(json.as_bytes()).unwrap(), &frame);
                let packed = frame.encode_msgpack().unwrap();
                prop_assert_eq!(&ServerFrame::decode_msgpack(&packed).unwrap(), &frame);
                // And the runtime's re-encoding of the JSON form is the direct encoding.
                #[cfg(feature = "server")]
                prop_assert_eq!(transcode::<serde_json::Value>(json.as_bytes()), packed);
            }
        }
    }

    #[test]
    fn errors_name_the_field_and_keep_ref_and_id() {
        let frame = |pairs: Vec<(&str, Value)>| {
            packed(&Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::from(k), v))
                    .collect(),
            ))
        };
        let err = ClientFrame::<u8>::decode_msgpack(&frame(vec![
            ("type", Value::from("msg")),
            ("payload", Value::from(300)),
            ("ref", Value::from(4)),
            ("id", Value::from("counter")),
        ]))
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadPayload);
        assert_eq!((err.reference(), err.id()), (Some(4), Some("counter")));

        let err = ClientFrame::<u8>::decode_msgpack(&frame(vec![
            ("type", Value::from("join")),
            ("id", Value::from("c1")),
            ("module", Value::from("chat")),
        ]))
        .unwrap_err();
        assert_eq!(err.to_string(), "`join` frame needs `token`");
        assert_eq!(err.id(), Some("c1"));

        let err = ClientFrame::<u8>::decode_msgpack(&frame(vec![
            ("type", Value::from("hello")),
            ("after", Value::from("x")),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`hello` frame has a bad `after`: invalid type: string \"x\", expected u64"
        );

        for (bytes, message) in [
            (vec![0x91, 0x01], "a frame is a map, not an array"),
            (vec![0x80], "missing field `type`"),
            (vec![0x80, 0x80], "trailing bytes after the frame"),
        ] {
            let err = ClientFrame::<u8>::decode_msgpack(&bytes).unwrap_err();
            assert_eq!(
                (err.code(), err.to_string().as_str()),
                (ErrorCode::BadFrame, message)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        // A payload nested far deeper than any message: 100,000 one-element arrays.
        let mut bytes = b"\x82\xa4type\xa3msg\xa7payload".to_vec();
        bytes.extend(std::iter::repeat_n(0x91, 100_000));
        bytes.push(0xc0);
        let err = ClientFrame::<serde_json::Value>::decode_msgpack(&bytes).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadFrame);
    }

    #[test]
    #[cfg(feature = "server")]
    fn a_tagged_frame_gains_its_id() {
        let frame = ServerFrame::<u8>::Ack {
            reference: 3,
            id: None,
        };
        let with_id = tagged(&frame.encode_msgpack().unwrap(), "c1").unwrap();
        assert_eq!(
            ServerFrame::<u8>::decode_msgpack(&with_id).unwrap(),
            ServerFrame::Ack {
                reference: 3,
                id: Some("c1".into())
            }
        );
        assert_eq!(tagged(b"\x91\x01", "c1"), None);
    }

    #[test]
    #[cfg(any(feature = "server", feature = "client"))]
    fn an_array_body_splits_into_its_frames() {
        let a = ClientFrame::msg(1u8).encode_msgpack().unwrap();
        let b = ClientFrame::msg(2u8).encode_msgpack().unwrap();
        let mut body = vec![0x92];
        body.extend(&a);
        body.extend(&b);
        assert_eq!(split_array(&body).unwrap().unwrap(), [&a[..], &b[..]]);
        assert_eq!(split_array(&a), None, "a single frame is not an array");
        body.push(0);
        assert!(split_array(&body).unwrap().is_err());
    }
}
