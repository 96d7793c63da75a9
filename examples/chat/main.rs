//! The chat demo: `cargo run --example chat`, then open http://127.0.0.1:3000/ in two tabs.
//!
//! Options: `--port N` (or `PORT`, default 3000); `--redis redis://…` (built with
//! `--features redis`) to share the room with every server started with the same Redis;
//! `--tls-cert PATH --tls-key PATH` (PEM: the certificate chain, and its private key) to serve
//! HTTPS and WSS only, with rustls; `--backlog N` (default 8192) for the listener's queue of
//! connections not yet accepted, so that thousands of clients reconnecting at once after a
//! restart are queued rather than dropped (Linux caps it at `net.core.somaxconn`);
//! `--grace SECONDS` (default 30) for how long a session waits for its client to come back: a
//! closed tab leaves the online list after it. The protocol is served under `/omni`
//! (`/omni/ws`, `/omni/http`, `/omni/sse`); the page is at `/`.

mod app;
mod counter;

use std::sync::Arc;
use std::time::Duration;

use omni::axum::extract::Path;
use omni::axum::http::{HeaderName, StatusCode, header};
use omni::axum::response::{Html, IntoResponse};
use omni::axum::routing::get;
use omni::server::{Hosts, Limits, Mux, Server, Shutdown, bind};
use omni::token::Keys;

const PAGE: &str = include_str!("index.html");
const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

/// What the page may load and do: its own scripts, styles and sockets only (no inline code,
/// which is why its script and styles are files), and never inside another site's frame.
const POLICY: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; \
                      form-action 'self'; frame-ancestors 'none'";

/// How long a session outlives its connection, by default: a client back within it resumes
/// (and nobody sees it leave); a closed tab leaves the online list after it.
const GRACE: Duration = Duration::from_secs(30);

/// How long a join token stays valid: a page open longer fetches a fresh one from `/token/…`
/// when its rejoin is refused.
const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// Signs the demo's join tokens when `OMNI_TOKEN_KEY` is not set. Fine for a demo on your
/// machine; anyone who reads this file can forge tokens for a server that uses it.
const DEMO_KEY: &str = "omni chat demo key: set OMNI_TOKEN_KEY in production";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let options = options_from_args()?;
    let port = options.port;
    let room = match options.redis {
        None => app::Room::default(),
        #[cfg(feature = "redis")]
        Some(url) => app::Room::with_redis(&url, "omni-chat")
            .await
            .map_err(|e| std::io::Error::other(format!("redis: {e}")))?,
        #[cfg(not(feature = "redis"))]
        Some(_) => {
            return Err(std::io::Error::other(
                "--redis needs the redis feature: cargo run --features redis --example chat",
            ));
        }
    };
    // The names the demo is reached under: no page on another name (DNS rebinding) connects.
    let hosts = || Hosts::list([format!("127.0.0.1:{port}"), format!("localhost:{port}")]);
    let limits = Limits {
        grace: options.grace,
        // Room for a shared file at its limit: 64 KiB is about 88 KiB of base64 in JSON.
        max_frame_bytes: 2 * app::FILE_LIMIT,
        ..Limits::default()
    };
    let endpoint = room.builder().hosts(hosts()).limits(limits.clone()).build();
    // The mux socket carries the same frames, shared files among them: the same limits.
    let mux = Mux::builder(token_keys()?)
        .hosts(hosts())
        .limits(limits)
        .module("chat", &endpoint)
        .module("counter", &counter_of(&room).endpoint())
        .build();
    let page = {
        let mux = mux.clone();
        move || async move { (page_headers(), Html(render(&mux))) }
    };
    let fresh_token = {
        let mux = mux.clone();
        move |Path(module): Path<String>| async move { token(&mux, &module) }
    };
    let router = omni::axum::Router::new()
        .route("/", get(page))
        .route("/token/{module}", get(fresh_token))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", APP_JS) }),
        )
        .route("/app.css", get(|| async { asset("text/css", APP_CSS) }))
        .nest("/omni", endpoint.router().merge(mux.router()));

    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "--tls-cert and --tls-key go together",
            ));
        }
    };

    let listener = bind(([127, 0, 0, 1], port), options.backlog)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("chat listening on {scheme}://{}/", listener.local_addr()?);
    // On SIGINT or SIGTERM every client gets its close frame (1001) before the process ends;
    // a client that stalls in its request headers is cut off after 10 s.
    let shutdown = Shutdown::new()
        .endpoint(&endpoint)
        .mux(&mux)
        .drain(Duration::from_secs(5));
    let server = Server::new()
        .header_read_timeout(Duration::from_secs(10))
        .shutdown(shutdown);
    let server = match tls {
        Some(tls) => server.tls(tls),
        None => server,
    };
    server.serve(listener, router).await
}

