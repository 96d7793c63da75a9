//! WebSocket round trips through an omni endpoint, in JSON and in MessagePack
//! (`/ws?codec=msgpack`), against a hand-written axum WebSocket server that decodes and
//! encodes the same v1 frames as JSON with serde, in one run.
//!
//! `cargo bench --bench ws_roundtrip` (set `ROUNDS`, `CONNECTIONS`, `TRIPS` to change the
//! load). Each round trip is a `msg` with a `ref`, answered by a sequenced `msg` carrying the
//! ref and an `ack`; the client waits for the ack before its next message. Both servers use
//! a 4 KiB read buffer, so the comparison isolates what omni adds.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as AxumMessage, WebSocket, WebSocketUpgrade};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use omni::server::Endpoint;
use omni::wire::Codec;
use omni::{ClientFrame, Context, HandlerResult};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Bench {
    #[client]
    Echo(String),
    #[server]
    Echoed(String),
}

struct Echoer;

impl BenchHandler for Echoer {
    async fn echo(&mut self, cx: &mut Context<Bench>, text: String) -> HandlerResult {
        cx.send(BenchFromServer::Echoed(text));
        Ok(())
    }
}

/// The hand-written server's view of a client frame: the envelope, then the payload.
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
enum HandUp {
    Echo(String),
}

#[derive(Serialize)]
#[serde(tag = "kind", content = "data")]
enum HandDown {
    Echoed(String),
}

#[derive(Serialize)]
struct OutMsg {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    payload: HandDown,
    #[serde(rename = "ref")]
    reference: Option<u64>,
}

#[derive(Serialize)]
struct OutAck {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ref")]
    reference: u64,
}

async fn hand_socket(mut socket: WebSocket) {
    let mut seq = 0;
    while let Some(Ok(AxumMessage::Text(text))) = socket.recv().await {
        let Ok(frame) = serde_json::from_str::<InFrame>(&text) else {
            continue;
        };
        if frame.kind != "msg" {
            continue;
        }
        let Ok(HandUp::Echo(echo)) = serde_json::from_str::<HandUp>(frame.payload.get()) else {
            continue;
        };
        seq += 1;
        let reply = OutMsg {
            kind: "msg",
            seq,
            payload: HandDown::Echoed(echo),
            reference: frame.reference,
        };
        let reply = serde_json::to_string(&reply).unwrap();
        if socket.send(AxumMessage::Text(reply.into())).await.is_err() {
            return;
        }
        if let Some(reference) = frame.reference {
            let ack = serde_json::to_string(&OutAck {
                kind: "ack",
                reference,
            })
            .unwrap();
            if socket.send(AxumMessage::Text(ack.into())).await.is_err() {
                return;
            }
        }
    }
}

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Small frames must not wait for Nagle's algorithm.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// The `msg` frame of round trip `r`, as the client sends it in `codec`.
fn request(codec: Codec, r: u64) -> Message {
    match codec {
        Codec::MsgPack => {
            let frame = ClientFrame::Msg {
                payload: BenchFromClient::Echo(format!("round trip {r}")),
                reference: Some(r),
                id: None,
            };
            Message::Binary(frame.encode_msgpack().unwrap().into())
        }
        _ => Message::Text(
            format!(
                r#"{{"type":"msg","payload":{{"kind":"Echo","data":"round trip {r}"}},"ref":{r}}}"#
            )
            .into(),
        ),
    }
}

/// Round trips per second over `connections` sockets doing `trips` each, in `codec`.
async fn load(url: &str, codec: Codec, connections: usize, trips: u64, skip_welcome: bool) -> f64 {
    let mut sockets = Vec::new();
    for _ in 0..connections {
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .unwrap();
        if skip_welcome {
            socket.next().await.unwrap().unwrap();
        }
        sockets.push(socket);
    }
    let start = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                for r in 1..=trips {
                    socket.send(request(codec, r)).await.unwrap();
                    // The reply, then the ack.
                    for _ in 0..2 {
                        match (socket.next().await, codec) {
                            (Some(Ok(Message::Text(_))), Codec::Json) => {}
                            (Some(Ok(Message::Binary(_))), Codec::MsgPack) => {}
                            (other, _) => panic!("unexpected {other:?}"),
                        }
                    }
                }
                let _ = socket.close(None).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (connections as u64 * trips) as f64 / start.elapsed().as_secs_f64()
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 1 } else { env("ROUNDS", 5) };
    let connections = env("CONNECTIONS", 50) as usize;
    let trips = if quick { 20 } else { env("TRIPS", 400) };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let endpoint = Endpoint::<Bench, _>::new(|| Echoer);
        let omni_addr = serve(axum::Router::new().nest("/omni", endpoint.router())).await;
        let hand = axum::Router::new().route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move {
                ws.read_buffer_size(4 * 1024).on_upgrade(hand_socket)
            }),
        );
        let hand_addr = serve(hand).await;

        let (mut omni, mut packed, mut hand) = (Vec::new(), Vec::new(), Vec::new());
        let (json_url, packed_url) = (
            format!("ws://{omni_addr}/omni/ws"),
            format!("ws://{omni_addr}/omni/ws?codec=msgpack"),
        );
        let hand_url = format!("ws://{hand_addr}/ws");
        for _ in 0..rounds {
            omni.push(load(&json_url, Codec::Json, connections, trips, true).await);
            packed.push(load(&packed_url, Codec::MsgPack, connections, trips, true).await);
            hand.push(load(&hand_url, Codec::Json, connections, trips, false).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (omni, packed, hand) = (median(omni), median(packed), median(hand));
        println!(
            "ws round trips, {connections} connections x {trips}, median of {rounds} rounds:\n  \
             omni endpoint, json     {omni:>9.0}/s\n  \
             omni endpoint, msgpack  {packed:>9.0}/s\n  \
             hand-written, json      {hand:>9.0}/s\n  \
             ratio omni json / hand  {:.2}\n  \
             ratio msgpack / json    {:.2}",
            omni / hand,
            packed / omni
        );
    });
}
