//! Golden tests: the exact JSON of every frame type, and every frame and payload that
//! `docs/PROTOCOL.md` shows, in both codecs.
//!
//! A frame's bytes are a contract with clients written in other languages, so each test pins
//! the encoder's output to a literal and checks that the literal decodes back to the same value.
//! Each frame's MessagePack form is checked against the same literal: the same keys, in the same
//! order, with the same values (see [`as_json`]); a few are pinned byte for byte as well.

mod common;

use std::collections::BTreeMap;

use common::{ChatDown, ChatUp, message};
use omni_runtime::wire::{Codec, TraceParent};
use omni_runtime::{ClientFrame, ErrorCode, ServerFrame, SessionId};
use serde_json::{Value, json};

const SESSION: SessionId = SessionId::from_u128(0x5f0c1a2b3c4d5e6f708192a3b4c5d6e7);

#[track_caller]
fn client(frame: ClientFrame<ChatUp>, text: &str) {
    assert_eq!(frame.encode().unwrap(), text);
    assert_eq!(ClientFrame::decode(text.as_bytes()).unwrap(), frame);
    let packed = frame.encode_msgpack().unwrap();
    assert_eq!(
        as_json(&packed),
        text,
        "the MessagePack form has the JSON's fields"
    );
    assert_eq!(ClientFrame::decode_msgpack(&packed).unwrap(), frame);
}

#[track_caller]
fn server(frame: ServerFrame<ChatDown>, text: &str) {
    assert_eq!(frame.encode().unwrap(), text);
    assert_eq!(ServerFrame::decode(text.as_bytes()).unwrap(), frame);
    let packed = frame.encode_msgpack().unwrap();
    assert_eq!(
        as_json(&packed),
        text,
        "the MessagePack form has the JSON's fields"
    );
    assert_eq!(ServerFrame::decode_msgpack(&packed).unwrap(), frame);
}

/// A MessagePack value written as JSON text, keys in their order: what a frame's MessagePack
/// form must read as for it to carry exactly its JSON form's fields. `bin` is written as the
/// base64 string JSON carries bytes as. Only the value shapes frames use are expected.
fn as_json(packed: &[u8]) -> String {
    fn write(value: &rmpv::Value, out: &mut String) {
        use base64::Engine;
        match value {
            rmpv::Value::Nil => out.push_str("null"),
            rmpv::Value::Boolean(b) => out.push_str(&b.to_string()),
            rmpv::Value::Integer(n) => out.push_str(&n.to_string()),
            rmpv::Value::F32(f) => out.push_str(&serde_json::to_string(f).unwrap()),
            rmpv::Value::F64(f) => out.push_str(&serde_json::to_string(f).unwrap()),
            rmpv::Value::String(s) => {
                out.push_str(&serde_json::to_string(s.as_str().expect("UTF-8")).unwrap());
            }
            rmpv::Value::Binary(bytes) => {
                let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                out.push_str(&serde_json::to_string(&text).unwrap());
            }
            rmpv::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            rmpv::Value::Map(pairs) => {
                out.push('{');
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let key = key.as_str().expect("frames have string keys");
                    out.push_str(&serde_json::to_string(key).unwrap());
                    out.push(':');
                    write(value, out);
                }
                out.push('}');
            }
            rmpv::Value::Ext(..) => panic!("frames use no extension types"),
        }
    }
    let mut rest = packed;
    let value = rmpv::decode::read_value(&mut rest).expect("MessagePack");
    assert!(rest.is_empty(), "one value");
    let mut out = String::new();
    write(&value, &mut out);
    out
}

