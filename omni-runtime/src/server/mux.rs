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
//! use omni_runtime::protocol::tests_support::{Echo, EchoFromClient};
//! use omni_runtime::server::{Endpoint, Mux};
//! use omni_runtime::token::Keys;
//! # use omni_runtime::{Context, Dispatch, HandlerResult};
//! # struct Room { name: String }
//! # impl Dispatch<Room> for Echo {
//! #     async fn dispatch(_: &mut Room, _: &mut Context<Echo>, _: EchoFromClient) -> HandlerResult { Ok(()) }
//! #     async fn connected(_: &mut Room, _: &mut Context<Echo>) -> HandlerResult { Ok(()) }
//! #     async fn disconnected(_: &mut Room, _: &mut Context<Echo>) -> HandlerResult { Ok(()) }
//! # }
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
//! let app = axum::Router::new().nest("/omni", mux.router());
//! # let _ = (token, app);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use serde::de::IgnoredAny;
use serde_json::Value;
use tokio::sync::watch;
use tracing::Instrument;

use super::core::{self, Conn, ConnRx, Item, Stop, shutting_down};
use super::hub::{Hub, Session};
use super::metrics::Metrics;
use super::ws::{self, Incoming};
use super::{Endpoint, Limits, Origins};
use crate::SessionId;
use crate::pubsub::Outgoing;
use crate::token::Keys;
use crate::{ClientFrame, Cursors, Dispatch, ErrorCode, Protocol, Ref, Seq, ServerFrame};

/// Several endpoints served as modules over one WebSocket per client. Cheap to clone.
#[derive(Clone)]
pub struct Mux {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Keys,
    modules: HashMap<String, Arc<dyn Module>>,
    limits: Limits,
    origins: Origins,
    metrics: Metrics,
    shutdown: watch::Sender<bool>,
}

/// Builds a [`Mux`]: its modules, limits and origin policy.
#[must_use]
pub struct MuxBuilder {
    keys: Keys,
    modules: HashMap<String, Arc<dyn Module>>,
    limits: Limits,
    origins: Origins,
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
            .insert(name.into(), Arc::new(endpoint.hub().clone()));
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
        self.origins = origins;
        self
    }

    /// The mux.
    pub fn build(self) -> Mux {
        Mux {
            inner: Arc::new(Inner {
                keys: self.keys,
                modules: self.modules,
                limits: self.limits,
                origins: self.origins,
                metrics: Metrics::default(),
                shutdown: watch::channel(false).0,
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
            origins: Origins::default(),
        }
    }

    /// A join token for `module` carrying `props`, valid for `ttl`: put it in the page that
    /// joins the component.
    pub fn sign(&self, module: &str, props: &Value, ttl: Duration) -> String {
        self.inner.keys.sign(module, props, ttl)
    }

    /// The route `/mux`, to `nest` under a prefix of your choice.
    pub fn router(&self) -> Router {
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
        if !self.inner.origins.allows(&request.headers) {
            return StatusCode::FORBIDDEN.into_response();
        }
        let inner = self.inner.clone();
        let extensions = request.extensions.clone();
        ws::configure(upgrade, &self.inner.limits)
            .on_upgrade(move |socket| run(inner, socket, extensions))
    }

    /// Closes every mux socket (1001, "server shutting down"); their components' sessions
    /// are held for their grace period as after any disconnect.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
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
    fn version(&self) -> &'static str;

    /// Starts (or resumes) a session as component `id` on `socket`.
    fn join<'a>(
        &'a self,
        id: &'a str,
        socket: &'a Conn,
        resume: Resume,
        props: Value,
        extensions: axum::http::Extensions,
    ) -> BoxFuture<'a, Box<dyn Component>>;
}

/// What a `join` asks to resume: the component's session, and its topics.
struct Resume {
    session: Option<(SessionId, Seq)>,
    topics: Option<Cursors>,
}

/// A joined component: its session, and the connection that is its view of the socket.
trait Component: Send + Sync {
    /// Handles one `msg` frame for the component.
    fn handle<'a>(&'a self, text: &'a [u8]) -> BoxFuture<'a, ()>;

