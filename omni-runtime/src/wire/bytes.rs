//! [`Bytes`]: a payload field that travels as bytes.

use std::fmt;
use std::ops::{Deref, DerefMut};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes in a message: `bin` in MessagePack, a base64 string (standard alphabet, padded) in
/// JSON, and `Uint8Array` or `string` in the TypeScript declarations accordingly.
///
/// A `Vec<u8>` field travels as an array of numbers, about 3.5 bytes of JSON for every byte;
/// a `Bytes` field is 1.33 bytes a byte in JSON and its own size (plus a 5-byte header at
/// most) in MessagePack. It reads a base64 string, `bin` or an array of numbers, whichever
/// codec brought it.
///
/// ```
/// use omni::wire::Bytes;
///
/// let image = Bytes::from(vec![0x89, b'P', b'N', b'G']);
/// assert_eq!(serde_json::to_string(&image)?, r#""iVBORw==""#);
/// assert_eq!(serde_json::from_str::<Bytes>(r#""iVBORw==""#)?, image);
/// assert_eq!(&image[1..], b"PNG");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes, as a vector.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(bytes: Bytes) -> Self {
        bytes.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A text format (JSON) gets base64; a binary one (MessagePack) the bytes themselves.
        if s.is_human_readable() {
            s.serialize_str(&STANDARD.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A text format is self-describing: a string or an array of numbers, as it comes.
        if d.is_human_readable() {
            d.deserialize_any(Visitor)
        } else {
            d.deserialize_byte_buf(Visitor)
        }
    }
}

struct Visitor;

impl<'de> serde::de::Visitor<'de> for Visitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes, or a base64 string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Bytes, E> {
        STANDARD
            .decode(text)
            .map(Bytes)
            .map_err(|e| E::custom(format_args!("invalid base64: {e}")))
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes(bytes.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes(bytes))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(Bytes(bytes))
    }
}

impl ts_rs::TS for Bytes {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(_: &ts_rs::Config) -> String {
        crate::typescript::bytes_type().to_owned()
    }

    fn inline(cfg: &ts_rs::Config) -> String {
        Self::name(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_base64_in_json_and_bin_in_msgpack() {
        let bytes = Bytes((0..=255).collect());
        let json = serde_json::to_string(&bytes).unwrap();
        assert_eq!(json.len(), 2 + 344);
        assert_eq!(serde_json::from_str::<Bytes>(&json).unwrap(), bytes);
        let packed = super::super::msgpack::to_vec(&bytes).unwrap();
        assert_eq!(&packed[..3], &[0xc5, 0x01, 0x00], "bin 16 header");
        assert_eq!(&packed[3..], &bytes[..]);
        assert_eq!(rmp_serde::from_slice::<Bytes>(&packed).unwrap(), bytes);
        // An array of numbers is read too (a client that sent a plain byte array).
        assert_eq!(
            serde_json::from_str::<Bytes>("[1,2,3]").unwrap(),
            Bytes(vec![1, 2, 3])
        );
        let err = serde_json::from_str::<Bytes>(r#""not base64!""#).unwrap_err();
        assert!(err.to_string().starts_with("invalid base64"), "{err}");
    }
}
