//! Encoded server frames, and the edits made to them without decoding them again.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::presence::{Diff, List};
use crate::wire::msgpack::{self, Transcode};
use crate::wire::{Codec, EncodeError, Ref, Seq, ServerFrame};

/// One encoded server frame on its way to a connection: its bytes, shared by every
/// recipient, and what a transport needs to know without parsing it (SSE writes `event:` and
/// `id:` lines from it).
///
/// A frame is held in one form, and the other is made from it only when a recipient needs it.
/// Most are held as JSON: logs replay them and Redis carries them to either codec, and a
/// frame made for many recipients (a broadcast) makes its MessagePack form once per process,
/// not once per subscriber. A reply on a MessagePack session is held as MessagePack, encoded
/// once from the message itself: its JSON form is made only if the session resumes on a JSON
/// connection and replays it.
#[derive(Clone, Debug)]
pub struct Outgoing {
    kind: &'static str,
    seq: Option<Seq>,
    form: Form,
}

#[derive(Clone, Debug)]
enum Form {
    /// Held as JSON text.
    Text {
        text: Utf8Bytes,
        /// The MessagePack form, made on first demand for every recipient: `None` for a
        /// frame with one recipient, which would only pay for the sharing.
        packed: Option<Arc<OnceLock<Bytes>>>,
    },
    /// Held as MessagePack, written for one session's protocol.
    Packed {
        bytes: Bytes,
        /// Reads `bytes` as the protocol that wrote them and writes the frame as JSON: only a
        /// resume on a JSON connection needs that, so the JSON is not kept (the frame stays
        /// as small as one held as JSON, and every queued frame is).
        unpack: Transcode,
    },
}

impl Outgoing {
    /// An encoded frame of type `kind`, sequenced if `seq` is set, from its JSON text.
    pub fn new(kind: &'static str, seq: Option<Seq>, text: impl Into<String>) -> Self {
        Self::shared(kind, seq, Utf8Bytes::from(text.into()))
    }

    /// A frame whose text is already shared bytes.
    pub(crate) fn shared(kind: &'static str, seq: Option<Seq>, text: Utf8Bytes) -> Self {
        Self {
            kind,
            seq,
            form: Form::Text {
                text,
                packed: Some(Arc::default()),
            },
        }
    }

    /// A frame for one recipient: its other forms are made for that recipient alone.
    fn single(kind: &'static str, seq: Option<Seq>, text: Utf8Bytes) -> Self {
        Self {
            kind,
            seq,
            form: Form::Text { text, packed: None },
        }
    }

    /// A frame held as MessagePack, which `unpack` turns into JSON when asked.
    fn packed(kind: &'static str, seq: Option<Seq>, bytes: Vec<u8>, unpack: Transcode) -> Self {
        Self {
            kind,
            seq,
            form: Form::Packed {
                bytes: Bytes::from(bytes),
                unpack,
            },
        }
    }

    /// Encodes `frame`; its type and session sequence number are read from it.
    pub fn encode<S: Serialize>(frame: &ServerFrame<S>) -> Result<Self, EncodeError> {
        let text = frame.encode()?;
        Ok(Self::new(frame.kind(), frame.seq(), text))
    }

    /// An encoded `push` frame, from its JSON text.
    pub fn push(text: impl Into<String>) -> Self {
        Self::new("push", None, text)
    }

