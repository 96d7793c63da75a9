//! TLS for `https://` endpoints: one rustls configuration per client, used by the WebSocket
//! connector and the HTTP client alike, so that every transport trusts the same roots.
//!
//! The roots are the platform's (read by `rustls-native-certs`, which honours `SSL_CERT_FILE`
//! and `SSL_CERT_DIR`), Mozilla's with the `tls-webpki-roots` feature, and whatever the
//! builder was given
//! ([`ClientBuilder::root_certificate`](crate::client::ClientBuilder::root_certificate)).
//! Without the `tls` feature there is no TLS at all, and an `https://` URL is refused at once.

#[cfg(feature = "tls")]
use std::sync::Arc;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::TransportError;

/// A client's WebSocket, as [`Connector::websocket`] opens it.
pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a client's connections are secured.
#[derive(Clone)]
pub(crate) struct Connector {
    #[cfg(feature = "tls")]
    config: Arc<rustls::ClientConfig>,
}

impl Connector {
    /// The configuration for a client that trusts the default roots and every certificate in
    /// the PEM documents `roots`.
    #[cfg(feature = "tls")]
    pub(crate) fn new(roots: &[Vec<u8>]) -> Result<Self, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let mut store = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for err in &native.errors {
            // One unreadable file in the platform's store spoils none of the others.
            tracing::debug!(%err, "skipping part of the platform's certificate store");
        }
        store.add_parsable_certificates(native.certs);
        #[cfg(feature = "tls-webpki-roots")]
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for pem in roots {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| format!("bad root certificate: {err}"))?;
            if certs.is_empty() {
                return Err("bad root certificate: no PEM certificate in it".into());
            }
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|err| format!("bad root certificate: {err}"))?;
            }
        }
        // The provider is named rather than taken from the process default, which is unset
        // (or ambiguous) when the application's other crates enable other providers.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| err.to_string())?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }

    #[cfg(not(feature = "tls"))]
    pub(crate) fn new(roots: &[Vec<u8>]) -> Result<Self, String> {
        let _ = roots;
        Ok(Self {})
    }

    /// The HTTP client of the `http` and `sse` transports.
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, String> {
        let builder = reqwest::Client::builder();
        // reqwest adds its own ALPN to its copy; the WebSocket's stays HTTP/1.1 only.
        #[cfg(feature = "tls")]
        let builder = builder.tls_backend_preconfigured((*self.config).clone());
        builder.build().map_err(|err| err.to_string())
    }

    /// Opens a WebSocket to `url` with `headers` on its handshake, through TLS for `wss://`.
    pub(crate) async fn websocket(
        &self,
        url: &reqwest::Url,
        headers: reqwest::header::HeaderMap,
        config: WebSocketConfig,
    ) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;

        let mut request = url.as_str().into_client_request()?;
        request.headers_mut().extend(headers);
        #[cfg(feature = "tls")]
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            Some(tokio_tungstenite::Connector::Rustls(self.config.clone())),
        );
        #[cfg(not(feature = "tls"))]
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        Ok(connect.await?.0)
    }
}

/// Whether this build can reach an endpoint with `scheme`: the URL's problem if not.
pub(crate) fn check_scheme(scheme: &str) -> Result<(), String> {
    match scheme {
        "http" | "ws" => Ok(()),
        "https" | "wss" if cfg!(feature = "tls") => Ok(()),
        "https" | "wss" => Err(format!(
            "`{scheme}://` needs TLS, which this build leaves out: enable omni's `tls` feature"
        )),
        other => Err(format!(
            "unsupported URL scheme `{other}`: use http or https (ws or wss)"
        )),
    }
}

/// The TLS failure in `err`'s chain that retrying cannot fix: a certificate the client does
/// not trust, or a server with nothing in common with it. A handshake cut short, or any other
/// I/O failure, is not one: the next attempt may well succeed.
pub(crate) fn permanent(err: &(dyn std::error::Error + 'static)) -> Option<TransportError> {
    #[cfg(feature = "tls")]
    {
        let mut next = Some(err);
        while let Some(err) = next {
            if let Some(tls) = err.downcast_ref::<rustls::Error>()
                && matches!(
                    tls,
                    rustls::Error::InvalidCertificate(_)
                        | rustls::Error::NoCertificatesPresented
                        | rustls::Error::PeerIncompatible(_)
                )
            {
                return Some(TransportError::Tls {
                    message: tls.to_string(),
                });
            }
            // `io::Error::source` skips the error it wraps (reqwest's connector wraps
            // tokio-rustls's in another), so step into it instead.
            next = match err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner),
                None => err.source(),
            };
        }
    }
    let _ = err;
    None
}
