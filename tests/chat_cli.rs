//! The chat demo and its terminal client as processes: `chat_cli --count N` confirms every
//! message although the chat server is killed and restarted (a new process on the same port)
//! while it runs, on every transport.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::demo::{chat_server, example, free_port, wait};

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
