//! Several components over one WebSocket: the client of a server's `/mux` route.
//!
//! [`Mux::join`] starts a component of a module with the token the server signed for it, and
//! returns the same [`Client`] and [`Messages`] a single-protocol client has: the component's
//! own typed messages and transport states, its own queue and its own resumable session. One
//! background task serves every component's frames over one socket, and on every reconnect it
//! re-joins each component (resuming its session) before it sends any of that component's
//! queued messages, so nothing queued offline is lost to a component the server has not
//! started yet. [`Mux::component`] adds, per component, a connect hook whose messages go
//! between the join and the queue, and a provider of fresh tokens for a join refused because
//! its token expired.
//!
//! ```no_run
//! use omni::client::Mux;
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
//! # async fn run(chat_token: String) {
//! let mux = Mux::builder("http://127.0.0.1:3000/omni").connect();
//! let (chat, mut messages) = mux.join::<Echo>("chat-1", "chat", chat_token);
//! chat.send(EchoFromClient::Say("hello".into())).unwrap();
//! while let Some(msg) = messages.recv().await {
//!     println!("{msg:?}");
//! }
//! # }
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::de::IgnoredAny;
use tokio::sync::{Notify, mpsc, watch};

use super::connect::{ConnectInfo, Hook, url_for};
use super::credentials::Credentials;
use super::dialer::{self, Dial, Ended};
use super::handle::{Client, Messages};
use super::link::{Link, Step};
use super::options::{self, Options, Settings};
use super::shared::Shared;
use super::tls;
use super::wire::{self, Frame};
use super::ws::{self, Out, Peer};
use crate::presence::Modes;
use crate::wire::Codec;
use crate::wire::connect::Connect;
use crate::{ClientFrame, ErrorCode, Protocol, ServerFrame, TransportError, TransportState};

/// Configures a [`Mux`].
#[must_use]
pub struct MuxBuilder {
    url: String,
    options: Options,
}

impl MuxBuilder {
    options::setters!();

    /// Starts the socket's task (on the current tokio runtime). Components may be joined at
    /// once; they are sent when the socket is up. What no retry can fix (see
    /// [`ClientBuilder::connect`](crate::client::ClientBuilder::connect)) ends every component's
    /// stream after one `TransportState::Error`.
    pub fn connect(self) -> Mux {
        let Options {
            settings,
            roots,
            credentials,
            presence,
        } = self.options;
        let (joins, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            joins,
            wake: Arc::new(Notify::new()),
            reconnect: Arc::new(Notify::new()),
            closed: watch::channel(false).0,
            settings,
            credentials,
            presence,
        });
        tokio::spawn(run(rx, self.url, roots, inner.clone()));
        Mux { inner }
    }
}

/// One WebSocket to a server's `/mux`, carrying any number of components. Cheap to clone.
#[derive(Clone)]
pub struct Mux {
    inner: Arc<Inner>,
}

struct Inner {
    joins: mpsc::UnboundedSender<Box<dyn Member>>,
    wake: Arc<Notify>,
    reconnect: Arc<Notify>,
    closed: watch::Sender<bool>,
    settings: Settings,
    credentials: Credentials,
    /// What each component is shown of each topic's presence, sent in its `join`.
    presence: Modes,
}

impl Mux {
    /// A builder for the mux under `url` (`http://host:port/prefix`, the prefix the server
    /// nests its mux router under).
    pub fn builder(url: impl Into<String>) -> MuxBuilder {
        MuxBuilder {
            url: url.into(),
            options: Options::default(),
        }
    }

    /// Joins component `id` of `module` with the `token` the server signed for it. A refused
    /// join (`bad_token`, `unknown_module`, …) arrives on the component's stream as a
    /// `TransportError::Rejected`, and the stream ends (unless a token provider refreshes an
    /// expired token: see [`Join::refresh_token`]); [`Client::close`] leaves.
    pub fn join<P: Protocol + Send>(
        &self,
        id: impl Into<String>,
        module: impl Into<String>,
        token: impl Into<String>,
    ) -> (Client<P>, Messages<P>) {
        self.component(id, module, token).join()
    }

