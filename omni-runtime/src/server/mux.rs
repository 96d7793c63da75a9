//! Many components over one WebSocket: the `/mux` route.
//!
//! A page often holds several live parts, each with its own protocol and state. A [`Mux`]
//! serves several [`Endpoint`]s, each under a module name, on one socket: the client sends
//! `join{id, module, token}` to start component `id`, `msg` frames naming the `id`, and
//! `leave{id}` to stop it. The token is signed by the server when it renders the page
//! ([`Mux::sign`]) and carries the module and the component's props, which the module's
//! handler factory receives ([`Endpoint::with_props`]); a client cannot forge or reuse one
//! for another module. Each component is a session of its module, exactly as on `/ws`:
//! sequenced, resumable (a re-join with `session` and `after`), with its hooks run.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use omni::server::{Endpoint, Mux};
//! use omni::token::Keys;
//! use omni::{Context, HandlerResult};
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
//! struct Room {
//!     name: String,
//! }
//!
//! impl EchoHandler for Room {
//!     async fn connected(&mut self, cx: &mut Context<Echo>) -> HandlerResult {
//!         cx.subscribe(&self.name);
//!         Ok(())
//!     }
//!
//!     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
//!         cx.broadcast(&self.name, EchoFromServer::Heard(text));
//!         Ok(())
//!     }
//! }
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let rooms = Endpoint::<Echo, _>::with_props(|props| Room {
//!     name: props["room"].as_str().unwrap_or("lobby").to_owned(),
//! })
//! .build();
//! let mux = Mux::builder(Keys::new(b"a secret of at least thirty-two bytes!!")?)
//!     .module("room", &rooms)
//!     .build();
//! // Rendered into the page, for the client's `join`.
//! let token = mux.sign("room", &serde_json::json!({"room": "lobby"}), Duration::from_secs(600));
//! let app: omni::axum::Router = omni::axum::Router::new().nest("/omni", mux.router());
//! # let _ = (token, app);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::conn::{self, Conn, Item, Left};
use super::encoded::{ComponentId, Outgoing, Wire};
use super::endpoint::Endpoint;
use super::limits::Limits;
#[cfg(feature = "prometheus")]
use super::metrics::source::Source;
use super::metrics::{FrameIn, Metrics, Transport};
use super::origin::Admission;
use super::origin::{Hosts, Origins};
use super::session::{Attached, Sessions};
use super::shutdown::tracker::Tracker;
use super::ws::{self, Incoming};
use crate::SessionId;
use crate::presence::Modes;
use crate::token::Keys;
use crate::wire::hello::Served;
use crate::wire::msgpack::{self, Transcode};
use crate::wire::{Codec, TraceParent, connect, decode_payload};
use crate::{
    ClientFrame, Cursors, DecodeError, Dispatch, ErrorCode, Protocol, Ref, Seq, ServerFrame,
};

/// Several endpoints served as modules over one WebSocket per client. Cheap to clone.
#[derive(Clone)]
pub struct Mux {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Keys,
    modules: HashMap<String, Arc<dyn Module>>,
    limits: Limits,
    admission: Admission,
    metrics: Metrics,
    shutdown: watch::Sender<bool>,
    /// Open sockets, which a graceful shutdown waits for.
    tracker: Arc<Tracker>,
}

/// Builds a [`Mux`]: its modules, limits and origin policy.
#[must_use]
pub struct MuxBuilder {
    keys: Keys,
    modules: HashMap<String, Arc<dyn Module>>,
    limits: Limits,
    admission: Admission,
}

impl MuxBuilder {
    /// Serves `endpoint` as module `name`. Its sessions, limits and pub/sub are the
    /// endpoint's own, so the same endpoint may also be served on its own routes.
    pub fn module<P, H>(mut self, name: impl Into<String>, endpoint: &Endpoint<P, H>) -> Self
    where
        P: Protocol + Dispatch<H>,
        H: Send + 'static,
    {
        self.modules
            .insert(name.into(), Arc::new(endpoint.registry().clone()));
        self
    }

    /// The socket's limits: frame size, outbound queue, read buffer, and
    /// [`max_components`](Limits::max_components).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Which browser origins may connect. Default: [`Origins::SameHost`].
    pub fn origins(mut self, origins: Origins) -> Self {
        self.admission.origins = origins;
        self
    }

    /// Which host names requests may use. Default: [`Hosts::Any`]; list them in production.
    pub fn hosts(mut self, hosts: Hosts) -> Self {
        self.admission.hosts = hosts;
        self
    }

    /// The mux.
    pub fn build(self) -> Mux {
        Mux {
            inner: Arc::new(Inner {
                keys: self.keys,
                modules: self.modules,
                limits: self.limits,
                admission: self.admission,
                metrics: Metrics::new("mux"),
                shutdown: watch::channel(false).0,
                tracker: Arc::default(),
            }),
        }
    }
}

impl Mux {
    /// A builder; `keys` verify join tokens (and sign them, with [`Mux::sign`]).
    pub fn builder(keys: Keys) -> MuxBuilder {
        MuxBuilder {
            keys,
            modules: HashMap::new(),
            limits: Limits::default(),
            admission: Admission::default(),
        }
    }

    /// A join token for `module` carrying `props`, valid for `ttl`: put it in the page that
    /// joins the component.
    pub fn sign(&self, module: &str, props: &Value, ttl: Duration) -> String {
        self.inner.keys.sign(module, props, ttl)
    }

    /// The route `/mux`, to `nest` under a prefix of your choice, in a router of any state
    /// (see [`Endpoint::router`](super::Endpoint::router)).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/mux", get(mux_route))
            .with_state(self.clone())
    }

    /// Upgrades a request to a mux socket, for use inside your own axum handler.
    pub fn upgrade(
        &self,
        upgrade: WebSocketUpgrade,
        request: &axum::http::request::Parts,
    ) -> Response {
        if let Err(refused) = self.inner.admission.check(&request.headers) {
            return refused.into_response();
        }
        let codec = match super::query::codec_from_uri(&request.uri) {
            Ok(codec) => codec,
            Err(err) => return super::query::unknown_codec(&err),
        };
        let inner = self.inner.clone();
        let extensions = request.extensions.clone();
        let trace = super::trace::from_headers(&request.headers);
        ws::configure(upgrade, &self.inner.limits)
            .on_upgrade(move |socket| run(inner, socket, extensions, codec, trace))
    }

    /// Closes every mux socket (1001, "server shutting down"); their components' sessions
    /// are held for their grace period as after any disconnect.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// The open sockets, for a graceful shutdown.
    pub(crate) fn connections(&self) -> Arc<Tracker> {
        self.inner.tracker.clone()
    }

    /// The counters of its sockets (its modules' sessions count in their endpoints').
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Its modules' endpoints, for their metrics.
    #[cfg(feature = "prometheus")]
    pub(crate) fn modules(&self) -> impl Iterator<Item = Arc<dyn Source>> + '_ {
        self.inner.modules.values().map(|module| module.source())
    }
}