    /// The `ack` of client message `reference`. It is sent for nearly every client message,
    /// and its form never varies, so it is written from a template, not through serde's frame
    /// machinery; the bytes are the same.
    pub fn ack(reference: Ref) -> Self {
        let mut text = Vec::with_capacity(32);
        text.extend_from_slice(br#"{"type":"ack","ref":"#);
        number(&mut text, reference);
        text.push(b'}');
        Self::single("ack", None, utf8(text))
    }

    /// [`ack`](Self::ack) for a MessagePack connection: the same template, in MessagePack.
    pub(crate) fn ack_packed(reference: Ref) -> Self {
        let mut bytes = Vec::with_capacity(24);
        bytes.extend_from_slice(b"\x82\xa4type\xa3ack\xa3ref");
        // Writing into a vector cannot fail.
        let _ = rmp::encode::write_uint(&mut bytes, reference);
        Self::packed(
            "ack",
            None,
            bytes,
            msgpack::untranscode::<serde_json::Value>,
        )
    }

    /// A session's sequenced `msg` numbered `seq`, answering `reference`: the reply to nearly
    /// every client message, so written from a template around the payload; the bytes are
    /// those of [`ServerFrame::Msg`] without `topic` and `id`.
    pub fn msg<S: Serialize>(
        seq: Seq,
        payload: &S,
        reference: Option<Ref>,
    ) -> Result<Self, EncodeError> {
        let mut text = Vec::with_capacity(128);
        text.extend_from_slice(br#"{"type":"msg","seq":"#);
        number(&mut text, seq);
        text.extend_from_slice(br#","payload":"#);
        serde_json::to_writer(&mut text, payload)?;
        if let Some(reference) = reference {
            text.extend_from_slice(br#","ref":"#);
            number(&mut text, reference);
        }
        text.push(b'}');
        Ok(Self::single("msg", Some(seq), utf8(text)))
    }

    /// [`msg`](Self::msg) for a session speaking MessagePack: encoded once, as MessagePack,
    /// from the message itself; `S` reads it back should the frame be replayed as JSON.
    pub(crate) fn msg_packed<S: Serialize + DeserializeOwned>(
        seq: Seq,
        payload: &S,
        reference: Option<Ref>,
    ) -> Result<Self, EncodeError> {
        let frame = ServerFrame::Msg {
            seq,
            payload,
            reference,
            topic: None,
            id: None,
        };
        let bytes = frame.encode_msgpack()?;
        Ok(Self::packed(
            "msg",
            Some(seq),
            bytes,
            msgpack::untranscode::<S>,
        ))
    }

    /// A `presence_state` frame: `topic`'s whole presence list.
    pub fn presence_state(topic: &str, state: &List) -> Self {
        #[derive(Serialize)]
        #[serde(tag = "type", rename = "presence_state")]
        struct Frame<'a> {
            topic: &'a str,
            state: &'a List,
        }
        Self::shared("presence_state", None, written(&Frame { topic, state }))
    }

    /// A `presence_diff` frame: what changed in `topic`'s presence.
    pub fn presence_diff(topic: &str, diff: &Diff) -> Self {
        #[derive(Serialize)]
        #[serde(tag = "type", rename = "presence_diff")]
        struct Frame<'a> {
            topic: &'a str,
            #[serde(flatten)]
            diff: &'a Diff,
        }
        Self::shared("presence_diff", None, written(&Frame { topic, diff }))
    }

    /// A `presence_count` frame: how many keys and entries `topic`'s presence holds.
    pub fn presence_count(topic: &str, keys: usize, entries: usize) -> Self {
        #[derive(Serialize)]
        #[serde(tag = "type", rename = "presence_count")]
        struct Frame<'a> {
            topic: &'a str,
            keys: usize,
            entries: usize,
        }
        let frame = Frame {
            topic,
            keys,
            entries,
        };
        Self::shared("presence_count", None, written(&frame))
    }

    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The frame's session `seq`, for sequenced frames.
    pub fn seq(&self) -> Option<Seq> {
        self.seq
    }

    /// The frame's JSON text: borrowed, or, for a frame held as MessagePack (a reply on a
    /// MessagePack session), written now.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.form {
            Form::Text { text, .. } => Cow::Borrowed(text.as_str()),
            Form::Packed { bytes, unpack } => Cow::Owned(unpacked(bytes, *unpack)),
        }
    }

    /// The bytes the frame holds, in the form it is held in: what keeping it costs.
    pub(crate) fn size(&self) -> usize {
        match &self.form {
            Form::Text { text, .. } => text.len(),
            Form::Packed { bytes, .. } => bytes.len(),
        }
    }

    /// The frame's JSON text as a message body: shared, or written now.
    fn json(&self) -> Utf8Bytes {
        match &self.form {
            Form::Text { text, .. } => text.clone(),
            Form::Packed { bytes, unpack } => Utf8Bytes::from(unpacked(bytes, *unpack)),
        }
    }

    /// The frame's MessagePack form; a frame held as JSON has its payload read as
    /// `transcode`'s protocol reads it.
    pub(crate) fn msgpack(&self, transcode: Transcode) -> Bytes {
        match &self.form {
            Form::Packed { bytes, .. } => bytes.clone(),
            Form::Text { text, packed } => {
                let make = || Bytes::from(transcode(text.as_str().as_bytes()));
                match packed {
                    Some(cell) => cell.get_or_init(make).clone(),
                    None => make(),
                }
            }
        }
    }

    /// The frame as a connection speaking `wire` receives it: a text or a binary message; on
    /// a mux socket, for component `to`, with the component's `id` in it.
    pub(crate) fn message(&self, wire: Wire, to: Option<&ComponentId>) -> Message {
        match (wire.codec, to) {
            (Codec::MsgPack, None) => Message::Binary(self.msgpack(wire.transcode)),
            (Codec::MsgPack, Some(id)) => {
                let packed = self.msgpack(id.0.transcode);
                match msgpack::tagged(&packed, id.as_str()) {
                    Some(tagged) => Message::Binary(Bytes::from(tagged)),
                    None => Message::Binary(packed),
                }
            }
            (_, None) => Message::Text(self.json()),
            (_, Some(id)) => Message::Text(self.tagged(id)),
        }
    }

    /// The frame as mux component `id` receives it: with `"id"` right after `"type"`, which
    /// every encoded frame starts with. `id` is a [`ComponentId`], made once per component.
    ///
    /// Logs and broadcasts keep frames untagged, so one encoding serves every component and
    /// a session resumed under another id replays correctly; the copy is made by the
    /// recipient's writer, off the broadcaster's path.
    pub(crate) fn tagged(&self, id: &ComponentId) -> Utf8Bytes {
        let text = self.text();
        let head = r#"{"type":""#.len() + self.kind.len() + 1;
        if text.len() < head || !text.is_char_boundary(head) {
            debug_assert!(
                false,
                "an encoded frame does not start with its type: {text}"
            );
            return self.json();
        }
        let member = &id.0.member;
        let mut tagged = String::with_capacity(text.len() + member.len());
        tagged.push_str(&text[..head]);
        tagged.push_str(member);
        tagged.push_str(&text[head..]);
        Utf8Bytes::from(tagged)
    }
}

