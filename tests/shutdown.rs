//! Graceful shutdown of a server process: SIGTERM (what systemd, docker and Kubernetes send)
//! and SIGINT give every connected client its close frame, 1001, and end every session
//! (each mux component, each plain socket) with its `disconnected` hook exactly once, before
//! the process exits.
//!
//! The server is this test binary run again as a child process (the ignored test
//! [`shutdown_server_process`]), so that a signal reaches it alone; it reports the hooks that
//! ran on its stdout once it has shut down, where the parent checks them.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::demo::wait;
use futures_util::{SinkExt, StreamExt};
use omni::server::{Endpoint, Mux, Server, Shutdown, bind};
use omni::token::Keys;
use omni::{ClientFrame, Context, HandlerResult, ServerFrame};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// Mux sockets and plain WebSockets held open when the signal comes.
const MUX_SOCKETS: usize = 1000;
const PLAIN_SOCKETS: usize = 100;
/// The mux modules each mux socket joins a component of.
const MODULES: [&str; 2] = ["left", "right"];

const KEY: &[u8] = b"the shutdown tests' key, thirty-two bytes or more";
/// Set (to anything) in the child process that serves.
const SERVER_VAR: &str = "OMNI_SHUTDOWN_TEST_SERVER";
/// The child's stdout line that gives its address.
const LISTENING: &str = "shutdown server listening on ";
/// The child's stdout line per session, after shutdown: `hooks SESSION CONNECTED DISCONNECTED`.
const HOOKS: &str = "hooks ";

/// A protocol with nothing to say: the hooks are what this test watches.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Idle {
    #[client]
    Poke,
    #[server]
    Poked,
}

/// How many times each session's `connected` and `disconnected` hooks ran.
type Hooks = Arc<Mutex<HashMap<String, (u32, u32)>>>;

struct Idler(Hooks);

impl IdleHandler for Idler {
    async fn poke(&mut self, cx: &mut Context<Idle>) -> HandlerResult {
        cx.send(IdleFromServer::Poked);
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Idle>) -> HandlerResult {
        let session = cx.session().to_string();
        self.0.lock().unwrap().entry(session).or_default().0 += 1;
        Ok(())
    }

    async fn disconnected(&mut self, cx: &mut Context<Idle>) -> HandlerResult {
        let session = cx.session().to_string();
        self.0.lock().unwrap().entry(session).or_default().1 += 1;
        Ok(())
    }
}

/// The server of the child process: `/omni/ws` and the mux modules `left` and `right` on
/// `/omni/mux`, shut down on SIGINT or SIGTERM as an application does. Once it has shut down
/// it prints every session's hook counts, as they are when `serve` returns: an application
/// exits then.
#[test]
#[ignore = "the server process of the shutdown tests, which start it themselves"]
fn shutdown_server_process() {
    if std::env::var_os(SERVER_VAR).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hooks = Hooks::default();
    runtime.block_on(async {
        let endpoint = |hooks: &Hooks| {
            let hooks = hooks.clone();
            Endpoint::<Idle, _>::new(move || Idler(hooks.clone()))
        };
        let plain = endpoint(&hooks);
        let (left, right) = (endpoint(&hooks), endpoint(&hooks));
        let mux = Mux::builder(Keys::new(KEY).unwrap())
            .module(MODULES[0], &left)
            .module(MODULES[1], &right)
            .build();
        let router = omni::axum::Router::new().nest("/omni", plain.router().merge(mux.router()));
        let shutdown = Shutdown::new()
            .endpoint(&plain)
            .endpoint(&left)
            .endpoint(&right)
            .mux(&mux)
            .drain(Duration::from_secs(5));
        // A long queue of connections not yet accepted: the parent opens 1,100 at once.
        let listener = bind(([127, 0, 0, 1], 0), 8192).unwrap();
        println!("{LISTENING}{}", listener.local_addr().unwrap());
        Server::new()
            .shutdown(shutdown)
            .serve(listener, router)
            .await
            .unwrap();
    });
    for (session, (connected, disconnected)) in hooks.lock().unwrap().iter() {
        println!("{HOOKS}{session} {connected} {disconnected}");
    }
}

/// Starts [`shutdown_server_process`] as a child process; returns it, its port, and a thread
/// that collects the rest of its stdout until it exits.
fn server() -> (Child, u16, std::thread::JoinHandle<Vec<String>>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "shutdown_server_process",
            "--ignored",
            "--nocapture",
        ])
        .env(SERVER_VAR, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("the server process prints its address")
            .unwrap();
        if let Some(addr) = line.strip_prefix(LISTENING) {
            break addr.parse::<std::net::SocketAddr>().unwrap().port();
        }
    };
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    (child, port, rest)
}

/// What one socket saw.
struct Held {
    /// The sessions it was welcomed to: one per component on a mux socket.
    sessions: Vec<String>,
    /// The close frame's code, or `None` when the connection ended without one.
    code: Option<u16>,
}

