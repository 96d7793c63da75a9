//! `cargo xtask fuzz-seeds`: the fuzz targets' seed corpus, made from `docs/PROTOCOL.md`'s
//! examples and from tokens signed with the fuzzing key.
//!
//! Every JSON object in the document is a candidate: the lines of ```json blocks, indented
//! code lines, and inline code spans (the tables' payloads, the decoding rules' examples).
//! Frames go to the corpus of each side whose decoder accepts them, or of both when neither
//! does (an error example still leads the fuzzer to an error path). Payloads are sent in a
//! `msg` of each side. The frame targets read their input as MessagePack too, so each frame
//! a side decodes is also written in its MessagePack form (`…-msgpack-…`), and so are the
//! MessagePack frames the document shows in hex. Seed files have readable names with a
//! prefix of their own, so regenerating replaces exactly them and leaves anything else in
//! the directory alone.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omni_runtime::token::Keys;
use omni_runtime::{ClientFrame, ServerFrame};
use serde_json::{Value, json};

use crate::ts::root;

/// The prefix of the seeds taken from the document.
const DOC_PREFIX: &str = "protocol-md-";
/// The prefix of the token seeds.
const TOKEN_PREFIX: &str = "token-";

/// The key, clock and lifetime of `fuzz/fuzz_targets/token.rs`; tokens signed otherwise
/// still seed the target, but only as tokens it must refuse.
const FUZZ_KEY: &[u8; 32] = b"omni fuzz key: not a secret, 32B";
const FUZZ_NOW: u64 = 1_700_000_000;
const FUZZ_TTL: Duration = Duration::from_secs(3600);

/// One seed file: `fuzz/corpus/<target>/<name>`.
#[derive(Debug, PartialEq)]
struct Seed {
    target: &'static str,
    name: String,
    bytes: Vec<u8>,
}