/// Hex, two digits a byte, as `docs/PROTOCOL.md` shows MessagePack frames.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The MessagePack examples of `docs/PROTOCOL.md`, byte for byte.
#[test]
fn msgpack_examples() {
    let ack = ServerFrame::<ChatDown>::Ack {
        reference: 7,
        id: None,
    };
    assert_eq!(
        hex(&ack.encode_msgpack().unwrap()),
        "82 a4 74 79 70 65 a3 61 63 6b a3 72 65 66 07"
    );
    #[derive(serde::Serialize)]
    #[serde(tag = "kind", content = "data")]
    enum Up {
        Say(&'static str),
    }
    let msg = ClientFrame::Msg {
        payload: Up::Say("hi"),
        reference: Some(300),
        id: None,
    };
    assert_eq!(
        hex(&msg.encode_msgpack().unwrap()),
        "83 a4 74 79 70 65 a3 6d 73 67 a7 70 61 79 6c 6f 61 64 82 a4 6b 69 6e 64 a3 53 61 79 \
         a4 64 61 74 61 a2 68 69 a3 72 65 66 cd 01 2c"
    );
    // Bytes: `bin` here, base64 in JSON.
    let bytes = ServerFrame::Push {
        payload: omni_runtime::wire::Bytes(vec![0xde, 0xad, 0xbe, 0xef]),
        topic: None,
        id: None,
    };
    assert_eq!(
        hex(&bytes.encode_msgpack().unwrap()),
        "82 a4 74 79 70 65 a4 70 75 73 68 a7 70 61 79 6c 6f 61 64 c4 04 de ad be ef"
    );
    assert_eq!(
        bytes.encode().unwrap(),
        r#"{"type":"push","payload":"3q2+7w=="}"#
    );
    // PROTOCOL.md shows these bytes; its hex, with the JSON beside it dropped, must be them.
    let doc = include_str!("../../docs/PROTOCOL.md");
    let shown: String = doc
        .lines()
        .map(|line| line.split("  ").next().unwrap_or(""))
        .filter(|line| !line.is_empty() && line.bytes().all(|b| b == b' ' || b.is_ascii_hexdigit()))
        .collect::<Vec<_>>()
        .join(" ");
    for frame in [
        ack.encode_msgpack().unwrap(),
        msg.encode_msgpack().unwrap(),
        bytes.encode_msgpack().unwrap(),
    ] {
        assert!(
            shown.contains(&hex(&frame)),
            "PROTOCOL.md shows {}",
            hex(&frame)
        );
    }
}

fn send(id: &str, text: &str) -> ChatUp {
    ChatUp::Send(message(id, "ada", text))
}

#[test]
fn hello() {
    client(
        ClientFrame::Hello {
            topics: None,
            protocol: None,
            version: None,
            compatible: None,
            session: None,
            after: None,
            traceparent: None,
        },
        r#"{"type":"hello"}"#,
    );
    client(
        ClientFrame::Hello {
            topics: None,
            protocol: None,
            version: Some("9c1e4f2a7b3d6e05".into()),
            compatible: None,
            session: None,
            after: None,
            traceparent: None,
        },
        r#"{"type":"hello","version":"9c1e4f2a7b3d6e05"}"#,
    );
    client(
        ClientFrame::Hello {
            topics: None,
            protocol: Some("Chat".into()),
            version: Some("9c1e4f2a7b3d6e05".into()),
            compatible: None,
            session: Some(SESSION),
            after: Some(41),
            traceparent: TraceParent::parse(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        },
        r#"{"type":"hello","protocol":"Chat","version":"9c1e4f2a7b3d6e05","session":"5f0c1a2b3c4d5e6f708192a3b4c5d6e7","after":41,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#,
    );
    client(
        ClientFrame::Hello {
            topics: None,
            protocol: Some("Chat".into()),
            version: None,
            compatible: None,
            session: None,
            after: None,
            traceparent: TraceParent::parse(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        },
        r#"{"type":"hello","protocol":"Chat","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#,
    );
    // Empty cursors are written: they say the client follows sequenced topics.
    client(
        ClientFrame::Hello {
            topics: Some(BTreeMap::new()),
            protocol: None,
            version: None,
            compatible: None,
            session: None,
            after: None,
            traceparent: None,
        },
        r#"{"type":"hello","topics":{}}"#,
    );
    client(
        ClientFrame::Hello {
            topics: Some(BTreeMap::from([
                ("room".to_owned(), 1763791200000017),
                ("lobby".to_owned(), 0),
            ])),
            protocol: Some("Chat".into()),
            version: None,
            compatible: None,
            session: Some(SESSION),
            after: Some(41),
            traceparent: None,
        },
        r#"{"type":"hello","protocol":"Chat","session":"5f0c1a2b3c4d5e6f708192a3b4c5d6e7","after":41,"topics":{"lobby":0,"room":1763791200000017}}"#,
    );
}

#[test]
fn client_msg() {
    client(
        ClientFrame::msg(ChatUp::FetchAll),
        r#"{"type":"msg","payload":{"kind":"FetchAll"}}"#,
    );
    client(
        ClientFrame::Msg {
            payload: send("m1", "hi"),
            reference: Some(7),
            id: None,
        },
        r#"{"type":"msg","payload":{"kind":"Send","data":{"id":"m1","author":"ada","text":"hi"}},"ref":7}"#,
    );
    client(
        ClientFrame::Msg {
            payload: send("m1", "hi"),
            reference: Some(0),
            id: Some("c1".into()),
        },
        r#"{"type":"msg","payload":{"kind":"Send","data":{"id":"m1","author":"ada","text":"hi"}},"ref":0,"id":"c1"}"#,
    );
}

#[test]
fn strings_are_escaped_and_utf8_is_kept() {
    client(
        ClientFrame::msg(ChatUp::Send(message("m2", "zoë", "say \"hi\"\n\u{7}\\"))),
        r#"{"type":"msg","payload":{"kind":"Send","data":{"id":"m2","author":"zoë","text":"say \"hi\"\n\u0007\\"}}}"#,
    );
}

#[test]
fn untyped_payloads_encode_the_same() {
    let frame = ClientFrame::Msg {
        payload: json!({"kind": "FetchAll"}),
        reference: Some(u64::MAX),
        id: None,
    };
    let text = r#"{"type":"msg","payload":{"kind":"FetchAll"},"ref":18446744073709551615}"#;
    assert_eq!(frame.encode().unwrap(), text);
    assert_eq!(
        ClientFrame::<Value>::decode(text.as_bytes()).unwrap(),
        frame
    );
}

#[test]
fn join() {
    client(
        ClientFrame::Join {
            topics: None,
            id: "c1".into(),
            module: "counter".into(),
            token: "opaque-token-issued-by-the-server".into(),
            session: None,
            after: None,
            version: None,
            compatible: None,
            traceparent: None,
            presence: None,
            client: None,
        },
        r#"{"type":"join","id":"c1","module":"counter","token":"opaque-token-issued-by-the-server"}"#,
    );
    client(
        ClientFrame::Join {
            topics: Some(BTreeMap::from([("room".to_owned(), 17)])),
            id: "c1".into(),
            module: "counter".into(),
            token: "t".into(),
            session: Some(SESSION),
            after: Some(3),
            version: Some("9c1e4f2a7b3d6e05".into()),
            compatible: None,
            traceparent: None,
            presence: None,
            client: None,
        },
        r#"{"type":"join","id":"c1","module":"counter","token":"t","session":"5f0c1a2b3c4d5e6f708192a3b4c5d6e7","after":3,"version":"9c1e4f2a7b3d6e05","topics":{"room":17}}"#,
    );
    client(
        ClientFrame::Join {
            topics: None,
            id: "c2".into(),
            module: "chat".into(),
            token: "t".into(),
            session: None,
            after: None,
            version: None,
            compatible: None,
            traceparent: None,
            presence: Some(
                omni_runtime::presence::Modes::new()
                    .topic("lobby", omni_runtime::presence::Mode::Count)
                    .otherwise(omni_runtime::presence::Mode::None),
            ),
            client: Some("6b1f0c9e".into()),
        },
        r#"{"type":"join","id":"c2","module":"chat","token":"t","presence":{"*":"none","lobby":"count"},"client":"6b1f0c9e"}"#,
    );
}

#[test]
fn leave() {
    client(
        ClientFrame::Leave { id: "c1".into() },
        r#"{"type":"leave","id":"c1"}"#,
    );
}

#[test]
fn welcome() {
    server(
        ServerFrame::Welcome {
            session: SessionId::from_u128(0xab),
            seq: 0,
            resumed: false,
            protocol: "Chat".into(),
            version: "9c1e4f2a7b3d6e05".into(),
            codec: Codec::Json,
            id: None,
        },
        r#"{"type":"welcome","session":"000000000000000000000000000000ab","seq":0,"resumed":false,"protocol":"Chat","version":"9c1e4f2a7b3d6e05"}"#,
    );
    server(
        ServerFrame::Welcome {
            session: SESSION,
            seq: 44,
            resumed: true,
            protocol: "Chat".into(),
            version: "9c1e4f2a7b3d6e05".into(),
            codec: Codec::MsgPack,
            id: Some("c1".into()),
        },
        r#"{"type":"welcome","session":"5f0c1a2b3c4d5e6f708192a3b4c5d6e7","seq":44,"resumed":true,"protocol":"Chat","version":"9c1e4f2a7b3d6e05","codec":"msgpack","id":"c1"}"#,
    );
}

#[test]
fn server_msg() {
    // Map keys are written in the map's order: a `BTreeMap` sorts them.
    let messages = BTreeMap::from([
        ("m2".to_owned(), message("m2", "bob", "yo")),
        ("m1".to_owned(), message("m1", "ada", "hi")),
    ]);
    server(
        ServerFrame::Msg {
            topic: None,
            seq: 1,
            payload: ChatDown::Upsert(messages),
            reference: None,
            id: None,
        },
        r#"{"type":"msg","seq":1,"payload":{"kind":"Upsert","data":{"m1":{"id":"m1","author":"ada","text":"hi"},"m2":{"id":"m2","author":"bob","text":"yo"}}}}"#,
    );
    server(
        ServerFrame::Msg {
            topic: None,
            seq: 42,
            payload: ChatDown::Presence { online: 2 },
            reference: Some(7),
            id: Some("c1".into()),
        },
        r#"{"type":"msg","seq":42,"payload":{"kind":"Presence","data":{"online":2}},"ref":7,"id":"c1"}"#,
    );
    // A sequenced topic's message: `seq` is the topic's number.
    server(
        ServerFrame::Msg {
            topic: Some("room".into()),
            seq: 1763791200000017,
            payload: ChatDown::Presence { online: 2 },
            reference: Some(7),
            id: Some("c1".into()),
        },
        r#"{"type":"msg","seq":1763791200000017,"payload":{"kind":"Presence","data":{"online":2}},"ref":7,"topic":"room","id":"c1"}"#,
    );
}

#[test]
fn push() {
    server(
        ServerFrame::Push {
            payload: ChatDown::Presence { online: 2 },
            topic: None,
            id: None,
        },
        r#"{"type":"push","payload":{"kind":"Presence","data":{"online":2}}}"#,
    );
    server(
        ServerFrame::Push {
            payload: ChatDown::Upsert(BTreeMap::new()),
            topic: Some("lobby".into()),
            id: Some("c1".into()),
        },
        r#"{"type":"push","payload":{"kind":"Upsert","data":{}},"topic":"lobby","id":"c1"}"#,
    );
}

#[test]
fn ack() {
    server(
        ServerFrame::Ack {
            reference: 7,
            id: None,
        },
        r#"{"type":"ack","ref":7}"#,
    );
    server(
        ServerFrame::Ack {
            reference: 7,
            id: Some("c1".into()),
        },
        r#"{"type":"ack","ref":7,"id":"c1"}"#,
    );
}

#[test]
fn error() {
    let codes = [
        (
            ErrorCode::BadFrame,
            r#"{"type":"error","code":"bad_frame","message":"m"}"#,
        ),
        (
            ErrorCode::BadPayload,
            r#"{"type":"error","code":"bad_payload","message":"m"}"#,
        ),
        (
            ErrorCode::TooLarge,
            r#"{"type":"error","code":"too_large","message":"m"}"#,
        ),
        (
            ErrorCode::VersionMismatch,
            r#"{"type":"error","code":"version_mismatch","message":"m"}"#,
        ),
        (
            ErrorCode::BadToken,
            r#"{"type":"error","code":"bad_token","message":"m"}"#,
        ),
        (
            ErrorCode::UnknownModule,
            r#"{"type":"error","code":"unknown_module","message":"m"}"#,
        ),
        (
            ErrorCode::DuplicateId,
            r#"{"type":"error","code":"duplicate_id","message":"m"}"#,
        ),
        (
            ErrorCode::UnknownId,
            r#"{"type":"error","code":"unknown_id","message":"m"}"#,
        ),
        (
            ErrorCode::Rejected,
            r#"{"type":"error","code":"rejected","message":"m"}"#,
        ),
        (
            ErrorCode::HandlerFailed,
            r#"{"type":"error","code":"handler_failed","message":"m"}"#,
        ),
        (
            ErrorCode::SlowConsumer,
            r#"{"type":"error","code":"slow_consumer","message":"m"}"#,
        ),
        (
            ErrorCode::UnknownMessage,
            r#"{"type":"error","code":"unknown_message","message":"m"}"#,
        ),
        (
            ErrorCode::Unknown,
            r#"{"type":"error","code":"unknown","message":"m"}"#,
        ),
    ];
    assert_eq!(
        codes[..ErrorCode::ALL.len()]
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>(),
        ErrorCode::ALL,
        "every code has a golden frame"
    );
    for (code, text) in codes {
        server(ServerFrame::error(code, "m"), text);
    }
    server(
        ServerFrame::Error {
            code: ErrorCode::HandlerFailed,
            message: "database is down".into(),
            reference: Some(8),
            id: Some("c1".into()),
        },
        r#"{"type":"error","code":"handler_failed","message":"database is down","ref":8,"id":"c1"}"#,
    );
}

#[test]
fn decode_errors_become_error_frames_naming_the_frame() {
    let err = ClientFrame::<ChatUp>::decode(
        br#"{"type":"msg","payload":{"kind":"Sned","data":{}},"ref":8,"id":"c1"}"#,
    )
    .unwrap_err();
    let ServerFrame::Error {
        code,
        message,
        reference,
        id,
    } = ServerFrame::<ChatDown>::from(&err)
    else {
        panic!("a decode error becomes an `error` frame");
    };
    assert_eq!(code, ErrorCode::BadPayload);
    assert!(message.contains("Sned"), "{message}");
    assert_eq!((reference, id.as_deref()), (Some(8), Some("c1")));
}

#[test]
fn reset() {
    server(
        ServerFrame::Reset {
            topic: None,
            seq: 1093,
            id: None,
        },
        r#"{"type":"reset","seq":1093}"#,
    );
    server(
        ServerFrame::Reset {
            topic: None,
            seq: 0,
            id: Some("c1".into()),
        },
        r#"{"type":"reset","seq":0,"id":"c1"}"#,
    );
    server(
        ServerFrame::Reset {
            topic: Some("room".into()),
            seq: 1763791200000417,
            id: Some("c1".into()),
        },
        r#"{"type":"reset","seq":1763791200000417,"topic":"room","id":"c1"}"#,
    );
}

#[test]
fn joined() {
    server(
        ServerFrame::Joined { id: "c1".into() },
        r#"{"type":"joined","id":"c1"}"#,
    );
}

#[test]
fn left() {
    server(
        ServerFrame::Left { id: "c1".into() },
        r#"{"type":"left","id":"c1"}"#,
    );
}

const PROTOCOL_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");

#[test]
fn presence_state() {
    let state: omni_runtime::presence::List = serde_json::from_str(
        r#"{"ada":[{"ref":"n.1","meta":{"name":"Ada"}},{"ref":"n.4","meta":null}]}"#,
    )
    .unwrap();
    server(
        ServerFrame::PresenceState {
            topic: "room".into(),
            state,
            id: Some("c1".into()),
        },
        r#"{"type":"presence_state","topic":"room","state":{"ada":[{"ref":"n.1","meta":{"name":"Ada"}},{"ref":"n.4","meta":null}]},"id":"c1"}"#,
    );
}

#[test]
fn presence_diff() {
    let diff: omni_runtime::presence::Diff = serde_json::from_str(
        r#"{"joins":{"cy":[{"ref":"m.3","meta":1}]},"leaves":{"bob":[{"ref":"m.2","meta":2}]}}"#,
    )
    .unwrap();
    server(
        ServerFrame::PresenceDiff {
            topic: "room".into(),
            diff,
            id: None,
        },
        r#"{"type":"presence_diff","topic":"room","joins":{"cy":[{"ref":"m.3","meta":1}]},"leaves":{"bob":[{"ref":"m.2","meta":2}]}}"#,
    );
    // Either part may be absent.
    server(
        ServerFrame::PresenceDiff {
            topic: "room".into(),
            diff: Default::default(),
            id: None,
        },
        r#"{"type":"presence_diff","topic":"room"}"#,
    );
}

#[test]
fn presence_count() {
    server(
        ServerFrame::PresenceCount {
            topic: "lobby".into(),
            keys: 9876,
            entries: 10012,
            id: None,
        },
        r#"{"type":"presence_count","topic":"lobby","keys":9876,"entries":10012}"#,
    );
}

const CLIENT_TYPES: [&str; 4] = ["hello", "msg", "join", "leave"];
const SERVER_TYPES: [&str; 11] = [
    "welcome",
    "msg",
    "push",
    "ack",
    "error",
    "reset",
    "presence_state",
    "presence_diff",
    "presence_count",
    "joined",
    "left",
];

/// Does not compile once a frame type is added, as a reminder to list it above,
/// give it a golden test, and document it in `PROTOCOL.md`.
#[allow(dead_code)]
fn every_type_is_listed(client: ClientFrame<()>, server: ServerFrame<()>) {
    use ClientFrame as C;
    use ServerFrame as S;
    match client {
        C::Hello { .. } | C::Msg { .. } | C::Join { .. } | C::Leave { .. } => {}
    }
    match server {
        S::Welcome { .. }
        | S::Msg { .. }
        | S::Push { .. }
        | S::Ack { .. }
        | S::Error { .. }
        | S::Reset { .. }
        | S::PresenceState { .. }
        | S::PresenceDiff { .. }
        | S::PresenceCount { .. }
        | S::Joined { .. }
        | S::Left { .. } => {}
    }
}

/// `ErrorCode` is `#[non_exhaustive]`, so no `match` outside its crate can be made to fail to
/// compile when a code is added: this list does the reminding instead, and each code must be
/// in `PROTOCOL.md`'s table.
#[test]
fn every_error_code_is_listed_and_documented() {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "bad_frame",
            "bad_payload",
            "too_large",
            "version_mismatch",
            "bad_token",
            "unknown_module",
            "duplicate_id",
            "unknown_id",
            "rejected",
            "handler_failed",
            "slow_consumer",
            "unknown_message",
        ]
    );
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .unwrap();
    for code in codes {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "{code} is not in PROTOCOL.md's table"
        );
        assert_eq!(ErrorCode::from_wire(code).as_str(), code);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Client,
    Server,
}

/// A fenced ```json block of `PROTOCOL.md`.
struct Example {
    /// The line of the frame (the one after the fence).
    line: usize,
    /// The `## ` section it is under: `Client frames` or `Server frames`.
    side: Side,
    /// The `### ` heading it is under, without backticks.
    heading: String,
    text: String,
}

/// Every ```json block in `doc`, with the headings it is under. Other fenced blocks are skipped
/// whole, so a `#` line inside them is not taken for a heading.
fn json_examples(doc: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut section = "";
    let mut heading = "";
    let mut lines = doc.lines().enumerate().map(|(i, line)| (i + 1, line));
    while let Some((n, line)) = lines.next() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim();
            heading = "";
        } else if let Some(h) = line.strip_prefix("### ") {
            heading = h.trim().trim_matches('`');
        } else if let Some(info) = line.trim_start().strip_prefix("```") {
            let body: Vec<(usize, &str)> = lines
                .by_ref()
                .take_while(|(_, line)| !line.trim_start().starts_with("```"))
                .collect();
            if info.trim() != "json" {
                continue;
            }
            let side = match section {
                "Client frames" => Side::Client,
                "Server frames" => Side::Server,
                // A schema document, not a frame: `tests/schema.rs` keeps it exact.
                "Schema and compatibility" => continue,
                other => panic!(
                    "PROTOCOL.md:{n}: a json example under `## {other}`; examples belong under \
                     `## Client frames` or `## Server frames`"
                ),
            };
            assert!(
                !heading.is_empty(),
                "PROTOCOL.md:{n}: a json example outside a `### <type>` section"
            );
            assert_eq!(
                body.len(),
                1,
                "PROTOCOL.md:{n}: a json example is exactly one frame on one line"
            );
            examples.push(Example {
                line: body[0].0,
                side,
                heading: heading.to_owned(),
                text: body[0].1.to_owned(),
            });
        }
    }
    examples
}