    /// Stops the component: `leave` ends its session, otherwise it is held for resume.
    fn stop(&self, leave: bool) -> BoxFuture<'_, ()>;
}

impl<P, H> Module for Arc<Hub<P, H>>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    fn version(&self) -> &'static str {
        P::VERSION
    }

    fn join<'a>(
        &'a self,
        id: &'a str,
        socket: &'a Conn,
        resume: Resume,
        props: Value,
        extensions: axum::http::Extensions,
    ) -> BoxFuture<'a, Box<dyn Component>> {
        Box::pin(async move {
            let conn_id = self.shared.next_conn_id();
            let conn = socket.component(conn_id, id);
            let session = self
                .open(resume.session, conn, extensions, props, resume.topics)
                .await;
            Box::new(Joined {
                hub: self.clone(),
                session,
                conn_id,
            }) as Box<dyn Component>
        })
    }
}

struct Joined<P: Protocol, H> {
    hub: Arc<Hub<P, H>>,
    session: Arc<Session<P, H>>,
    conn_id: u64,
}

impl<P, H> Component for Joined<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    fn handle<'a>(&'a self, text: &'a [u8]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let frame = ClientFrame::<P::Client>::decode(text);
            // Only `msg` frames reach a component, so the session never switches.
            let _ = self.hub.handle(&self.session, self.conn_id, frame).await;
        })
    }

    fn stop(&self, leave: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if leave {
                self.hub.leave(&self.session, self.conn_id).await;
            } else {
                self.hub.closed(&self.session, self.conn_id).await;
            }
        })
    }
}

/// One mux socket's components, by id.
type Components = HashMap<String, Box<dyn Component>>;

async fn run(mux: Arc<Inner>, mut socket: WebSocket, extensions: axum::http::Extensions) {
    let limits = &mux.limits;
    let (
        conn,
        ConnRx {
            mut frames,
            mut stop,
        },
    ) = core::connection(0, limits.outbound_queue, true);
    let mut components = Components::new();
    let mut shutdown = mux.shutdown.subscribe();
    let max = limits.max_frame_bytes;
    let mut left = Vec::new();

    async {
        let reason = loop {
            tokio::select! {
                biased;
                item = frames.recv() => {
                    let written = ws::write(&mut socket, item, &mut frames, &mut left).await;
                    for id in left.drain(..) {
                        if let Some(component) = components.remove(&*id) {
                            component.stop(false).await;
                        }
                    }
                    match written {
                        Ok(None) => {}
                        Ok(Some(stop)) => break Some(stop),
                        Err(()) => break None,
                    }
                }
                _ = stop.changed() => break ws::stopped(&mut socket, &mut stop).await,
                _ = shutting_down(&mut shutdown) => break Some(Stop::GOING_AWAY),
                incoming = socket.recv() => {
                    let text = match ws::read(&mut socket, incoming, max).await {
                        Incoming::Text(text) => text,
                        Incoming::Binary => {
                            let (code, message) = ws::binary();
                            reply(&mux, &conn, ServerFrame::error(code, message));
                            continue;
                        }
                        Incoming::Skip => continue,
                        Incoming::End(stop) => break stop,
                    };
                    handle(&mux, &conn, &mut components, text.as_bytes(), &extensions).await;
                }
            }
        };
        ws::close(&mut socket, reason).await;
        // Every component's `disconnected` hook runs; their sessions wait for a resume.
        for (_, component) in components.drain() {
            component.stop(false).await;
        }
    }
    .instrument(tracing::info_span!("omni.mux"))
    .await;
}

