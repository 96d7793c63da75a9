//! The load client: `load TARGET URL CONNECTIONS TRIPS WARMUP`. Opens every connection, lets
//! each do `WARMUP` round trips, then starts them together on `TRIPS` sequential round trips
//! each, timing every one. Prints `result THROUGHPUT P50_US P99_US`.

use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use omni::wire::{ClientFrame, ServerFrame};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Target;
use crate::bench::{BenchFromClient, BenchFromServer};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One load's outcome, as the driver reads it back.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub throughput: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Stats {
    pub fn parse(line: &str) -> Stats {
        let numbers: Vec<f64> = line
            .split_whitespace()
            .map(|n| n.parse().expect("a number"))
            .collect();
        Stats {
            throughput: numbers[0],
            p50_us: numbers[1],
            p99_us: numbers[2],
        }
    }
}

pub fn main(args: &[String]) {
    let [target, url, connections, trips, warmup] = args else {
        panic!("load TARGET URL CONNECTIONS TRIPS WARMUP, not {args:?}");
    };
    let target = Target::parse(target).expect("a target");
    let number = |s: &String| -> usize { s.parse().expect("a number") };
    let (connections, trips, warmup) = (number(connections), number(trips), number(warmup));
    let stats = crate::runtime().block_on(run(target, url, connections, trips, warmup));
    println!(
        "result {:.1} {:.1} {:.1}",
        stats.throughput, stats.p50_us, stats.p99_us
    );
}

/// Round trip `n`: the same `"round trip N"` string for every target, in the envelope that
/// target speaks.
fn request(target: Target, n: usize) -> Message {
    if target.msgpack() {
        let frame = ClientFrame::Msg {
            payload: BenchFromClient::Echo(format!("round trip {n}")),
            reference: Some(n as u64),
            id: None,
        };
        return Message::Binary(frame.encode_msgpack().expect("a request encodes").into());
    }
    let text = if target == Target::Jsonrpsee {
        format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"echo","params":["round trip {n}"]}}"#)
    } else if target.sends_ref() {
        format!(r#"{{"type":"msg","payload":{{"kind":"Echo","data":"round trip {n}"}},"ref":{n}}}"#)
    } else {
        // The raw server echoes whatever it gets; it is given omni's frame so the bytes match.
        format!(r#"{{"type":"msg","payload":{{"kind":"Echo","data":"round trip {n}"}}}}"#)
    };
    Message::Text(text.into())
}

/// Frames that answer one request: the reply, and the `ack` of a target that sends one.
fn replies(target: Target) -> usize {
    if target.acks() { 2 } else { 1 }
}

async fn run(target: Target, url: &str, connections: usize, trips: usize, warmup: usize) -> Stats {
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        sockets.push(connect(target, url).await);
    }
    // Every connection plus this task: the clock starts once all have warmed up.
    let start = Arc::new(Barrier::new(connections + 1));
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            let start = start.clone();
            tokio::spawn(async move {
                let mut frames = Vec::with_capacity(2);
                for n in 1..=warmup {
                    round_trip(&mut socket, target, n, &mut frames).await;
                    check(target, n, &frames);
                }
                start.wait().await;
                let mut latencies = Vec::with_capacity(trips);
                for n in warmup + 1..=warmup + trips {
                    let sent = Instant::now();
                    round_trip(&mut socket, target, n, &mut frames).await;
                    latencies.push(sent.elapsed());
                }
                let _ = socket.close(None).await;
                latencies
            })
        })
        .collect();
    start.wait().await;
    let began = Instant::now();
    let mut latencies = Vec::with_capacity(connections * trips);
    for task in tasks {
        latencies.extend(task.await.expect("a load task"));
    }
    let elapsed = began.elapsed();
    latencies.sort();
    let percentile = |p: f64| -> f64 {
        let at = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
        latencies[at].as_secs_f64() * 1e6
    };
    Stats {
        throughput: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
    }
}

async fn connect(target: Target, url: &str) -> Socket {
    // The same 4 KiB read buffer the servers use; `true` turns Nagle's algorithm off.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    if target.omni() {
        // omni greets every new session with a `welcome`.
        let welcome = decode(target, &next_frame(&mut socket, target).await);
        assert!(
            matches!(welcome, ServerFrame::Welcome { .. }),
            "expected a welcome: {welcome:?}"
        );
    }
    socket
}

/// Sends request `n` and reads its reply frames into `frames`.
async fn round_trip(socket: &mut Socket, target: Target, n: usize, frames: &mut Vec<Bytes>) {
    socket.send(request(target, n)).await.expect("send");
    frames.clear();
    for _ in 0..replies(target) {
        frames.push(next_frame(socket, target).await);
    }
}

/// During warm-up only: a server that answers with an error would otherwise look fast.
fn check(target: Target, n: usize, frames: &[Bytes]) {
    let data = format!("round trip {n}");
    if !target.omni_frames() {
        assert!(
            frames
                .iter()
                .any(|f| f.windows(data.len()).any(|w| w == data.as_bytes())),
            "{}: no echo of {data:?} in {frames:?}",
            target.name()
        );
        return;
    }
    let frames: Vec<_> = frames.iter().map(|f| decode(target, f)).collect();
    let reference = target.sends_ref().then_some(n as u64);
    assert!(
        frames.iter().any(|f| matches!(
            f,
            ServerFrame::Msg { payload: BenchFromServer::Echoed(text), reference: r, .. }
                if *text == data && *r == reference
        )),
        "{}: no echo of {data:?} with ref {reference:?} in {frames:?}",
        target.name()
    );
    if target.acks() {
        assert!(
            frames.iter().any(|f| matches!(
                f,
                ServerFrame::Ack { reference: r, .. } if Some(*r) == reference
            )),
            "{}: no ack of {n} in {frames:?}",
            target.name()
        );
    }
}

/// One of omni's frames, as omni's own decoder reads it.
fn decode(target: Target, frame: &[u8]) -> ServerFrame<BenchFromServer> {
    let decoded = if target.msgpack() {
        ServerFrame::decode_msgpack(frame)
    } else {
        ServerFrame::decode(frame)
    };
    decoded.unwrap_or_else(|e| panic!("{}: an unreadable frame: {e}", target.name()))
}

/// The next frame: text, or binary for a MessagePack target. No timeout here: the driver
/// kills a client that takes too long.
async fn next_frame(socket: &mut Socket, target: Target) -> Bytes {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if !target.msgpack() => return text.into(),
            Some(Ok(Message::Binary(bytes))) if target.msgpack() => return bytes,
            // tungstenite answers pings itself; nothing else is expected.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("{}: unexpected {other:?}", target.name()),
        }
    }
}
