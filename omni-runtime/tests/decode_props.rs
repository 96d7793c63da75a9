//! Property tests of the frame codecs, JSON and MessagePack: decoding anything never panics and
//! fails only with `bad_frame` or `bad_payload`, and every well-formed frame survives encode then
//! decode in both.

mod common;

use std::collections::BTreeMap;

use common::{ChatDown, ChatMessage, ChatUp};
use omni_runtime::presence::{Mode, Modes};
use omni_runtime::wire::Codec;
use omni_runtime::{ClientFrame, Cursors, DecodeError, ErrorCode, ServerFrame, SessionId};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::Union;
use serde_json::{Map, Value};

const FRAME_TYPES: [&str; 12] = [
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
    "presence_count",
];

/// Every key some frame reads, plus the payload's own.
const FIELDS: [&str; 22] = [
    "type", "payload", "ref", "id", "protocol", "version", "session", "after", "module", "token",
    "seq", "resumed", "topic", "topics", "code", "message", "kind", "data", "presence", "keys",
    "entries", "client",
];

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "(?s).{0,8}",
        1 => select(&FIELDS[..]).prop_map(String::from),
        1 => select(&FRAME_TYPES[..]).prop_map(String::from),
    ]
    .boxed()
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![select(&FIELDS[..]).prop_map(String::from), "[a-z_]{0,6}"]
}

/// Any JSON value, nested at most three levels. Floats are optional because serde_json does not
/// promise that a float reads back exactly as written without its `float_roundtrip` feature.
fn json(floats: bool) -> BoxedStrategy<Value> {
    let mut leaves = vec![
        Just(Value::Null).boxed(),
        any::<bool>().prop_map(Value::from).boxed(),
        any::<u64>().prop_map(Value::from).boxed(),
        any::<i64>().prop_map(Value::from).boxed(),
        text().prop_map(Value::from).boxed(),
    ];
    if floats {
        leaves.push(any::<f64>().prop_map(Value::from).boxed());
    }
    Union::new(leaves)
        .prop_recursive(3, 32, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Value::Array),
                btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

fn session() -> impl Strategy<Value = SessionId> {
    any::<u128>().prop_map(SessionId::from_u128)
}

/// Topic cursors, as `hello` and `join` carry them; empty is a value of its own (it says the
/// client follows topics).
fn cursors() -> impl Strategy<Value = Cursors> {
    btree_map(text(), any::<u64>(), 0..3)
}

/// Presence modes, as a `join` carries them: a few topics, and sometimes the rest.
fn modes() -> impl Strategy<Value = Modes> {
    let mode = || select(&[Mode::List, Mode::Count, Mode::None][..]);
    (btree_map(text(), mode(), 0..3), option::of(mode())).prop_map(|(topics, rest)| {
        let modes = topics
            .into_iter()
            .fold(Modes::new(), |modes, (topic, mode)| {
                modes.topic(topic, mode)
            });
        match rest {
            Some(mode) => modes.otherwise(mode),
            None => modes,
        }
    })
}

fn chat_message() -> impl Strategy<Value = ChatMessage> {
    (text(), text(), text()).prop_map(|(id, author, text)| ChatMessage { id, author, text })
}

fn chat_up() -> BoxedStrategy<ChatUp> {
    prop_oneof![
        chat_message().prop_map(ChatUp::Send),
        Just(ChatUp::FetchAll)
    ]
    .boxed()
}

fn chat_down() -> BoxedStrategy<ChatDown> {
    prop_oneof![
        btree_map(text(), chat_message(), 0..3).prop_map(ChatDown::Upsert),
        any::<u32>().prop_map(|online| ChatDown::Presence { online }),
    ]
    .boxed()
}

/// A payload in the wire enum's shape, of a protocol the test knows nothing about. Payloads are
/// wire enums, so never `null` (a `null` payload reads as a missing one).
fn untyped_payload() -> BoxedStrategy<Value> {
    (text(), option::of(json(false)))
        .prop_map(|(kind, data)| {
            let mut payload = Map::new();
            payload.insert("kind".into(), kind.into());
            if let Some(data) = data {
                payload.insert("data".into(), data);
            }
            Value::Object(payload)
        })
        .boxed()
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    let mut codes = ErrorCode::ALL.to_vec();
    codes.push(ErrorCode::Unknown);
    select(codes)
}

fn client_frame<C: Clone + std::fmt::Debug + 'static>(
    payload: BoxedStrategy<C>,
) -> impl Strategy<Value = ClientFrame<C>> {
    let opt_text = || option::of(text());
    prop_oneof![
        (
            opt_text(),
            opt_text(),
            option::of(vec(text(), 0..3)),
            option::of(session()),
            option::of(any::<u64>()),
            option::of(cursors()),
        )
            .prop_map(|(protocol, version, compatible, session, after, topics)| {
                ClientFrame::Hello {
                    topics,
                    protocol,
                    version,
                    compatible,
                    session,
                    after,
                    traceparent: None,
                }
            }),
        (payload, option::of(any::<u64>()), opt_text()).prop_map(|(payload, reference, id)| {
            ClientFrame::Msg {
                payload,
                reference,
                id,
            }
        }),
        (
            (text(), text(), text()),
            option::of(session()),
            option::of(any::<u64>()),
            opt_text(),
            option::of(vec(text(), 0..3)),
            option::of(cursors()),
            option::of(modes()),
            opt_text(),
        )
            .prop_map(
                |(
                    (id, module, token),
                    session,
                    after,
                    version,
                    compatible,
                    topics,
                    presence,
                    client,
                )| {
                    ClientFrame::Join {
                        compatible,
                        topics,
                        presence,
                        client,
                        id,
                        module,
                        token,
                        session,
                        after,
                        version,
                        traceparent: None,
                    }
                }
            ),
        text().prop_map(|id| ClientFrame::Leave { id }),
    ]
}