async fn mux_route(State(mux): State<Mux>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => mux.upgrade(upgrade, &parts),
        Err(rejection) => rejection.into_response(),
    }
}

/// A module: an endpoint with its protocol type erased, so one socket can hold components
/// of different protocols.
trait Module: Send + Sync + 'static {
    /// The builds of its protocol it serves.
    fn served(&self) -> &Served;

    /// How its frames are read for a MessagePack socket (as its protocol's messages).
    fn transcode(&self) -> Transcode;

    /// Starts (or resumes) a session as a component of `socket`, in a task of its own.
    fn start(&self, socket: &Conn, start: Start) -> JoinHandle<()>;

    /// Its endpoint, as the metrics read it.
    #[cfg(feature = "prometheus")]
    fn source(&self) -> Arc<dyn Source>;
}

/// What a `join` asks to resume: the component's session, and its topics, and what it is
/// shown of their presence.
struct Resume {
    session: Option<(SessionId, Seq)>,
    topics: Option<Cursors>,
    presence: Modes,
    client: Option<Arc<str>>,
}

/// Everything a component's task starts from.
struct Start {
    id: ComponentId,
    /// Tells this component's entry apart from a later one under the same id.
    join: u64,
    left: Arc<Left>,
    resume: Resume,
    props: Value,
    extensions: axum::http::Extensions,
    inbox: mpsc::Receiver<Command>,
    ended: mpsc::UnboundedSender<(String, u64)>,
    /// Set when the socket's client closed it saying it is leaving for good.
    leaving: Arc<AtomicBool>,
    /// The trace context the `join` sent.
    trace: Option<TraceParent>,
}

