//! `omni::server::Server` as an app meets it: the peer's address reaches handlers, and HTTP/2
//! is served beside HTTP/1, over real sockets.

use std::net::SocketAddr;

use omni::axum::Router;
use omni::axum::extract::ConnectInfo;
use omni::axum::routing::get;
use omni::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start() -> SocketAddr {
    let app = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Server::new().serve(listener, app));
    addr
}

#[tokio::test]
async fn handlers_are_given_the_peer_address() {
    let addr = start().await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    tcp.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&local.to_string()), "{answer}");
}

#[tokio::test]
async fn http2_is_served_beside_http1() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let addr = start().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(format!("http://{addr}/peer"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().starts_with("127.0.0.1:"));
}
