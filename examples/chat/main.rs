//! The chat demo: `cargo run -p omni-demo` (or `--example chat`), then open
//! http://127.0.0.1:3000/ in two tabs.
//!
//! `--help` lists the options. The protocol is served under `/omni`
//! (`/omni/ws`, `/omni/http`, `/omni/sse`, `/omni/mux`); the page is at `/`; `/healthz`,
//! `/readyz` and Prometheus's `/metrics` are there for an operator. The demo answers
//! to `localhost`, `127.x.y.z` and `[::1]` on any port, and to the names given with
//! `--allow-host`: a page on any other name (DNS rebinding) gets a 403 that says why.

mod app;
mod counter;
#[cfg(feature = "redis")]
mod store;

use std::process::ExitCode;
use std::time::Duration;

use omni::axum::body::Body;
use omni::axum::extract::Path;
use omni::axum::http::{HeaderName, StatusCode, header};
use omni::axum::middleware::map_response;
use omni::axum::response::{Html, IntoResponse, Response};
use omni::axum::routing::get;
use omni::server::{Hosts, Limits, Mux, Origins, Prometheus, Refused, Server, Shutdown, bind};
use omni::token::Keys;

const USAGE: &str = "\
usage: chat [options]

A chat room at http://127.0.0.1:PORT/: open it in two tabs.

options:
  --port N            listen on 127.0.0.1:N (or PORT=N; default 3000)
  --allow-host NAME   also answer to NAME (host[:port], as the browser's address bar shows
                      it) and take pages from http://NAME and https://NAME: for a proxy, a
                      load balancer or a LAN name in front of the demo; repeatable (or
                      OMNI_ALLOW_HOSTS=NAME,NAME). localhost, 127.x.y.z and [::1] are
                      answered on any port without it
  --grace SECONDS     how long a session waits for its client to come back (default 30): a
                      closed tab leaves the online list after it
  --backlog N         the queue of connections not yet accepted (default 8192), so that
                      thousands of clients reconnecting after a restart wait rather than
                      fail (Linux caps it at net.core.somaxconn)
  --redis URL         share the room with every server started with the same Redis (built
                      with --features redis): a server, a cluster node (the others are
                      found from it), or several nodes separated by commas
  --tls-cert PATH --tls-key PATH
                      serve HTTPS and WSS only: the PEM certificate chain and its key
  -h, --help          print this message and exit

OMNI_TOKEN_KEY signs the join tokens (comma-separated keys rotate, the first signs; a demo
key otherwise); RUST_LOG sets what is logged (default info).
";

