//! The Rust client: a typed connection to an omni endpoint over WebSocket, HTTP or SSE that
//! reconnects by itself, resumes its session, and loses and doubles nothing.
//!
//! [`Client::builder`] takes the endpoint's URL prefix (the one the server nests its router
//! under). [`ClientBuilder::connect`] starts the connection in the background and returns the
//! [`Client`], to send with, and [`Messages`], the stream of everything the application
//! should apply: server messages, and [`TransportState`] changes as the protocol's
//! `Transport` variant, in order.
//!
//! Messages sent while offline wait in a bounded queue; each carries a `ref` and is sent again
//! after every reconnect until the server acknowledges it (the server drops repeats it has
//! already handled). At most a window of them is on its way at once
//! ([`ClientBuilder::window`]), so that a backlog after a reconnect goes out as fast as the
//! server acknowledges it. Every sequenced server message arrives exactly once, in order, across
//! reconnects; when the server can no longer replay what was missed, the application gets
//! `TransportState::Reset` and should drop what it derived from earlier messages.
//!
//! ```no_run
//! use omni::client::{Client, Transport};
//!
//! #[omni::protocol]
//! #[derive(Debug, Clone, PartialEq)]
//! enum Echo {
//!     #[client]
//!     Say(String),
//!     #[server]
//!     Heard(String),
//! }
//!
//! # async fn run() {
//! let (client, mut messages) = Client::<Echo>::builder("http://127.0.0.1:3000/omni")
//!     .transport(Transport::Ws)
//!     .connect();
//! client.send(EchoFromClient::Say("hello".into())).unwrap();
//! while let Some(msg) = messages.recv().await {
//!     match msg {
//!         Echo::Heard(text) => println!("{text}"),
//!         Echo::Transport(state) => println!("transport: {state:?}"),
//!         Echo::Say(_) => {}
//!     }
//! }
//! # }
//! ```

mod config;
mod dialer;
mod http;
mod link;
mod mux;
mod outbox;
mod sse;
mod tls;
mod wire;
mod ws;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

pub use self::config::{Backoff, Heartbeat, Transport};
use self::config::{Credentials, Settings};
use self::dialer::{Dial, Ended};
use self::link::Link;
pub use self::mux::{Join, Mux, MuxBuilder};
use self::outbox::Outbox;
use self::wire::Frame;
use crate::wire::Codec;
use crate::wire::connect::{Connect, SESSION_HEADER};
use crate::{ClientFrame, Cursors, Protocol, Ref, Seq, SessionId, TransportError, TransportState};

/// The headers a credentials provider returns (see [`ClientBuilder::credentials`]).
pub use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Most messages one HTTP request carries.
const BATCH: usize = 64;

/// `hello` in `codec` with this build's protocol name and schema hash, and `after` and topic
/// cursors if given.
fn hello<P: Protocol>(codec: Codec, after: Option<Seq>, topics: Option<&Cursors>) -> Frame {
    let hello = ClientFrame::<()>::Hello {
        protocol: Some(P::NAME.to_owned()),
        version: Some(P::version().to_owned()),
        session: None,
        after,
        topics: topics.cloned(),
    };
    // Strings, numbers and a map of them: nothing in it can fail to encode.
    wire::encode(codec, &hello).unwrap_or(Frame::Text(String::new()))
}

/// Why [`Client::acked`] has no acknowledgement to report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The server answered the message with an `error` frame: `rejected` when the
    /// handler returned an `Err`, `handler_failed` when it panicked, `bad_payload`, ….
    #[error("the server refused the message ({code}): {message}")]
    Rejected {
        /// The v1 error code.
        code: crate::ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The client was closed before the server answered.
    #[error("the client closed before the server answered")]
    Closed,
    /// The server (or the URL) refused the client for good before it answered.
    #[error("the client was refused before the server answered: {0}")]
    Refused(TransportError),
    /// This client never gave out the `ref`, or it was answered too long ago to be
    /// remembered (the client remembers as many answers as its queue holds).
    #[error("no message with this ref is waiting, or was answered lately")]
    Unknown,
}