    /// A component to join, configured further before [`Join::join`]: with a connect hook,
    /// or a provider of fresh tokens.
    ///
    /// ```no_run
    /// use omni::client::Mux;
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
    ///     Ok("a token the server signed just now".into())
    /// }
    ///
    /// # async fn run(token: String) {
    /// let mux = Mux::builder("http://127.0.0.1:3000/omni").connect();
    /// let (echo, messages) = mux
    ///     .component::<Echo>("echo-1", "echo", token)
    ///     .on_connect(|info| {
    ///         (!info.resumed)
    ///             .then(|| EchoFromClient::Say("I am back".into()))
    ///             .into_iter()
    ///             .collect()
    ///     })
    ///     .refresh_token(fresh_token)
    ///     .join();
    /// # }
    /// ```
    pub fn component<P: Protocol + Send>(
        &self,
        id: impl Into<String>,
        module: impl Into<String>,
        token: impl Into<String>,
    ) -> Join<'_, P> {
        Join {
            mux: self,
            id: id.into(),
            module: module.into(),
            token: token.into(),
            hook: None,
            refresh: None,
        }
    }

    fn start<P: Protocol + Send>(&self, join: Join<'_, P>) -> (Client<P>, Messages<P>) {
        let Join {
            id,
            module,
            token,
            hook,
            refresh,
            ..
        } = join;
        let mut shared = Shared::new(&self.inner.settings, self.inner.wake.clone());
        shared.component = Some(id.as_str().into());
        shared.presence_modes = self.inner.presence.clone();
        shared.reconnect = self.inner.reconnect.clone();
        let shared = Arc::new(shared);
        let (tx, rx) = mpsc::channel(1024);
        let mut link = Link::<P>::new(shared.clone(), tx);
        link.hook = hook;
        let component = Component {
            link,
            id,
            module,
            token,
            refresh,
            refreshed: false,
            refreshing: false,
        };
        if self.inner.joins.send(Box::new(component)).is_err() {
            shared.closed.send_replace(true);
        }
        (Client::new(shared), Messages::new(rx))
    }

    /// Connects again now: after `TransportState::Unauthorized`, or instead of waiting out a
    /// backoff delay (see [`Client::reconnect`]).
    pub fn reconnect(&self) {
        self.inner.reconnect.notify_waiters();
    }

    /// Closes the socket and stops reconnecting; every component's stream ends.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }
}

/// Where a component gets a fresh token when its join is refused.
type TokenProvider = Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// A component of a [`Mux`] about to join (see [`Mux::component`]).
#[must_use]
pub struct Join<'a, P: Protocol> {
    mux: &'a Mux,
    id: String,
    module: String,
    token: String,
    hook: Option<Hook<P::Client>>,
    refresh: Option<TokenProvider>,
}

impl<P: Protocol + Send> Join<'_, P> {
    /// Calls `hook` after every `welcome` of the component, and sends the messages it returns
    /// before any queued one (see
    /// [`ClientBuilder::on_connect`](crate::client::ClientBuilder::on_connect)): on every socket
    /// the join goes first, then the hook's messages, then the queue.
    pub fn on_connect(
        mut self,
        hook: impl Fn(ConnectInfo) -> Vec<P::Client> + Send + Sync + 'static,
    ) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// When the server refuses the component's join with `bad_token` (its token expired, say),
    /// asks `provider` once for a fresh token and joins again with it, resuming the session
    /// with its queue, instead of stopping the component. Asked again only after the
    /// component has been welcomed since; a provider that fails, or takes longer than the
    /// connect timeout, stops the component as a refused join does.
    pub fn refresh_token<F, Fut, E>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<String, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.refresh = Some(Arc::new(move || {
            let token = provider();
            Box::pin(async move { token.await.map_err(|err| err.to_string()) })
        }));
        self
    }

    /// Joins: see [`Mux::join`].
    pub fn join(self) -> (Client<P>, Messages<P>) {
        self.mux.start(self)
    }
}

/// A component, with its protocol erased so one task can serve components of several.
trait Member: Send + Sync {
    fn id(&self) -> &str;
    fn shared(&self) -> &Arc<Shared>;
    /// The `join` frame, resuming the component's session when it has one.
    fn join_frame(&self) -> Frame;
    /// Decodes and applies one of the component's frames.
    fn receive<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Step>;
    fn state(&self, state: TransportState) -> BoxFuture<'_, ()>;
    /// The connect hook's frames for this socket, once.
    fn take_greeting(&mut self) -> Vec<Frame>;
    /// The fresh token to ask for after a refused join, once per welcome; marks the
    /// component as waiting for it.
    fn refresh(&mut self) -> Option<BoxFuture<'static, Result<String, String>>>;
    /// Waiting for a fresh token: not to be joined until it comes.
    fn refreshing(&self) -> bool;
    /// The fresh token came.
    fn set_token(&mut self, token: String);
}