/// A frame held as MessagePack, written as JSON by `unpack`.
fn unpacked(bytes: &[u8], unpack: Transcode) -> String {
    string(unpack(bytes))
}

/// A frame made only of strings, maps and JSON text, which serde_json always writes.
fn written<T: Serialize>(frame: &T) -> Utf8Bytes {
    utf8(serde_json::to_vec(frame).unwrap_or_default())
}

/// Writes `n` in decimal, as serde_json does.
fn number(text: &mut Vec<u8>, n: u64) {
    // Writing into a vector cannot fail.
    let _ = serde_json::to_writer(text, &n);
}

/// Text that serde_json wrote, with the templates' ASCII around it.
fn utf8(text: Vec<u8>) -> Utf8Bytes {
    Utf8Bytes::from(string(text))
}

/// serde_json writes UTF-8 only; were it ever not to, the text is repaired, not refused.
fn string(text: Vec<u8>) -> String {
    String::from_utf8(text)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

/// How a connection's frames are written: in which codec, and for MessagePack, how to read a
/// frame's payload (as its protocol's server message) so that it takes its binary form.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wire {
    pub(crate) codec: Codec,
    pub(crate) transcode: Transcode,
}

impl Wire {
    /// The wire of a connection of protocol `S` (its server messages) speaking `codec`.
    pub(crate) fn new<S: DeserializeOwned + Serialize>(codec: Codec) -> Self {
        Self {
            codec,
            transcode: msgpack::transcode::<S>,
        }
    }