/// What a connect hook (see [`ClientBuilder::on_connect`]) is told about the session the
/// server just welcomed the client into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// The session.
    pub session: SessionId,
    /// Whether it is the session the client had, resumed with nothing lost; `false` for the
    /// first connect and for a new session after the old one was lost (a server restart):
    /// then the server knows nothing of this client any more.
    pub resumed: bool,
}

/// Takes a copy of a request's reply, type-erased so the link needs no `Clone` bound.
type Reply = Box<dyn FnOnce(&(dyn std::any::Any + Send)) + Send>;

/// Why a [`Client::request`] got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The message could not be queued.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The server answered the message with an `error` frame, or the client ended first.
    #[error(transparent)]
    Answer(#[from] AckError),
    /// The handler acknowledged the message without replying to it.
    #[error("the server handled the message without replying")]
    NoReply,
}

/// A connect hook: the messages to send first on a connection.
pub(crate) type Hook<C> = Arc<dyn Fn(ConnectInfo) -> Vec<C> + Send + Sync>;

/// Why a message could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The queue of unacknowledged messages is full: the server is unreachable or slow.
    #[error("{capacity} messages are already waiting for the server")]
    QueueFull {
        /// The queue's size.
        capacity: usize,
    },
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// The server (or the URL) refused the client for good: a 403 or 404, a TLS failure, a
    /// server of another protocol version. The stream said so, once, as a
    /// `TransportState::Error`.
    #[error("the client was refused: {0}")]
    Refused(TransportError),
    /// The message could not be encoded.
    #[error("could not encode the message: {0}")]
    Encode(String),
    /// The encoded message is larger than the server accepts (see
    /// [`ClientBuilder::max_message_bytes`]); it would never be acknowledged.
    #[error("the message is {size} bytes; the server accepts at most {limit}")]
    TooLarge {
        /// The encoded frame's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// What the client and its background task share.
pub(crate) struct Shared {
    outbox: Outbox,
    max_message_bytes: usize,
    /// The encoding of the connection's frames, both ways.
    codec: Codec,
    /// Something was queued, the window opened, or (for a mux component) it was closed.
    /// Shared by every component of a mux, whose one task serves them all.
    wake: Arc<Notify>,
    /// The application asks to connect now (after refused credentials, or during a
    /// backoff). Shared by every component of a mux, which all ride one socket.
    reconnect: Arc<Notify>,
    closed: watch::Sender<bool>,
    /// Why the client ended for good, when the server (or its URL) refused it: what `send`
    /// and `acked` answer with afterwards.
    refusal: Mutex<Option<TransportError>>,
    /// The first outcome of connecting: welcomed into a session, or refused.
    outcome: watch::Sender<Option<Result<SessionId, TransportError>>>,
    /// The requests waiting for their reply, by `ref`: each takes a copy of the first
    /// sequenced message that answers it (see [`Client::request`]).
    requests: Mutex<HashMap<Ref, Reply>>,
    session: Mutex<Option<SessionId>>,
    /// Each topic's presence list, as the server's `presence_state` and `presence_diff`
    /// frames left it.
    presence: Mutex<std::collections::BTreeMap<String, crate::presence::Held>>,
    /// Mux only: the component's id, which every `msg` names.
    component: Option<Arc<str>>,
}

impl Shared {
    /// Ends the client for good because of `error`: what was waiting is told why.
    pub(crate) fn refuse(&self, error: TransportError) {
        *self.refusal.lock().unwrap() = Some(error.clone());
        self.first_outcome(Err(error));
        self.closed.send_replace(true);
        self.wake.notify_one();
    }

    /// Records how connecting went, unless it is already known.
    pub(crate) fn first_outcome(&self, outcome: Result<SessionId, TransportError>) {
        self.outcome.send_if_modified(|held| {
            let first = held.is_none();
            if first {
                *held = Some(outcome);
            }
            first
        });
    }

    /// `payload` answered the message `reference`: a request waiting for it takes a copy.
    pub(crate) fn replied(&self, reference: Ref, payload: &(dyn std::any::Any + Send)) {
        if let Some(take) = self.requests.lock().unwrap().remove(&reference) {
            take(payload);
        }
    }

    /// The refusal that ended the client, if one did.
    fn refusal(&self) -> Option<TransportError> {
        self.refusal.lock().unwrap().clone()
    }

    /// `msg` as this client's `msg` frame with `reference`, if the server accepts its size.
    fn encode(&self, msg: &impl serde::Serialize, reference: Ref) -> Result<Frame, SendError> {
        let frame = ClientFrame::Msg {
            payload: msg,
            reference: Some(reference),
            id: self.component.as_deref().map(str::to_owned),
        };
        let frame =
            wire::encode(self.codec, &frame).map_err(|err| SendError::Encode(err.to_string()))?;
        let limit = self.max_message_bytes;
        if frame.len() > limit {
            return Err(SendError::TooLarge {
                size: frame.len(),
                limit,
            });
        }
        Ok(frame)
    }

    fn new(settings: &Settings, wake: Arc<Notify>) -> Self {
        Self {
            outbox: Outbox::new(settings.queue, settings.window, wake.clone()),
            max_message_bytes: settings.max_message_bytes,
            codec: settings.codec,
            wake,
            reconnect: Arc::new(Notify::new()),
            closed: watch::channel(false).0,
            refusal: Mutex::new(None),
            outcome: watch::channel(None).0,
            requests: Mutex::default(),
            session: Mutex::new(None),
            presence: Mutex::default(),
            component: None,
        }
    }
}

/// Everything a transport needs to know.
#[derive(Clone)]
pub(crate) struct Config {
    url: reqwest::Url,
    transport: Transport,
    settings: Settings,
    poll_interval: Duration,
    http: reqwest::Client,
    tls: tls::Connector,
    credentials: Credentials,
}

impl Config {
    /// What one HTTP request may carry: a body under the server's frame limit, with room for
    /// the `hello` and the brackets.
    fn batch(&self) -> outbox::Batch {
        outbox::Batch {
            frames: BATCH,
            bytes: self.settings.max_message_bytes.saturating_sub(512),
        }
    }
}

/// Configures a [`Client`].
#[must_use]
pub struct ClientBuilder<P: Protocol> {
    url: String,
    transport: Transport,
    settings: Settings,
    poll_interval: Duration,
    /// PEM documents of roots to trust besides the default ones.
    roots: Vec<Vec<u8>>,
    credentials: Credentials,
    hook: Option<Hook<P::Client>>,
    protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol> ClientBuilder<P>
where
    P: Send,
{
    /// The transport. Default: [`Transport::Ws`].
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Reconnection backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Liveness checking.
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.settings.heartbeat = heartbeat;
        self
    }

    /// How many messages may wait for the server's acknowledgement. Default 1024.
    pub fn queue(mut self, capacity: usize) -> Self {
        self.settings.queue = capacity.max(1);
        self
    }

    /// How many messages may be on their way at once, sent but not yet acknowledged; more
    /// go as acknowledgements arrive, so a backlog after a reconnect is paced by the server.
    /// Keep it below the server's `Limits::remembered_refs` (default 1024), so that a message
    /// resent after a lost acknowledgement is recognised and not handled twice. Default 256.
    pub fn window(mut self, messages: usize) -> Self {
        self.settings.window = messages.max(1);
        self
    }

    /// How long a connection attempt may take. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// WebSocket only: a write that makes no progress for this long (the server stopped
    /// reading) ends the connection, which is then replaced. Default 10 s.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.settings.write_timeout = timeout;
        self
    }

    /// WebSocket only: the size of the socket's read buffer. Default 4 KiB.
    pub fn read_buffer(mut self, bytes: usize) -> Self {
        self.settings.read_buffer = bytes.max(1);
        self
    }

    /// HTTP transport only: how often to ask for server messages when the application sends
    /// nothing. Default 1 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The server's frame limit (`Limits::max_frame_bytes`, default 64 KiB): a larger message
    /// is refused by [`Client::send`], and HTTP requests are batched under it.
    pub fn max_message_bytes(mut self, limit: usize) -> Self {
        self.settings.max_message_bytes = limit;
        self
    }

    /// The encoding of every frame, both ways. Default: [`Codec::Json`].
    ///
    /// [`Codec::MsgPack`] sends binary WebSocket messages (`?codec=msgpack`) or
    /// `application/msgpack` HTTP bodies: smaller and quicker to read than JSON, and an
    /// [`omni::Bytes`](crate::wire::Bytes) field travels as its bytes rather than as base64.
    /// Server-Sent Events carry text only, so with [`Transport::Sse`] it is refused by
    /// [`connect`](Self::connect) (a `TransportError::Init`). A server that does not offer
    /// MessagePack (one from before it) answers in JSON: the client reports that as a
    /// `TransportError::Init` and stops, rather than retrying.
    ///
    /// ```no_run
    /// use omni::client::{Client, Transport};
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
    /// # }
    /// ```
    pub fn codec(mut self, codec: Codec) -> Self {
        self.settings.codec = codec;
        self
    }

    /// Trusts the certificates in `pem` (one or more PEM `CERTIFICATE` blocks) as roots, on
    /// top of the platform's: for a server whose certificate a private CA issued. A document
    /// with no certificate in it is reported by [`connect`](Self::connect).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// Calls `provider` before every connection attempt (the first and each reconnect) for
    /// headers to send with it: an `Authorization` with a fresh token, say. On the WebSocket
    /// they go with the upgrade request; on HTTP and SSE with every request of the connection.
    /// The server reads them in a middleware, which can insert what it learnt into the
    /// request's extensions (the handler's `Context::extensions`) or refuse with 401.
    ///
    /// A provider that fails, or a server that answers a connection attempt with 401, is
    /// reported as `TransportState::Unauthorized` and not retried: the client keeps its queue
    /// and waits for [`Client::reconnect`]. A 401 to a later request of a connection that was
    /// up (HTTP and SSE send the attempt's headers with each) means they expired: the client
    /// reconnects, asking the provider again. A provider that hangs is given the connect
    /// timeout, then the attempt counts as failed and is retried with backoff.
    ///
    /// ```no_run
    /// use omni::client::{Client, HeaderMap, HeaderValue};
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
    /// # async fn run() {
    /// let (client, messages) = Client::<Echo>::builder("https://example.com/omni")
    ///     .credentials(|| async {
    ///         let token = fresh_token().await?;
    ///         let mut headers = HeaderMap::new();
    ///         let value = HeaderValue::try_from(format!("Bearer {token}"))
    ///             .map_err(std::io::Error::other)?;
    ///         headers.insert("authorization", value);
    ///         Ok::<_, std::io::Error>(headers)
    ///     })
    ///     .connect();
    /// # }
    /// ```
    pub fn credentials<F, Fut, E>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<HeaderMap, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.credentials = Credentials::new(provider);
        self
    }

    /// Calls `hook` after every `welcome`, and sends the messages it returns on that
    /// connection before any queued one: the place to introduce the client again (join its
    /// rooms, say who it is) on a session the server has just made, as after a server
    /// restart, before what waited offline reaches the handler. [`ConnectInfo::resumed`]
    /// tells a resumed session from a new one.
    ///
    /// The hook's messages are not queued: a connection lost before they are acknowledged
    /// does not resend them, since the hook runs again on the next one. On the HTTP
    /// transport, whose session resumes without a `welcome`, the hook runs when an exchange
    /// first succeeds, and the first exchange of each connection carries no queued message.
    ///
    /// ```no_run
    /// use omni::client::Client;
    ///
    /// #[omni::protocol]
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Chat {
    ///     #[client]
    ///     Join(String),
    ///     #[client]
    ///     Say(String),
    ///     #[server]
    ///     Heard(String),
    /// }
    ///
    /// # async fn run() {
    /// let (client, messages) = Client::<Chat>::builder("http://127.0.0.1:3000/omni")
    ///     .on_connect(|info| {
    ///         if info.resumed {
    ///             Vec::new()
    ///         } else {
    ///             vec![ChatFromClient::Join("lobby".into())]
    ///         }
    ///     })
    ///     .connect();
    /// // Reaches the server after the `Join`, however long the client is offline.
    /// client.send(ChatFromClient::Say("hello".into())).unwrap();
    /// # }
    /// ```
    pub fn on_connect<F>(mut self, hook: F) -> Self
    where
        F: Fn(ConnectInfo) -> Vec<P::Client> + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Connects, and waits until the server has welcomed the client (`Ok`) or refused it
    /// (`Err`): a URL that cannot be used, a TLS failure, HTTP 403 or 404, a server of another
    /// protocol version, refused credentials ([`TransportError::Unauthorized`]). A server
    /// that cannot be reached yet is retried as [`connect`](Self::connect) retries it, so
    /// bound the wait with `tokio::time::timeout` where that matters. The stream still
    /// starts with every state, `Connected` included.
    ///
    /// ```no_run
    /// use omni::client::Client;
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
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let (client, _messages) = Client::<Echo>::builder("http://127.0.0.1:3000/omni")
    ///     .connected()
    ///     .await?;
    /// client.send(EchoFromClient::Say("hi".into()))?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connected(self) -> Result<(Client<P>, Messages<P>), TransportError> {
        let (client, messages) = self.connect();
        let mut outcome = client.shared.outcome.subscribe();
        let outcome = match outcome.wait_for(Option::is_some).await {
            Ok(held) => held.clone(),
            // The client's shared state outlives this wait: the sender cannot be gone.
            Err(_) => None,
        };
        match outcome {
            Some(Ok(_)) | None => Ok((client, messages)),
            Some(Err(error)) => Err(error),
        }
    }

    /// Starts connecting in the background (on the current tokio runtime) and returns the
    /// client and its message stream.
    ///
    /// What no retry can fix ends the stream after one `TransportState::Error` that says
    /// why: a URL that cannot be used (malformed, an unknown scheme, `https` without the
    /// `tls` feature), a bad root certificate, or MessagePack asked of SSE, at once, as a
    /// `TransportError::Init`; a server certificate the client does not trust, as a
    /// `TransportError::Tls`; HTTP 403 or 404, a server built from another version of the
    /// protocol, or one that answers in another codec than the one asked for. HTTP 401 (and a failing
    /// credentials provider) is `TransportState::Unauthorized`, after which the client waits
    /// for [`Client::reconnect`] (see [`credentials`](Self::credentials)). Everything else
    /// (refused, unreachable, dropped) is retried with backoff.
    pub fn connect(self) -> (Client<P>, Messages<P>) {
        let shared = Arc::new(Shared::new(&self.settings, Arc::new(Notify::new())));
        let (tx, rx) = mpsc::channel(1024);
        let client = Client {
            shared: shared.clone(),
            protocol: PhantomData,
        };
        let mut link = Link::<P>::new(shared, tx);
        link.hook = self.hook;
        let setup = match (self.transport, self.settings.codec) {
            // Refused here rather than by the server, with the way out.
            (Transport::Sse, Codec::MsgPack) => Err(format!(
                "Server-Sent Events carry text, so they cannot carry {} frames: \
                 MessagePack is available on Transport::Ws and Transport::Http",
                Codec::MsgPack
            )),
            _ => setup(&self.url, &self.roots),
        };
        match setup {
            Ok((url, tls, http)) => {
                let config = Config {
                    url,
                    transport: self.transport,
                    settings: self.settings,
                    poll_interval: self.poll_interval,
                    http,
                    tls,
                    credentials: self.credentials,
                };
                let backoff = config.settings.backoff;
                let shared = link.shared.clone();
                tokio::spawn(async move {
                    let mut single = Single { link, config };
                    dialer::dial(&mut single, backoff, &shared.closed, &shared.reconnect).await;
                });
            }
            Err(message) => {
                let error = TransportError::Init { message };
                link.shared.refuse(error.clone());
                // The link, and with it the stream, ends once this is said.
                tokio::spawn(async move {
                    link.state(TransportState::Error(error)).await;
                });
            }
        }
        (client, Messages { rx })
    }
}