#[test]
fn protocol_md_examples_are_exact() {
    let doc = std::fs::read_to_string(PROTOCOL_MD)
        .unwrap_or_else(|e| panic!("cannot read {PROTOCOL_MD}: {e}"));
    let examples = json_examples(&doc);

    let mut documented = Vec::new();
    for Example {
        line,
        side,
        heading,
        text,
    } in &examples
    {
        let frame = Frame::decode(*side, text)
            .unwrap_or_else(|e| panic!("PROTOCOL.md:{line}: does not decode: {e}"));
        let kind = frame.kind();
        assert_eq!(
            &frame.encode(),
            text,
            "PROTOCOL.md:{line}: the encoder writes this frame differently"
        );
        assert_eq!(
            kind, heading,
            "PROTOCOL.md:{line}: a `{kind}` frame under `### {heading}`"
        );
        same_in_msgpack(&frame, text, *line);
        documented.push((*side, kind));
    }

    let expected: Vec<(Side, &str)> = CLIENT_TYPES
        .iter()
        .map(|kind| (Side::Client, *kind))
        .chain(SERVER_TYPES.iter().map(|kind| (Side::Server, *kind)))
        .collect();
    assert_eq!(
        documented, expected,
        "PROTOCOL.md has exactly one example per frame type, in declaration order"
    );
    assert_eq!(examples.len(), 15);
}