/// What the socket hands a component.
enum Command {
    /// A `msg` for it: its envelope was decoded by the socket, its payload is decoded by the
    /// component, as its own protocol's message.
    Msg {
        payload: RawPayload,
        reference: Option<Ref>,
    },
}

/// A `msg` payload the socket routed without decoding it.
enum RawPayload {
    /// The payload's JSON text.
    Json(Box<RawValue>),
    /// The whole MessagePack frame: read again by the component with its payload type, which
    /// costs a second pass over a small envelope and keeps one decoder for both routes.
    Packed(Bytes),
}

impl RawPayload {
    /// Decodes the payload as `C`; an error names the frame's `ref` and component `id`.
    fn decode<C: DeserializeOwned>(
        self,
        reference: Option<Ref>,
        id: &str,
    ) -> Result<C, DecodeError> {
        match self {
            RawPayload::Json(raw) => decode_payload(&raw, reference, Some(id)),
            RawPayload::Packed(frame) => match ClientFrame::<C>::decode_msgpack(&frame)? {
                ClientFrame::Msg { payload, .. } => Ok(payload),
                // The socket routed it as a `msg`, from these very bytes.
                _ => Err(DecodeError::bad_frame(
                    "a component receives `msg` frames only",
                )),
            },
        }
    }
}

/// Messages a component holds before the socket waits for it: a client that floods one
/// component slows its own socket's reading, never the server.
const INBOX: usize = 64;

impl<P, H> Module for Arc<Sessions<P, H>>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    fn served(&self) -> &Served {
        &self.served
    }

    fn transcode(&self) -> Transcode {
        msgpack::transcode::<P::Server>
    }

    #[cfg(feature = "prometheus")]
    fn source(&self) -> Arc<dyn Source> {
        Arc::new(self.clone())
    }

    fn start(&self, socket: &Conn, start: Start) -> JoinHandle<()> {
        let span = tracing::info_span!(
            "omni.mux.component",
            id = start.id.as_str(),
            traceparent = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        // The join's trace context, else the socket's (the span's parent).
        if let Some(parent) = start.trace {
            super::trace::adopt(&span, parent);
        }
        // The component's view of the socket, for its session; the connection id is the
        // endpoint's, so a resume elsewhere tells the two connections of one session apart.
        let conn_id = self.shared.next_conn_id();
        let mut conn = socket.component(conn_id, start.id.clone(), start.left.clone());
        conn.show_presence_as(start.resume.presence.clone());
        conn.client = start.resume.client.clone();
        tokio::spawn(component(self.clone(), conn, start).instrument(span))
    }
}

