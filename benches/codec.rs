//! Codec cost of the generated wire enums against hand-written serde enums of the same shape,
//! and of omni's envelope decoding against a naive `#[serde(tag = "type")]` frame enum.
//!
//! `cargo bench --bench codec`; compare the `generated` and `hand_written` lines of each group.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use omni::ClientFrame;
use serde::{Deserialize, Serialize};

#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub id: String,
    pub author: String,
    pub text: String,
    pub sent_at: u64,
}

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    DraftChanged(String),
    #[client]
    Send(ChatMessage),
    #[client]
    FetchAll,
    #[client]
    Cursor {
        x: u16,
        y: u16,
    },
    #[server]
    Upsert(BTreeMap<String, ChatMessage>),
    #[server]
    Presence {
        online: u32,
    },
}

/// What a user would write by hand for the same client messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data")]
pub enum HandClient {
    Send(ChatMessage),
    FetchAll,
    Cursor { x: u16, y: u16 },
}

/// A hand-written v1 client frame as an internally tagged enum: the obvious serde design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HandFrame {
    Msg {
        payload: HandClient,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<u64>,
    },
    Leave {
        id: String,
    },
}

fn message() -> ChatMessage {
    ChatMessage {
        id: "m-1f3a".into(),
        author: "ada".into(),
        text: "the quick brown fox jumps over the lazy dog".into(),
        sent_at: 1_700_000_000_123,
    }
}

fn payloads(c: &mut Criterion) {
    let generated = MsgFromClient::Send(message());
    let hand = HandClient::Send(message());
    let json = serde_json::to_string(&generated).unwrap();
    assert_eq!(json, serde_json::to_string(&hand).unwrap());

    let mut group = c.benchmark_group("payload_encode");
    group.bench_function("generated", |b| {
        b.iter(|| serde_json::to_string(black_box(&generated)).unwrap())
    });
    group.bench_function("hand_written", |b| {
        b.iter(|| serde_json::to_string(black_box(&hand)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("payload_decode");
    group.bench_function("generated", |b| {
        b.iter(|| serde_json::from_str::<MsgFromClient>(black_box(&json)).unwrap())
    });
    group.bench_function("hand_written", |b| {
        b.iter(|| serde_json::from_str::<HandClient>(black_box(&json)).unwrap())
    });
    group.finish();
}

fn frames(c: &mut Criterion) {
    let frame = ClientFrame::Msg {
        payload: MsgFromClient::Send(message()),
        reference: Some(42),
        id: None,
    };
    let hand = HandFrame::Msg {
        payload: HandClient::Send(message()),
        reference: Some(42),
    };
    let text = frame.encode().unwrap();
    assert_eq!(text, serde_json::to_string(&hand).unwrap());

    let mut group = c.benchmark_group("frame_encode");
    group.bench_function("generated", |b| {
        b.iter(|| black_box(&frame).encode().unwrap())
    });
    group.bench_function("hand_written", |b| {
        b.iter(|| serde_json::to_string(black_box(&hand)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("frame_decode");
    group.bench_function("generated", |b| {
        b.iter(|| ClientFrame::<MsgFromClient>::decode(black_box(text.as_bytes())).unwrap())
    });
    group.bench_function("hand_written", |b| {
        b.iter(|| serde_json::from_slice::<HandFrame>(black_box(text.as_bytes())).unwrap())
    });
    group.finish();
}

criterion_group!(benches, payloads, frames);
criterion_main!(benches);