/// The variable `--allow-host` names are also read from, comma-separated.
const ALLOW_HOSTS_VAR: &str = "OMNI_ALLOW_HOSTS";

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
async fn main() -> ExitCode {
    let options = match options_from_args() {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("chat: {problem} (`--help` lists the options)");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("chat: {problem}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let port = options.port;
    let room = match &options.redis {
        None => app::Room::default(),
        #[cfg(feature = "redis")]
        Some(url) => app::Room::with_redis(url, "omni-chat")
            .await
            .map_err(|e| format!("cannot use the Redis at {url}: {e}"))?,
        #[cfg(not(feature = "redis"))]
        Some(_) => {
            return Err(
                "--redis needs the redis feature: cargo run -p omni-demo --features redis".into(),
            );
        }
    };
    // The names the demo is reached under: no page on another name (DNS rebinding) connects.
    // Loopback names are safe on any port (a proxy on this machine forwards under its own);
    // an allowed name is one whose pages are the demo's, under either scheme (a proxy that
    // terminates TLS and forwards under a loopback name).
    let hosts = || Hosts::loopback_and(options.allowed.iter().cloned());
    let origins = || {
        Origins::list(
            options
                .allowed
                .iter()
                .flat_map(|name| [format!("http://{name}"), format!("https://{name}")]),
        )
    };
    let limits = Limits {
        grace: options.grace,
        // Room for a shared file at its limit: 64 KiB is about 88 KiB of base64 in JSON.
        max_frame_bytes: 2 * app::FILE_LIMIT,
        ..Limits::default()
    };
    let endpoint = room
        .builder()
        .hosts(hosts())
        .origins(origins())
        .limits(limits.clone())
        .build();
    // The mux socket carries the same frames, shared files among them: the same limits.
    let mux = Mux::builder(token_keys()?)
        .hosts(hosts())
        .origins(origins())
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
    // On SIGINT or SIGTERM every client gets its close frame (1001) before the process ends,
    // and /readyz turns 503 first, so a load balancer stops sending new clients.
    let shutdown = Shutdown::new()
        .endpoint(&endpoint)
        .mux(&mux)
        .drain(Duration::from_secs(5));
    // Prometheus scrapes /metrics: the room's endpoint, and the mux with both its modules. A
    // server facing the internet mounts it on a port of its own, or behind its own auth.
    let metrics = Prometheus::new().endpoint(&endpoint).mux(&mux);
    let router = omni::axum::Router::new()
        .route("/", get(page))
        .route("/token/{module}", get(fresh_token))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", APP_JS) }),
        )
        .route("/app.css", get(|| async { asset("text/css", APP_CSS) }))
        .nest("/omni", endpoint.router().merge(mux.router()))
        .merge(shutdown.health())
        .merge(metrics.router())
        .layer(map_response(explain_refusal));

    #[cfg(feature = "tls")]
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        _ => None,
    };
    // Built without TLS (the demo package's default): nothing to serve it with.
    #[cfg(not(feature = "tls"))]
    let tls: Option<()> = match (&options.tls_cert, &options.tls_key) {
        (None, None) => None,
        _ => {
            return Err(
                "--tls-cert needs the tls feature: cargo run -p omni-demo --features tls".into(),
            );
        }
    };

    let cannot_listen = |e: std::io::Error| format!("cannot listen on 127.0.0.1:{port}: {e}");
    let listener = bind(([127, 0, 0, 1], port), options.backlog).map_err(cannot_listen)?;
    let addr = listener.local_addr().map_err(cannot_listen)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("chat listening on {scheme}://{addr}/");
    if !options.allowed.is_empty() {
        eprintln!(
            "chat: also answering to {} (and localhost, 127.x.y.z and [::1] on any port)",
            options.allowed.join(", ")
        );
    }
    // A client that stalls in its request headers is cut off after 10 s.
    let server = Server::new()
        .header_read_timeout(Duration::from_secs(10))
        .shutdown(shutdown);
    #[cfg(feature = "tls")]
    let server = match tls {
        Some(tls) => server.tls(tls),
        None => server,
    };
    server
        .serve(listener, router)
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}