struct Component<P: Protocol> {
    link: Link<P>,
    id: String,
    module: String,
    token: String,
    refresh: Option<TokenProvider>,
    /// A fresh token was asked for since the last welcome.
    refreshed: bool,
    refreshing: bool,
}

impl<P: Protocol + Send> Member for Component<P> {
    fn id(&self) -> &str {
        &self.id
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.link.shared
    }

    fn join_frame(&self) -> Frame {
        let resume = self.link.resume_point();
        let join = ClientFrame::<()>::Join {
            id: self.id.clone(),
            module: self.module.clone(),
            token: self.token.clone(),
            session: resume.map(|(session, _)| session),
            after: resume.map(|(_, after)| after),
            version: Some(P::version().to_owned()),
            compatible: super::connect::compatible::<P>(),
            topics: Some(self.link.topics.clone()),
            traceparent: self.link.shared.traceparent,
            presence: Some(self.link.shared.presence_modes.clone())
                .filter(|modes| !modes.is_default()),
            client: Some(self.link.shared.client_id.to_string()),
        };
        // Strings, numbers and a map of them: nothing in it can fail to encode.
        wire::encode(self.link.shared.codec, &join).unwrap_or(Frame::Text(String::new()))
    }

    fn receive<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Step> {
        Box::pin(async move {
            let step = self.link.receive(bytes).await;
            if step == Step::Welcomed {
                self.refreshed = false;
            }
            step
        })
    }

    fn state(&self, state: TransportState) -> BoxFuture<'_, ()> {
        Box::pin(self.link.state(state))
    }

    fn take_greeting(&mut self) -> Vec<Frame> {
        self.link.take_greeting()
    }

    fn refresh(&mut self) -> Option<BoxFuture<'static, Result<String, String>>> {
        if self.refreshed {
            return None;
        }
        let provider = self.refresh.as_ref()?;
        self.refreshed = true;
        self.refreshing = true;
        Some(provider())
    }

    fn refreshing(&self) -> bool {
        self.refreshing
    }

    fn set_token(&mut self, token: String) {
        self.token = token;
        self.refreshing = false;
    }
}

/// The socket's task: connects, serves every component, reconnects with backoff.
async fn run(
    mut joins: mpsc::UnboundedReceiver<Box<dyn Member>>,
    url: String,
    roots: Vec<Vec<u8>>,
    inner: Arc<Inner>,
) {
    let setup = reqwest::Url::parse(&url)
        .map_err(|e| e.to_string())
        .and_then(|base| url_for(&base, "mux", true, &Connect::new(inner.settings.codec)))
        .map_err(|message| format!("bad mux URL `{url}`: {message}"))
        .and_then(|url| Ok((url, tls::Connector::new(&roots)?)));
    let (url, tls) = match setup {
        Ok(setup) => setup,
        Err(message) => {
            while let Ok(member) = joins.try_recv() {
                let error = TransportError::Init {
                    message: message.clone(),
                };
                member.state(TransportState::Error(error)).await;
            }
            return;
        }
    };
    let (fresh_tx, fresh) = mpsc::unbounded_channel();
    let mut sockets = Sockets {
        url,
        tls,
        inner: inner.clone(),
        joins,
        members: Vec::new(),
        tokens: Tokens {
            tx: fresh_tx,
            rx: fresh,
        },
    };
    let backoff = inner.settings.backoff;
    dialer::dial(&mut sockets, backoff, &inner.closed, &inner.reconnect).await;
    // No socket follows: no component, joined or about to, can send any more.
    while let Ok(member) = sockets.joins.try_recv() {
        sockets.members.push(member);
    }
    for member in &sockets.members {
        member.shared().closed.send_replace(true);
    }
}

/// The mux's sockets, one after another, and the components they carry.
struct Sockets {
    url: reqwest::Url,
    tls: tls::Connector,
    inner: Arc<Inner>,
    joins: mpsc::UnboundedReceiver<Box<dyn Member>>,
    members: Vec<Box<dyn Member>>,
    tokens: Tokens,
}

/// Fresh tokens on their way from the components' providers: `(id, token or why not)`. They
/// are asked for in tasks of their own, so that a slow provider stalls no other component.
struct Tokens {
    tx: mpsc::UnboundedSender<(String, Result<String, String>)>,
    rx: mpsc::UnboundedReceiver<(String, Result<String, String>)>,
}

