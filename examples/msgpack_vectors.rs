//! Prints the MessagePack vectors that omni.js's codec tests read
//! (`browser/tests/msgpack.test.mjs`): server frames as the server's own encoder writes them,
//! each beside its JSON form, so that the JavaScript decoder is checked against the real
//! encoder rather than against itself. One JSON array of
//! `{"name", "msgpack": hex, "json": text, "same": bool, "repacks": bool}`: `same` says that
//! omni.js, encoding the value of the JSON form, must write exactly these bytes, `repacks` that
//! it must when encoding the value it decoded from them (see [`Writes`]).
//!
//! `cargo run --example msgpack_vectors`

use std::collections::BTreeMap;

use omni::{Bytes, Codec, ErrorCode, ServerFrame, SessionId};
use serde::Serialize;
use serde_json::{Value, json};

/// One struct with a field of every kind a payload has.
#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    name: String,
    data: Bytes,
    big: u64,
    small: i64,
    half: f32,
    tenth: f64,
    missing: Option<u32>,
    by_number: BTreeMap<u32, String>,
    list: Vec<i32>,
}

/// Payloads as a protocol's wire enum carries them: adjacently tagged, structs as maps.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Vectors {
    /// A client variant, which every protocol has.
    #[client]
    Ping,
    /// A newtype variant: `data` is the struct.
    #[server]
    Everything(Sample),
    /// A unit variant: no `data`.
    #[server]
    Nothing,
    /// A struct variant: `data` is a map of its fields.
    #[server]
    Pair {
        /// A negative fixint.
        left: i8,
        /// A boolean.
        right: bool,
    },
}

/// What omni.js writes for a vector's value, against the bytes the server wrote.
#[derive(Clone, Copy)]
enum Writes {
    /// The same bytes, from the JSON form's value and from the decoded one.
    Same,
    /// The same bytes from the decoded value only: bytes, which JSON has as base64.
    FromDecoded,
    /// Other bytes: an `f32` or an integral `f64` (omni.js writes a Number in the smallest
    /// form that holds it exactly), an integer past 2^53 (a float64 once a Number), integer
    /// map keys (strings once decoded).
    Otherwise,
}

fn main() {
    let mut out = Vec::new();
    frames(&mut out);
    integers(&mut out);
    floats(&mut out);
    strings(&mut out);
    binaries(&mut out);
    containers(&mut out);
    println!("{}", Value::Array(out));
}

/// `frame` in both codecs, as one vector.
fn vector<S: Serialize>(out: &mut Vec<Value>, name: &str, frame: ServerFrame<S>, writes: Writes) {
    let packed = frame.encode_msgpack().expect("encodes as MessagePack");
    let text = frame.encode().expect("encodes as JSON");
    let hex: String = packed.iter().map(|b| format!("{b:02x}")).collect();
    let same = matches!(writes, Writes::Same);
    let repacks = !matches!(writes, Writes::Otherwise);
    out.push(
        json!({ "name": name, "msgpack": hex, "json": text, "same": same, "repacks": repacks }),
    );
}

/// `payload` in a `push` frame, the smallest frame around a value.
fn push<S: Serialize>(out: &mut Vec<Value>, name: &str, payload: S, writes: Writes) {
    let frame = ServerFrame::Push {
        payload,
        topic: None,
        id: None,
    };
    vector(out, name, frame, writes);
}

fn frames(out: &mut Vec<Value>) {
    let session: SessionId = "5f0c1a2b3c4d5e6f708192a3b4c5d6e7"
        .parse()
        .expect("a session id");
    let welcome = ServerFrame::<VectorsFromServer>::Welcome {
        session,
        seq: 44,
        resumed: true,
        protocol: "Vectors".into(),
        version: "9c1e4f2a7b3d6e05".into(),
        codec: Codec::MsgPack,
        id: Some("c1".into()),
    };
    vector(out, "welcome", welcome, Writes::Same);
    let ack = ServerFrame::<VectorsFromServer>::Ack {
        reference: 7,
        id: None,
    };
    vector(out, "ack", ack, Writes::Same);
    let mut error = ServerFrame::<VectorsFromServer>::error(ErrorCode::Rejected, "too big: é");
    if let ServerFrame::Error { reference, .. } = &mut error {
        *reference = Some(8);
    }
    vector(out, "error", error, Writes::Same);
    let topic = ServerFrame::Msg {
        seq: 1_763_791_200_000_017,
        payload: VectorsFromServer::Nothing,
        reference: None,
        topic: Some("room".into()),
        id: None,
    };
    vector(out, "topic msg, unit variant", topic, Writes::Same);
    let pair = ServerFrame::Msg {
        seq: 3,
        payload: VectorsFromServer::Pair {
            left: -5,
            right: true,
        },
        reference: Some(2),
        topic: None,
        id: None,
    };
    vector(out, "struct variant", pair, Writes::Same);
    let sample = Sample {
        name: "file.bin".into(),
        data: Bytes::from(vec![0, 1, 2, 254, 255]),
        big: u64::MAX,
        small: i64::MIN,
        half: 1.5,
        tenth: 0.1,
        missing: None,
        by_number: BTreeMap::from([(1, "one".into()), (300, "many".into())]),
        list: vec![-1, 0, 1_000_000],
    };
    let everything = ServerFrame::Msg {
        seq: 4,
        payload: VectorsFromServer::Everything(sample),
        reference: None,
        topic: None,
        id: None,
    };
    vector(
        out,
        "newtype variant of every kind",
        everything,
        Writes::Otherwise,
    );
}