/// The next text frame on `socket`, decoded.
async fn next_frame(socket: &mut common::Socket) -> ServerFrame<serde_json::Value> {
    match socket.next().await {
        Some(Ok(Message::Text(text))) => ServerFrame::decode(text.as_bytes())
            .unwrap_or_else(|e| panic!("undecodable frame {text}: {e}")),
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// Connects to `url`, joins `modules` (a mux socket) or reads its `welcome` (a plain one),
/// then reads everything until the server's close frame.
async fn hold(url: String, modules: &[&str], ready: Arc<Semaphore>) -> Held {
    let keys = Keys::new(KEY).unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connects");
    let mut sessions = Vec::new();
    if modules.is_empty() {
        match next_frame(&mut socket).await {
            ServerFrame::Welcome { session, .. } => sessions.push(session.to_string()),
            other => panic!("expected a welcome, got {other:?}"),
        }
    }
    for (i, module) in modules.iter().enumerate() {
        let id = format!("c{i}");
        let token = keys.sign(module, &serde_json::Value::Null, Duration::from_secs(600));
        let join = ClientFrame::<()>::Join {
            id: id.clone(),
            module: (*module).into(),
            token,
            session: None,
            after: None,
            version: None,
            compatible: None,
            topics: None,
            traceparent: None,
            presence: None,
            client: None,
        };
        socket
            .send(Message::Text(join.encode().unwrap().into()))
            .await
            .unwrap();
        match next_frame(&mut socket).await {
            ServerFrame::Joined { id: joined } => assert_eq!(joined, id),
            other => panic!("expected `joined` for {id}, got {other:?}"),
        }
        match next_frame(&mut socket).await {
            ServerFrame::Welcome {
                session,
                id: Some(welcomed),
                ..
            } if welcomed == id => sessions.push(session.to_string()),
            other => panic!("expected the welcome of {id}, got {other:?}"),
        }
    }
    ready.add_permits(1);
    let code = loop {
        match socket.next().await {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    Held { sessions, code }
}

fn run(signal: &str) {
    let (mut server, port, output) = server();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let held = runtime.block_on(async {
        let ready = Arc::new(Semaphore::new(0));
        let mut held = Vec::new();
        for i in 0..MUX_SOCKETS + PLAIN_SOCKETS {
            let (url, modules): (_, &[&str]) = if i < MUX_SOCKETS {
                (format!("ws://127.0.0.1:{port}/omni/mux"), &MODULES)
            } else {
                (format!("ws://127.0.0.1:{port}/omni/ws"), &[])
            };
            held.push(tokio::spawn(hold(url, modules, ready.clone())));
            if i % 50 == 49 {
                // Not faster than the listener's backlog takes them.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let all = (MUX_SOCKETS + PLAIN_SOCKETS) as u32;
        tokio::time::timeout(Duration::from_secs(60), ready.acquire_many(all))
            .await
            .expect("every socket is served, and every component joined, within a minute")
            .unwrap()
            .forget();

        let status = Command::new("kill")
            .args([signal, &server.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());

        let mut all = Vec::new();
        for socket in held {
            let socket = tokio::time::timeout(Duration::from_secs(30), socket)
                .await
                .expect("every socket ends within 30 s of the signal")
                .unwrap();
            all.push(socket);
        }
        all
    });
    let exited = wait(&mut server, Duration::from_secs(30));
    assert!(exited.success(), "the server exits cleanly: {exited:?}");

    let codes: Vec<Option<u16>> = held.iter().map(|h| h.code).collect();
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

    // Every session a client was welcomed to, mux components first, and the hooks the
    // server saw run for it.
    let welcomed: Vec<&String> = held.iter().flat_map(|h| &h.sessions).collect();
    let components = MUX_SOCKETS * MODULES.len();
    assert_eq!(welcomed.len(), components + PLAIN_SOCKETS);
    let reported: BTreeMap<String, (u32, u32)> = output
        .join()
        .unwrap()
        .iter()
        .filter_map(|line| {
            let mut parts = line.strip_prefix(HOOKS)?.split(' ');
            let session = parts.next()?.to_owned();
            let connected = parts.next()?.parse().ok()?;
            let disconnected = parts.next()?.parse().ok()?;
            Some((session, (connected, disconnected)))
        })
        .collect();
    let wrong: Vec<_> = welcomed
        .iter()
        .enumerate()
        .map(|(i, s)| (i < components, *s, reported.get(*s).copied()))
        .filter(|(_, _, hooks)| *hooks != Some((1, 1)))
        .collect();
    let wrong_components = wrong.iter().filter(|w| w.0).count();
    assert!(
        wrong.is_empty(),
        "{} of {} sessions ({wrong_components} of {components} mux components, {} of \
         {PLAIN_SOCKETS} plain sockets) did not run `connected` and `disconnected` once each \
         by the time the server returned (component?, session, (connected, disconnected)): \
         {:?}",
        wrong.len(),
        welcomed.len(),
        wrong.len() - wrong_components,
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(
        reported.len(),
        welcomed.len(),
        "the server had sessions no client was welcomed to"
    );
}

#[test]
fn sigterm_closes_every_socket_with_1001_and_ends_every_session_before_exit() {
    run("-TERM");
}

#[test]
fn sigint_closes_every_socket_with_1001_and_ends_every_session_before_exit() {
    run("-INT");
}