impl Tokens {
    /// Asks for a fresh token for component `id`, for at most `timeout`.
    fn ask(&self, id: &str, fresh: BoxFuture<'static, Result<String, String>>, timeout: Duration) {
        let tx = self.tx.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let token = match tokio::time::timeout(timeout, fresh).await {
                Ok(token) => token,
                Err(_) => Err(format!("no token within {timeout:?}")),
            };
            let _ = tx.send((id, token));
        });
    }
}

impl Dial for Sockets {
    async fn connection(&mut self) -> Ended {
        let closed = self.inner.closed.subscribe();
        let mut socket = Socket {
            members: &mut self.members,
            joins: &mut self.joins,
            tokens: &mut self.tokens,
            codec: self.inner.settings.codec,
            connect_timeout: self.inner.settings.connect_timeout,
            wake: &self.inner.wake,
            welcomed: HashSet::new(),
            connected: false,
        };
        let dialing = ws::Dialing {
            url: &self.url,
            settings: &self.inner.settings,
            tls: &self.tls,
            credentials: &self.inner.credentials,
        };
        ws::connection(&mut socket, dialing, closed).await
    }

    async fn report(&mut self, state: TransportState) {
        // A component that joined meanwhile hears from now on.
        while let Ok(member) = self.joins.try_recv() {
            self.members.push(member);
        }
        for member in &self.members {
            member.state(state.clone()).await;
        }
    }

    fn refused(&mut self, error: &TransportError) {
        for member in &self.members {
            member.shared().refuse(error.clone());
        }
    }
}

/// One socket's components. A component's queue is flushed only once the server has
/// welcomed it on this socket, so every `join` goes before its queued messages.
struct Socket<'a> {
    members: &'a mut Vec<Box<dyn Member>>,
    joins: &'a mut mpsc::UnboundedReceiver<Box<dyn Member>>,
    tokens: &'a mut Tokens,
    codec: Codec,
    connect_timeout: Duration,
    wake: &'a Notify,
    welcomed: HashSet<String>,
    connected: bool,
}

impl Peer for Socket<'_> {
    fn opening(&mut self, out: &Out) {
        // One waiting for a fresh token joins when it comes.
        for member in self.members.iter().filter(|m| !m.refreshing()) {
            out.frame(member.join_frame());
        }
    }

    async fn on_frame(&mut self, bytes: &[u8], out: &Out) -> Result<(), Ended> {
        let refresh = (&*self.tokens, self.connect_timeout);
        let frame = (self.codec, bytes);
        let routed = route(out, self.members, &mut self.welcomed, frame, refresh).await;
        self.connected |= !self.welcomed.is_empty();
        routed
    }

    async fn undecodable(&mut self, message: String) {
        // As a frame that does not decode: it names no component to tell.
        tracing::debug!(%message, "undecodable mux frame");
    }

    async fn wait(&mut self, out: &Out) {
        tokio::select! {
            () = self.wake.notified() => {}
            Some(member) = self.joins.recv() => {
                out.frame(member.join_frame());
                self.members.push(member);
            }
            Some((id, token)) = self.tokens.rx.recv() => {
                let Some(at) = self.members.iter().position(|m| m.id() == id) else {
                    return;
                };
                match token {
                    Ok(token) => {
                        let member = &mut self.members[at];
                        member.set_token(token);
                        out.frame(member.join_frame());
                    }
                    Err(reason) => {
                        let member = self.members.remove(at);
                        let message = format!("could not get a fresh token: {reason}");
                        let error = TransportError::Rejected { code: ErrorCode::BadToken, message };
                        member.state(TransportState::Error(error)).await;
                        member.shared().closed.send_replace(true);
                    }
                }
            }
        }
    }

    fn pump(&mut self, out: &Out) {
        flush_all(out, self.codec, self.members, &self.welcomed);
    }

    fn connected(&self) -> bool {
        self.connected
    }
}