fn integers(out: &mut Vec<Value>) {
    let unsigned: [u64; 10] = [
        0,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        u32::MAX.into(),
        u64::from(u32::MAX) + 1,
        (1 << 53) - 1,
    ];
    for n in unsigned {
        push(out, &format!("u64 {n}"), n, Writes::Same);
    }
    push(out, "u64 max", u64::MAX, Writes::Otherwise);
    push(out, "u64 2^53", 1u64 << 53, Writes::Otherwise);
    let signed: [i64; 11] = [
        -1,
        -32,
        -33,
        -128,
        -129,
        -32_768,
        -32_769,
        i32::MIN.into(),
        i64::from(i32::MIN) - 1,
        -(1 << 53) + 1,
        100,
    ];
    for n in signed {
        push(out, &format!("i64 {n}"), n, Writes::Same);
    }
    push(out, "i64 min", i64::MIN, Writes::Otherwise);
    push(out, "u8 200", 200u8, Writes::Same);
    push(out, "i8 -100", -100i8, Writes::Same);
    push(out, "nil", None::<u8>, Writes::Same);
    push(out, "true", true, Writes::Same);
    push(out, "false", false, Writes::Same);
}

fn floats(out: &mut Vec<Value>) {
    push(out, "f64 0.1", 0.1f64, Writes::Same);
    push(out, "f64 -1.5e300", -1.5e300f64, Writes::Same);
    // An integral f64 is written as a float; omni.js writes the Number 2 as an integer.
    push(out, "f64 2.0", 2.0f64, Writes::Otherwise);
    push(out, "f32 1.5", 1.5f32, Writes::Otherwise);
    push(out, "f32 -0.25", -0.25f32, Writes::Otherwise);
}

fn strings(out: &mut Vec<Value>) {
    for len in [0, 31, 32, 255, 256, 65_535, 65_536] {
        push(
            out,
            &format!("str of {len} bytes"),
            "x".repeat(len),
            Writes::Same,
        );
    }
    push(out, "str, UTF-8", "é€😀 \u{feff}", Writes::Same);
}

fn binaries(out: &mut Vec<Value>) {
    for len in [0, 255, 256, 65_535, 65_536] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        push(
            out,
            &format!("bin of {len} bytes"),
            Bytes::from(bytes),
            Writes::FromDecoded,
        );
    }
}

fn containers(out: &mut Vec<Value>) {
    for len in [0, 15, 16, 65_535, 65_536] {
        push(
            out,
            &format!("array of {len}"),
            vec![1u8; len],
            Writes::Same,
        );
    }
    for len in [0, 15, 16, 65_535, 65_536] {
        // Keys that are not integers: a JavaScript object keeps them in insertion order.
        let map: BTreeMap<String, u8> = (0..len).map(|i| (format!("k{i:05}"), 2)).collect();
        push(out, &format!("map of {len}"), map, Writes::Same);
    }
    let by_number = BTreeMap::from([(0u32, "zero"), (70_000, "big")]);
    push(out, "map with u32 keys", by_number, Writes::Otherwise);
    let negative = BTreeMap::from([(-40i32, "cold"), (-1, "cool")]);
    push(out, "map with negative keys", negative, Writes::Otherwise);
    let nested = vec![
        BTreeMap::from([("a".to_owned(), vec![vec![true]])]),
        BTreeMap::new(),
    ];
    push(out, "nested", nested, Writes::Same);
}
