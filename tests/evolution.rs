//! Protocol evolution through a rolling deploy, with each build of the `evo` protocol its own
//! binary (`examples/evolution_v1`, `_v2`, `_v3`, see `examples/evolution/`): build 2 adds a
//! `#[server]` variant, a `#[client]` variant and an optional field in a nested struct, and
//! talks with build 1 both ways, on every transport and in both codecs; build 3 removes a
//! `#[client]` variant, which the check test names and build 3's server gives as its reason
//! for refusing build 1's clients. Two servers of builds 1 and 2 on one redis-server serve one
//! room to clients of both.

#![allow(dead_code)]

mod common;

#[path = "../examples/evolution/node.rs"]
mod node;

#[path = "../examples/evolution/v3.rs"]
mod v3;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::demo::example;
use serde_json::Value;

/// A server of build `version`, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server(version: u8, redis: Option<&str>) -> Server {
    let mut command = Command::new(example(&format!("evolution_v{version}")));
    command.arg("server");
    if let Some(url) = redis {
        command.args(["--redis", url]);
    }
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("build {version}'s server said {line:?}"));
    Server {
        child,
        url: format!("http://{addr}/omni"),
    }
}

/// Runs build `version`'s client against `url` and returns its report.
fn client(version: u8, url: &str, transport: &str, codec: &str, expect: usize) -> Value {
    let child = client_process(version, url, transport, codec, expect, None);
    report(version, child)
}

fn client_process(
    version: u8,
    url: &str,
    transport: &str,
    codec: &str,
    expect: usize,
    barrier: Option<&std::path::Path>,
) -> Child {
    let mut command = Command::new(example(&format!("evolution_v{version}")));
    command
        .args(["client", "--url", url, "--transport", transport])
        .args(["--codec", codec, "--expect", &expect.to_string()]);
    if let Some(dir) = barrier {
        command.arg("--barrier").arg(dir);
    }
    command.stdout(Stdio::piped()).spawn().unwrap()
}

fn report(version: u8, child: Child) -> Value {
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("build {version}'s client printed {text:?}: {e}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

const TRANSPORTS: [(&str, &str); 5] = [
    ("ws", "json"),
    ("ws", "msgpack"),
    ("http", "json"),
    ("sse", "json"),
    ("mux", "json"),
];

#[test]
fn an_old_client_and_a_new_server_exchange_every_shared_message() {
    let v2 = server(2, None);
    for (transport, codec) in TRANSPORTS.into_iter().chain([("mux", "msgpack")]) {
        let what = format!("build 1 client on build 2's server, {transport} {codec}");
        // Its note (from the room), the cheer build 2 sends after a note (which build 1 does
        // not know), and the pong.
        let report = client(1, &v2.url, transport, codec, 3);
        assert_eq!(
            strings(&report["outcomes"]),
            ["ok", "ok"],
            "{what}: {report}"
        );
        assert_eq!(
            strings(&report["received"]),
            ["?Cheered", "Pong", "Posted"],
            "{what}: {report}"
        );
        assert_eq!(report["unknown"], 1, "{what}: counted");
        assert_eq!(
            report["states"],
            Value::Array(vec![]),
            "{what}: no disconnect"
        );
    }
}

#[test]
fn a_new_client_and_an_old_server_exchange_every_shared_message() {
    let v1 = server(1, None);
    for (transport, codec) in TRANSPORTS.into_iter().chain([("mux", "msgpack")]) {
        let what = format!("build 2 client on build 1's server, {transport} {codec}");
        let report = client(2, &v1.url, transport, codec, 2);
        // The note and the ping go through; the cheer, a message build 1 does not know, is
        // answered `unknown_message`, and the connection goes on.
        assert_eq!(
            strings(&report["outcomes"]),
            ["ok", "unknown_message", "ok"],
            "{what}: {report}"
        );
        assert_eq!(
            strings(&report["received"]),
            ["Pong", "Posted"],
            "{what}: {report}"
        );
        assert_eq!(
            report["states"],
            Value::Array(vec![]),
            "{what}: no disconnect"
        );
    }
}

#[test]
fn a_server_refuses_a_build_it_broke_with_naming_the_change() {
    let v3 = server(3, None);
    for (transport, codec) in TRANSPORTS {
        let report = client(1, &v3.url, transport, codec, 1);
        let states = strings(&report["states"]);
        assert!(
            states
                .iter()
                .any(|s| s.starts_with("Incompatible") && s.contains("Ping")),
            "{transport} {codec}: {report}"
        );
    }
}

#[test]
fn the_check_names_the_variant_a_build_removed() {
    // Build 3's schema against the versions build 2 keeps (1 and 2).
    let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/evolution/kept/v2");
    let current = <v3::Evo as omni::Protocol>::schema();
    let err = omni::schema::check_schema(&current, &kept, false).unwrap_err();
    let said = err.to_string();
    assert!(said.contains("removed #[client] variant Ping"), "{said}");
}

#[test]
#[ignore = "needs a redis-server: run `cargo xtask test`"]
fn servers_of_two_builds_on_one_redis_serve_one_room_to_both() {
    let redis = std::env::var("OMNI_REDIS_URL").expect("OMNI_REDIS_URL names a redis-server");
    let v1 = server(1, Some(&redis));
    let v2 = server(2, Some(&redis));
    // Both clients are in the room before either speaks: then each note reaches both,
    // whichever server each client is on.
    let barrier = std::env::temp_dir().join(format!("omni-evolution-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&barrier);
    std::fs::create_dir_all(&barrier).unwrap();
    let old = client_process(1, &v1.url, "ws", "json", 3, Some(&barrier));
    let new = client_process(2, &v2.url, "ws", "json", 5, Some(&barrier));
    let ready = std::time::Instant::now();
    while std::fs::read_dir(&barrier).unwrap().count() < 2 {
        assert!(ready.elapsed().as_secs() < 20, "both clients connect");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::write(barrier.join("go"), "").unwrap();
    let (old, new) = (report(1, old), report(2, new));
    std::fs::remove_dir_all(&barrier).unwrap();
    let old_heard = strings(&old["received"]);
    let new_heard = strings(&new["received"]);
    // Build 1's client: both notes and its pong (build 1's server sends no cheer).
    assert_eq!(old_heard, ["Pong", "Posted", "Posted"], "{old}");
    // Build 2's client: both notes, its pong, and two cheers (one answering its note, one
    // its cheer).
    assert_eq!(
        new_heard,
        ["Cheered", "Cheered", "Pong", "Posted", "Posted"],
        "{new}"
    );
    assert_eq!(strings(&new["outcomes"]), ["ok", "ok", "ok"], "{new}");
}