/// A frame, of either side.
#[derive(Debug, PartialEq)]
enum Frame {
    Client(ClientFrame<ChatUp>),
    Server(ServerFrame<ChatDown>),
}

impl Frame {
    /// Decodes `text` as a frame of `side`.
    fn decode(side: Side, text: &str) -> Result<Frame, omni_runtime::DecodeError> {
        match side {
            Side::Client => ClientFrame::decode(text.as_bytes()).map(Frame::Client),
            Side::Server => ServerFrame::decode(text.as_bytes()).map(Frame::Server),
        }
    }

    fn side(&self) -> Side {
        match self {
            Frame::Client(_) => Side::Client,
            Frame::Server(_) => Side::Server,
        }
    }

    /// Decodes `text` as a frame of this one's side.
    fn decode_alike(&self, text: &str) -> Result<Frame, omni_runtime::DecodeError> {
        Frame::decode(self.side(), text)
    }

    /// Decodes MessagePack `bytes` as a frame of this one's side.
    fn decode_msgpack_alike(&self, bytes: &[u8]) -> Result<Frame, omni_runtime::DecodeError> {
        match self {
            Frame::Client(_) => ClientFrame::decode_msgpack(bytes).map(Frame::Client),
            Frame::Server(_) => ServerFrame::decode_msgpack(bytes).map(Frame::Server),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Frame::Client(frame) => frame.kind(),
            Frame::Server(frame) => frame.kind(),
        }
    }

