//! The client's side of the codec seam: its frames in the codec it connects with, as
//! WebSocket messages and as HTTP bodies, and the server's frames out of them. Nothing else
//! in the client knows whether a frame is JSON text or MessagePack bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_tungstenite::tungstenite::Message;

use crate::wire::{Codec, batch};
use crate::{ClientFrame, DecodeError, EncodeError, ServerFrame};

/// One encoded client frame: a WebSocket text message in JSON, a binary one in MessagePack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

impl Frame {
    /// Its size on the wire (a request body's share, without separators).
    pub(crate) fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(bytes) => bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Frame::Text(text) => text.as_bytes(),
            Frame::Binary(bytes) => bytes,
        }
    }

    pub(crate) fn into_message(self) -> Message {
        match self {
            Frame::Text(text) => Message::Text(text.into()),
            Frame::Binary(bytes) => Message::Binary(bytes.into()),
        }
    }
}

/// `frame` in `codec`.
pub(crate) fn encode<C: Serialize>(
    codec: Codec,
    frame: &ClientFrame<C>,
) -> Result<Frame, EncodeError> {
    match codec {
        Codec::Json => frame.encode().map(Frame::Text),
        Codec::MsgPack => frame.encode_msgpack().map(Frame::Binary),
    }
}

/// One server frame in `codec`.
pub(crate) fn decode<S: DeserializeOwned>(
    codec: Codec,
    bytes: &[u8],
) -> Result<ServerFrame<S>, DecodeError> {
    match codec {
        Codec::Json => ServerFrame::decode(bytes),
        Codec::MsgPack => ServerFrame::decode_msgpack(bytes),
    }
}

/// Whether a WebSocket message of this kind carries `codec`'s frames: text for JSON, binary
/// for MessagePack.
pub(crate) fn carries(codec: Codec, binary: bool) -> bool {
    binary == matches!(codec, Codec::MsgPack)
}

/// What to tell the application when the server answers a `codec` connection with frames
/// of the other kind.
pub(crate) fn foreign(codec: Codec, binary: bool) -> String {
    let kind = if binary { "binary" } else { "text" };
    format!("a {kind} frame on a {codec} connection")
}

/// Why a connection is given up when the server answers in another codec than the one asked
/// for: a server from before MessagePack ignores `codec=msgpack` and answers in JSON, and
/// retrying does not teach it.
pub(crate) fn refused(asked: Codec, answered: &str) -> String {
    let mut message = format!("asked for {asked} frames, the server answered with {answered}");
    if asked == Codec::MsgPack {
        message.push_str(": it does not offer MessagePack (a server from before it?)");
    }
    message
}

/// A `POST /http` body carrying `frames`: a JSON array, or a MessagePack array.
pub(crate) fn body(codec: Codec, frames: &[Frame]) -> Vec<u8> {
    let frames: Vec<&[u8]> = frames.iter().map(Frame::bytes).collect();
    batch::join(codec, &frames)
}

/// The server frames of a `POST /http` response body in `codec`, each as its own bytes, so
/// that one the client cannot decode does not hide the others.
pub(crate) fn split(codec: Codec, body: &[u8]) -> Result<Vec<&[u8]>, String> {
    batch::split(codec, body).map_err(|e| e.to_string())
}

/// So that tests of what is queued compare with the text they queued.
#[cfg(test)]
impl PartialEq<&str> for Frame {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, Frame::Text(text) if text == other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_the_other_kind_is_foreign() {
        assert!(carries(Codec::Json, false));
        assert!(carries(Codec::MsgPack, true));
        assert!(!carries(Codec::MsgPack, false));
        assert_eq!(
            foreign(Codec::MsgPack, false),
            "a text frame on a msgpack connection"
        );
    }
}
