//! The client over TLS against a real rustls server, with a CA and a server certificate made
//! at test time: every transport reaches a server whose CA it was given; a server it does
//! not trust, a URL it cannot use or a path that is not there ends its stream after one
//! attempt and one error that says why; `chat_cli` against the demo served over TLS.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::PATIENCE;
use common::demo::{example, free_port, wait};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use omni::client::{Backoff, Client, Messages, Mux, Transport};
use omni::server::Endpoint;
use omni::{Context, HandlerResult, TransportError, TransportState};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Relay {
    #[client]
    Echo(u32),
    #[server]
    Echoed(u32),
}

struct Relayer;

impl RelayHandler for Relayer {
    async fn echo(&mut self, cx: &mut Context<Relay>, n: u32) -> HandlerResult {
        cx.send(RelayFromServer::Echoed(n));
        Ok(())
    }
}

const TRANSPORTS: [Transport; 3] = [Transport::Ws, Transport::Http, Transport::Sse];

/// A CA and a certificate it issued for `localhost` and 127.0.0.1, in PEM.
struct Certificates {
    ca: String,
    cert: String,
    key: String,
}

impl Certificates {
    fn new() -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "omni test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = server.signed_by(&key, &issuer).unwrap();
        Self {
            ca: ca_cert.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        let chain = vec![CertificateDer::from_pem_slice(self.cert.as_bytes()).unwrap()];
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from_pem_slice(self.key.as_bytes()).unwrap());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(config)
    }

    /// Writes the PEM files into a directory of their own; returns it.
    fn write(&self, name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("omni-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), &self.ca).unwrap();
        std::fs::write(dir.join("cert.pem"), &self.cert).unwrap();
        std::fs::write(dir.join("key.pem"), &self.key).unwrap();
        dir
    }
}

/// Serves an echo endpoint under `/omni` over TLS on a free loopback port; returns its
/// address and how many TCP connections it accepted.
async fn serve(tls: Arc<rustls::ServerConfig>) -> (SocketAddr, Arc<AtomicUsize>) {
    let endpoint: Endpoint<Relay, Relayer> = Endpoint::new(|| Relayer);
    let router = omni::axum::Router::new().nest("/omni", endpoint.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake.
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

fn backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(100),
        ..Backoff::default()
    }
}

/// Everything the client says until its stream ends; a panic if it has not ended in time.
async fn until_the_end(messages: &mut Messages<Relay>) -> Vec<Relay> {
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while let Some(msg) = tokio::time::timeout_at(deadline, messages.recv())
        .await
        .unwrap_or_else(|_| panic!("the stream did not end: {all:?}"))
    {
        all.push(msg);
    }
    all
}

#[tokio::test]
async fn every_transport_reaches_a_server_whose_ca_it_trusts() {
    let certs = Certificates::new();
    let (addr, _) = serve(certs.server_config()).await;
    for (transport, host) in TRANSPORTS
        .into_iter()
        .flat_map(|t| [(t, "127.0.0.1".to_owned()), (t, "localhost".to_owned())])
    {
        let url = format!("https://{host}:{}/omni", addr.port());
        let (client, mut messages) = Client::<Relay>::builder(url)
            .transport(transport)
            .backoff(backoff())
            .poll_interval(Duration::from_millis(50))
            .root_certificate(certs.ca.clone())
            .connect();
        client.send(RelayFromClient::Echo(7)).unwrap();
        loop {
            let msg = tokio::time::timeout(PATIENCE, messages.recv())
                .await
                .expect("an answer in time")
                .expect("the client runs");
            match msg {
                Relay::Echoed(n) => {
                    assert_eq!(n, 7);
                    break;
                }
                Relay::Transport(TransportState::Error(err)) => {
                    panic!("{transport:?} to {host}: {err}")
                }
                _ => {}
            }
        }
        client.close();
        until_the_end(&mut messages).await;
    }
}

