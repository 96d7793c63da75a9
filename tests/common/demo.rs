//! The chat demo as a process: started on a free port, waited for, killed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `target/<profile>/examples/<name>`, built by `cargo test` (and so by `cargo xtask test`).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples first (`cargo build --examples`; `cargo test` and `cargo xtask test` do)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the chat server on `port` and waits until it listens.
pub fn chat_server(port: u16) -> Child {
    chat_server_with(port, &[])
}

/// Starts the chat server on `port` with more arguments, and waits until it listens.
pub fn chat_server_with(port: u16, args: &[&str]) -> Child {
    let mut child = Command::new(example("chat"))
        .args(["--port", &port.to_string()])
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("DEMO_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("chat listening"), "{line}");
    if std::env::var_os("DEMO_LOG").is_some() {
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                eprintln!("demo {port}: {line}");
            }
        });
    }
    child
}

/// Waits for `child` to exit, killing it (and failing) after `patience`.
pub fn wait(child: &mut Child, patience: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{child:?} did not finish within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