    /// The message for a frame made here, not queued (a close's reason, a component's `left`).
    pub(crate) fn encode(self, frame: &ServerFrame<()>) -> Option<Message> {
        match self.codec {
            Codec::MsgPack => frame
                .encode_msgpack()
                .ok()
                .map(|bytes| Message::Binary(Bytes::from(bytes))),
            _ => frame.encode().ok().map(|text| Message::Text(text.into())),
        }
    }
}

/// A mux component's id, with the `,"id":…` member its frames get, encoded once, and how its
/// module's frames are read for MessagePack. One pointer: it rides along every queued frame of
/// the component.
#[derive(Clone, Debug)]
pub(crate) struct ComponentId(Arc<IdParts>);

#[derive(Debug)]
struct IdParts {
    id: Box<str>,
    member: Box<str>,
    transcode: Transcode,
}

impl PartialEq for ComponentId {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ComponentId {}

impl ComponentId {
    pub(crate) fn new(id: &str, transcode: Transcode) -> Self {
        let quoted = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".to_owned());
        Self(Arc::new(IdParts {
            id: id.into(),
            member: format!(",\"id\":{quoted}").into(),
            transcode,
        }))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0.id
    }
}

/// One message of a sequenced topic, numbered, in both forms a subscriber may need.
#[derive(Clone, Debug)]
pub struct TopicFrame {
    seq: Seq,
    msg: Outgoing,
    push: Outgoing,
}

impl TopicFrame {
    /// The message numbered `seq`: `msg` is its `msg` frame (with `topic` and `seq`), `push`
    /// its `push` frame.
    pub fn new(seq: Seq, msg: Outgoing, push: Outgoing) -> Self {
        Self { seq, msg, push }
    }

    /// Its number in the topic.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The `msg` frame, for clients that follow sequenced topics.
    pub fn sequenced(&self) -> &Outgoing {
        &self.msg
    }

    /// The `push` frame, for clients that do not (they see an ordinary broadcast).
    pub fn push(&self) -> &Outgoing {
        &self.push
    }
}

/// A message to publish on a sequenced topic, encoded once before the topic numbers it.
#[derive(Clone, Debug)]
pub struct Publication {
    /// The `msg` frame's text after its number: [`HEAD`](Self::HEAD) + number + `tail`.
    tail: Arc<str>,
    push: Outgoing,
}

impl Publication {
    /// What every numbered `msg` frame starts with; the number follows.
    pub const HEAD: &'static str = r#"{"type":"msg","seq":"#;

    /// A publication from a `msg` frame encoded with `seq` 0 and its `push` frame. `None` if
    /// `template` does not start with [`HEAD`](Self::HEAD) and `0`.
    pub fn new(template: &str, push: Outgoing) -> Option<Self> {
        let tail = template.strip_prefix(Self::HEAD)?.strip_prefix('0')?;
        Some(Self {
            tail: tail.into(),
            push,
        })
    }

    /// Encodes `msg` for sequenced `topic`, in both forms.
    pub fn encode<S: Serialize>(topic: &str, msg: &S) -> Result<Self, EncodeError> {
        let template = ServerFrame::Msg {
            seq: 0,
            payload: msg,
            reference: None,
            topic: Some(topic.to_owned()),
            id: None,
        };
        let push = ServerFrame::Push {
            payload: msg,
            topic: Some(topic.to_owned()),
            id: None,
        };
        let push = Outgoing::encode(&push)?;
        let template = template.encode()?;
        // The field order is fixed by the frame's definition; this holds unless it changes.
        Ok(Self::new(&template, push).expect("an encoded `msg` frame starts with its number"))
    }

    /// The text after the number, for a backend that numbers messages itself (Redis does,
    /// in a script).
    pub fn tail(&self) -> &str {
        &self.tail
    }

    /// The `push` frame.
    pub fn push(&self) -> &Outgoing {
        &self.push
    }