/// Handles one client frame on a mux socket.
async fn handle(
    mux: &Inner,
    socket: &Conn,
    components: &mut Components,
    text: &[u8],
    extensions: &axum::http::Extensions,
) {
    // The envelope alone says where the frame goes; its payload is decoded by the component,
    // as its own protocol's message.
    let frame = match ClientFrame::<IgnoredAny>::decode(text) {
        Ok(frame) => frame,
        Err(err) => {
            tracing::debug!(%err, "undecodable mux frame");
            reply(mux, socket, ServerFrame::from(&err));
            return;
        }
    };
    match frame {
        ClientFrame::Msg {
            id: Some(id),
            reference,
            ..
        } => match components.get(&id) {
            Some(component) => component.handle(text).await,
            None => reply(mux, socket, unknown_id(id, reference)),
        },
        ClientFrame::Msg { reference, .. } => {
            let mut frame = ServerFrame::error(
                ErrorCode::BadFrame,
                "a `msg` on the mux names its component in `id`",
            );
            if let ServerFrame::Error { reference: r, .. } = &mut frame {
                *r = reference;
            }
            reply(mux, socket, frame);
        }
        ClientFrame::Join {
            id,
            module,
            token,
            session,
            after,
            version,
            topics,
        } => {
            let join = Join {
                id,
                module,
                token,
                resume: Resume {
                    session: session.map(|s| (s, after.unwrap_or(0))),
                    topics,
                },
                version,
            };
            if let Err(frame) = join.run(mux, socket, components, extensions).await {
                reply(mux, socket, frame);
            }
        }
        ClientFrame::Leave { id } => match components.remove(&id) {
            Some(component) => {
                component.stop(true).await;
                reply(mux, socket, ServerFrame::Left { id });
            }
            None => reply(mux, socket, unknown_id(id, None)),
        },
        // A bare `hello` is a client's liveness probe; versions are checked per join.
        ClientFrame::Hello { .. } => {}
    }
}

/// A `join` frame's request.
struct Join {
    id: String,
    module: String,
    token: String,
    resume: Resume,
    version: Option<String>,
}

impl Join {
    /// Starts the component, or says why not; a refused join touches nothing.
    async fn run(
        self,
        mux: &Inner,
        socket: &Conn,
        components: &mut Components,
        extensions: &axum::http::Extensions,
    ) -> Result<(), ServerFrame<()>> {
        let id = self.id;
        let refuse = |code, message: String| ServerFrame::Error {
            code,
            message,
            reference: None,
            id: Some(id.clone()),
        };
        // The module first, then the token: a token is only meaningful for a known module.
        let Some(module) = mux.modules.get(&self.module) else {
            return Err(refuse(
                ErrorCode::UnknownModule,
                format!("no module `{}` is served here", self.module),
            ));
        };
        let claims = match mux.keys.verify(&self.module, &self.token) {
            Ok(claims) => claims,
            Err(err) => {
                tracing::debug!(%err, module = %self.module, "join refused");
                return Err(refuse(err.code(), err.to_string()));
            }
        };
        if let Some(version) = &self.version
            && version != module.version()
        {
            return Err(refuse(
                ErrorCode::VersionMismatch,
                format!(
                    "client schema {version} differs from the server's {} for module `{}`",
                    module.version(),
                    self.module
                ),
            ));
        }
        if components.contains_key(&id) {
            return Err(refuse(
                ErrorCode::DuplicateId,
                format!("component `{id}` is already joined on this socket"),
            ));
        }
        let max = mux.limits.max_components;
        if components.len() >= max {
            return Err(refuse(
                ErrorCode::TooLarge,
                format!("a socket may join {max} components; leave one first"),
            ));
        }
        reply(mux, socket, ServerFrame::Joined { id: id.clone() });
        let component = module
            .join(&id, socket, self.resume, claims.props, extensions.clone())
            .await;
        components.insert(id, component);
        Ok(())
    }
}

fn unknown_id(id: String, reference: Option<Ref>) -> ServerFrame<()> {
    ServerFrame::Error {
        code: ErrorCode::UnknownId,
        message: format!("no component `{id}` is joined on this socket"),
        reference,
        id: Some(id),
    }
}

/// Queues a frame of the socket's own (not a component's) for the client.
fn reply(mux: &Inner, socket: &Conn, frame: ServerFrame<()>) {
    match frame.encode() {
        Ok(text) => {
            socket.queue(
                Item::Frame(Outgoing::new(frame.kind(), None, text.into())),
                &mux.metrics,
            );
        }
        Err(err) => tracing::error!(%err, "could not encode a mux frame"),
    }
}