/// One component: its session, run on its own task, so a slow handler holds up only its
/// own messages.
async fn component<P, H>(hub: Arc<Sessions<P, H>>, conn: Conn, start: Start)
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let Start {
        id,
        join,
        left,
        resume,
        props,
        extensions,
        mut inbox,
        ended,
        leaving,
        trace: _,
    } = start;
    let mut attached =
        Attached::open(hub, resume.session, conn, extensions, props, resume.topics).await;
    let handle = async |attached: &mut Attached<P, H>, command| {
        let Command::Msg { payload, reference } = command;
        let frame = payload
            .decode::<P::Client>(reference, id.as_str())
            .map(|payload| ClientFrame::Msg {
                payload,
                reference,
                id: None,
            });
        // Only `msg` frames reach a component, so the session never switches.
        attached.handle(frame).await;
    };
    loop {
        tokio::select! {
            biased;
            // The client left, its handler closed it, or its session was resumed elsewhere:
            // `left` is queued. What the client sent before is still handled (its replies go
            // nowhere, its sequenced ones stay in the log), then the session ends or waits.
            () = left.wait() => {
                while let Ok(command) = inbox.try_recv() {
                    handle(&mut attached, command).await;
                }
                if left.by_client() {
                    attached.leave().await;
                } else {
                    attached.closed().await;
                }
                break;
            }
            command = inbox.recv() => match command {
                Some(command) => handle(&mut attached, command).await,
                // The socket closed: the session waits for a resume, or only the linger when
                // the client said it is leaving (a closed tab).
                None if leaving.load(Ordering::Acquire) => {
                    attached.closed_leaving().await;
                    break;
                }
                None => {
                    attached.closed().await;
                    break;
                }
            },
        }
    }
    let _ = ended.send((id.as_str().to_owned(), join));
}

/// A joined component, as the socket sees it.
struct Entry {
    join: u64,
    inbox: mpsc::Sender<Command>,
    /// Its view of the socket, to say `left` when the client leaves.
    conn: Conn,
    left: Arc<Left>,
}

impl Entry {
    /// Whether it has left (its `left` is queued) or its task has ended, which the socket
    /// may not have heard yet: its id is free again.
    fn gone(&self) -> bool {
        self.left.is_set() || self.inbox.is_closed()
    }
}

/// One mux socket: its own view of the connection (for frames of the socket's, not a
/// component's), and its components by id.
struct Socket {
    mux: Arc<Inner>,
    conn: Conn,
    components: HashMap<String, Entry>,
    /// The tasks of its components, until they end: the socket counts as open for a graceful
    /// shutdown until every component's `disconnected` hook has run.
    tasks: Vec<JoinHandle<()>>,
    joins: u64,
    ended: mpsc::UnboundedSender<(String, u64)>,
    /// Components whose tasks ended, by id and join number.
    ended_rx: mpsc::UnboundedReceiver<(String, u64)>,
    extensions: axum::http::Extensions,
    codec: Codec,
    /// The client closed the socket saying it is leaving: its components' sessions end after
    /// the linger, not the grace period.
    leaving: Arc<AtomicBool>,
}

impl ws::Reader for Socket {
    async fn frame(&mut self, incoming: Incoming) {
        self.handle(incoming, self.codec).await;
    }

    async fn other(&mut self) {
        // The socket holds a sender itself: this never ends.
        if let Some((id, join)) = self.ended_rx.recv().await
            && self.components.get(&id).is_some_and(|e| e.join == join)
        {
            self.components.remove(&id);
        }
    }
}

