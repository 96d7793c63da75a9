//! The chat demo behind a reverse proxy: which `Host` and `Origin` it answers, what a refused
//! one is told, and its command line. The demo runs as its own process, reached over real
//! sockets through a TCP proxy on another loopback port, which forwards whatever `Host` the
//! client wrote, as a reverse proxy forwards the public name (or its own).

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};

use common::PATIENCE;
use common::demo::{chat_server_with, example, free_port};
use common::proxy::Proxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The demo process, killed when the test ends, passed or not.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo on a free port, with `args`, and a proxy in front of it.
async fn demo_behind_proxy(args: &[&str]) -> (Demo, Proxy) {
    let port = free_port();
    let demo = Demo(chat_server_with(port, args));
    let proxy = Proxy::start(([127, 0, 0, 1], port).into()).await;
    (demo, proxy)
}

/// An answer's status line, head and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` and reads the answer's head, then its body when it has a length (a
/// refusal has one; an event stream or an upgraded socket does not, and stays open).
async fn ask(addr: SocketAddr, request: &str) -> Answer {
    let read = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed before a whole head");
            bytes.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let length = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().unwrap())
        });
        let mut body = bytes[end..].to_vec();
        while body.len() < length.unwrap_or(0) {
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed inside the body: {head}");
            body.extend_from_slice(&chunk[..n]);
        }
        let status = head[9..12].parse().unwrap();
        Answer {
            status,
            head,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .unwrap_or_else(|_| panic!("no answer within {PATIENCE:?} to {request}"))
}

/// The demo's event stream, as a page on `origin` opens it under `host`.
fn sse(host: &str, origin: &str) -> String {
    format!(
        "GET /omni/sse HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nAccept: text/event-stream\r\n\r\n"
    )
}

/// The demo's mux socket, as a page on `origin` opens it under `host`.
fn mux(host: &str, origin: &str) -> String {
    format!(
        "GET /omni/mux HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

#[tokio::test]
async fn behind_a_proxy_the_demo_answers_loopback_names_and_refuses_others_saying_how_to_allow_them()
 {
    let (_demo, proxy) = demo_behind_proxy(&[]).await;
    // A proxy on this machine forwarding under its own name and port: the loopback name.
    let own = format!("127.0.0.1:{}", proxy.addr.port());
    let page = format!("http://{own}");
    let answer = ask(proxy.addr, &sse(&own, &page)).await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    let answer = ask(
        proxy.addr,
        &mux(
            &format!("localhost:{}", proxy.addr.port()),
            &format!("http://localhost:{}", proxy.addr.port()),
        ),
    )
    .await;
    assert_eq!(answer.status, 101, "{}", answer.head);

    // A proxy forwarding the public name, without the flag: refused, and told the flag.
    for request in [
        sse("chat.test", "http://chat.test"),
        mux("chat.test", "http://chat.test"),
    ] {
        let answer = ask(proxy.addr, &request).await;
        assert_eq!(answer.status, 403, "{}", answer.head);
        assert!(
            answer.body.contains("Host `chat.test`")
                && answer.body.contains("--allow-host chat.test"),
            "{}",
            answer.body
        );
    }
    // A TLS terminator forwarding under the loopback name a page served on the public name:
    // the Origin is refused, and the body says so.
    for request in [
        sse(&own, "https://chat.test"),
        mux(&own, "https://chat.test"),
    ] {
        let answer = ask(proxy.addr, &request).await;
        assert_eq!(answer.status, 403, "{}", answer.head);
        assert!(
            answer.body.contains("Origin `https://chat.test`")
                && answer.body.contains("--allow-host chat.test"),
            "{}",
            answer.body
        );
    }
}

#[tokio::test]
async fn behind_a_proxy_the_demo_serves_the_names_it_is_allowed() {
    let (_demo, proxy) = demo_behind_proxy(&["--allow-host", "chat.test"]).await;
    let own = format!("127.0.0.1:{}", proxy.addr.port());
    for (host, origin) in [
        // The proxy forwards the public name.
        ("chat.test", "http://chat.test"),
        ("chat.test", "https://chat.test"),
        // The proxy terminates TLS and forwards under its own loopback name.
        (own.as_str(), "https://chat.test"),
    ] {
        let answer = ask(proxy.addr, &sse(host, origin)).await;
        assert_eq!(answer.status, 200, "{host} {origin}: {}", answer.head);
        let answer = ask(proxy.addr, &mux(host, origin)).await;
        assert_eq!(answer.status, 101, "{host} {origin}: {}", answer.head);
    }
    // Another name is still refused: the flag adds a name, it does not open the door.
    let answer = ask(proxy.addr, &sse("evil.test", "http://evil.test")).await;
    assert_eq!(answer.status, 403, "{}", answer.head);
    let answer = ask(proxy.addr, &mux(&own, "http://evil.test")).await;
    assert_eq!(answer.status, 403, "{}", answer.head);
}

#[tokio::test]
async fn the_demo_reads_allowed_names_from_its_environment_too() {
    let port = free_port();
    let mut child = Command::new(example("chat"))
        .args(["--port", &port.to_string(), "--allow-host", "chat.test"])
        .env("OMNI_ALLOW_HOSTS", "lan.test:8080, other.test")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let demo = Demo(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert!(line.starts_with("chat listening"), "{line}");
    let proxy = Proxy::start(([127, 0, 0, 1], port).into()).await;
    for name in ["lan.test:8080", "other.test", "chat.test"] {
        let answer = ask(proxy.addr, &sse(name, &format!("http://{name}"))).await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.head);
    }
    let answer = ask(proxy.addr, &sse("lan.test", "http://lan.test")).await;
    assert_eq!(answer.status, 403, "a name is allowed on its port only");
    drop(demo);
}

/// Runs the demo with `args` to its end (it ends at once on these), with no environment of
/// the test's own that would change its options.
fn run_demo(args: &[&str]) -> Output {
    let mut child = Command::new(example("chat"))
        .args(args)
        .env_remove("PORT")
        .env_remove("OMNI_ALLOW_HOSTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::demo::wait(&mut child, PATIENCE);
    child.wait_with_output().unwrap()
}

#[test]
fn the_demo_prints_its_usage_and_refuses_bad_arguments_in_a_sentence() {
    for help in ["--help", "-h"] {
        let out = run_demo(&[help]);
        let usage = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{help}: {out:?}");
        assert!(usage.starts_with("usage: chat"), "{usage}");
        for option in [
            "--port",
            "--allow-host",
            "OMNI_ALLOW_HOSTS",
            "--grace",
            "--tls-cert",
        ] {
            assert!(usage.contains(option), "the usage omits {option}: {usage}");
        }
    }
    for (args, says) in [
        (&["--bogus"][..], "unknown argument `--bogus`"),
        (&["--port", "nope"], "`nope` is not a port"),
        (&["--port"], "--port needs a value"),
        (
            &["--allow-host", "https://chat.test"],
            "not `https://chat.test`",
        ),
        (
            &["--tls-cert", "cert.pem"],
            "--tls-cert and --tls-key go together",
        ),
    ] {
        let out = run_demo(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one sentence, not {err}");
        assert!(
            err.contains(says) && !err.contains("Custom {"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: it did not start");
    }
}