/// The counter module's value: in the room's Redis when there is one, so that every server of
/// the room shows the same.
fn counter_of(room: &app::Room) -> counter::Shared {
    #[cfg(feature = "redis")]
    if let Some(shared) = room.shared() {
        return counter::Shared::with_redis(
            shared.redis.clone(),
            "omni-chat:counter".into(),
            shared.pubsub.clone(),
        );
    }
    let _ = room;
    counter::Shared::default()
}

/// The page's security headers. It carries join tokens: it is never cached either.
fn page_headers() -> [(HeaderName, &'static str); 5] {
    [
        (header::CONTENT_SECURITY_POLICY, POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ]
}

/// A static file of the page, typed so that no browser second-guesses it.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The page, with fresh join tokens for its components.
fn render(mux: &Mux) -> String {
    let props = serde_json::json!({});
    PAGE.replace("{{chat_token}}", &mux.sign("chat", &props, TOKEN_TTL))
        .replace("{{counter_token}}", &mux.sign("counter", &props, TOKEN_TTL))
}

/// A fresh join token for one of the page's modules, for a page whose token expired. It
/// grants what loading the page grants, no more.
fn token(mux: &Mux, module: &str) -> impl IntoResponse + use<> {
    if !matches!(module, "chat" | "counter") {
        return Err(StatusCode::NOT_FOUND);
    }
    let token = mux.sign(module, &serde_json::json!({}), TOKEN_TTL);
    Ok(([(header::CACHE_CONTROL, "no-store")], token))
}

/// The keys join tokens are signed with: `OMNI_TOKEN_KEY` (comma-separated for rotation, the
/// first signs), or the demo key.
fn token_keys() -> std::io::Result<Keys> {
    let keys = match std::env::var("OMNI_TOKEN_KEY") {
        Ok(keys) => Keys::rotating(keys.split(',')),
        Err(_) => {
            eprintln!("OMNI_TOKEN_KEY is not set: signing join tokens with the demo key");
            Keys::new(DEMO_KEY)
        }
    };
    keys.map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// The server's side of TLS: the certificate chain in `cert` and the private key in `key`,
/// both PEM files.
fn tls_config(cert: &str, key: &str) -> std::io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(format!("--tls-cert {cert}: {e}")))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad(format!("--tls-key {key}: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| bad(format!("TLS: {e}")))?;
    // HTTP/1.1 only: WebSockets upgrade from it, and the server speaks nothing else.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

struct Options {
    port: u16,
    backlog: u32,
    grace: Duration,
    redis: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

fn options_from_args() -> std::io::Result<Options> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    let mut args = std::env::args().skip(1);
    let mut port = std::env::var("PORT").ok();
    let mut redis = None;
    let mut backlog = None;
    let mut grace = None;
    let (mut tls_cert, mut tls_key) = (None, None);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| bad(format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--port" => port = Some(value()?),
            "--redis" => redis = Some(value()?),
            "--backlog" => backlog = Some(value()?),
            "--grace" => grace = Some(value()?),
            "--tls-cert" => tls_cert = Some(value()?),
            "--tls-key" => tls_key = Some(value()?),
            other => {
                return Err(bad(format!(
                    "unknown argument `{other}`; try --port N, --redis URL, --backlog N, \
                     --grace SECONDS, or --tls-cert PATH --tls-key PATH"
                )));
            }
        }
    }
    let port = match port {
        None => 3000,
        Some(p) => p.parse().map_err(|_| bad(format!("`{p}` is not a port")))?,
    };
    let backlog = match backlog {
        None => 8192,
        Some(n) => n
            .parse()
            .map_err(|_| bad(format!("`{n}` is not a backlog length")))?,
    };
    let grace = match grace {
        None => GRACE,
        Some(g) => Duration::from_secs(
            g.parse()
                .map_err(|_| bad(format!("`{g}` is not a number of seconds")))?,
        ),
    };
    Ok(Options {
        port,
        grace,
        backlog,
        redis,
        tls_cert,
        tls_key,
    })
}
