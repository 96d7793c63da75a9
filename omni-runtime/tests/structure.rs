//! The shape the runtime keeps: the wire contract (`src/wire/`) is what a client and a server
//! share, so it knows nothing of either, nor of sockets: no axum, tokio, hyper, reqwest or
//! tungstenite, and no path into the server, the client or the pub/sub.

use std::path::Path;

const FORBIDDEN: [&str; 8] = [
    "axum",
    "tokio",
    "hyper",
    "reqwest",
    "tungstenite",
    "crate::server",
    "crate::client",
    "crate::pubsub",
];

#[test]
fn the_wire_contract_depends_on_neither_end_nor_on_sockets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/wire");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        read += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for name in FORBIDDEN {
                assert!(
                    !code.contains(name),
                    "{}:{}: the wire contract names `{name}`: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(read >= 8, "only {read} files in {}", dir.display());
}
