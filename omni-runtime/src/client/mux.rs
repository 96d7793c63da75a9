//! Several components over one WebSocket: the client of a server's `/mux` route.
//!
//! [`Mux::join`] starts a component of a module with the token the server signed for it, and
//! returns the same [`Client`] and [`Messages`] a single-protocol client has: the component's
//! own typed messages and transport states, its own queue and its own resumable session. One
//! background task serves every component's frames over one socket, and on every reconnect it
//! re-joins each component (resuming its session) before it sends any of that component's
//! queued messages, so nothing queued offline is lost to a component the server has not
//! started yet.
//!
//! ```no_run
//! use omni_runtime::client::Mux;
//! use omni_runtime::protocol::tests_support::{Echo, EchoFromClient};
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
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use serde::de::IgnoredAny;
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::link::{Ended, Link, Step};
use super::ws::{Socket, beat, close, flush};
use super::{Backoff, Client, Heartbeat, Messages, Shared, closed, url_for};
use crate::{ClientFrame, ErrorCode, Protocol, ServerFrame, TransportError, TransportState};

/// Configures a [`Mux`].
#[must_use]
pub struct MuxBuilder {
    url: String,
    backoff: Backoff,
    heartbeat: Heartbeat,
    queue: usize,
    connect_timeout: Duration,
    max_message_bytes: usize,
}

impl MuxBuilder {
    /// Reconnection backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Liveness checking.
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// How many messages each component may have waiting for acknowledgement. Default 1024.
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(1);
        self
    }

    /// How long a connection attempt may take. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The server's frame limit: a larger message is refused by [`Client::send`].
    pub fn max_message_bytes(mut self, limit: usize) -> Self {
        self.max_message_bytes = limit;
        self
    }

    /// Starts the socket's task (on the current tokio runtime). Components may be joined at
    /// once; they are sent when the socket is up.
    pub fn connect(self) -> Mux {
        let (joins, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            joins,
            wake: Arc::new(Notify::new()),
            closed: watch::channel(false).0,
            queue: self.queue,
            max_message_bytes: self.max_message_bytes,
        });
        tokio::spawn(run(
            rx,
            self.url,
            Settings {
                backoff: self.backoff,
                heartbeat: self.heartbeat,
                connect_timeout: self.connect_timeout,
            },
            inner.clone(),
        ));
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
    closed: watch::Sender<bool>,
    queue: usize,
    max_message_bytes: usize,
}

impl Mux {
    /// A builder for the mux under `url` (`http://host:port/prefix`, the prefix the server
    /// nests its mux router under).
    pub fn builder(url: impl Into<String>) -> MuxBuilder {
        MuxBuilder {
            url: url.into(),
            backoff: Backoff::default(),
            heartbeat: Heartbeat::default(),
            queue: 1024,
            connect_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
        }
    }

    /// Joins component `id` of `module` with the `token` the server signed for it. A refused
    /// join (`bad_token`, `unknown_module`, …) arrives on the component's stream as a
    /// `TransportError::Rejected`, and the stream ends; [`Client::close`] leaves.
    pub fn join<P: Protocol + Send>(
        &self,
        id: impl Into<String>,
        module: impl Into<String>,
        token: impl Into<String>,
    ) -> (Client<P>, Messages<P>) {
        let id: String = id.into();
        let mut shared = Shared::new(
            self.inner.queue,
            self.inner.max_message_bytes,
            self.inner.wake.clone(),
        );
        shared.component = Some(id.as_str().into());
        let shared = Arc::new(shared);
        let (tx, rx) = mpsc::channel(1024);
        let component = Component {
            link: Link::<P>::new(shared.clone(), tx),
            id,
            module: module.into(),
            token: token.into(),
        };
        if self.inner.joins.send(Box::new(component)).is_err() {
            shared.closed.send_replace(true);
        }
        let client = Client {
            shared,
            protocol: PhantomData,
        };
        (client, Messages { rx })
    }

    /// Closes the socket and stops reconnecting; every component's stream ends.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }
}

