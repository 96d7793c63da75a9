//! Codec cost of the generated wire enums against hand-written serde enums of the same shape,
//! of omni's envelope decoding against a naive `#[serde(tag = "type")]` frame enum, and of
//! MessagePack against JSON for the same frames.
//!
//! `cargo bench --bench codec`; compare the `generated` and `hand_written` lines of each group,
//! and the `json` and `msgpack` lines of the `codec_*` groups (their encoded sizes are printed
//! first).
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use omni::{Bytes, ClientFrame};
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

/// A protocol that moves files: one `Bytes` field, base64 in JSON, `bin` in MessagePack.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Files {
    #[client]
    Upload { name: String, data: Bytes },
    #[server]
    Stored(u64),
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

/// `frame` encoded then decoded, in JSON and in MessagePack, and once the bytes each takes.
fn codecs<C>(c: &mut Criterion, group: &str, frame: &ClientFrame<C>, raw: Option<usize>)
where
    C: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = frame.encode().unwrap();
    let packed = frame.encode_msgpack().unwrap();
    assert_eq!(&ClientFrame::<C>::decode(json.as_bytes()).unwrap(), frame);
    assert_eq!(&ClientFrame::<C>::decode_msgpack(&packed).unwrap(), frame);
    let ratio = packed.len() as f64 / json.len() as f64;
    print!(
        "{group}: json {} bytes, msgpack {} bytes (msgpack/json {ratio:.3})",
        json.len(),
        packed.len()
    );
    match raw {
        Some(raw) => println!(
            "; the field's {raw} bytes take {:.4}x in json, {:.4}x in msgpack",
            json.len() as f64 / raw as f64,
            packed.len() as f64 / raw as f64
        ),
        None => println!(),
    }

    let mut g = c.benchmark_group(format!("{group}_encode"));
    g.bench_function("json", |b| b.iter(|| black_box(frame).encode().unwrap()));
    g.bench_function("msgpack", |b| {
        b.iter(|| black_box(frame).encode_msgpack().unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group(format!("{group}_decode"));
    g.bench_function("json", |b| {
        b.iter(|| ClientFrame::<C>::decode(black_box(json.as_bytes())).unwrap())
    });
    g.bench_function("msgpack", |b| {
        b.iter(|| ClientFrame::<C>::decode_msgpack(black_box(&packed)).unwrap())
    });
    g.finish();

    // What one frame costs its two ends together.
    let mut g = c.benchmark_group(format!("{group}_roundtrip"));
    g.bench_function("json", |b| {
        b.iter(|| {
            let text = black_box(frame).encode().unwrap();
            ClientFrame::<C>::decode(text.as_bytes()).unwrap()
        })
    });
    g.bench_function("msgpack", |b| {
        b.iter(|| {
            let bytes = black_box(frame).encode_msgpack().unwrap();
            ClientFrame::<C>::decode_msgpack(&bytes).unwrap()
        })
    });
    g.finish();
}

fn json_and_msgpack(c: &mut Criterion) {
    let chat = ClientFrame::Msg {
        payload: MsgFromClient::Send(message()),
        reference: Some(42),
        id: None,
    };
    codecs(c, "codec_chat", &chat, None);

    // 64 KiB that does not compress (not that either codec tries).
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let upload = ClientFrame::Msg {
        payload: FilesFromClient::Upload {
            name: "photo.jpg".into(),
            data: Bytes(data),
        },
        reference: Some(42),
        id: None,
    };
    codecs(c, "codec_bytes_64k", &upload, Some(64 * 1024));
}

criterion_group!(benches, payloads, frames, json_and_msgpack);
criterion_main!(benches);