#[tokio::test]
async fn an_untrusted_certificate_ends_the_stream_after_one_attempt() {
    let certs = Certificates::new();
    let (addr, accepted) = serve(certs.server_config()).await;
    for transport in TRANSPORTS {
        let before = accepted.load(Ordering::SeqCst);
        // Trusting another CA, besides the platform's, changes nothing.
        let (client, mut messages) = Client::<Relay>::builder(format!("https://{addr}/omni"))
            .transport(transport)
            .backoff(backoff())
            .root_certificate(Certificates::new().ca)
            .connect();
        let all = until_the_end(&mut messages).await;
        match &all[..] {
            [
                Relay::Transport(TransportState::Connecting),
                Relay::Transport(TransportState::Error(TransportError::Tls { message })),
            ] => assert!(message.contains("certificate"), "{message}"),
            other => panic!("{transport:?}: {other:?}"),
        }
        assert_eq!(accepted.load(Ordering::SeqCst) - before, 1, "{transport:?}");
        assert!(client.send(RelayFromClient::Echo(1)).is_err());
    }
    // A mux gives up the same way, on every component.
    let before = accepted.load(Ordering::SeqCst);
    let mux = Mux::builder(format!("https://{addr}/omni"))
        .backoff(backoff())
        .connect();
    let (_, mut messages) = mux.join::<Relay>("relay-1", "relay", "no token needed");
    let all = until_the_end(&mut messages).await;
    assert!(
        matches!(
            all.last(),
            Some(Relay::Transport(TransportState::Error(
                TransportError::Tls { .. }
            )))
        ),
        "{all:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst) - before, 1);
}

#[tokio::test]
async fn a_url_the_client_cannot_use_is_an_error_at_once() {
    for (url, transport) in [
        ("ftp://127.0.0.1:1/omni", Transport::Ws),
        ("ftp://127.0.0.1:1/omni", Transport::Http),
        ("ftp://127.0.0.1:1/omni", Transport::Sse),
        ("not a url", Transport::Ws),
    ] {
        let (_client, mut messages) = Client::<Relay>::builder(url).transport(transport).connect();
        let all = until_the_end(&mut messages).await;
        assert!(
            matches!(
                &all[..],
                [Relay::Transport(TransportState::Error(
                    TransportError::Init { .. }
                ))]
            ),
            "{url} {transport:?}: {all:?}"
        );
    }
    let (_client, mut messages) = Client::<Relay>::builder("https://127.0.0.1:1/omni")
        .root_certificate("not a certificate")
        .connect();
    let all = until_the_end(&mut messages).await;
    match &all[..] {
        [Relay::Transport(TransportState::Error(TransportError::Init { message }))] => {
            assert!(message.contains("root certificate"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let mux = Mux::builder("ftp://127.0.0.1:1/omni").connect();
    let (_, mut messages) = mux.join::<Relay>("relay-1", "relay", "token");
    let all = until_the_end(&mut messages).await;
    assert!(
        matches!(
            &all[..],
            [Relay::Transport(TransportState::Error(
                TransportError::Init { .. }
            ))]
        ),
        "{all:?}"
    );
}

#[tokio::test]
async fn a_path_that_is_not_there_is_not_retried() {
    let certs = Certificates::new();
    let (addr, accepted) = serve(certs.server_config()).await;
    for transport in TRANSPORTS {
        let before = accepted.load(Ordering::SeqCst);
        let (_client, mut messages) = Client::<Relay>::builder(format!("https://{addr}/nowhere"))
            .transport(transport)
            .backoff(backoff())
            .root_certificate(certs.ca.clone())
            .connect();
        let all = until_the_end(&mut messages).await;
        assert!(
            matches!(
                &all[..],
                [
                    Relay::Transport(TransportState::Connecting),
                    Relay::Transport(TransportState::Disconnected { code: 404, .. }),
                    Relay::Transport(TransportState::Error(TransportError::Init { .. })),
                ]
            ),
            "{transport:?}: {all:?}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst) - before, 1, "{transport:?}");
    }
}

/// Starts the chat demo over TLS on `port` with the certificate and key in `dir`, and waits
/// until it listens.
fn chat_server_tls(port: u16, dir: &Path) -> std::process::Child {
    use std::io::BufRead;
    let mut child = Command::new(example("chat"))
        .args(["--port", &port.to_string()])
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("chat listening on https://"), "{line}");
    child
}

/// Runs `chat_cli --count 20` against the demo at `port`; returns whether it succeeded, its
/// stdout and its stderr.
fn chat_cli(
    port: u16,
    transport: &str,
    extra: &[&std::ffi::OsStr],
    ssl_cert_file: Option<&Path>,
) -> (bool, String, String) {
    let mut command = Command::new(example("chat_cli"));
    command
        .args(["--url", &format!("https://localhost:{port}/omni")])
        .args(["--author", "tls", "--transport", transport, "--count", "20"])
        .args(extra)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(file) = ssl_cert_file {
        command.env("SSL_CERT_FILE", file);
    }
    let mut child = command.spawn().unwrap();
    let status = wait(&mut child, Duration::from_secs(60));
    let output = child.wait_with_output().unwrap();
    (
        status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn chat_cli_over_tls_trusts_the_ca_it_is_given_and_gives_up_on_one_it_is_not() {
    let dir = Certificates::new().write("chat");
    let port = free_port();
    let mut server = chat_server_tls(port, &dir);
    let ca = dir.join("ca.pem");
    for transport in ["ws", "http", "sse"] {
        let (ok, out, err) = chat_cli(
            port,
            transport,
            &["--ca-cert".as_ref(), ca.as_os_str()],
            None,
        );
        assert!(ok, "{transport}: {err}");
        assert_eq!(
            out.lines().last(),
            Some("20 confirmed"),
            "{transport}: {err}"
        );
    }
    // The CA through the platform's roots instead.
    let (ok, out, err) = chat_cli(port, "ws", &[], Some(&ca));
    assert!(ok, "SSL_CERT_FILE: {err}");
    assert_eq!(out.lines().last(), Some("20 confirmed"));

    // Without it, the first attempt is the last, and says why.
    let (ok, _, err) = chat_cli(port, "ws", &[], None);
    assert!(!ok, "{err}");
    assert!(err.contains("certificate"), "{err}");
    assert_eq!(err.matches("connecting").count(), 1, "{err}");

    server.kill().unwrap();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