/// A handle to send client messages with. Cheap to clone; the connection lives until
/// [`close`](Self::close) or until every handle and the [`Messages`] are dropped.
pub struct Client<P> {
    shared: Arc<Shared>,
    protocol: PhantomData<fn() -> P>,
}

impl<P> Clone for Client<P> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            protocol: PhantomData,
        }
    }
}

impl<P: Protocol + Send> Client<P> {
    /// A builder for a client of the endpoint under `url` (`http://host:port/prefix`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder<P> {
        ClientBuilder {
            url: url.into(),
            transport: Transport::default(),
            settings: Settings::default(),
            poll_interval: http::DEFAULT_POLL,
            roots: Vec::new(),
            credentials: Credentials::default(),
            hook: None,
            protocol: PhantomData,
        }
    }

    /// Queues a message for the server and returns its `ref`. It is sent at once when
    /// connected, otherwise after the next reconnect, and again until acknowledged.
    pub fn send(&self, msg: P::Client) -> Result<Ref, SendError> {
        self.queue(&msg)
    }

    /// Sends `msg` when it is one of the protocol's `#[client]` messages, and hands it back in
    /// every case, so that the application's `update` applies what it dispatched, as an Elm
    /// program does. The second value is `None` for a message that stays local, otherwise
    /// what [`send`](Self::send) returned.
    ///
    /// ```no_run
    /// use omni::client::Client;
    ///
    /// #[omni::protocol]
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Chat {
    ///     // Local: the text box changed.
    ///     Draft(String),
    ///     #[client]
    ///     Say(String),
    ///     #[server]
    ///     Heard(String),
    /// }
    ///
    /// fn update(draft: &mut String, msg: Chat) {
    ///     match msg {
    ///         Chat::Draft(text) => *draft = text,
    ///         Chat::Say(_) => draft.clear(),
    ///         Chat::Heard(_) | Chat::Transport(_) => {}
    ///     }
    /// }
    ///
    /// # async fn run() {
    /// let (client, _messages) = Client::<Chat>::builder("http://127.0.0.1:3000/omni").connect();
    /// let mut draft = String::new();
    /// for msg in [Chat::Draft("hello".into()), Chat::Say("hello".into())] {
    ///     let (msg, sent) = client.dispatch(msg);
    ///     if let Some(Err(err)) = sent {
    ///         eprintln!("not sent: {err}");
    ///     }
    ///     update(&mut draft, msg);
    /// }
    /// # }
    /// ```
    pub fn dispatch(&self, msg: P) -> (P, Option<Result<Ref, SendError>>) {
        // The wire form is encoded by reference and then lifted back: the message makes the
        // round trip by moves, so no `Clone` bound is needed.
        match msg.into_client() {
            Ok(client) => {
                let sent = self.queue(&client);
                (P::from_client(client), Some(sent))
            }
            Err(local) => (local, None),
        }
    }

    /// Encodes `msg` into a `msg` frame and queues it.
    fn queue(&self, msg: &P::Client) -> Result<Ref, SendError> {
        if *self.shared.closed.borrow() {
            return Err(match self.shared.refusal() {
                Some(error) => SendError::Refused(error),
                None => SendError::Closed,
            });
        }
        let queued = self
            .shared
            .outbox
            .push(|reference| self.shared.encode(msg, reference));
        match queued {
            None => Err(SendError::QueueFull {
                capacity: self.shared.outbox.capacity(),
            }),
            Some(Err(err)) => Err(err),
            Some(Ok(reference)) => Ok(reference),
        }
    }

    /// Resolves once the server has answered the message that [`send`](Self::send) returned
    /// `reference` for: `Ok` for its `ack` (the handler handled it), an
    /// [`AckError::Rejected`] for the `error` frame that answered it. Resends across
    /// reconnects are waited through. An answer that arrived before the call is reported
    /// too, for as many of the latest messages as the queue holds.
    ///
    /// ```no_run
    /// use omni::client::{AckError, Client};
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
    /// # async fn run() {
    /// let (client, _messages) = Client::<Echo>::builder("http://127.0.0.1:3000/omni").connect();
    /// let sent = client.send(EchoFromClient::Say("hello".into())).unwrap();
    /// match client.acked(sent).await {
    ///     Ok(()) => println!("handled"),
    ///     Err(AckError::Rejected { code, message }) => println!("refused ({code}): {message}"),
    ///     Err(err) => println!("{err}"),
    /// }
    /// # }
    /// ```
    pub async fn acked(&self, reference: Ref) -> Result<(), AckError> {
        let answer = match self.shared.outbox.watch(reference) {
            Ok(answer) => answer,
            Err(known) => return known,
        };
        let mut closed = self.shared.closed.subscribe();
        let ended = || match self.shared.refusal() {
            Some(error) => AckError::Refused(error),
            None => AckError::Closed,
        };
        tokio::select! {
            biased;
            answer = answer => answer.unwrap_or_else(|_| Err(ended())),
            () = dialer::closed(&mut closed) => Err(ended()),
        }
    }

    /// Sends `msg` and waits for the server's reply: the first sequenced message its handler
    /// sent while handling it (`cx.send`, which ties it to the message's `ref`). The reply
    /// also arrives on the message stream, as every server message does. A refusal (the
    /// handler's `Err`) is [`RequestError::Answer`] with [`AckError::Rejected`]; a handler
    /// that replies nothing is [`RequestError::NoReply`]. Resends across reconnects are
    /// waited through; bound the wait with `tokio::time::timeout` where that matters.
    ///
    /// ```no_run
    /// use omni::client::Client;
    ///
    /// #[omni::wire]
    /// #[derive(Debug, Clone, PartialEq)]
    /// pub struct Todo {
    ///     pub id: u64,
    ///     pub title: String,
    /// }
    ///
    /// #[omni::protocol]
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Board {
    ///     #[client]
    ///     Add(String),
    ///     #[server]
    ///     Added(Todo),
    /// }
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let (client, _messages) = Client::<Board>::builder("http://127.0.0.1:3000/omni").connect();
    /// let BoardFromServer::Added(todo) = client.request(BoardFromClient::Add("milk".into())).await?;
    /// println!("created #{}", todo.id);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request(&self, msg: P::Client) -> Result<P::Server, RequestError>
    where
        P::Server: Clone + Send + 'static,
    {
        let (tx, reply) = tokio::sync::oneshot::channel();
        let take: Reply = Box::new(move |payload| {
            if let Some(payload) = payload.downcast_ref::<P::Server>() {
                let _ = tx.send(payload.clone());
            }
        });
        let reference = {
            // Registered under the lock the link takes to look: the reply cannot slip past.
            let mut requests = self.shared.requests.lock().unwrap();
            let reference = self.queue(&msg)?;
            requests.insert(reference, take);
            reference
        };
        let mut reply = std::pin::pin!(reply);
        let answer = tokio::select! {
            biased;
            Ok(payload) = &mut reply => return Ok(payload),
            answer = self.acked(reference) => answer,
        };
        self.shared.requests.lock().unwrap().remove(&reference);
        // The reply, when there is one, is handled before the `ack` that follows it.
        if let Ok(payload) = reply.try_recv() {
            return Ok(payload);
        }
        match answer {
            Ok(()) => Err(RequestError::NoReply),
            Err(err) => Err(RequestError::Answer(err)),
        }
    }

    /// Messages sent but not yet acknowledged by the server.
    pub fn unacknowledged(&self) -> usize {
        self.shared.outbox.len()
    }

    /// The session the server assigned, once welcomed.
    pub fn session(&self) -> Option<SessionId> {
        *self.shared.session.lock().unwrap()
    }

    /// Who is on `topic` (a topic this client's session is subscribed to), as of the last
    /// `TransportState::Presence` the message stream delivered: empty for a topic without
    /// presence. Kept correct through reconnects: a resumed session gets the list again and
    /// the stream reports only what changed meanwhile.
    pub fn presence(&self, topic: &str) -> crate::presence::List {
        let lists = self.shared.presence.lock().unwrap();
        lists.get(topic).map(|held| held.list()).unwrap_or_default()
    }

    /// Connects again now: after `TransportState::Unauthorized` (once the application has
    /// credentials again; the provider is called first), or instead of waiting out a backoff
    /// delay. While connected, or connecting, it does nothing. On a mux component it
    /// reconnects the mux.
    pub fn reconnect(&self) {
        self.shared.reconnect.notify_waiters();
    }

    /// Closes the connection and stops reconnecting. The message stream ends. A mux
    /// component leaves its socket, and its session ends.
    pub fn close(&self) {
        self.shared.closed.send_replace(true);
        self.shared.wake.notify_one();
    }
}

/// The application's side of a client: server messages and transport changes, in order.
pub struct Messages<P> {
    rx: mpsc::Receiver<P>,
}

impl<P> Messages<P> {
    /// The next message, or `None` once the client is closed.
    pub async fn recv(&mut self) -> Option<P> {
        self.rx.recv().await
    }
}

impl<P> futures_util::Stream for Messages<P> {
    type Item = P;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<P>> {
        self.rx.poll_recv(cx)
    }
}

/// A single-protocol client's connections, on its transport.
struct Single<P: Protocol> {
    link: Link<P>,
    config: Config,
}

impl<P: Protocol + Send> Dial for Single<P> {
    async fn connection(&mut self) -> Ended {
        match self.config.transport {
            Transport::Ws => ws::session(&mut self.link, &self.config).await,
            Transport::Http => http::connection(&mut self.link, &self.config).await,
            Transport::Sse => sse::connection(&mut self.link, &self.config).await,
        }
    }

    async fn report(&mut self, state: TransportState) {
        self.link.state(state).await;
    }

    fn refused(&mut self, error: &TransportError) {
        self.link.shared.refuse(error.clone());
    }
}

/// What every connection of a client needs and no retry can change: the endpoint's URL,
/// checked, and how its connections are secured.
fn setup(
    url: &str,
    roots: &[Vec<u8>],
) -> Result<(reqwest::Url, tls::Connector, reqwest::Client), String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|err| format!("bad endpoint URL `{url}`: {err}"))?;
    tls::check_scheme(parsed.scheme()).map_err(|err| format!("bad endpoint URL `{url}`: {err}"))?;
    let tls = tls::Connector::new(roots)?;
    let http = tls.http_client()?;
    Ok((parsed, tls, http))
}