    fn encode(&self) -> String {
        match self {
            Frame::Client(frame) => frame.encode().unwrap(),
            Frame::Server(frame) => frame.encode().unwrap(),
        }
    }

    fn encode_msgpack(&self) -> Vec<u8> {
        match self {
            Frame::Client(frame) => frame.encode_msgpack().unwrap(),
            Frame::Server(frame) => frame.encode_msgpack().unwrap(),
        }
    }
}

/// The MessagePack half of a document example: `frame` (decoded from the JSON at
/// `PROTOCOL.md:line`) encodes to a map that reads as `json`, the same keys in the same order
/// with the same values, and that map decodes back to `frame`. PROTOCOL.md promises "every
/// example on this page is therefore also an example of the MessagePack frame".
#[track_caller]
fn same_in_msgpack(frame: &Frame, json: &str, line: usize) {
    let packed = frame.encode_msgpack();
    assert_eq!(
        as_json(&packed),
        json,
        "PROTOCOL.md:{line}: the MessagePack form is not the JSON's fields in the JSON's order"
    );
    let back = frame.decode_msgpack_alike(&packed).unwrap_or_else(|e| {
        panic!("PROTOCOL.md:{line}: the MessagePack form does not decode: {e}")
    });
    assert_eq!(
        &back, frame,
        "PROTOCOL.md:{line}: the MessagePack form decodes to another frame"
    );
}