/// A component, with its protocol erased so one task can serve components of several.
trait Member: Send + Sync {
    fn id(&self) -> &str;
    fn shared(&self) -> &Arc<Shared>;
    /// The `join` frame, resuming the component's session when it has one.
    fn join_frame(&self) -> String;
    fn on_text<'a>(&'a mut self, text: &'a [u8]) -> BoxFuture<'a, Step>;
    fn state(&self, state: TransportState) -> BoxFuture<'_, ()>;
}

struct Component<P: Protocol> {
    link: Link<P>,
    id: String,
    module: String,
    token: String,
}

impl<P: Protocol + Send> Member for Component<P> {
    fn id(&self) -> &str {
        &self.id
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.link.shared
    }

    fn join_frame(&self) -> String {
        let resume = self.link.resume_point();
        ClientFrame::<()>::Join {
            id: self.id.clone(),
            module: self.module.clone(),
            token: self.token.clone(),
            session: resume.map(|(session, _)| session),
            after: resume.map(|(_, after)| after),
            version: Some(P::VERSION.to_owned()),
            topics: Some(self.link.topics.clone()),
        }
        .encode()
        .unwrap_or_default()
    }

    fn on_text<'a>(&'a mut self, text: &'a [u8]) -> BoxFuture<'a, Step> {
        Box::pin(self.link.on_text(text))
    }

    fn state(&self, state: TransportState) -> BoxFuture<'_, ()> {
        Box::pin(self.link.state(state))
    }
}

#[derive(Clone, Copy)]
struct Settings {
    backoff: Backoff,
    heartbeat: Heartbeat,
    connect_timeout: Duration,
}

/// The socket's task: connects, serves every component, reconnects with backoff.
async fn run(
    mut joins: mpsc::UnboundedReceiver<Box<dyn Member>>,
    url: String,
    settings: Settings,
    inner: Arc<Inner>,
) {
    let mut members: Vec<Box<dyn Member>> = Vec::new();
    let mut closed_rx = inner.closed.subscribe();
    let base = match reqwest::Url::parse(&url)
        .map_err(|e| e.to_string())
        .and_then(|base| url_for(&base, "mux", true, None, None))
    {
        Ok(url) => url,
        Err(message) => {
            let message = format!("bad mux URL `{url}`: {message}");
            while let Ok(member) = joins.try_recv() {
                let error = TransportError::Init {
                    message: message.clone(),
                };
                member.state(TransportState::Error(error)).await;
            }
            return;
        }
    };
    let mut attempt: u32 = 0;
    loop {
        while let Ok(member) = joins.try_recv() {
            members.push(member);
        }
        for member in &members {
            member.state(TransportState::Connecting).await;
        }
        let ended = connection(&base, settings, &mut members, &mut joins, &inner).await;
        tracing::debug!(code = ended.code, reason = %ended.reason, "mux connection ended");
        if ended.connected || ended.code != 0 {
            for member in &members {
                let state = TransportState::Disconnected {
                    code: ended.code,
                    reason: ended.reason.clone(),
                };
                member.state(state).await;
            }
        }
        if *inner.closed.borrow() {
            return;
        }
        attempt = if ended.connected { 1 } else { attempt + 1 };
        let delay = settings.backoff.delay(attempt);
        for member in &members {
            member
                .state(TransportState::Reconnecting { attempt, delay })
                .await;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = closed(&mut closed_rx) => return,
        }
    }
}

