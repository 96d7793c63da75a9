//! Golden tests: the exact JSON of every frame type, and the examples in `docs/PROTOCOL.md`.
//!
//! A frame's bytes are a contract with clients written in other languages, so each test pins
//! the encoder's output to a literal and checks that the literal decodes back to the same value.

mod common;

use std::collections::BTreeMap;

use common::{ChatDown, ChatUp, message};
use omni_runtime::{ClientFrame, ErrorCode, ServerFrame, SessionId};
use serde_json::{Value, json};

const SESSION: SessionId = SessionId::from_u128(0x5f0c1a2b3c4d5e6f708192a3b4c5d6e7);

#[track_caller]
fn client(frame: ClientFrame<ChatUp>, text: &str) {
    assert_eq!(frame.encode().unwrap(), text);
    assert_eq!(ClientFrame::decode(text.as_bytes()).unwrap(), frame);
}

#[track_caller]
fn server(frame: ServerFrame<ChatDown>, text: &str) {
    assert_eq!(frame.encode().unwrap(), text);
    assert_eq!(ServerFrame::decode(text.as_bytes()).unwrap(), frame);
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
            session: None,
            after: None,
        },
        r#"{"type":"hello"}"#,
    );
    client(
        ClientFrame::Hello {
            topics: None,
            protocol: None,
            version: Some("9c1e4f2a7b3d6e05".into()),
            session: None,
            after: None,
        },
        r#"{"type":"hello","version":"9c1e4f2a7b3d6e05"}"#,
    );
    client(
        ClientFrame::Hello {
            topics: None,
            protocol: Some("Chat".into()),
            version: Some("9c1e4f2a7b3d6e05".into()),
            session: Some(SESSION),
            after: Some(41),
        },
        r#"{"type":"hello","protocol":"Chat","version":"9c1e4f2a7b3d6e05","session":"5f0c1a2b3c4d5e6f708192a3b4c5d6e7","after":41}"#,
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
        },
        r#"{"type":"join","id":"c1","module":"counter","token":"opaque-token-issued-by-the-server"}"#,
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
            id: Some("c1".into()),
        },
        r#"{"type":"welcome","session":"5f0c1a2b3c4d5e6f708192a3b4c5d6e7","seq":44,"resumed":true,"protocol":"Chat","version":"9c1e4f2a7b3d6e05","id":"c1"}"#,
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
            ErrorCode::HandlerFailed,
            r#"{"type":"error","code":"handler_failed","message":"m"}"#,
        ),
        (
            ErrorCode::SlowConsumer,
            r#"{"type":"error","code":"slow_consumer","message":"m"}"#,
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

const CLIENT_TYPES: [&str; 4] = ["hello", "msg", "join", "leave"];
const SERVER_TYPES: [&str; 8] = [
    "welcome", "msg", "push", "ack", "error", "reset", "joined", "left",
];

/// Does not compile once a frame type or error code is added, as a reminder to list it above,
/// give it a golden test, and document it in `PROTOCOL.md`.
#[allow(dead_code)]
fn every_type_is_listed(client: ClientFrame<()>, server: ServerFrame<()>, code: ErrorCode) {
    use ClientFrame as C;
    use ErrorCode as E;
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
        | S::Joined { .. }
        | S::Left { .. } => {}
    }
    match code {
        E::BadFrame
        | E::BadPayload
        | E::TooLarge
        | E::VersionMismatch
        | E::BadToken
        | E::UnknownModule
        | E::DuplicateId
        | E::UnknownId
        | E::HandlerFailed
        | E::SlowConsumer
        | E::Unknown => {}
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Client,
    Server,
}

/// A fenced ```json block of `PROTOCOL.md`.
struct Example {
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
            let body: Vec<&str> = lines
                .by_ref()
                .map(|(_, line)| line)
                .take_while(|line| !line.trim_start().starts_with("```"))
                .collect();
            if info.trim() != "json" {
                continue;
            }
            let side = match section {
                "Client frames" => Side::Client,
                "Server frames" => Side::Server,
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
                line: n,
                side,
                heading: heading.to_owned(),
                text: body[0].to_owned(),
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
        let (kind, encoded) = match side {
            Side::Client => {
                let frame = ClientFrame::<ChatUp>::decode(text.as_bytes())
                    .unwrap_or_else(|e| panic!("PROTOCOL.md:{line}: does not decode: {e}"));
                (frame.kind(), frame.encode().unwrap())
            }
            Side::Server => {
                let frame = ServerFrame::<ChatDown>::decode(text.as_bytes())
                    .unwrap_or_else(|e| panic!("PROTOCOL.md:{line}: does not decode: {e}"));
                (frame.kind(), frame.encode().unwrap())
            }
        };
        assert_eq!(
            &encoded, text,
            "PROTOCOL.md:{line}: the encoder writes this frame differently"
        );
        assert_eq!(
            kind, heading,
            "PROTOCOL.md:{line}: a `{kind}` frame under `### {heading}`"
        );
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
    assert_eq!(examples.len(), 12);
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
