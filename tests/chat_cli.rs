//! The chat demo and its terminal client as processes: `chat_cli --count N` confirms every
//! message although the chat server is killed and restarted (a new process on the same port)
//! while it runs, on every transport.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `target/<profile>/examples/<name>`, built by `cargo test` (and so by `cargo xtask test`).
fn example(name: &str) -> PathBuf {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the chat server on `port` and waits until it listens.
fn chat_server(port: u16) -> Child {
    let mut child = Command::new(example("chat"))
        .args(["--port", &port.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("chat listening"), "{line}");
    child
}

/// Lines of a child's output, as they come.
fn lines(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn run(transport: &str) {
    let port = free_port();
    let mut server = chat_server(port);
    let count = 2000;
    let mut cli = Command::new(example("chat_cli"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}/omni"),
            "--author",
            "cli",
            "--transport",
            transport,
            "--count",
            &count.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines(cli.stdout.take().unwrap());
    let stderr = lines(cli.stderr.take().unwrap());

    // As soon as the client is connected, and its messages are on their way, the server dies.
    let connected = stderr
        .recv_timeout(Duration::from_secs(30))
        .expect("the client reports its transport");
    let connected = if connected.contains("connected (session") {
        connected
    } else {
        stderr.recv_timeout(Duration::from_secs(30)).unwrap()
    };
    assert!(
        connected.contains("connected (session"),
        "{transport}: {connected}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut server = chat_server(port);

    let status = wait(&mut cli, Duration::from_secs(90));
    let out: Vec<String> = stdout.try_iter().collect();
    let err: Vec<String> = stderr.try_iter().collect();
    server.kill().unwrap();
    let _ = server.wait();
    assert!(status.success(), "{transport}: {status:?}\n{err:#?}");
    assert_eq!(
        out.last().map(String::as_str),
        Some(format!("{count} confirmed").as_str()),
        "{transport}"
    );
    assert!(
        err.iter().any(|l| l.contains("starting over")),
        "{transport}: the client never saw its session lost: {err:#?}"
    );
}

fn wait(child: &mut Child, patience: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chat_cli did not finish within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn chat_cli_confirms_every_message_across_a_server_restart_over_ws() {
    run("ws");
}

#[test]
fn chat_cli_confirms_every_message_across_a_server_restart_over_http() {
    run("http");
}

#[test]
fn chat_cli_confirms_every_message_across_a_server_restart_over_sse() {
    run("sse");
}