    /// The message numbered `seq`.
    pub fn numbered(&self, seq: Seq) -> TopicFrame {
        let msg = format!("{}{seq}{}", Self::HEAD, self.tail);
        // Numbered by its topic, not the session: carries no session `seq` (SSE writes no
        // `id:` for it, and the session log never holds it).
        let msg = Outgoing::new("msg", None, msg);
        TopicFrame::new(seq, msg, self.push.clone())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorCode;

    fn decoded(text: &str) -> ServerFrame<serde_json::Value> {
        ServerFrame::decode(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_ack_template_is_what_serde_writes() {
        let typed = ServerFrame::<()>::Ack {
            reference: 77,
            id: None,
        };
        assert_eq!(Outgoing::ack(77).text(), typed.encode().unwrap());
    }

    proptest::proptest! {
        /// The templates write exactly what serde writes for the same frame.
        #[test]
        fn the_msg_template_is_what_serde_writes(
            seq in 0u64..u64::MAX,
            reference in proptest::option::of(0u64..u64::MAX),
            text in ".*",
        ) {
            let payload = json!({"kind": "Said", "data": text});
            let typed = ServerFrame::Msg {
                seq,
                payload: &payload,
                reference,
                topic: None,
                id: None,
            };
            let out = Outgoing::msg(seq, &payload, reference).unwrap();
            proptest::prop_assert_eq!(out.text(), typed.encode().unwrap());
            proptest::prop_assert_eq!(out.seq(), Some(seq));
            let ack = ServerFrame::<()>::Ack {
                reference: seq,
                id: None,
            };
            let acked = Outgoing::ack(seq);
            proptest::prop_assert_eq!(acked.text(), ack.encode().unwrap());
        }
    }

    #[test]
    fn tagging_names_the_component_in_every_frame_type() {
        let id = ComponentId::new("chat \"main\"", msgpack::transcode::<serde_json::Value>);
        let frames = [
            ServerFrame::Msg {
                seq: 4,
                payload: json!({"kind": "A"}),
                reference: Some(2),
                topic: None,
                id: None,
            },
            ServerFrame::Push {
                payload: json!(null),
                topic: Some("t".into()),
                id: None,
            },
            ServerFrame::Ack {
                reference: 1,
                id: None,
            },
            ServerFrame::Error {
                code: ErrorCode::BadPayload,
                message: "no".into(),
                reference: None,
                id: None,
            },
            ServerFrame::Reset {
                seq: 9,
                topic: None,
                id: None,
            },
        ];
        for frame in frames {
            let out = Outgoing::encode(&frame).unwrap();
            let tagged = decoded(out.tagged(&id).as_str());
            let mut expected = frame.clone();
            match &mut expected {
                ServerFrame::Msg { id: slot, .. }
                | ServerFrame::Push { id: slot, .. }
                | ServerFrame::Ack { id: slot, .. }
                | ServerFrame::Error { id: slot, .. }
                | ServerFrame::Reset { id: slot, .. } => *slot = Some("chat \"main\"".into()),
                _ => unreachable!(),
            }
            assert_eq!(tagged, expected);
        }
    }

    /// Counts its calls: how many times a frame was re-encoded for MessagePack.
    fn counting(json: &[u8]) -> Vec<u8> {
        TRANSCODED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        msgpack::transcode::<serde_json::Value>(json)
    }

    static TRANSCODED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// The sharing a broadcast relies on, on clones of one frame; the fan-out itself, over
    /// real sockets, is `tests/codecs.rs`'s
    /// `a_broadcast_is_re_encoded_once_for_all_its_msgpack_subscribers`.
    #[test]
    fn clones_of_a_frame_share_one_msgpack_form() {
        let wire = Wire {
            codec: Codec::MsgPack,
            transcode: counting,
        };
        let json = Wire::new::<serde_json::Value>(Codec::Json);
        let frame = Outgoing::push(r#"{"type":"push","payload":1}"#);
        let before = TRANSCODED.load(std::sync::atomic::Ordering::SeqCst);
        // A thousand clones, as the pub/sub hands them to subscribers; JSON ones and mux
        // components among them.
        let component = ComponentId::new("c", counting);
        for _ in 0..1000 {
            let copy = frame.clone();
            let Message::Binary(bytes) = copy.message(wire, None) else {
                panic!("binary")
            };
            assert_eq!(&bytes[..], b"\x82\xa4type\xa4push\xa7payload\x01");
            assert!(matches!(copy.message(json, None), Message::Text(_)));
            assert!(matches!(
                copy.message(wire, Some(&component)),
                Message::Binary(_)
            ));
        }
        let after = TRANSCODED.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(after - before, 1);
        // A reply has one recipient: nothing is kept for others.
        let ack = Outgoing::ack(3);
        assert!(matches!(ack.form, Form::Text { packed: None, .. }));
    }

    /// Bytes that serde_json turns into base64 text and MessagePack into `bin`: the payload
    /// a typed re-encoding exists for.
    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    #[serde(tag = "kind", content = "data")]
    enum Reply {
        Said(String),
        Blob(crate::wire::Bytes),
    }

    proptest::proptest! {
        /// A reply held as MessagePack is, in each codec, exactly what the same reply held as
        /// JSON gives: a session that resumes on the other codec replays it unchanged.
        #[test]
        fn a_reply_held_as_msgpack_is_what_one_held_as_json_gives(
            seq in 0u64..u64::MAX,
            reference in proptest::option::of(0u64..u64::MAX),
            text in ".*",
            blob in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let msgpack = Wire::new::<Reply>(Codec::MsgPack);
            let json = Wire::new::<Reply>(Codec::Json);
            for payload in [Reply::Said(text.clone()), Reply::Blob(blob.clone().into())] {
                let held_json = Outgoing::msg(seq, &payload, reference).unwrap();
                let held_packed = Outgoing::msg_packed(seq, &payload, reference).unwrap();
                proptest::prop_assert_eq!(held_packed.seq(), Some(seq));
                proptest::prop_assert_eq!(held_packed.kind(), "msg");
                proptest::prop_assert_eq!(
                    held_json.message(msgpack, None),
                    held_packed.message(msgpack, None)
                );
                proptest::prop_assert_eq!(
                    held_json.message(json, None),
                    held_packed.message(json, None)
                );
                proptest::prop_assert_eq!(held_json.text(), held_packed.text());
            }
            if let Some(reference) = reference {
                let (a, b) = (Outgoing::ack(reference), Outgoing::ack_packed(reference));
                proptest::prop_assert_eq!(a.message(msgpack, None), b.message(msgpack, None));
                proptest::prop_assert_eq!(a.text(), b.text());
                let typed = ServerFrame::<()>::Ack { reference, id: None };
                proptest::prop_assert_eq!(
                    b.message(msgpack, None),
                    Message::Binary(Bytes::from(typed.encode_msgpack().unwrap()))
                );
            }
        }
    }

    #[test]
    fn a_reply_held_as_msgpack_is_tagged_for_a_component_in_either_codec() {
        let id = ComponentId::new("c1", msgpack::transcode::<Reply>);
        let packed = Outgoing::msg_packed(3, &Reply::Said("hi".into()), Some(1)).unwrap();
        let plain = Outgoing::msg(3, &Reply::Said("hi".into()), Some(1)).unwrap();
        for codec in [Codec::MsgPack, Codec::Json] {
            let wire = Wire::new::<Reply>(codec);
            assert_eq!(
                packed.message(wire, Some(&id)),
                plain.message(wire, Some(&id))
            );
        }
        // The log weighs a frame in the form it holds.
        assert!(packed.size() < plain.size());
    }

    #[test]
    fn a_publication_numbers_its_message_without_encoding_it_again() {
        let publication = Publication::encode("room", &json!({"kind": "Said"})).unwrap();
        let frame = publication.numbered(41);
        assert_eq!(frame.seq(), 41);
        assert_eq!(
            frame.sequenced().seq(),
            None,
            "a topic number is not a session seq"
        );
        assert_eq!(
            decoded(&frame.sequenced().text()),
            ServerFrame::Msg {
                seq: 41,
                payload: json!({"kind": "Said"}),
                reference: None,
                topic: Some("room".into()),
                id: None,
            }
        );
        assert_eq!(frame.push().kind(), "push");
    }
}