fn server_frame<S: Clone + std::fmt::Debug + 'static>(
    payload: BoxedStrategy<S>,
) -> impl Strategy<Value = ServerFrame<S>> {
    let opt_text = || option::of(text());
    prop_oneof![
        (
            session(),
            any::<u64>(),
            any::<bool>(),
            text(),
            text(),
            opt_text(),
            any::<bool>(),
        )
            .prop_map(|(session, seq, resumed, protocol, version, id, packed)| {
                ServerFrame::Welcome {
                    session,
                    seq,
                    resumed,
                    protocol,
                    version,
                    codec: if packed { Codec::MsgPack } else { Codec::Json },
                    id,
                }
            }),
        (
            any::<u64>(),
            payload.clone(),
            option::of(any::<u64>()),
            opt_text(),
            opt_text(),
        )
            .prop_map(|(seq, payload, reference, topic, id)| ServerFrame::Msg {
                topic,
                seq,
                payload,
                reference,
                id,
            }),
        (payload, opt_text(), opt_text()).prop_map(|(payload, topic, id)| ServerFrame::Push {
            payload,
            topic,
            id,
        }),
        (any::<u64>(), opt_text()).prop_map(|(reference, id)| ServerFrame::Ack { reference, id }),
        (error_code(), text(), option::of(any::<u64>()), opt_text()).prop_map(
            |(code, message, reference, id)| ServerFrame::Error {
                code,
                message,
                reference,
                id,
            }
        ),
        (any::<u64>(), opt_text(), opt_text()).prop_map(|(seq, topic, id)| ServerFrame::Reset {
            topic,
            seq,
            id
        }),
        (text(), any::<u64>(), any::<u64>(), opt_text()).prop_map(|(topic, keys, entries, id)| {
            ServerFrame::PresenceCount {
                topic,
                keys,
                entries,
                id,
            }
        }),
        text().prop_map(|id| ServerFrame::Joined { id }),
        text().prop_map(|id| ServerFrame::Left { id }),
    ]
}

/// A value for frame field `name`: usually of the type a frame expects there, sometimes not.
fn field_value(name: &'static str) -> BoxedStrategy<Value> {
    let typed = match name {
        "type" => select(&FRAME_TYPES[..]).prop_map(Value::from).boxed(),
        "ref" | "seq" | "after" | "keys" | "entries" => any::<u64>().prop_map(Value::from).boxed(),
        "session" => session().prop_map(|s| Value::from(s.to_string())).boxed(),
        "resumed" => any::<bool>().prop_map(Value::from).boxed(),
        "code" => error_code().prop_map(|c| Value::from(c.as_str())).boxed(),
        "topics" => cursors()
            .prop_map(|c| Value::Object(c.into_iter().map(|(k, v)| (k, v.into())).collect()))
            .boxed(),
        "payload" => prop_oneof![
            chat_up().prop_map(|p| serde_json::to_value(p).unwrap()),
            chat_down().prop_map(|p| serde_json::to_value(p).unwrap()),
            untyped_payload(),
        ]
        .boxed(),
        _ => text().prop_map(Value::from).boxed(),
    };
    prop_oneof![4 => typed, 1 => json(true)].boxed()
}

/// The fields a frame of type `kind` has, on either side.
fn fields_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "hello" => &["protocol", "version", "session", "after", "topics"],
        "msg" => &["seq", "payload", "ref", "topic", "id"],
        "join" => &["id", "module", "token", "topics"],
        "welcome" => &["session", "seq", "resumed", "protocol", "version", "id"],
        "push" => &["payload", "topic", "id"],
        "ack" => &["ref", "id"],
        "error" => &["code", "message", "ref", "id"],
        "reset" => &["seq", "topic", "id"],
        _ => &["id"],
    }
}