/// A frame `PROTOCOL.md` shows in its prose, outside the `### <type>` sections, and the frame
/// the text around it says it is.
struct Shown {
    text: &'static str,
    frame: Frame,
    /// The text is the frame byte for byte as the encoder writes it; not so for an example of
    /// a key that decoding ignores.
    exact: bool,
}

fn shown_in_prose() -> Vec<Shown> {
    vec![
        // "Negotiation": a refused build is told the breaking change.
        Shown {
            text: r#"{"type":"error","code":"version_mismatch","message":"this server (schema 7d0e…) no longer serves clients of schema 3f2a…: removed #[client] variant Ping: clients built with 3f2a… would be refused"}"#,
            frame: Frame::Server(ServerFrame::Error {
                code: ErrorCode::VersionMismatch,
                message: "this server (schema 7d0e…) no longer serves clients of schema 3f2a…: \
                          removed #[client] variant Ping: clients built with 3f2a… would be \
                          refused"
                    .into(),
                reference: None,
                id: None,
            }),
            exact: true,
        },
        // "A client of build 2 talking to a server of build 1".
        Shown {
            text: r#"{"type":"hello","version":"b2b2b2b2b2b2b2b2","compatible":["a1a1a1a1a1a1a1a1"]}"#,
            frame: Frame::Client(ClientFrame::Hello {
                protocol: None,
                version: Some("b2b2b2b2b2b2b2b2".into()),
                compatible: Some(vec!["a1a1a1a1a1a1a1a1".into()]),
                session: None,
                after: None,
                topics: None,
                traceparent: None,
            }),
            exact: true,
        },
        // "A key that only other frame types use is not checked either (... is a valid `hello`)".
        Shown {
            text: r#"{"type":"hello","seq":"x"}"#,
            frame: Frame::Client(ClientFrame::Hello {
                protocol: None,
                version: None,
                compatible: None,
                session: None,
                after: None,
                topics: None,
                traceparent: None,
            }),
            exact: false,
        },
        // "Topic messages reach a following client as `msg` frames whose `seq` is the topic's
        // number, with `topic` set."
        Shown {
            text: r#"{"type":"msg","seq":1763791200000017,"payload":{"kind":"Upsert","data":{}},"topic":"room"}"#,
            frame: Frame::Server(ServerFrame::Msg {
                seq: 1763791200000017,
                payload: ChatDown::Upsert(BTreeMap::new()),
                reference: None,
                topic: Some("room".into()),
                id: None,
            }),
            exact: true,
        },
        // "the server sends `reset` with the `topic` and the topic's current number".
        Shown {
            text: r#"{"type":"reset","seq":1763791200000417,"topic":"room"}"#,
            frame: Frame::Server(ServerFrame::Reset {
                seq: 1763791200000417,
                topic: Some("room".into()),
                id: None,
            }),
            exact: true,
        },
    ]
}

