//! The four round-trip servers. Each binds `127.0.0.1:0`, prints `listening ADDR`, and exits
//! when its stdin closes.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::routing::get;
use omni::server::Endpoint;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::net::TcpListener;

use crate::bench::{Bench, Echoer};
use crate::child::stdin_closed;

/// Every WebSocket server here reads through a 4 KiB buffer, omni's default, instead of
/// tungstenite's 128 KiB, so no server wins by buffering.
const READ_BUFFER: usize = 4 * 1024;

pub fn serve(kind: &str) {
    let runtime = crate::runtime();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let stop = stdin_closed();
        let server = async move {
            match kind {
                "raw" => axum_serve(listener, raw_router()).await,
                "typed" => axum_serve(listener, typed_router()).await,
                "omni" => {
                    let endpoint = Endpoint::<Bench, _>::new(Echoer::default);
                    axum_serve(
                        listener,
                        axum::Router::new().nest("/omni", endpoint.router()),
                    )
                    .await
                }
                // The same endpoint on a Redis backend, and with its sessions in Redis: what a
                // session store costs per round trip.
                "omni-redis" | "omni-store" => {
                    let url = std::env::var("OMNI_REDIS_URL")
                        .expect("the omni-redis and omni-store targets need OMNI_REDIS_URL");
                    let prefix = format!("perf-{}:", std::process::id());
                    let redis = omni::pubsub::RedisPubSub::with_prefix(&url, &prefix).unwrap();
                    assert!(redis.ready(Duration::from_secs(10)).await, "redis up");
                    let sessions = redis.session_store();
                    let builder = Endpoint::<Bench, _>::builder(Echoer::default)
                        .pubsub(std::sync::Arc::new(redis));
                    let builder = match kind {
                        "omni-store" => builder.session_store(sessions),
                        _ => builder,
                    };
                    let endpoint = builder.build();
                    axum_serve(
                        listener,
                        axum::Router::new().nest("/omni", endpoint.router()),
                    )
                    .await
                }
                "jsonrpsee" => jsonrpsee_serve(listener).await,
                other => panic!("no server called {other}"),
            }
        };
        println!("listening {addr}");
        tokio::select! {
            () = server => {}
            _ = stop => {}
        }
    });
    // Tasks still holding sockets are dropped here, not awaited.
    runtime.shutdown_timeout(Duration::from_secs(1));
}

async fn axum_serve(listener: TcpListener, router: axum::Router) {
    // Small frames must not wait for Nagle's algorithm.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router).await.expect("axum::serve");
}

/// The floor: reads a text frame and writes it back, no decoding at all.
fn raw_router() -> axum::Router {
    axum::Router::new().route(
        "/ws",
        get(|ws: WebSocketUpgrade| async move {
            ws.read_buffer_size(READ_BUFFER)
                .on_upgrade(|mut socket: WebSocket| async move {
                    while let Some(Ok(message)) = socket.recv().await {
                        if let Message::Text(text) = message
                            && socket.send(Message::Text(text)).await.is_err()
                        {
                            return;
                        }
                    }
                })
        }),
    )
}

/// The typed server's view of a client frame: the envelope first, the payload kept as raw
/// JSON and decoded only once the frame type is known (how a careful hand-written server does
/// it, and what omni does).
#[derive(Deserialize)]
struct InFrame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(rename = "ref")]
    reference: Option<u64>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", content = "data")]
enum Up {
    Echo(String),
}

#[derive(Serialize)]
#[serde(tag = "kind", content = "data")]
enum Down {
    Echoed(String),
}

#[derive(Serialize)]
struct OutFrame {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    payload: Down,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    reference: Option<u64>,
}

#[derive(Serialize)]
struct AckFrame {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ref")]
    reference: u64,
}

/// The same protocol as omni's (sequenced `msg` carrying the `ref`), written by hand, with no
/// session and no resume log. On `/ws` a message is answered with one reply frame and no
/// `ack`; on `/ws-ack` a message with a `ref` is also acknowledged, as omni does, the reply
/// and the `ack` each written and flushed on its own.
fn typed_router() -> axum::Router {
    let route = |acks: bool| {
        get(move |ws: WebSocketUpgrade| async move {
            ws.read_buffer_size(READ_BUFFER)
                .on_upgrade(move |socket| typed_socket(socket, acks))
        })
    };
    axum::Router::new()
        .route("/ws", route(false))
        .route("/ws-ack", route(true))
}

async fn typed_socket(mut socket: WebSocket, acks: bool) {
    let mut seq = 0;
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<InFrame>(&text) else {
            continue;
        };
        if frame.kind != "msg" {
            continue;
        }
        let Ok(Up::Echo(echo)) = serde_json::from_str::<Up>(frame.payload.get()) else {
            continue;
        };
        seq += 1;
        let reply = OutFrame {
            kind: "msg",
            seq,
            payload: Down::Echoed(echo),
            reference: frame.reference,
        };
        let reply = serde_json::to_string(&reply).expect("a reply encodes");
        if socket.send(Message::Text(reply.into())).await.is_err() {
            return;
        }
        if let Some(reference) = frame.reference.filter(|_| acks) {
            let ack = AckFrame {
                kind: "ack",
                reference,
            };
            let ack = serde_json::to_string(&ack).expect("an ack encodes");
            if socket.send(Message::Text(ack.into())).await.is_err() {
                return;
            }
        }
    }
}

/// jsonrpsee with one method, `echo`, answering its one string parameter. Its defaults:
/// WebSocket and HTTP on one port, `TCP_NODELAY` on; its read buffer is soketto's and not
/// configurable.
async fn jsonrpsee_serve(listener: TcpListener) {
    // tokio's listener is already non-blocking, which jsonrpsee's `from_std` expects.
    let listener = listener.into_std().expect("a std listener");
    let server = jsonrpsee::server::Server::builder()
        .build_from_tcp(listener)
        .expect("a jsonrpsee server");
    let mut module = jsonrpsee::RpcModule::new(());
    module
        .register_method("echo", |params, _, _| params.one::<String>())
        .expect("one method");
    // Runs until the process ends.
    server.start(module).stopped().await;
}