/// An object that looks like a frame: a `type` (real or junk), each of that type's fields with
/// a high chance, usually of the type a frame gives it, and a few other keys.
fn frame_like() -> impl Strategy<Value = Map<String, Value>> {
    let kind = prop_oneof![
        6 => select(&FRAME_TYPES[..]).prop_map(Value::from),
        1 => json(true),
    ];
    let extra = select(&FIELDS[..]).prop_flat_map(|name| (Just(name), field_value(name)));
    (option::weighted(0.95, kind), vec(extra, 0..3))
        .prop_flat_map(|(kind, extras)| {
            let own = fields_of(kind.as_ref().and_then(Value::as_str).unwrap_or(""))
                .iter()
                .map(|name| (Just(*name), option::weighted(0.85, field_value(name))))
                .collect::<Vec<_>>();
            (Just(kind), own, Just(extras))
        })
        .prop_map(|(kind, own, extras)| {
            let mut frame = Map::new();
            if let Some(kind) = kind {
                frame.insert("type".into(), kind);
            }
            for (name, value) in own {
                if let Some(value) = value {
                    frame.insert(name.into(), value);
                }
            }
            for (name, value) in extras {
                frame.insert(name.into(), value);
            }
            frame
        })
}

/// Encoded frames with a few bytes overwritten and perhaps cut short: almost JSON, almost a frame.
fn mangled_frame() -> impl Strategy<Value = Vec<u8>> {
    let encoded = prop_oneof![
        client_frame(chat_up()).prop_map(|f| f.encode().unwrap()),
        server_frame(chat_down()).prop_map(|f| f.encode().unwrap()),
    ];
    (
        encoded,
        vec((any::<Index>(), any::<u8>()), 0..4),
        option::of(any::<Index>()),
    )
        .prop_map(|(text, edits, cut)| {
            let mut bytes = text.into_bytes();
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

fn only_frame_or_payload_errors<T>(decoded: Result<T, DecodeError>) -> Result<(), TestCaseError> {
    if let Err(err) = decoded {
        prop_assert!(
            matches!(err.code(), ErrorCode::BadFrame | ErrorCode::BadPayload),
            "{err:?}"
        );
    }
    Ok(())
}

/// Decodes `bytes` every way a peer might; none may panic or fail with another code.
fn decode_every_way(bytes: &[u8]) -> Result<(), TestCaseError> {
    only_frame_or_payload_errors(ClientFrame::<Value>::decode(bytes))?;
    only_frame_or_payload_errors(ServerFrame::<Value>::decode(bytes))?;
    only_frame_or_payload_errors(ClientFrame::<ChatUp>::decode(bytes))?;
    only_frame_or_payload_errors(ServerFrame::<ChatDown>::decode(bytes))?;
    only_frame_or_payload_errors(ClientFrame::<Value>::decode_msgpack(bytes))?;
    only_frame_or_payload_errors(ServerFrame::<Value>::decode_msgpack(bytes))?;
    only_frame_or_payload_errors(ClientFrame::<ChatUp>::decode_msgpack(bytes))?;
    only_frame_or_payload_errors(ServerFrame::<ChatDown>::decode_msgpack(bytes))?;
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_decode_or_fail_cleanly(bytes in vec(any::<u8>(), 0..256)) {
        decode_every_way(&bytes)?;
    }

    #[test]
    fn mangled_frames_decode_or_fail_cleanly(bytes in mangled_frame()) {
        decode_every_way(&bytes)?;
    }

    #[test]
    fn arbitrary_json_decodes_or_fails_cleanly(value in json(true)) {
        decode_every_way(&serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn frame_like_objects_decode_or_fail_cleanly(frame in frame_like()) {
        let bytes = serde_json::to_vec(&frame).unwrap();
        decode_every_way(&bytes)?;

        // A payload error is only possible once the envelope was read, so it names the frame.
        let reference = frame.get("ref").and_then(Value::as_u64);
        let id = frame.get("id").and_then(Value::as_str);
        let kind = frame.get("type").and_then(Value::as_str);
        if let Err(err) = ClientFrame::<ChatUp>::decode(&bytes)
            && err.code() == ErrorCode::BadPayload
        {
            prop_assert_eq!(kind, Some("msg"));
            prop_assert_eq!((err.reference(), err.id()), (reference, id));
        }
        if let Err(err) = ServerFrame::<ChatDown>::decode(&bytes)
            && err.code() == ErrorCode::BadPayload
        {
            prop_assert!(matches!(kind, Some("msg" | "push")), "{kind:?}");
            prop_assert_eq!((err.reference(), err.id()), (reference, id));
        }
    }

    #[test]
    fn decoded_frames_encode_to_an_equal_frame(frame in frame_like()) {
        let bytes = serde_json::to_vec(&frame).unwrap();
        if let Ok(decoded) = ClientFrame::<ChatUp>::decode(&bytes) {
            let again = ClientFrame::decode(decoded.encode().unwrap().as_bytes());
            prop_assert_eq!(again, Ok(decoded));
        }
        if let Ok(decoded) = ServerFrame::<ChatDown>::decode(&bytes) {
            let again = ServerFrame::decode(decoded.encode().unwrap().as_bytes());
            prop_assert_eq!(again, Ok(decoded));
        }
    }

    #[test]
    fn client_frames_round_trip(frame in client_frame(chat_up())) {
        let text = frame.encode().unwrap();
        prop_assert!(text.starts_with(r#"{"type":""#), "{text}");
        let packed = frame.encode_msgpack().unwrap();
        prop_assert_eq!(ClientFrame::decode_msgpack(&packed), Ok(frame.clone()));
        prop_assert_eq!(ClientFrame::decode(text.as_bytes()), Ok(frame));
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame(chat_down())) {
        let text = frame.encode().unwrap();
        prop_assert!(text.starts_with(r#"{"type":""#), "{text}");
        let packed = frame.encode_msgpack().unwrap();
        prop_assert_eq!(ServerFrame::decode_msgpack(&packed), Ok(frame.clone()));
        prop_assert_eq!(ServerFrame::decode(text.as_bytes()), Ok(frame));
    }

    #[test]
    fn untyped_frames_round_trip(
        client in client_frame(untyped_payload()),
        server in server_frame(untyped_payload()),
    ) {
        let packed = client.encode_msgpack().unwrap();
        prop_assert_eq!(ClientFrame::decode_msgpack(&packed), Ok(client.clone()));
        let text = client.encode().unwrap();
        prop_assert_eq!(ClientFrame::decode(text.as_bytes()), Ok(client));
        let packed = server.encode_msgpack().unwrap();
        prop_assert_eq!(ServerFrame::decode_msgpack(&packed), Ok(server.clone()));
        let text = server.encode().unwrap();
        prop_assert_eq!(ServerFrame::decode(text.as_bytes()), Ok(server));
    }

    #[test]
    fn msgpack_forms_of_frame_like_objects_decode_or_fail_cleanly(frame in frame_like()) {
        // The frame-like JSON object, as a MessagePack map with the same keys and values.
        let packed = rmp_serde::to_vec(&frame).unwrap();
        decode_every_way(&packed)?;
        let text = serde_json::to_vec(&frame).unwrap();
        // Both codecs accept the same frames, as the same values.
        prop_assert_eq!(
            ServerFrame::<ChatDown>::decode_msgpack(&packed).ok(),
            ServerFrame::<ChatDown>::decode(&text).ok()
        );
        prop_assert_eq!(
            ClientFrame::<ChatUp>::decode_msgpack(&packed).ok(),
            ClientFrame::<ChatUp>::decode(&text).ok()
        );
    }
}

#[test]
fn frame_like_objects_reach_every_frame_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    // The properties above say little if the generated objects never decode: make sure each
    // frame type decodes from them now and then.
    let mut runner = TestRunner::deterministic();
    let mut decoded = BTreeMap::new();
    for _ in 0..2000 {
        let frame = frame_like().new_tree(&mut runner).unwrap().current();
        let bytes = serde_json::to_vec(&frame).unwrap();
        if let Ok(frame) = ClientFrame::<ChatUp>::decode(&bytes) {
            *decoded.entry(("client", frame.kind())).or_insert(0) += 1;
            if let ClientFrame::Hello {
                topics: Some(_), ..
            }
            | ClientFrame::Join {
                topics: Some(_), ..
            } = &frame
            {
                *decoded
                    .entry(("client, with topics", frame.kind()))
                    .or_insert(0) += 1;
            }
        }
        if let Ok(frame) = ServerFrame::<ChatDown>::decode(&bytes) {
            *decoded.entry(("server", frame.kind())).or_insert(0) += 1;
            if let ServerFrame::Msg { topic: Some(_), .. }
            | ServerFrame::Reset { topic: Some(_), .. } = &frame
            {
                *decoded
                    .entry(("server, with a topic", frame.kind()))
                    .or_insert(0) += 1;
            }
        }
    }
    // Every frame type, and each of the four that can carry topics carrying them.
    assert_eq!(decoded.len(), 16, "{decoded:?}");
}