/// The runtime's 403 for a refused `Host` or `Origin`, worded for the demo: the flag that
/// allows the name, which a developer behind a proxy looks for.
async fn explain_refusal(response: Response) -> Response {
    let Some(refused) = response.extensions().get::<Refused>() else {
        return response;
    };
    let allow = |name: &str| {
        format!("start the demo with `--allow-host {name}` (or {ALLOW_HOSTS_VAR}={name})")
    };
    let text = match refused {
        Refused::Host(Some(host)) => format!(
            "the chat demo does not answer to the Host `{host}`: if it is reached under that \
             name (through a proxy, a load balancer or a LAN name), {}",
            allow(host)
        ),
        Refused::Host(None) => "the request names no Host: the chat demo answers to localhost, \
                                127.x.y.z and [::1] on any port, and to the names given with \
                                `--allow-host`"
            .to_owned(),
        Refused::Origin(origin) => match origin.split_once("://") {
            Some((_, name)) => format!(
                "a page from the Origin `{origin}` may not connect to the chat demo: if the \
                 demo's page is served there, {}",
                allow(name)
            ),
            // `null`: a file, or a sandboxed frame, which no name can allow.
            None => format!(
                "a page from the Origin `{origin}` may not connect to the chat demo: open the \
                 page from the demo's own address"
            ),
        },
        // A refusal this demo does not know: the runtime's own words.
        other => other.to_string(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text + "\n"))
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
fn token_keys() -> Result<Keys, String> {
    let keys = match std::env::var("OMNI_TOKEN_KEY") {
        Ok(keys) => Keys::rotating(keys.split(',')),
        Err(_) => {
            eprintln!("OMNI_TOKEN_KEY is not set: signing join tokens with the demo key");
            Keys::new(DEMO_KEY)
        }
    };
    keys.map_err(|e| format!("OMNI_TOKEN_KEY cannot sign join tokens: {e}"))
}

/// The server's side of TLS: the certificate chain in `cert` and the private key in `key`,
/// both PEM files.
#[cfg(feature = "tls")]
fn tls_config(cert: &str, key: &str) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificates in {cert} (--tls-cert): {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key in {key} (--tls-key): {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| format!("cannot serve TLS with that certificate and key: {e}"))?;
    // HTTP/1.1 only: WebSockets upgrade from it, and the server speaks nothing else.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

struct Options {
    port: u16,
    backlog: u32,
    grace: Duration,
    /// Names besides the loopback ones that the demo answers to.
    allowed: Vec<String>,
    redis: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

/// The options, or `None` for `--help`; a problem is one sentence, for a usage error.
fn options_from_args() -> Result<Option<Options>, String> {
    let mut args = std::env::args_os().skip(1);
    let mut port = std::env::var("PORT").ok();
    let mut allowed = match std::env::var(ALLOW_HOSTS_VAR) {
        Ok(names) => names
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| allowed_name(name, ALLOW_HOSTS_VAR))
            .collect::<Result<Vec<_>, _>>()?,
        Err(_) => Vec::new(),
    };
    let mut redis = None;
    let mut backlog = None;
    let mut grace = None;
    let (mut tls_cert, mut tls_key) = (None, None);
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|arg| format!("the argument `{}` is not UTF-8", arg.to_string_lossy()))?;
        let mut value = || match args.next().map(|v| v.into_string()) {
            Some(Ok(value)) => Ok(value),
            Some(Err(_)) => Err(format!("the value of {arg} is not UTF-8")),
            None => Err(format!("{arg} needs a value")),
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => port = Some(value()?),
            "--allow-host" => allowed.push(allowed_name(&value()?, "--allow-host")?),
            "--redis" => redis = Some(value()?),
            "--backlog" => backlog = Some(value()?),
            "--grace" => grace = Some(value()?),
            "--tls-cert" => tls_cert = Some(value()?),
            "--tls-key" => tls_key = Some(value()?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if tls_cert.is_some() != tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    let port = match port {
        None => 3000,
        Some(p) => p
            .parse()
            .map_err(|_| format!("`{p}` is not a port (a number up to 65535)"))?,
    };
    let backlog = match backlog {
        None => 8192,
        Some(n) => n
            .parse()
            .map_err(|_| format!("`{n}` is not a backlog length (a whole number)"))?,
    };
    let grace = match grace {
        None => GRACE,
        Some(g) => Duration::from_secs(
            g.parse()
                .map_err(|_| format!("`{g}` is not a number of seconds"))?,
        ),
    };
    Ok(Some(Options {
        port,
        grace,
        backlog,
        allowed,
        redis,
        tls_cert,
        tls_key,
    }))
}

/// A name for `--allow-host`: `host[:port]` as a request's `Host` carries it, not a URL.
fn allowed_name(name: &str, from: &str) -> Result<String, String> {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if plain {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{from} takes a host name with an optional port, as in chat.example.com or \
             chat.lan:3000, not `{name}`"
        ))
    }
}