/// The payloads of the `## Payloads` table, as the variant in their row's first cell.
fn payload_table() -> Vec<(&'static str, Frame)> {
    vec![
        (
            r#"{"kind":"Send","data":{"id":"m1","author":"ada","text":"hi"}}"#,
            Frame::Client(ClientFrame::msg(send("m1", "hi"))),
        ),
        (
            r#"{"kind":"FetchAll"}"#,
            Frame::Client(ClientFrame::msg(ChatUp::FetchAll)),
        ),
        (
            r#"{"kind":"Presence","data":{"online":2}}"#,
            Frame::Server(ServerFrame::Push {
                payload: ChatDown::Presence { online: 2 },
                topic: None,
                id: None,
            }),
        ),
    ]
}

/// A JSON object written in a document.
struct Found<'a> {
    line: usize,
    span: std::ops::Range<usize>,
    text: &'a str,
}

/// Every object in `doc` whose first key is `key`, wherever it is: in a fenced block, an
/// indented one, a table or a sentence. One that is not JSON fails the test, so a sketch of a
/// frame cannot pass for an example.
fn objects_keyed<'a>(doc: &'a str, key: &str) -> Vec<Found<'a>> {
    let quoted = format!("\"{key}\"");
    doc.match_indices(&quoted)
        .filter_map(|(at, _)| {
            let before = doc[..at].trim_end();
            before.strip_suffix('{').map(|opening| opening.len())
        })
        .map(|start| {
            let line = doc[..start].matches('\n').count() + 1;
            let mut stream = serde_json::Deserializer::from_str(&doc[start..])
                .into_iter::<serde::de::IgnoredAny>();
            if let Some(Err(e)) = stream.next() {
                panic!("PROTOCOL.md:{line}: an object keyed `{key}` that is not JSON: {e}");
            }
            let span = start..start + stream.byte_offset();
            Found {
                line,
                text: &doc[span.clone()],
                span,
            }
        })
        .collect()
}

