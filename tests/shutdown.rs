//! Graceful shutdown of the chat demo as a process: SIGTERM (what systemd, docker and
//! Kubernetes send) and SIGINT give every connected client its close frame, 1001, before
//! the process exits.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::demo::{chat_server, free_port, wait};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// Mux sockets and chat WebSockets held open when the signal comes.
const MUX_SOCKETS: usize = 1000;
const CHAT_SOCKETS: usize = 100;

/// Connects to `url`, makes sure the server serves the socket (an answer to `probe`), then
/// reads everything until the server's close frame: returns its code, or `None` when the
/// connection ended without one.
async fn hold(url: String, probe: Option<&'static str>, ready: Arc<Semaphore>) -> Option<u16> {
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connects");
    if let Some(probe) = probe {
        socket.send(Message::Text(probe.into())).await.unwrap();
    }
    // The first frame (a `welcome`, or the probe's error) says the socket is served.
    match socket.next().await {
        Some(Ok(Message::Text(_))) => ready.add_permits(1),
        other => panic!("no first frame: {other:?}"),
    }
    loop {
        match socket.next().await {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

fn run(signal: &str) {
    let port = free_port();
    let mut server = chat_server(port);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let codes = runtime.block_on(async {
        let ready = Arc::new(Semaphore::new(0));
        let mut held = Vec::new();
        // A join for a module that does not exist: answered with an error, joins nothing.
        let probe = r#"{"type":"join","id":"x","module":"none","token":""}"#;
        for i in 0..MUX_SOCKETS + CHAT_SOCKETS {
            let (url, probe) = if i < MUX_SOCKETS {
                (format!("ws://127.0.0.1:{port}/omni/mux"), Some(probe))
            } else {
                (format!("ws://127.0.0.1:{port}/omni/ws"), None)
            };
            held.push(tokio::spawn(hold(url, probe, ready.clone())));
            if i % 50 == 49 {
                // Not faster than the listener's backlog takes them.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let all = (MUX_SOCKETS + CHAT_SOCKETS) as u32;
        tokio::time::timeout(Duration::from_secs(60), ready.acquire_many(all))
            .await
            .expect("every socket is served within a minute")
            .unwrap()
            .forget();

        let status = Command::new("kill")
            .args([signal, &server.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());

        let mut codes = Vec::new();
        for socket in held {
            let code = tokio::time::timeout(Duration::from_secs(30), socket)
                .await
                .expect("every socket ends within 30 s of the signal")
                .unwrap();
            codes.push(code);
        }
        codes
    });
    let exited = wait(&mut server, Duration::from_secs(30));
    assert!(exited.success(), "the demo exits cleanly: {exited:?}");
    let without = codes.iter().filter(|c| **c != Some(1001)).count();
    assert_eq!(
        without,
        0,
        "{without} of {} sockets did not get 1001: {:?}",
        codes.len(),
        codes
            .iter()
            .filter(|c| **c != Some(1001))
            .take(5)
            .collect::<Vec<_>>()
    );
}

#[test]
fn sigterm_closes_every_socket_with_1001_before_the_demo_exits() {
    run("-TERM");
}

#[test]
fn sigint_closes_every_socket_with_1001_before_the_demo_exits() {
    run("-INT");
}
