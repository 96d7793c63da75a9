//! The chat demo and its terminal client as processes, on every transport: `chat_cli --count
//! N` confirms every message although the chat server is killed and restarted (a new process
//! on the same port) while it runs; two people chatting see each stored message once, the
//! history oldest first.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
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
    // The process has exited: its pipes end, and the readers hand over every last line (what
    // is merely queued at this instant could still miss the tail).
    let out: Vec<String> = stdout.iter().collect();
    let err: Vec<String> = stderr.iter().collect();
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

/// A `chat_cli` typed into, whose chat lines (`author: text`) are read as they come.
struct Person {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    /// Every chat line so far.
    seen: Vec<String>,
}

impl Person {
    fn join(port: u16, author: &str, transport: &str) -> Self {
        let mut child = Command::new(example("chat_cli"))
            .args([
                "--url",
                &format!("http://127.0.0.1:{port}/omni"),
                "--author",
                author,
                "--transport",
                transport,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            stdin: child.stdin.take(),
            stdout: lines(child.stdout.take().unwrap()),
            child,
            seen: Vec::new(),
        }
    }

    fn say(&mut self, text: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{text}").unwrap();
    }

    /// Reads chat lines until `line` has been printed.
    fn sees(&mut self, line: &str) {
        while !self.seen.iter().any(|l| l == line) {
            let next = self
                .stdout
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("`{line}` never printed; saw {:#?}", self.seen));
            // Presence lines (`-- 2 online`) are not chat.
            if !next.starts_with("-- ") {
                self.seen.push(next);
            }
        }
    }

    /// Ends its input; it leaves once the server has stored what it typed. Returns every chat
    /// line it printed.
    fn leave(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let status = wait(&mut self.child, Duration::from_secs(30));
        assert!(status.success(), "{status:?}");
        // Every line up to the end of its output, not just those already read.
        self.seen
            .extend(self.stdout.iter().filter(|line| !line.starts_with("-- ")));
        self.seen
    }
}

fn each_message_prints_once(transport: &str) {
    let port = free_port();
    let mut server = chat_server(port);

    let mut ada = Person::join(port, "ada", transport);
    for text in ["one", "two", "three"] {
        ada.say(text);
        ada.sees(&format!("ada: {text}"));
        // The server stamps each message in milliseconds: keep the three apart, so that
        // their order is the order they were sent.
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its reply and the room both brought `one` before `three` was even typed.
    assert_eq!(
        ada.seen,
        ["ada: one", "ada: two", "ada: three"],
        "{transport}"
    );

    // A newcomer gets the history, oldest first, then both talk.
    let mut bob = Person::join(port, "bob", transport);
    bob.sees("ada: three");
    assert_eq!(
        bob.seen,
        ["ada: one", "ada: two", "ada: three"],
        "{transport}"
    );
    bob.say("four");
    bob.sees("bob: four");
    ada.sees("bob: four");
    ada.say("five");
    ada.sees("ada: five");
    bob.sees("ada: five");

    let everything = [
        "ada: one",
        "ada: two",
        "ada: three",
        "bob: four",
        "ada: five",
    ];
    assert_eq!(ada.leave(), everything, "{transport}");
    assert_eq!(bob.leave(), everything, "{transport}");
    server.kill().unwrap();
    let _ = server.wait();
}

#[test]
fn chat_cli_prints_each_message_once_over_ws() {
    each_message_prints_once("ws");
}

#[test]
fn chat_cli_prints_each_message_once_over_http() {
    each_message_prints_once("http");
}

#[test]
fn chat_cli_prints_each_message_once_over_sse() {
    each_message_prints_once("sse");
}