/// Hands one server frame (its bytes, in `codec`) to the component it names.
async fn route(
    out: &Out,
    members: &mut Vec<Box<dyn Member>>,
    welcomed: &mut HashSet<String>,
    (codec, bytes): (Codec, &[u8]),
    (tokens, timeout): (&Tokens, Duration),
) -> Result<(), Ended> {
    let frame = match wire::decode::<IgnoredAny>(codec, bytes) {
        Ok(frame) => frame,
        Err(err) => {
            tracing::debug!(%err, "undecodable mux frame");
            return Ok(());
        }
    };
    let Some(id) = frame_id(&frame) else {
        tracing::debug!(kind = frame.kind(), "a mux frame without a component id");
        return Ok(());
    };
    let Some(at) = members.iter().position(|m| m.id() == id) else {
        return Ok(());
    };
    match &frame {
        ServerFrame::Joined { .. } => return Ok(()),
        ServerFrame::Left { .. } => {
            // The server stopped the component: it is over, as a closed connection is.
            let member = members.remove(at);
            welcomed.remove(member.id());
            let state = TransportState::Disconnected {
                code: 1000,
                reason: "the server stopped the component".into(),
            };
            member.state(state).await;
            member.shared().closed.send_replace(true);
            return Ok(());
        }
        ServerFrame::Error {
            code: ErrorCode::BadToken,
            ..
        } if !welcomed.contains(id) => {
            if let Some(fresh) = members[at].refresh() {
                // An expired token, say: join again with a fresh one, queue and all.
                tracing::debug!(id, "join refused with bad_token; asking for a fresh token");
                tokens.ask(id, fresh, timeout);
                return Ok(());
            }
            let member = &mut members[at];
            // A refused version is fatal to the link (the others it reports itself): say so
            // to the component, as a single client's dialer does.
            if let Step::Fatal(error) = member.receive(bytes).await {
                member.state(TransportState::fatal(error.clone())).await;
                member.shared().refuse(error);
            }
            member.shared().closed.send_replace(true);
            members.remove(at);
            return Ok(());
        }
        ServerFrame::Error { code, .. } if !welcomed.contains(id) && refuses_join(*code) => {
            let member = &mut members[at];
            // A refused version is fatal to the link (the others it reports itself): say so
            // to the component, as a single client's dialer does.
            if let Step::Fatal(error) = member.receive(bytes).await {
                member.state(TransportState::fatal(error.clone())).await;
                member.shared().refuse(error);
            }
            member.shared().closed.send_replace(true);
            members.remove(at);
            return Ok(());
        }
        _ => {}
    }
    let member = &mut members[at];
    match member.receive(bytes).await {
        Step::Continue => Ok(()),
        Step::Welcomed => {
            welcomed.insert(member.id().to_owned());
            member.shared().outbox.reconnected();
            for frame in member.take_greeting() {
                out.frame(frame);
            }
            out.outbox(member.shared());
            Ok(())
        }
        Step::Gap => Err(Ended::dropped("missed frames; resuming", true)),
        Step::Fatal(error) => {
            member.state(TransportState::fatal(error.clone())).await;
            member.shared().refuse(error);
            let member = members.remove(at);
            welcomed.remove(member.id());
            Ok(())
        }
    }
}

/// Errors that answer a `join` for good: retrying the same join cannot succeed.
fn refuses_join(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::BadToken
            | ErrorCode::UnknownModule
            | ErrorCode::DuplicateId
            | ErrorCode::TooLarge
            | ErrorCode::VersionMismatch
    )
}

fn frame_id<S>(frame: &ServerFrame<S>) -> Option<&str> {
    match frame {
        ServerFrame::Welcome { id, .. }
        | ServerFrame::Msg { id, .. }
        | ServerFrame::Push { id, .. }
        | ServerFrame::Ack { id, .. }
        | ServerFrame::Error { id, .. }
        | ServerFrame::Reset { id, .. }
        | ServerFrame::PresenceState { id, .. }
        | ServerFrame::PresenceDiff { id, .. }
        | ServerFrame::PresenceCount { id, .. } => id.as_deref(),
        ServerFrame::Joined { id } | ServerFrame::Left { id } => Some(id),
    }
}

/// Leaves the components closed by the application, and sends what the queues of the
/// welcomed ones let go.
fn flush_all(
    out: &Out,
    codec: Codec,
    members: &mut Vec<Box<dyn Member>>,
    welcomed: &HashSet<String>,
) {
    members.retain(|member| {
        if *member.shared().closed.borrow() {
            let leave = ClientFrame::<()>::Leave {
                id: member.id().to_owned(),
            };
            if let Ok(leave) = wire::encode(codec, &leave) {
                out.frame(leave);
            }
            return false;
        }
        if welcomed.contains(member.id()) {
            out.outbox(member.shared());
        }
        true
    });
}