/// One socket, from connect to its end.
async fn connection(
    url: &reqwest::Url,
    settings: Settings,
    members: &mut Vec<Box<dyn Member>>,
    joins: &mut mpsc::UnboundedReceiver<Box<dyn Member>>,
    inner: &Inner,
) -> Ended {
    let ws_config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let connect = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config), true);
    let mut socket = match tokio::time::timeout(settings.connect_timeout, connect).await {
        Err(_) => return Ended::dropped("connect timed out", false),
        Ok(Err(WsError::Http(response))) => {
            let status = response.status().as_u16();
            return Ended {
                code: status,
                reason: format!("handshake refused with HTTP {status}"),
                connected: false,
                fatal: None,
            };
        }
        Ok(Err(err)) => return Ended::dropped(err.to_string(), false),
        Ok(Ok((socket, _))) => socket,
    };
    // Every join goes before any queued message; a component's queue is flushed only once
    // the server has welcomed it on this socket.
    let mut welcomed = HashSet::new();
    for member in members.iter() {
        if send(&mut socket, member.join_frame()).await.is_err() {
            return Ended::dropped("connection closed", false);
        }
    }
    let mut connected = false;
    let mut last_heard = Instant::now();
    let heartbeat = settings.heartbeat;
    let mut ticks = tokio::time::interval(heartbeat.interval);
    ticks.tick().await;
    let mut closed_rx = inner.closed.subscribe();
    let closed = closed(&mut closed_rx);
    tokio::pin!(closed);
    loop {
        tokio::select! {
            incoming = socket.next() => {
                last_heard = Instant::now();
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                        return Ended { code, reason, connected, fatal: None };
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => return Ended::dropped(err.to_string(), connected),
                    None => return Ended::dropped("connection closed", connected),
                };
                let routed = route(&mut socket, members, &mut welcomed, text.as_bytes()).await;
                connected |= !welcomed.is_empty();
                if let Err(ended) = routed {
                    return ended.connected_if(connected);
                }
            }
            member = joins.recv() => {
                let Some(member) = member else { continue };
                if send(&mut socket, member.join_frame()).await.is_err() {
                    members.push(member);
                    return Ended::dropped("connection closed", connected);
                }
                members.push(member);
            }
            _ = inner.wake.notified() => {
                if let Err(ended) = flush_all(&mut socket, members, &welcomed).await {
                    return ended.connected_if(connected);
                }
            }
            _ = ticks.tick() => {
                if let Err(ended) = beat(&mut socket, last_heard, heartbeat, connected).await {
                    return ended;
                }
            }
            _ = &mut closed => return close(&mut socket, connected).await,
        }
    }
}

/// Hands one server frame to the component it names.
async fn route(
    socket: &mut Socket,
    members: &mut Vec<Box<dyn Member>>,
    welcomed: &mut HashSet<String>,
    text: &[u8],
) -> Result<(), Ended> {
    let frame = match ServerFrame::<IgnoredAny>::decode(text) {
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
        ServerFrame::Error { code, .. } if !welcomed.contains(id) && refuses_join(*code) => {
            let member = &mut members[at];
            member.on_text(text).await;
            member.shared().closed.send_replace(true);
            members.remove(at);
            return Ok(());
        }
        _ => {}
    }
    let member = &mut members[at];
    match member.on_text(text).await {
        Step::Continue => Ok(()),
        Step::Welcomed => {
            welcomed.insert(member.id().to_owned());
            member.shared().outbox.lock().unwrap().reconnected();
            flush(socket, member.shared()).await
        }
        Step::Gap => {
            let _ = socket.close(None).await;
            Err(Ended::dropped("missed frames; resuming", true))
        }
        Step::Fatal(error) => {
            member.state(TransportState::Error(error)).await;
            member.shared().closed.send_replace(true);
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
        | ServerFrame::Reset { id, .. } => id.as_deref(),
        ServerFrame::Joined { id } | ServerFrame::Left { id } => Some(id),
    }
}

/// Leaves the components closed by the application, and sends the queued messages of every
/// welcomed one.
async fn flush_all(
    socket: &mut Socket,
    members: &mut Vec<Box<dyn Member>>,
    welcomed: &HashSet<String>,
) -> Result<(), Ended> {
    let mut i = 0;
    while i < members.len() {
        if *members[i].shared().closed.borrow() {
            let member = members.remove(i);
            let leave = ClientFrame::<()>::Leave {
                id: member.id().to_owned(),
            };
            send(socket, leave.encode().unwrap_or_default())
                .await
                .map_err(|e| Ended::dropped(e.to_string(), true))?;
            continue;
        }
        if welcomed.contains(members[i].id()) {
            flush(socket, members[i].shared()).await?;
        }
        i += 1;
    }
    Ok(())
}

async fn send(socket: &mut Socket, text: String) -> Result<(), WsError> {
    socket.send(Message::Text(text.into())).await
}
