//! The body of a `POST /http`: one frame, or an array of frames, in the request's codec; the
//! response is always an array. Both ends frame and split bodies here.
//!
//! ```
//! use omni::wire::{Codec, batch};
//!
//! let body = batch::join(Codec::Json, &[br#"{"type":"ack","ref":1}"#, br#"{"type":"ack","ref":2}"#]);
//! assert_eq!(body, br#"[{"type":"ack","ref":1},{"type":"ack","ref":2}]"#);
//! let frames = batch::split(Codec::Json, &body).unwrap();
//! assert_eq!(frames, [&br#"{"type":"ack","ref":1}"#[..], &br#"{"type":"ack","ref":2}"#[..]]);
//! ```

use serde_json::value::RawValue;

use super::{Codec, DecodeError, msgpack};

/// `frames`, each already encoded in `codec`, as one body: a JSON array, or a MessagePack
/// array.
pub fn join<F: AsRef<[u8]>>(codec: Codec, frames: &[F]) -> Vec<u8> {
    let size = frames.iter().map(|f| f.as_ref().len() + 1).sum::<usize>() + 5;
    let mut body = Vec::with_capacity(size);
    match codec {
        Codec::MsgPack => {
            // Writing into a vector cannot fail, and no batch holds 2^32 frames.
            let len = u32::try_from(frames.len()).unwrap_or(u32::MAX);
            let _ = rmp::encode::write_array_len(&mut body, len);
            frames
                .iter()
                .for_each(|f| body.extend_from_slice(f.as_ref()));
        }
        Codec::Json => {
            body.push(b'[');
            for (i, frame) in frames.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(frame.as_ref());
            }
            body.push(b']');
        }
    }
    body
}

/// The frames of a body, each as its own bytes so that one bad frame does not hide the
/// others: the elements of an array, or the whole body as one frame when it is not an array.
/// An array that cannot be split is a `bad_frame` error.
pub fn split(codec: Codec, body: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    match codec {
        Codec::MsgPack => msgpack::split_array(body).unwrap_or(Ok(vec![body])),
        Codec::Json => {
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
                return Ok(vec![body]);
            }
            match serde_json::from_slice::<Vec<&RawValue>>(body) {
                Ok(items) => Ok(items.into_iter().map(|raw| raw.get().as_bytes()).collect()),
                Err(err) => Err(DecodeError::bad_frame(err.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Bytes, ClientFrame};

    #[test]
    fn a_body_of_frames_splits_back_into_them_in_either_codec() {
        for codec in [Codec::Json, Codec::MsgPack] {
            let frames: Vec<Vec<u8>> = (1..=3)
                .map(|r| {
                    let msg = ClientFrame::Msg {
                        payload: Bytes(vec![0, 1, 0xff, r as u8]),
                        reference: Some(r),
                        id: None,
                    };
                    match codec {
                        Codec::MsgPack => msg.encode_msgpack().unwrap(),
                        _ => msg.encode().unwrap().into_bytes(),
                    }
                })
                .collect();
            let body = join(codec, &frames);
            let parts = split(codec, &body).unwrap();
            let expected: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
            assert_eq!(parts, expected, "{codec}");
            assert!(split(codec, &join::<&[u8]>(codec, &[])).unwrap().is_empty());
            assert_eq!(
                split(codec, &frames[0]).unwrap(),
                [&frames[0][..]],
                "one frame"
            );
        }
        assert!(split(Codec::Json, b" [1,").is_err());
        assert!(
            split(Codec::MsgPack, b"\x92\xc0").is_err(),
            "one element short"
        );
    }
}
