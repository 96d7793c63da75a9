//! The chat demo: `cargo run --example chat`, then open http://127.0.0.1:3000/ in two tabs.
//!
//! Options: `--port N` (or `PORT`, default 3000). The protocol is served under `/omni`
//! (`/omni/ws`, `/omni/http`, `/omni/sse`); the page is at `/`.

mod app;

use omni::axum::response::Html;
use omni::axum::routing::get;

const PAGE: &str = include_str!("index.html");

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let port = port_from_args()?;
    let room = app::Room::default();
    let endpoint = room.endpoint();
    let router = omni::axum::Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .nest("/omni", endpoint.router());

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("chat listening on http://{}/", listener.local_addr()?);
    // Frames are small and interactive: send them at once rather than batching (Nagle).
    let listener = omni::axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    omni::axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            endpoint.shutdown();
        })
        .await
}

fn port_from_args() -> std::io::Result<u16> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    let mut args = std::env::args().skip(1);
    let mut port = std::env::var("PORT").ok();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = Some(
                    args.next()
                        .ok_or_else(|| bad("--port needs a value".into()))?,
                )
            }
            other => return Err(bad(format!("unknown argument `{other}`; try --port N"))),
        }
    }
    match port {
        None => Ok(3000),
        Some(p) => p.parse().map_err(|_| bad(format!("`{p}` is not a port"))),
    }
}
