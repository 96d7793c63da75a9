//! One build of the `evo` protocol as a process: a server (ws, http, sse and mux, on one
//! port, in-process or Redis pub/sub) or a client that sends its build's script and reports,
//! as one JSON line, what came back. The same code is compiled once per build
//! (`evolution_v1`, `_v2`, `_v3`), so old and new builds meet as separate binaries, as they do
//! in a rolling deploy.

use std::sync::Arc;
use std::time::Duration;

use omni::client::{Client, Mux, Transport};
use omni::pubsub::{LocalPubSub, PubSub, RedisPubSub};
use omni::server::{Endpoint, Origins};
use omni::token::Keys;
use omni::wire::Codec;
use omni::{Dispatch, Protocol, TransportState};

/// The key both ends sign and check join tokens with (a test fixture's, not a secret).
const KEY: &[u8] = b"the evolution fixture's key, thirty-two bytes";

/// What a build supplies: its protocol and handler, and the messages its client sends.
pub trait Build: Protocol + Dispatch<Self::Handler> + Send {
    type Handler: Default + Send + 'static;
    /// The client's script, in order.
    fn script() -> Vec<Self::Client>;
    /// The transport state a local message holds (these builds have no other local variant).
    fn state(self) -> Option<TransportState>;
}

pub fn main<B: Build>() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match args.first().map(String::as_str) {
        Some("server") => runtime.block_on(serve::<B>(arg("--redis"))),
        Some("client") => {
            let url = arg("--url").expect("--url");
            let transport = arg("--transport").unwrap_or_else(|| "ws".into());
            let codec = match arg("--codec").as_deref() {
                Some("msgpack") => Codec::MsgPack,
                _ => Codec::Json,
            };
            let expect: usize = arg("--expect").map_or(0, |n| n.parse().expect("--expect N"));
            let barrier = arg("--barrier").map(std::path::PathBuf::from);
            let report = runtime.block_on(client::<B>(&url, &transport, codec, expect, barrier));
            println!("{report}");
        }
        Some("schema") => print!("{}", B::schema().to_json()),
        // Keeps this build's schema in a directory of released versions.
        Some("record") => {
            let dir = args.get(1).expect("record DIR");
            let recorded = omni::schema::check_schema(&B::schema(), dir.as_ref(), true);
            println!("{recorded:?}");
        }
        Some("schema-js") => print!("{}", omni::typescript::schema_module::<B>()),
        _ => eprintln!(
            "usage: server [--redis URL] | client --url URL [--transport ws|http|sse|mux] [--codec json|msgpack] [--expect N] | schema | schema-js | record DIR"
        ),
    }
}

async fn serve<B: Build>(redis: Option<String>) {
    let pubsub: Arc<dyn PubSub> = match redis {
        Some(url) => {
            let redis = RedisPubSub::connect(&url).expect("a Redis URL");
            assert!(redis.ready(Duration::from_secs(10)).await, "Redis is up");
            Arc::new(redis)
        }
        None => Arc::new(LocalPubSub::new()),
    };
    // Pages of other builds are served from other ports in the browser test.
    let endpoint = Endpoint::<B, _>::builder(B::Handler::default)
        .pubsub(pubsub)
        .origins(Origins::Any)
        .build();
    let mux = omni::server::Mux::builder(Keys::new(KEY).expect("a key"))
        .module("evo", &endpoint)
        .origins(Origins::Any)
        .build();
    let page = omni::axum::routing::get(|| async {
        omni::axum::response::Html("<!doctype html><title>evo</title>")
    });
    let app: omni::axum::Router = omni::axum::Router::new()
        .route("/", page)
        .nest("/omni", endpoint.router().merge(mux.router()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    println!(
        "listening on {}",
        listener.local_addr().expect("an address")
    );
    omni::axum::serve(listener, app).await.expect("serving");
}

/// Sends the build's script and reports, as JSON: each message's outcome (`ok` or the
/// refusal's code), the kinds of the messages received (`?kind` for one this build does not
/// know), and the transport states that end or interrupt the client.
/// With `barrier` (a directory), it sends nothing until every client is connected: it says it
/// is (a `<pid>.ready` file there) once welcomed, then waits for a `go` file.
async fn client<B: Build>(
    url: &str,
    transport: &str,
    codec: Codec,
    expect: usize,
    barrier: Option<std::path::PathBuf>,
) -> String {
    // The socket of a mux client, which its component needs for as long as it runs.
    let mut socket = None;
    let (client, mut messages) = if transport == "mux" {
        let mux = socket.insert(Mux::builder(url).codec(codec).connect());
        let token = Keys::new(KEY).expect("a key").sign(
            "evo",
            &serde_json::json!({}),
            Duration::from_secs(60),
        );
        mux.join::<B>("evo", "evo", token)
    } else {
        let transport = match transport {
            "http" => Transport::Http,
            "sse" => Transport::Sse,
            _ => Transport::Ws,
        };
        Client::<B>::builder(url)
            .transport(transport)
            .codec(codec)
            .connect()
    };
    let mut received = Vec::new();
    let mut states = Vec::new();
    if let Some(dir) = barrier {
        let welcomed = async {
            while let Some(msg) = messages.recv().await {
                if let Err(local) = msg.into_server()
                    && let Some(TransportState::Connected { .. }) = local.state()
                {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), welcomed).await;
        std::fs::write(dir.join(format!("{}.ready", std::process::id())), "").expect("ready");
        while !dir.join("go").exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut outcomes = Vec::new();
    for msg in B::script() {
        let outcome = match client.send(msg) {
            Ok(reference) => {
                match tokio::time::timeout(Duration::from_secs(10), client.acked(reference)).await {
                    Ok(Ok(())) => "ok".to_owned(),
                    Ok(Err(omni::client::AckError::Rejected { code, .. })) => code.to_string(),
                    Ok(Err(err)) => format!("error: {err}"),
                    Err(_) => "no answer".to_owned(),
                }
            }
            Err(err) => format!("not sent: {err}"),
        };
        outcomes.push(outcome);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received.len() < expect {
        let Ok(Some(msg)) = tokio::time::timeout_at(deadline, messages.recv()).await else {
            break;
        };
        match msg.into_server() {
            Ok(server) => {
                let value = serde_json::to_value(&server).expect("a server message encodes");
                received.push(value["kind"].as_str().unwrap_or_default().to_owned());
            }
            Err(local) => {
                // The transport variant: the only local one these builds have.
                if let Some(state) = local.state() {
                    match state {
                        TransportState::UnknownMessage { kind } => {
                            received.push(format!("?{kind}"))
                        }
                        TransportState::Connected { .. } | TransportState::Connecting => {}
                        other => states.push(format!("{other:?}")),
                    }
                }
            }
        }
    }
    received.sort();
    serde_json::json!({
        "outcomes": outcomes,
        "received": received,
        "states": states,
        "unknown": client.unknown_messages(),
    })
    .to_string()
}