/// `{base}/{path}`, in the WebSocket scheme if asked (otherwise in the HTTP one), with the
/// codec (unless JSON, which every server speaks), a resume point and topic cursors in the
/// query.
fn url_for(
    base: &reqwest::Url,
    path: &str,
    websocket: bool,
    codec: Codec,
    resume: Option<(SessionId, Seq)>,
    topics: Option<&Cursors>,
) -> Result<reqwest::Url, String> {
    let mut url = base.clone();
    let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
    url.set_path(&joined);
    tls::check_scheme(url.scheme())?;
    let secure = matches!(url.scheme(), "https" | "wss");
    let scheme = match (websocket, secure) {
        (true, false) => "ws",
        (true, true) => "wss",
        (false, false) => "http",
        (false, true) => "https",
    };
    url.set_scheme(scheme)
        .map_err(|()| format!("cannot use `{scheme}` with {base}"))?;
    let connect = Connect {
        codec,
        resume,
        topics: topics.cloned(),
    };
    let pairs = connect.pairs();
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_prefix() {
        let base = reqwest::Url::parse("http://127.0.0.1:3000/omni/").unwrap();
        let id = SessionId::from_u128(1);
        assert_eq!(
            url_for(&base, "ws", true, Codec::Json, Some((id, 4)), None)
                .unwrap()
                .as_str(),
            format!("ws://127.0.0.1:3000/omni/ws?session={id}&after=4")
        );
        assert_eq!(
            url_for(&base, "http", false, Codec::Json, None, None)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:3000/omni/http"
        );
        let tls = reqwest::Url::parse("https://example.com").unwrap();
        let secure = url_for(&tls, "ws", true, Codec::Json, None, None);
        if cfg!(feature = "tls") {
            assert_eq!(secure.unwrap().as_str(), "wss://example.com/ws");
        } else {
            assert!(secure.unwrap_err().contains("`tls` feature"));
        }
        // Any scheme of the two pairs serves every transport; no other does.
        let ws = reqwest::Url::parse("ws://127.0.0.1:3000/omni").unwrap();
        assert_eq!(
            url_for(&ws, "http", false, Codec::Json, None, None)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:3000/omni/http"
        );
        let ftp = reqwest::Url::parse("ftp://127.0.0.1/omni").unwrap();
        assert!(url_for(&ftp, "http", false, Codec::Json, None, None).is_err());
        let topics = Cursors::from([("room".to_owned(), 17)]);
        assert_eq!(
            url_for(&base, "ws", true, Codec::Json, None, Some(&topics))
                .unwrap()
                .as_str(),
            "ws://127.0.0.1:3000/omni/ws?topics=%7B%22room%22%3A17%7D"
        );
        assert_eq!(
            url_for(&base, "mux", true, Codec::MsgPack, Some((id, 4)), None)
                .unwrap()
                .as_str(),
            format!("ws://127.0.0.1:3000/omni/mux?codec=msgpack&session={id}&after=4")
        );
    }
}
