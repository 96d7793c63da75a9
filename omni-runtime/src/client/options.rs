//! The options both builders take, [`ClientBuilder`](crate::client::ClientBuilder)'s and
//! [`MuxBuilder`](crate::client::MuxBuilder)'s: how a client connects, retries, checks and
//! paces its connection, and whom it trusts.
//!
//! Each builder holds an [`Options`] and forwards these setters to it through [`setters!`],
//! so that every shared setter is written, and documented, once, and still shows on both
//! builders' pages.

use std::future::Future;
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::config::{Backoff, Heartbeat};
use super::credentials::Credentials;
use crate::presence::Modes;
use crate::wire::{Codec, TraceParent};

/// What every connection reads of the options: copied into each transport's task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) backoff: Backoff,
    pub(crate) heartbeat: Heartbeat,
    /// Messages that may wait for the server's acknowledgement (per component on a mux).
    pub(crate) queue: usize,
    /// Messages in flight at once (sent, not yet acknowledged).
    pub(crate) window: usize,
    pub(crate) connect_timeout: Duration,
    /// A write that makes no progress for this long ends the connection.
    pub(crate) write_timeout: Duration,
    /// How long `Client::request` waits for its answer.
    pub(crate) request_timeout: Duration,
    /// The WebSocket read buffer.
    pub(crate) read_buffer: usize,
    pub(crate) max_message_bytes: usize,
    /// The encoding of every frame, both ways.
    pub(crate) codec: Codec,
    /// The trace context sent in `hello` and `join`, and as a header of HTTP requests.
    pub(crate) traceparent: Option<TraceParent>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            heartbeat: Heartbeat::default(),
            queue: 1024,
            // Well inside the 1024 refs a server remembers by default, so that a resend after a
            // lost ack is always recognised (see `outbox::Queue`).
            window: 256,
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            // A reply that has not come in a minute is not coming in time for anyone waiting.
            request_timeout: Duration::from_secs(60),
            // tungstenite zero-fills its read buffer before every read: a small one is much
            // faster than its 128 KiB default (DESIGN.md, performance notes).
            read_buffer: 4 * 1024,
            max_message_bytes: 64 * 1024,
            codec: Codec::Json,
            traceparent: None,
        }
    }
}

/// What both builders configure.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) settings: Settings,
    /// PEM documents of roots to trust besides the default ones.
    pub(crate) roots: Vec<Vec<u8>>,
    pub(crate) credentials: Credentials,
    /// What the client (each component, on a mux) is shown of each topic's presence.
    pub(crate) presence: Modes,
}

impl Options {
    pub(crate) fn backoff(&mut self, backoff: Backoff) {
        self.settings.backoff = backoff;
    }

    pub(crate) fn heartbeat(&mut self, heartbeat: Heartbeat) {
        self.settings.heartbeat = heartbeat;
    }

    pub(crate) fn queue(&mut self, capacity: usize) {
        self.settings.queue = capacity.max(1);
    }

    pub(crate) fn window(&mut self, messages: usize) {
        self.settings.window = messages.max(1);
    }

    pub(crate) fn connect_timeout(&mut self, timeout: Duration) {
        self.settings.connect_timeout = timeout;
    }

    pub(crate) fn write_timeout(&mut self, timeout: Duration) {
        self.settings.write_timeout = timeout;
    }

    pub(crate) fn request_timeout(&mut self, timeout: Duration) {
        self.settings.request_timeout = timeout;
    }

    pub(crate) fn read_buffer(&mut self, bytes: usize) {
        self.settings.read_buffer = bytes.max(1);
    }

    pub(crate) fn max_message_bytes(&mut self, limit: usize) {
        self.settings.max_message_bytes = limit;
    }

    pub(crate) fn codec(&mut self, codec: Codec) {
        self.settings.codec = codec;
    }

    pub(crate) fn traceparent(&mut self, parent: TraceParent) {
        self.settings.traceparent = Some(parent);
    }

    pub(crate) fn presence(&mut self, modes: Modes) {
        self.presence = modes;
    }

    #[cfg(feature = "tls")]
    pub(crate) fn root_certificate(&mut self, pem: Vec<u8>) {
        self.roots.push(pem);
    }

    pub(crate) fn credentials<F, Fut, E>(&mut self, provider: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HeaderMap, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.credentials = Credentials::new(provider);
    }
}