/// Every `{"type":…}` object in `PROTOCOL.md` is checked: those of the `### <type>` sections by
/// `protocol_md_examples_are_exact`, the rest here against the frame their text describes.
#[test]
fn protocol_md_frames_in_prose_are_exact() {
    let doc = std::fs::read_to_string(PROTOCOL_MD)
        .unwrap_or_else(|e| panic!("cannot read {PROTOCOL_MD}: {e}"));
    let fenced = json_examples(&doc);
    let shown = shown_in_prose();
    let mut seen = vec![0; shown.len()];
    let found = objects_keyed(&doc, "type");
    for Found { line, text, .. } in &found {
        if fenced.iter().any(|e| e.line == *line && e.text == *text) {
            continue;
        }
        let Some(i) = shown.iter().position(|s| s.text == *text) else {
            panic!(
                "PROTOCOL.md:{line}: {text} is not checked: add it to `shown_in_prose` with \
                 the frame the text around it describes"
            );
        };
        seen[i] += 1;
        let expected = &shown[i].frame;
        let decoded = expected
            .decode_alike(text)
            .unwrap_or_else(|e| panic!("PROTOCOL.md:{line}: does not decode: {e}"));
        assert_eq!(
            &decoded, expected,
            "PROTOCOL.md:{line}: not the frame the text says"
        );
        if shown[i].exact {
            assert_eq!(
                &expected.encode(),
                text,
                "PROTOCOL.md:{line}: the encoder writes this frame differently"
            );
        }
        // An inexact text carries keys decoding ignores: the frame's MessagePack form is
        // compared with the JSON the encoder writes for it.
        same_in_msgpack(&decoded, &expected.encode(), *line);
    }
    for (shown, seen) in shown.iter().zip(seen) {
        assert_eq!(seen, 1, "PROTOCOL.md shows {} once", shown.text);
    }
    assert_eq!(found.len(), fenced.len() + shown.len());
}

/// The payloads of the `## Payloads` table decode as the variant their row names and encode,
/// inside a frame, to the same text.
#[test]
fn protocol_md_payloads_are_exact() {
    let doc = std::fs::read_to_string(PROTOCOL_MD)
        .unwrap_or_else(|e| panic!("cannot read {PROTOCOL_MD}: {e}"));
    let frames = objects_keyed(&doc, "type");
    let table = payload_table();
    let mut seen = vec![0; table.len()];
    let lines: Vec<&str> = doc.lines().collect();
    for Found { line, span, text } in objects_keyed(&doc, "kind") {
        let in_frame = |f: &Found| f.span.start < span.start && span.end <= f.span.end;
        if frames.iter().any(in_frame) {
            continue;
        }
        let Some(i) = table.iter().position(|(t, _)| *t == text) else {
            panic!("PROTOCOL.md:{line}: {text} is not checked: add it to `payload_table`");
        };
        seen[i] += 1;
        let expected = &table[i].1;
        // Through the codec, as a payload travels: in a client's `msg` or a server's `push`.
        let wrapped = match expected {
            Frame::Client(_) => format!(r#"{{"type":"msg","payload":{text}}}"#),
            Frame::Server(_) => format!(r#"{{"type":"push","payload":{text}}}"#),
        };
        let decoded = expected
            .decode_alike(&wrapped)
            .unwrap_or_else(|e| panic!("PROTOCOL.md:{line}: does not decode: {e}"));
        assert_eq!(&decoded, expected, "PROTOCOL.md:{line}: another payload");
        assert_eq!(
            expected.encode(),
            wrapped,
            "PROTOCOL.md:{line}: the encoder writes this payload differently"
        );
        same_in_msgpack(&decoded, &wrapped, line);
        // The row names the variant: `Send(ChatMessage)`, `Presence { online: u32 }`.
        let row: Vec<&str> = lines[line - 1].split('|').map(str::trim).collect();
        let variant = row
            .get(1)
            .map(|cell| cell.trim_matches('`'))
            .and_then(|cell| cell.split(|c: char| !c.is_alphanumeric()).next())
            .unwrap_or_else(|| panic!("PROTOCOL.md:{line}: a payload outside the table"));
        let kind: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            kind["kind"], variant,
            "PROTOCOL.md:{line}: the payload of another variant"
        );
    }
    assert_eq!(
        seen,
        vec![1; table.len()],
        "each payload is in the table once"
    );
}

#[test]
fn protocol_md_lists_every_error_code() {
    let doc = std::fs::read_to_string(PROTOCOL_MD)
        .unwrap_or_else(|e| panic!("cannot read {PROTOCOL_MD}: {e}"));
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Error codes\n"))
        .expect("PROTOCOL.md has a `## Error codes` section");
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(code, _)| code)
        .collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, codes);
}
