//! What a server facing the internet must not allow: requests that stall, bodies announced
//! too large, names it is not reached under; and what its pages must say about themselves.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::demo::{chat_server, free_port};
use omni::server::{BROWSER_CLIENT, Endpoint, Hosts, Limits, Server};
use omni::{Context, HandlerResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Guard {
    #[client]
    Ping,
    #[server]
    Pong,
}

struct Guarded;

impl GuardHandler for Guarded {
    async fn ping(&mut self, cx: &mut Context<Guard>) -> HandlerResult {
        cx.send(GuardFromServer::Pong);
        Ok(())
    }
}

/// The endpoint served by [`Server`] with a short header timeout.
async fn start(limits: Limits, hosts: Hosts) -> SocketAddr {
    let endpoint = Endpoint::<Guard, _>::builder(|| Guarded)
        .limits(limits)
        .hosts(hosts)
        .build();
    let router = omni::axum::Router::new().nest("/omni", endpoint.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new().header_read_timeout(Duration::from_millis(300));
    tokio::spawn(server.serve(listener, router));
    addr
}

/// Writes `request`, then reads until the server closes; returns what it sent and when it
/// closed, or panics after `patience`.
async fn exchange(addr: SocketAddr, request: &[u8], patience: Duration) -> (String, Duration) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(patience, tcp.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {patience:?}"
    );
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_request_that_stalls_in_its_headers_is_cut_off() {
    let addr = start(Limits::default(), Hosts::Any).await;
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /omni/omni.js HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        stalled.push(tcp);
    }
    // Every one of them is closed by the server within the timeout and some slack.
    for mut tcp in stalled {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a stalled request is still open after 5 s");
    }
}

#[tokio::test]
async fn a_body_announced_too_large_is_refused_before_it_is_read() {
    let addr = start(Limits::default(), Hosts::Any).await;
    // 50 MB announced, a few bytes sent: the answer must not wait for the rest.
    let request = b"POST /omni/http HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                    Content-Length: 52428800\r\nConnection: close\r\n\r\n{\"type\":";
    let (answer, took) = exchange(addr, request, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too_large"), "{answer}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn a_body_that_trickles_is_answered_408() {
    let limits = Limits {
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let addr = start(limits, Hosts::Any).await;
    let request = b"POST /omni/http HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                    Content-Length: 100\r\nConnection: close\r\n\r\n{\"type\":";
    let (answer, took) = exchange(addr, request, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn only_listed_host_names_are_served() {
    let addr = start(Limits::default(), Hosts::list(["app.test"])).await;
    for path in ["/omni/ws", "/omni/sse", "/omni/http"] {
        let method = if path.ends_with("http") {
            "POST"
        } else {
            "GET"
        };
        let upgrade = if path.ends_with("ws") {
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        } else {
            "Content-Length: 0\r\n"
        };
        // A page on a name pointed at this server: same-host by its own `Host`.
        let rebound = format!(
            "{method} {path} HTTP/1.1\r\nHost: evil.test\r\nOrigin: http://evil.test\r\n\
             {upgrade}Connection: close\r\n\r\n"
        );
        let (answer, _) = exchange(addr, rebound.as_bytes(), Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{path}: {answer}");
    }
    let body = r#"{"type":"msg","payload":{"kind":"Ping"}}"#;
    let listed = format!(
        "POST /omni/http HTTP/1.1\r\nHost: app.test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (answer, _) = exchange(addr, listed.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("Pong"), "{answer}");
}

/// The modules a browser client module imports (`import … from "./x.js";`, one a line).
fn relative_imports(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|line| line.starts_with("import ") || line.starts_with("export "))
        .filter_map(|line| line.split_once(" from \"./"))
        .filter_map(|(_, rest)| rest.split_once('"'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[tokio::test]
async fn the_browser_client_is_served_as_a_script_and_nothing_else() {
    let addr = start(Limits::default(), Hosts::Any).await;
    let get = |path: String| async move {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        exchange(addr, request.as_bytes(), Duration::from_secs(5))
            .await
            .0
    };
    // From the entry point, every module it imports, as a page's browser follows them: each
    // beside it under the prefix, as the source it is, as a script that is not cached stale
    // and is not sniffed as anything else.
    let mut next = vec!["omni.js".to_owned()];
    let mut loaded = BTreeSet::new();
    while let Some(name) = next.pop() {
        if !loaded.insert(name.clone()) {
            continue;
        }
        let answer = get(format!("/omni/{name}")).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{name}: {head}");
        for expected in [
            "content-type: text/javascript; charset=utf-8",
            "cache-control: no-cache",
            "x-content-type-options: nosniff",
        ] {
            assert!(
                head.contains(expected),
                "{name}: missing {expected}: {head}"
            );
        }
        let source = BROWSER_CLIENT.iter().find(|&&(n, _)| n == name);
        assert_eq!(Some(body), source.map(|&(_, s)| s), "{name}");
        next.extend(relative_imports(body));
    }
    // The whole client is reached that way, from the entry point.
    let client: BTreeSet<String> = BROWSER_CLIENT
        .iter()
        .map(|&(name, _)| name.to_owned())
        .collect();
    assert_eq!(loaded, client);
    assert!(loaded.len() > 1, "the entry point imports the modules");
    // Only the modules: the declarations beside them are not served.
    let declarations = get("/omni/omni.d.ts".to_owned()).await;
    assert!(declarations.starts_with("HTTP/1.1 404"), "{declarations}");
}

#[test]
fn the_demo_page_allows_only_its_own_scripts_and_no_framing() {
    let port = free_port();
    let mut server = chat_server(port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let get = |path: &str, host: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        runtime.block_on(exchange(addr, request.as_bytes(), Duration::from_secs(5)))
    };
    let host = format!("127.0.0.1:{port}");
    let (page, _) = get("/", &host);
    let head = page.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    for expected in [
        "content-security-policy: default-src 'self'",
        "frame-ancestors 'none'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "cache-control: no-store",
    ] {
        assert!(head.contains(expected), "missing {expected}: {head}");
    }
    assert!(
        !page.contains("<script>") && !page.contains("<style>"),
        "no inline code"
    );
    let (script, _) = get("/app.js", &host);
    assert!(script.starts_with("HTTP/1.1 200"), "{script}");
    assert!(
        script
            .to_ascii_lowercase()
            .contains("x-content-type-options: nosniff")
    );
    // The demo answers only to the names it is reached under.
    let (rebound, _) = get("/omni/sse", "evil.test");
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test]
async fn the_demo_mux_takes_a_shared_file_at_the_size_its_page_allows() {
    use base64::Engine;
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let port = free_port();
    let mut server = chat_server(port);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut client = common::Client::connect(addr, "/omni/mux").await;
    let token = fetch_body(addr, port, "/token/chat").await;
    client
        .send_text(
            serde_json::json!({"type": "join", "id": "c", "module": "chat", "token": token})
                .to_string(),
        )
        .await;
    // A file at the demo's limit: about 88 KiB of base64, over the default 64 KiB frame.
    let data = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 64 * 1024]);
    let share = serde_json::json!({
        "type": "msg", "id": "c", "ref": 1,
        "payload": {"kind": "Share", "data": {"name": "a.bin", "data": data}},
    })
    .to_string();
    assert!(share.len() > 64 * 1024);
    let mut joined = false;
    loop {
        match client.next_message().await {
            Some(Message::Text(text)) => {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                match frame["type"].as_str() {
                    Some("joined") if !joined => {
                        joined = true;
                        client
                            .socket
                            .send(Message::Text(share.clone().into()))
                            .await
                            .unwrap();
                    }
                    Some("ack") if frame["ref"] == 1 => break,
                    Some("error") => panic!("{text}"),
                    _ => {}
                }
            }
            other => panic!("the mux socket ended: {other:?}"),
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// The body of `GET path`, read to the end.
async fn fetch_body(addr: SocketAddr, port: u16, path: &str) -> String {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let (answer, _) = exchange(addr, request.as_bytes(), Duration::from_secs(5)).await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

#[tokio::test]
async fn a_refused_host_or_origin_is_told_which_the_value_and_how_to_allow_it() {
    let addr = start(Limits::default(), Hosts::list(["app.test"])).await;
    let endpoint = Endpoint::<Guard, _>::builder(|| Guarded).build();
    let mux = omni::server::Mux::builder(
        omni::token::Keys::new("a key of at least thirty-two bytes, for this test").unwrap(),
    )
    .hosts(Hosts::list(["app.test"]))
    .module("guard", &endpoint)
    .build();
    let mux_addr = common::serve(omni::axum::Router::new().nest("/omni", mux.router())).await;
    let upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let routes = [
        (addr, "GET /omni/ws", upgrade),
        (addr, "GET /omni/sse", ""),
        (addr, "POST /omni/http", "Content-Length: 0\r\n"),
        (mux_addr, "GET /omni/mux", upgrade),
    ];
    for (addr, route, extra) in routes {
        for (host, origin, says) in [
            (
                "evil.test",
                "http://evil.test",
                ["Host `evil.test`", "Hosts::list"],
            ),
            (
                "app.test",
                "http://evil.test",
                ["Origin `http://evil.test`", "Origins::list"],
            ),
        ] {
            let request = format!(
                "{route} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n{extra}\
                 Connection: close\r\n\r\n"
            );
            let (answer, _) = exchange(addr, request.as_bytes(), Duration::from_secs(5)).await;
            let (head, body) = answer.split_once("\r\n\r\n").expect("a response");
            assert!(
                head.starts_with("HTTP/1.1 403"),
                "{route} {host} {origin}: {head}"
            );
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: text/plain"),
                "{route}: {head}"
            );
            for words in says {
                assert!(body.contains(words), "{route} {host} {origin}: {body}");
            }
        }
    }
}