/// Runs the task: writes every seed (no arguments) or, with `--check`, fails if the committed
/// seeds are not what would be written.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let result = match args.iter().map(|a| a.to_str()).collect::<Vec<_>>()[..] {
        [] => write(),
        [Some("--check")] => check_fresh(),
        _ => {
            eprintln!("xtask: usage: cargo xtask fuzz-seeds [--check]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("xtask: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Fails when the seed files differ from what `fuzz-seeds` writes.
pub fn check_fresh() -> Result<(), String> {
    let wanted = all()?;
    for target in super::TARGETS {
        let expected: BTreeMap<&str, &[u8]> = wanted
            .iter()
            .filter(|seed| seed.target == target)
            .map(|seed| (seed.name.as_str(), seed.bytes.as_slice()))
            .collect();
        let present = ours(target)?
            .into_iter()
            .map(|name| {
                let bytes = std::fs::read(dir(target).join(&name)).unwrap_or_default();
                (name, bytes)
            })
            .collect::<BTreeMap<String, Vec<u8>>>();
        let present: BTreeMap<&str, &[u8]> = present
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        if present != expected {
            return Err(format!(
                "the seeds in fuzz/corpus/{target}/ are stale: regenerate them with \
                 `cargo xtask fuzz-seeds` and commit the result"
            ));
        }
    }
    Ok(())
}

fn write() -> Result<(), String> {
    let seeds = all()?;
    for target in super::TARGETS {
        let dir = dir(target);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for name in ours(target)? {
            let path = dir.join(name);
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    for seed in &seeds {
        let path = dir(seed.target).join(&seed.name);
        std::fs::write(&path, &seed.bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!("xtask: wrote {} seeds under fuzz/corpus/", seeds.len());
    Ok(())
}

fn dir(target: &str) -> PathBuf {
    root().join("fuzz/corpus").join(target)
}

/// The names of the seed files this task wrote into `target`'s directory (none if it is
/// missing).
fn ours(target: &str) -> Result<Vec<String>, String> {
    let dir = dir(target);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(format!("{}: {err}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str()
            && (name.starts_with(DOC_PREFIX) || name.starts_with(TOKEN_PREFIX))
        {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Every seed, in a fixed order.
fn all() -> Result<Vec<Seed>, String> {
    let path = root().join("docs/PROTOCOL.md");
    let doc = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut seeds = Vec::new();
    let mut named = Names::default();
    for text in json_objects(&doc) {
        frame_seeds(&text, &mut named, &mut seeds);
    }
    for bytes in hex_frames(&doc) {
        packed_seeds(bytes, &mut named, &mut seeds);
    }
    token_seeds(&mut seeds);
    Ok(seeds)
}

/// Seed names made unique by a counter: `protocol-md-msg`, `protocol-md-msg-2`, …
#[derive(Default)]
struct Names(BTreeMap<(&'static str, String), usize>);

impl Names {
    fn next(&mut self, target: &'static str, base: String) -> String {
        let count = self.0.entry((target, base.clone())).or_insert(0);
        *count += 1;
        match *count {
            1 => base,
            n => format!("{base}-{n}"),
        }
    }
}

/// Adds a seed named `base` (with the document prefix, and a counter when the name is taken)
/// unless `target` already has one with these bytes.
fn push(
    seeds: &mut Vec<Seed>,
    named: &mut Names,
    target: &'static str,
    base: String,
    bytes: Vec<u8>,
) {
    let duplicate = seeds
        .iter()
        .any(|seed| seed.target == target && seed.bytes == bytes);
    if !duplicate {
        let name = named.next(target, format!("{DOC_PREFIX}{base}"));
        seeds.push(Seed {
            target,
            name,
            bytes,
        });
    }
}

/// `text` as a client and as a server frame in MessagePack, when that side decodes it: the
/// frame's map as the encoder writes it (payload keys in `Value`'s sorted order).
fn packed(text: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let client = ClientFrame::<Value>::decode(text)
        .ok()
        .and_then(|frame| frame.encode_msgpack().ok());
    let server = ServerFrame::<Value>::decode(text)
        .ok()
        .and_then(|frame| frame.encode_msgpack().ok());
    (client, server)
}

/// The seeds one JSON object of the document gives.
fn frame_seeds(text: &str, named: &mut Names, seeds: &mut Vec<Seed>) {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    // A frame in JSON, and in MessagePack where its side's decoder reads it.
    let mut both = |target, base: String, json: Vec<u8>, packed: Option<Vec<u8>>| {
        push(seeds, named, target, base.clone(), json);
        if let Some(packed) = packed {
            push(seeds, named, target, format!("msgpack-{base}"), packed);
        }
    };
    match object.get("type") {
        Some(kind) => {
            let kind = file_name_part(kind.as_str().unwrap_or("type"));
            let (client, server) = packed(text.as_bytes());
            let (decodes_up, decodes_down) = (client.is_some(), server.is_some());
            if decodes_up || !decodes_down {
                both(
                    "client_frame",
                    kind.clone(),
                    text.as_bytes().to_vec(),
                    client,
                );
            }
            if decodes_down || !decodes_up {
                both("server_frame", kind, text.as_bytes().to_vec(), server);
            }
        }
        None => {
            let name = format!(
                "payload-{}",
                file_name_part(
                    object
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or("other")
                )
            );
            let payload = Value::Object(object);
            let up = ClientFrame::Msg {
                payload: payload.clone(),
                reference: Some(1),
                id: None,
            };
            let down = ServerFrame::Msg {
                seq: 1,
                payload,
                reference: None,
                topic: None,
                id: None,
            };
            let encoded = "a JSON value encodes";
            both(
                "client_frame",
                name.clone(),
                up.encode().expect(encoded).into_bytes(),
                Some(up.encode_msgpack().expect(encoded)),
            );
            both(
                "server_frame",
                name,
                down.encode().expect(encoded).into_bytes(),
                Some(down.encode_msgpack().expect(encoded)),
            );
        }
    }
}

/// The seeds one MessagePack frame the document shows in hex gives: a seed of each side
/// that decodes it (of both when neither does), named after its type.
fn packed_seeds(bytes: Vec<u8>, named: &mut Names, seeds: &mut Vec<Seed>) {
    let client = ClientFrame::<Value>::decode_msgpack(&bytes).map(|f| f.kind());
    let server = ServerFrame::<Value>::decode_msgpack(&bytes).map(|f| f.kind());
    let kind = match (&client, &server) {
        (Ok(kind), _) | (_, Ok(kind)) => *kind,
        _ => "other",
    };
    if client.is_ok() || server.is_err() {
        let base = format!("msgpack-{kind}");
        push(seeds, named, "client_frame", base, bytes.clone());
    }
    if server.is_ok() || client.is_err() {
        push(
            seeds,
            named,
            "server_frame",
            format!("msgpack-{kind}"),
            bytes,
        );
    }
}

/// The MessagePack frames of a Markdown document: each run of lines of hex byte pairs in a
/// ```text block, as the bytes they spell.
fn hex_frames(doc: &str) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    // Inside a fenced block: whether it is a ```text one.
    let mut fence: Option<bool> = None;
    let mut frame = Vec::new();
    for line in doc.lines() {
        let bytes = hex_line(line);
        if fence == Some(true)
            && let Some(bytes) = bytes
        {
            frame.extend(bytes);
            continue;
        }
        if !frame.is_empty() {
            frames.push(std::mem::take(&mut frame));
        }
        if let Some(info) = line.trim_start().strip_prefix("```") {
            fence = match fence {
                None => Some(info.trim() == "text"),
                Some(_) => None,
            };
        }
    }
    frames
}

/// The bytes of a line made only of two-digit hex numbers separated by spaces.
fn hex_line(line: &str) -> Option<Vec<u8>> {
    let pairs: Vec<&str> = line.split_whitespace().collect();
    if pairs.is_empty() {
        return None;
    }
    pairs
        .into_iter()
        .map(|pair| {
            (pair.len() == 2)
                .then(|| u8::from_str_radix(pair, 16).ok())
                .flatten()
        })
        .collect()
}

/// `text` with anything but ASCII letters, digits, `-` and `_` left out.
fn file_name_part(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect()
}

/// The token target's seeds, in its input format: a mode byte, then for mode 0
/// `module \n token` and for an odd mode the edits to a token it signs itself.
fn token_seeds(seeds: &mut Vec<Seed>) {
    let keys = Keys::new(FUZZ_KEY).expect("the fuzzing key is 32 bytes");
    let other = Keys::new([0x5a; 32]).expect("32 bytes");
    let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
    let props = json!({"room": "lobby", "user": 7});
    let fresh = keys.sign_at("chat", &props, FUZZ_TTL, at(FUZZ_NOW));
    let as_given = |module: Option<&str>, token: &str| {
        let mut bytes = vec![0];
        if let Some(module) = module {
            bytes.extend_from_slice(module.as_bytes());
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(token.as_bytes());
        bytes
    };
    let expired = keys.sign_at(
        "chat",
        &props,
        FUZZ_TTL,
        at(FUZZ_NOW - 2 * FUZZ_TTL.as_secs()),
    );
    let endless = keys.sign_at(
        "counter",
        &Value::Null,
        Duration::MAX,
        SystemTime::UNIX_EPOCH,
    );
    let unicode = keys.sign_at("zoë", &json!(["é", {"k": null}]), FUZZ_TTL, at(FUZZ_NOW));
    let cases: [(&str, Vec<u8>); 11] = [
        ("valid", as_given(Some("chat"), &fresh)),
        ("valid-default-module", as_given(None, &fresh)),
        ("valid-endless", as_given(Some("counter"), &endless)),
        ("valid-unicode", as_given(Some("zoë"), &unicode)),
        ("wrong-module", as_given(Some("counter"), &fresh)),
        ("expired", as_given(Some("chat"), &expired)),
        (
            "other-key",
            as_given(
                Some("chat"),
                &other.sign_at("chat", &props, FUZZ_TTL, at(FUZZ_NOW)),
            ),
        ),
        // The edit modes: untouched; one bit flipped; a byte inserted, then the last ones cut.
        ("edit-none", vec![1]),
        // Pick 3: the first token again, presented to another module.
        ("edit-none-elsewhere", vec![7]),
        ("edit-flip", vec![1, 0, 9, 4]),
        ("edit-insert-truncate", vec![5, 1, 30, b'.', 3, 200]),
    ];
    for (name, bytes) in cases {
        seeds.push(Seed {
            target: "token",
            name: format!("{TOKEN_PREFIX}{name}"),
            bytes,
        });
    }
}

/// The text of every JSON object in a Markdown document, in document order: each line of a
/// ```json block, each indented code line, and each inline code span that parses as one.
fn json_objects(doc: &str) -> Vec<String> {
    let mut candidates = Vec::new();
    // Inside a fenced block: whether it is a ```json one.
    let mut fence: Option<bool> = None;
    for line in doc.lines() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            fence = match fence {
                None => Some(info.trim() == "json"),
                Some(_) => None,
            };
            continue;
        }
        match fence {
            Some(true) => candidates.push(line.trim()),
            Some(false) => {}
            None if line.starts_with("    ") => candidates.push(line.trim()),
            None => candidates.extend(code_spans(line)),
        }
    }
    candidates
        .into_iter()
        .filter(|text| matches!(serde_json::from_str(text), Ok(Value::Object(_))))
        .map(str::to_owned)
        .collect()
}

/// The inline code spans of one Markdown line: a run of backticks up to the next run of the
/// same length (so ``a `b` c`` is one span), trimmed.
fn code_spans(line: &str) -> Vec<&str> {
    let ticks_at = |text: &str| text.len() - text.trim_start_matches('`').len();
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find('`') {
        let ticks = ticks_at(&rest[open..]);
        let body = &rest[open + ticks..];
        let mut from = 0;
        let mut close = None;
        while let Some(found) = body[from..].find('`') {
            let at = from + found;
            let run = ticks_at(&body[at..]);
            if run == ticks {
                close = Some(at);
                break;
            }
            from = at + run;
        }
        let Some(close) = close else {
            // An unmatched run is literal text, and so is the rest of the line.
            break;
        };
        spans.push(body[..close].trim());
        rest = &body[close + ticks..];
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_pair_runs_of_equal_length() {
        assert_eq!(
            code_spans(r#"a `{"x":1}` b ``unknown `dance` `` c `d"#),
            vec![r#"{"x":1}"#, "unknown `dance`"]
        );
    }

    #[test]
    fn objects_come_from_json_blocks_indented_lines_and_spans_only() {
        let doc = "\
```rust
{\"in\":\"rust\"}
```
```json
{\"type\":\"ack\",\"ref\":7}
```
| `{\"kind\":\"A\"}` | `not json` |

    {\"type\":\"reset\",\"seq\":1}
";
        assert_eq!(
            json_objects(doc),
            vec![
                r#"{"type":"ack","ref":7}"#,
                r#"{"kind":"A"}"#,
                r#"{"type":"reset","seq":1}"#
            ]
        );
    }

    /// The token seeds only verify if they are signed as the target verifies.
    #[test]
    fn the_token_target_uses_the_seeds_key_and_clock() {
        let path = root().join("fuzz/fuzz_targets/token.rs");
        let source = std::fs::read_to_string(&path).unwrap();
        let key = std::str::from_utf8(FUZZ_KEY).unwrap();
        for needle in [
            format!("const KEY: &[u8; 32] = b\"{key}\";"),
            format!("const NOW: u64 = {};", group_thousands(FUZZ_NOW)),
            format!(
                "const TTL: Duration = Duration::from_secs({});",
                FUZZ_TTL.as_secs()
            ),
        ] {
            assert!(
                source.contains(&needle),
                "{} lacks `{needle}`",
                path.display()
            );
        }
    }

    /// `n` as rustfmt leaves a literal written with `_` between groups of three digits.
    fn group_thousands(n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push('_');
            }
            out.push(digit);
        }
        out
    }

    #[test]
    fn every_frame_type_of_the_document_seeds_its_side_in_both_codecs() {
        let seeds = all().unwrap();
        let names = |target| {
            seeds
                .iter()
                .filter(|seed| seed.target == target)
                .map(|seed| seed.name.as_str())
                .collect::<Vec<_>>()
        };
        let sides = [
            (
                "client_frame",
                &["hello", "msg", "join", "leave", "payload-Send"][..],
            ),
            (
                "server_frame",
                &[
                    "welcome",
                    "msg",
                    "push",
                    "ack",
                    "error",
                    "reset",
                    "presence_state",
                    "presence_diff",
                    "joined",
                    "left",
                    "payload-Send",
                ][..],
            ),
        ];
        for (target, kinds) in sides {
            for kind in kinds {
                for name in [
                    format!("{DOC_PREFIX}{kind}"),
                    format!("{DOC_PREFIX}msgpack-{kind}"),
                ] {
                    assert!(
                        names(target).contains(&name.as_str()),
                        "{target}: no {name}"
                    );
                }
            }
        }
    }

    /// A seed's frame as its target decodes it, written as JSON for comparison: `None` when
    /// the target's side does not decode it.
    fn frame_of(target: &str, bytes: &[u8], msgpack: bool) -> Option<String> {
        match (target, msgpack) {
            ("client_frame", false) => ClientFrame::<Value>::decode(bytes).ok()?.encode().ok(),
            ("client_frame", true) => ClientFrame::<Value>::decode_msgpack(bytes)
                .ok()?
                .encode()
                .ok(),
            ("server_frame", false) => ServerFrame::<Value>::decode(bytes).ok()?.encode().ok(),
            ("server_frame", true) => ServerFrame::<Value>::decode_msgpack(bytes)
                .ok()?
                .encode()
                .ok(),
            _ => None,
        }
    }

    /// Each frame a target's side decodes from a JSON seed is also a MessagePack seed of
    /// that target, and a MessagePack seed named after a frame type decodes on its side.
    #[test]
    fn every_decodable_json_seed_has_a_msgpack_twin() {
        let seeds = all().unwrap();
        let packed_prefix = format!("{DOC_PREFIX}msgpack-");
        for target in ["client_frame", "server_frame"] {
            let (packed, json): (Vec<&Seed>, Vec<&Seed>) = seeds
                .iter()
                .filter(|seed| seed.target == target)
                .partition(|seed| seed.name.starts_with(&packed_prefix));
            let twins: Vec<String> = packed
                .iter()
                .filter(|seed| !seed.name.starts_with(&format!("{packed_prefix}other")))
                .map(|seed| {
                    frame_of(target, &seed.bytes, true).unwrap_or_else(|| {
                        panic!("{target}/{} does not decode as MessagePack", seed.name)
                    })
                })
                .collect();
            let mut decodable = 0;
            for seed in json {
                if let Some(frame) = frame_of(target, &seed.bytes, false) {
                    decodable += 1;
                    assert!(
                        twins.contains(&frame),
                        "{target}/{}: no MessagePack seed of {frame}",
                        seed.name
                    );
                }
            }
            assert!(decodable > 0, "{target}: no JSON seed decodes");
        }
    }

    #[test]
    fn hex_frames_are_the_runs_of_hex_lines_in_text_blocks() {
        let doc = "\
```text
82 a4 74
79 70
```
bytes like `de ad` in prose are not a frame:

```text
not hex at all
c4 04
```
```rust
ab cd
```
";
        assert_eq!(
            hex_frames(doc),
            vec![vec![0x82, 0xa4, 0x74, 0x79, 0x70], vec![0xc4, 0x04]]
        );
    }

    /// The document's three hex examples seed the frame targets (the `ack` is also the twin
    /// of the JSON `ack` example, and kept once).
    #[test]
    fn the_documents_hex_frames_are_seeds() {
        let path = root().join("docs/PROTOCOL.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let frames = hex_frames(&doc);
        assert_eq!(frames.len(), 3, "{frames:02x?}");
        let seeds = all().unwrap();
        for frame in frames {
            assert!(
                seeds
                    .iter()
                    .any(|seed| seed.target.ends_with("_frame") && seed.bytes == frame),
                "no seed of {frame:02x?}"
            );
        }
    }
}