async fn run(
    mux: Arc<Inner>,
    socket: WebSocket,
    extensions: axum::http::Extensions,
    codec: Codec,
    trace: Option<TraceParent>,
) {
    let _open = mux.tracker.enter();
    let limits = mux.limits.clone();
    let (mut conn, rx) =
        conn::connection(0, limits.outbound_queue, limits.outbound_queue_bytes, true);
    conn.codec = codec;
    conn.transport = Transport::Mux;
    mux.metrics.opened(Transport::Mux, codec);
    let stopper = conn.stopper();
    let span = tracing::info_span!(
        "omni.mux",
        traceparent = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some(parent) = trace {
        super::trace::adopt(&span, parent);
    }
    // The socket's own frames (`joined`, errors) have no payload; components' frames are read
    // with their module's types (see `ComponentId`).
    let wire = Wire::new::<Value>(codec);
    let (mut stream, mut writer) =
        ws::split(socket, rx, mux.shutdown.subscribe(), &limits, wire, &span);
    let (ended, ended_rx) = mpsc::unbounded_channel();
    let mut socket = Socket {
        mux,
        conn,
        components: HashMap::new(),
        tasks: Vec::new(),
        joins: 0,
        ended,
        ended_rx,
        extensions,
        codec,
        leaving: Arc::default(),
    };

    async {
        let max = limits.max_frame_bytes;
        let mux = socket.mux.clone();
        let leaving = ws::read_loop(
            &mut stream,
            &mut writer,
            &mux.metrics,
            max,
            &stopper,
            &mut socket,
        )
        .await;
        socket.leaving.store(leaving, Ordering::Release);
        writer.finish(&socket.mux.metrics).await;
        // Each component's task sees its inbox close, runs the `disconnected` hook, and its
        // session waits for a resume. The socket is done once they all are.
        socket.components.clear();
        for task in socket.tasks.drain(..) {
            let _ = task.await;
        }
        socket.mux.metrics.closed(Transport::Mux, codec);
    }
    .instrument(span)
    .await;
}

impl Socket {
    /// Handles one client frame.
    async fn handle(&mut self, incoming: Incoming, codec: Codec) {
        // The envelope alone says where the frame goes; the payload stays undecoded for the
        // component to decode as its own protocol's message.
        match (incoming, codec) {
            (Incoming::Text(text), Codec::Json) => {
                let frame = ClientFrame::<Box<RawValue>>::decode_str(text.as_str());
                self.route(frame, RawPayload::Json).await;
            }
            (Incoming::Binary(bytes), Codec::MsgPack) => {
                let frame = ClientFrame::<IgnoredAny>::decode_msgpack(&bytes);
                self.route(frame, |_| RawPayload::Packed(bytes.clone()))
                    .await;
            }
            _ => {
                self.counted(FrameIn::Invalid);
                let (code, message) = ws::wrong_kind(codec);
                self.reply(ServerFrame::error(code, message));
            }
        }
    }

    /// Routes one decoded envelope; `raw` makes a `msg`'s undecoded payload what its
    /// component receives.
    async fn route<T>(
        &mut self,
        frame: Result<ClientFrame<T>, DecodeError>,
        raw: impl FnOnce(T) -> RawPayload,
    ) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => {
                self.counted(FrameIn::Invalid);
                tracing::debug!(%err, "undecodable mux frame");
                self.reply(ServerFrame::from(&err));
                return;
            }
        };
        // A component's `msg` is counted by its endpoint, with its protocol.
        match &frame {
            ClientFrame::Msg { id: Some(_), .. } => {}
            ClientFrame::Msg { .. } => self.counted(FrameIn::Msg),
            ClientFrame::Hello { .. } => self.counted(FrameIn::Hello),
            ClientFrame::Join { .. } => self.counted(FrameIn::Join),
            ClientFrame::Leave { .. } => self.counted(FrameIn::Leave),
        }
        match frame {
            ClientFrame::Msg {
                id: Some(id),
                reference,
                payload,
            } => {
                let inbox = match self.components.get(&id) {
                    Some(entry) if !entry.gone() => entry.inbox.clone(),
                    _ => return self.reply(unknown_id(id, reference)),
                };
                let command = Command::Msg {
                    payload: raw(payload),
                    reference,
                };
                if inbox.send(command).await.is_err() {
                    self.reply(unknown_id(id, reference));
                }
            }
            ClientFrame::Msg { reference, .. } => {
                let mut frame = ServerFrame::error(
                    ErrorCode::BadFrame,
                    "a `msg` on the mux names its component in `id`",
                );
                if let ServerFrame::Error { reference: r, .. } = &mut frame {
                    *r = reference;
                }
                self.reply(frame);
            }
            ClientFrame::Join {
                id,
                module,
                token,
                session,
                after,
                version,
                compatible,
                topics,
                traceparent,
                presence,
                client,
            } => {
                let join = Join {
                    id,
                    module,
                    token,
                    resume: Resume {
                        session: session.map(|s| (s, after.unwrap_or(0))),
                        topics,
                        presence: presence.unwrap_or_default(),
                        client: client
                            .as_deref()
                            .and_then(connect::client_id)
                            .map(Arc::from),
                    },
                    version,
                    compatible: compatible.unwrap_or_default(),
                    trace: traceparent,
                };
                if let Err(frame) = self.join(join) {
                    self.reply(frame);
                }
            }
            ClientFrame::Leave { id } => match self.components.remove(&id) {
                Some(entry) if !entry.gone() => entry.conn.leave(&self.mux.metrics),
                _ => self.reply(unknown_id(id, None)),
            },
            // A bare `hello` is a client's liveness probe; versions are checked per join.
            ClientFrame::Hello { .. } => {}
        }
    }

    /// Starts a component, or says why not; a refused join touches nothing.
    fn join(&mut self, join: Join) -> Result<(), ServerFrame<()>> {
        let mux = self.mux.clone();
        let id = join.id;
        let refuse = |code, message: String| ServerFrame::Error {
            code,
            message,
            reference: None,
            id: Some(id.clone()),
        };
        // The module first, then the token: a token is only meaningful for a known module.
        let Some(module) = mux.modules.get(&join.module) else {
            return Err(refuse(
                ErrorCode::UnknownModule,
                format!("no module `{}` is served here", join.module),
            ));
        };
        let claims = match mux.keys.verify(&join.module, &join.token) {
            Ok(claims) => claims,
            Err(err) => {
                tracing::debug!(%err, module = %join.module, "join refused");
                return Err(refuse(err.code(), err.to_string()));
            }
        };
        if let Err(message) = module.served().check(
            &join.module,
            None,
            join.version.as_deref(),
            &join.compatible,
        ) {
            let module = &join.module;
            return Err(refuse(
                ErrorCode::VersionMismatch,
                format!("{message} (module `{module}`)"),
            ));
        }
        self.components.retain(|_, entry| !entry.gone());
        if self.components.contains_key(&id) {
            return Err(refuse(
                ErrorCode::DuplicateId,
                format!("component `{id}` is already joined on this socket"),
            ));
        }
        let max = mux.limits.max_components;
        if self.components.len() >= max {
            return Err(refuse(
                ErrorCode::TooLarge,
                format!("a socket may join {max} components; leave one first"),
            ));
        }
        self.reply(ServerFrame::Joined { id: id.clone() });
        self.joins += 1;
        let component = ComponentId::new(&id, module.transcode());
        let left = Arc::new(Left::default());
        let (inbox, inbox_rx) = mpsc::channel(INBOX);
        let conn = self.conn.component(0, component.clone(), left.clone());
        self.tasks.retain(|task| !task.is_finished());
        let task = module.start(
            &self.conn,
            Start {
                id: component,
                join: self.joins,
                left: left.clone(),
                resume: join.resume,
                props: claims.props,
                extensions: self.extensions.clone(),
                inbox: inbox_rx,
                ended: self.ended.clone(),
                leaving: self.leaving.clone(),
                trace: join.trace,
            },
        );
        self.tasks.push(task);
        self.components.insert(
            id,
            Entry {
                join: self.joins,
                inbox,
                conn,
                left,
            },
        );
        Ok(())
    }

    /// Counts a frame the socket handles itself, as the mux's.
    fn counted(&self, frame: FrameIn) {
        self.mux.metrics.frame_in(Transport::Mux, frame);
    }

    /// Queues a frame of the socket's own (not a component's) for the client.
    fn reply(&self, frame: ServerFrame<()>) {
        match Outgoing::encode(&frame) {
            Ok(frame) => {
                self.conn.queue(Item::Frame(frame, None), &self.mux.metrics);
            }
            Err(err) => tracing::error!(%err, "could not encode a mux frame"),
        }
    }
}

/// A `join` frame's request.
struct Join {
    id: String,
    module: String,
    token: String,
    resume: Resume,
    version: Option<String>,
    compatible: Vec<String>,
    trace: Option<TraceParent>,
}

fn unknown_id(id: String, reference: Option<Ref>) -> ServerFrame<()> {
    ServerFrame::Error {
        code: ErrorCode::UnknownId,
        message: format!("no component `{id}` is joined on this socket"),
        reference,
        id: Some(id),
    }
}