/// The public setters of [`Options`], for the `impl` block of a builder that holds them in a
/// field named `options`. A macro rather than a trait: a trait's methods would need importing
/// before they could be called, and would not show among the builder's own.
macro_rules! setters {
    () => {
        /// Reconnection backoff.
        pub fn backoff(mut self, backoff: $crate::client::config::Backoff) -> Self {
            self.options.backoff(backoff);
            self
        }

        /// Liveness checking.
        pub fn heartbeat(mut self, heartbeat: $crate::client::config::Heartbeat) -> Self {
            self.options.heartbeat(heartbeat);
            self
        }

        /// How many messages may wait for the server's acknowledgement (on a mux, how many
        /// each component may). Default 1024.
        pub fn queue(mut self, capacity: usize) -> Self {
            self.options.queue(capacity);
            self
        }

        /// How many messages may be on their way at once (on a mux, each component's), sent
        /// but not yet acknowledged; more go as acknowledgements arrive, so a backlog after a
        /// reconnect is paced by the server. Keep it below the server's
        /// `Limits::remembered_refs` (default 1024), so that a message resent after a lost
        /// acknowledgement is recognised and not handled twice. Default 256.
        pub fn window(mut self, messages: usize) -> Self {
            self.options.window(messages);
            self
        }

        /// How long a connection attempt may take. Default 10 s.
        pub fn connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.options.connect_timeout(timeout);
            self
        }

        /// WebSocket only (a mux is one): a write that makes no progress for this long (the
        /// server stopped reading) ends the connection, which is then replaced. Default 10 s.
        pub fn write_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.options.write_timeout(timeout);
            self
        }

        /// How long [`Client::request`](crate::client::Client::request) waits for the message's
        /// answer (offline time included) before it gives up with
        /// [`RequestError::Timeout`](crate::client::RequestError::Timeout); the message stays
        /// queued, and a late reply is dropped. Default 60 s.
        pub fn request_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.options.request_timeout(timeout);
            self
        }

        /// WebSocket only (a mux is one): the size of the socket's read buffer. Default 4 KiB.
        pub fn read_buffer(mut self, bytes: usize) -> Self {
            self.options.read_buffer(bytes);
            self
        }

        /// The server's frame limit (`Limits::max_frame_bytes`, default 64 KiB): a larger
        /// message is refused by [`Client::send`](crate::client::Client::send), and HTTP
        /// requests are batched under it.
        pub fn max_message_bytes(mut self, limit: usize) -> Self {
            self.options.max_message_bytes(limit);
            self
        }

        /// The encoding of every frame, both ways (on a mux, of every component's frames).
        /// Default: [`Codec::Json`](crate::wire::Codec::Json).
        ///
        /// [`Codec::MsgPack`](crate::wire::Codec::MsgPack) sends binary WebSocket messages
        /// (`?codec=msgpack`, `/mux?codec=msgpack` on a mux) or `application/msgpack` HTTP
        /// bodies: smaller and quicker to read than JSON, and an
        /// [`omni::Bytes`](crate::wire::Bytes) field travels as its bytes rather than as
        /// base64. Server-Sent Events carry text only, so with
        /// [`Transport::Sse`](crate::client::Transport::Sse) it is refused by
        /// [`ClientBuilder::connect`](crate::client::ClientBuilder::connect) (a
        /// `TransportError::Init`). A server that does not offer MessagePack (one from before
        /// it) answers in JSON: the client reports that as a `TransportError::Init` and
        /// stops, rather than retrying.
        ///
        /// ```no_run
        /// use omni::client::{Client, Mux, Transport};
        /// use omni::wire::{Bytes, Codec};
        ///
        /// #[omni::protocol]
        /// #[derive(Debug, Clone, PartialEq)]
        /// enum Photos {
        ///     #[client]
        ///     Upload(Bytes),
        ///     #[server]
        ///     Stored(u64),
        /// }
        ///
        /// # async fn run() {
        /// let (client, messages) = Client::<Photos>::builder("http://127.0.0.1:3000/omni")
        ///     .transport(Transport::Ws)
        ///     .codec(Codec::MsgPack)
        ///     .connect();
        /// // 64 KiB of image: about 64 KiB on the wire, where JSON's base64 takes 86.
        /// client.send(PhotosFromClient::Upload(Bytes(vec![0; 64 * 1024]))).unwrap();
        ///
        /// // Every component of this mux speaks MessagePack.
        /// let mux = Mux::builder("http://127.0.0.1:3000/omni")
        ///     .codec(Codec::MsgPack)
        ///     .connect();
        /// # }
        /// ```
        pub fn codec(mut self, codec: $crate::wire::Codec) -> Self {
            self.options.codec(codec);
            self
        }

        /// A W3C trace context to send with every connect: in `hello` (and each mux `join`),
        /// and as the `traceparent` header of HTTP requests. The server's spans for the
        /// session then join this trace (with its `opentelemetry` feature, as children of
        /// `parent`'s span). Servers that predate it ignore it.
        ///
        /// ```no_run
        /// # #[omni::protocol]
        /// # #[derive(Debug, Clone, PartialEq)]
        /// # enum Echo { #[client] Say(String), #[server] Heard(String) }
        /// # fn run() -> Option<()> {
        /// use omni::wire::TraceParent;
        ///
        /// let parent = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
        /// let (client, messages) = omni::client::Client::<Echo>::builder("http://127.0.0.1:3000/omni")
        ///     .traceparent(parent)
        ///     .connect();
        /// # Some(())
        /// # }
        /// ```
        pub fn traceparent(mut self, parent: $crate::wire::TraceParent) -> Self {
            self.options.traceparent(parent);
            self
        }

        /// What the client is shown of each topic's presence (on a mux, each component):
        /// the whole list (the default), only the count, or nothing. A topic shown as a
        /// count has no list on the client ([`Client::presence`](crate::client::Client::presence)
        /// is empty for it); its count is in
        /// [`Client::presence_count`](crate::client::Client::presence_count) and in each
        /// [`Change`](crate::presence::Change).
        ///
        /// ```no_run
        /// # #[omni::protocol]
        /// # #[derive(Debug, Clone, PartialEq)]
        /// # enum Echo { #[client] Say(String), #[server] Heard(String) }
        /// use omni::presence::{Mode, Modes};
        ///
        /// let (client, messages) = omni::client::Client::<Echo>::builder("http://127.0.0.1:3000/omni")
        ///     .presence(Modes::new().topic("lobby", Mode::Count).otherwise(Mode::None))
        ///     .connect();
        /// ```
        pub fn presence(mut self, modes: $crate::presence::Modes) -> Self {
            self.options.presence(modes);
            self
        }

        /// Trusts the certificates in `pem` (one or more PEM `CERTIFICATE` blocks) as roots,
        /// on top of the platform's: for a server whose certificate a private CA issued. A
        /// document with no certificate in it is reported by [`connect`](Self::connect).
        #[cfg(feature = "tls")]
        #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
        pub fn root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
            self.options.root_certificate(pem.into());
            self
        }

        /// Calls `provider` before every connection attempt (the first and each reconnect)
        /// for headers to send with it: an `Authorization` with a fresh token, say. On the
        /// WebSocket (a mux's included) they go with the upgrade request; on HTTP and SSE
        /// with every request of the connection. The server reads them in a middleware, which
        /// can insert what it learnt into the request's extensions (the handler's
        /// `Context::extensions`) or refuse with 401.
        ///
        /// A provider that fails, or a server that answers a connection attempt with 401, is
        /// reported as `TransportState::Unauthorized` (on a mux, to every component) and not
        /// retried: the client keeps its queue and waits for
        /// [`Client::reconnect`](crate::client::Client::reconnect) (or
        /// [`Mux::reconnect`](crate::client::Mux::reconnect)). A 401 to a later request of a
        /// connection that was up (HTTP and SSE send the attempt's headers with each) means
        /// they expired: the client reconnects, asking the provider again. A provider that
        /// hangs is given the connect timeout, then the attempt counts as failed and is
        /// retried with backoff.
        ///
        /// ```no_run
        /// use omni::client::{Client, HeaderMap, HeaderValue, Mux};
        ///
        /// #[omni::protocol]
        /// #[derive(Debug, Clone, PartialEq)]
        /// enum Echo {
        ///     #[client]
        ///     Say(String),
        ///     #[server]
        ///     Heard(String),
        /// }
        ///
        /// async fn fresh_token() -> Result<String, std::io::Error> {
        ///     Ok("a-short-lived-token".into())
        /// }
        ///
        /// async fn headers() -> Result<HeaderMap, std::io::Error> {
        ///     let token = fresh_token().await?;
        ///     let mut headers = HeaderMap::new();
        ///     let value = HeaderValue::try_from(format!("Bearer {token}"))
        ///         .map_err(std::io::Error::other)?;
        ///     headers.insert("authorization", value);
        ///     Ok(headers)
        /// }
        ///
        /// # async fn run() {
        /// let (client, messages) = Client::<Echo>::builder("https://example.com/omni")
        ///     .credentials(headers)
        ///     .connect();
        /// let mux = Mux::builder("https://example.com/omni")
        ///     .credentials(headers)
        ///     .connect();
        /// # }
        /// ```
        pub fn credentials<F, Fut, E>(mut self, provider: F) -> Self
        where
            F: Fn() -> Fut + Send + Sync + 'static,
            Fut: ::std::future::Future<Output = Result<::reqwest::header::HeaderMap, E>>
                + Send
                + 'static,
            E: ::std::fmt::Display,
        {
            self.options.credentials(provider);
            self
        }
    };
}

pub(crate) use setters;
