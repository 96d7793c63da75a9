//! The [`Endpoint`]: one protocol and its handler factory behind the `/ws`, `/http` and `/sse`
//! routes, and the state all of its sessions share.

mod shared;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub(crate) use self::shared::Shared;
use super::browser;
use super::encoded::Outgoing;
use super::limits::Limits;
use super::metrics::{Metrics, MetricsSnapshot};
use super::origin::{Admission, Hosts, Origins};
use super::query;
use super::session::{Factory, Saver, SessionStore, Sessions};
use super::{http, sse, trace, ws};
use crate::ServerFrame;
use crate::presence::List;
use crate::pubsub::{LocalPubSub, PresenceWatcher, PubSub};
use crate::wire::{Codec, connect};
use crate::{Dispatch, Protocol};

/// A protocol served with a handler factory: the state behind the `/ws`, `/http` and `/sse`
/// routes. Cheap to clone.
pub struct Endpoint<P: Protocol, H> {
    sessions: Arc<Sessions<P, H>>,
    admission: Arc<Admission>,
}

impl<P: Protocol, H> Clone for Endpoint<P, H> {
    fn clone(&self) -> Self {
        Self {
            sessions: self.sessions.clone(),
            admission: self.admission.clone(),
        }
    }
}

/// Builds an [`Endpoint`] with non-default limits, pub/sub backend or origin policy.
#[must_use]
pub struct EndpointBuilder<P, H> {
    factory: Factory<H>,
    limits: Limits,
    pubsub: Option<Arc<dyn PubSub>>,
    sessions: Option<SessionStore>,
    admission: Admission,
    /// Messages derived from a topic's presence list, pushed when it changes.
    presence_messages: Vec<(String, PresenceWatcher)>,
    protocol: std::marker::PhantomData<fn() -> P>,
}

impl<P, H> EndpointBuilder<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    /// Limits and timings (frame size, queues, resume log, grace period…).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The pub/sub backend; several endpoints (or mux modules) sharing one see each other's
    /// broadcasts. Default: a [`LocalPubSub`] of the endpoint's own.
    pub fn pubsub(mut self, pubsub: Arc<dyn PubSub>) -> Self {
        self.pubsub = Some(pubsub);
        self
    }

    /// Keeps each session's resume state in `store` (see [`SessionStore`]), so that a client
    /// whose server process died, or whose load balancer sends it to another process sharing
    /// the store, resumes there exactly: no frame lost or doubled, its resent messages that
    /// were handled answered, not handled again. The handler is made anew on the process
    /// that resumes it, and its `connected` hook sees [`Context::moved`](crate::Context::moved).
    ///
    /// A sequenced frame or an `ack` reaches the client only once the store has it (one round
    /// trip, shared by every session with something to save meanwhile). While the store cannot
    /// be reached, frames go after half a second's wait, unsaved, and a resume elsewhere across
    /// them gets `reset`. Default: none, a session lives and dies with its process.
    pub fn session_store(mut self, store: SessionStore) -> Self {
        self.sessions = Some(store);
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

    /// After each change to `topic`'s presence, pushes `message(list)` (a message of the
    /// protocol, made from the topic's whole list: a count of who is online, say) to the
    /// topic's subscribers on this server, once per change interval, encoded once; a new
    /// subscriber gets it with the list. For clients that show presence without reading
    /// presence frames.
    ///
    /// ```
    /// use omni::server::Endpoint;
    /// use omni::{Context, HandlerResult};
    ///
    /// #[omni::protocol]
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Room {
    ///     #[client]
    ///     Enter(String),
    ///     #[server]
    ///     Online(usize),
    /// }
    ///
    /// struct Guest;
    /// impl RoomHandler for Guest {
    ///     async fn enter(&mut self, cx: &mut Context<Room>, name: String) -> HandlerResult {
    ///         cx.subscribe("room");
    ///         cx.track("room", name, ());
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let endpoint = Endpoint::<Room, _>::builder(|| Guest)
    ///     .presence_message("room", |list| RoomFromServer::Online(list.len()))
    ///     .build();
    /// # let _ = endpoint;
    /// ```
    pub fn presence_message(
        mut self,
        topic: impl Into<String>,
        message: impl Fn(&List) -> P::Server + Send + Sync + 'static,
    ) -> Self {
        let topic = topic.into();
        let named = topic.clone();
        let watcher: PresenceWatcher = Box::new(move |list| {
            let frame = ServerFrame::Push {
                payload: message(list),
                topic: Some(named.clone()),
                id: None,
            };
            Outgoing::encode(&frame).ok()
        });
        self.presence_messages.push((topic, watcher));
        self
    }

    /// The endpoint.
    pub fn build(self) -> Endpoint<P, H> {
        let pubsub = self.pubsub.unwrap_or_else(|| Arc::new(LocalPubSub::new()));
        for (topic, watcher) in self.presence_messages {
            pubsub.watch_presence(&topic, watcher);
        }
        let saver = self.sessions.map(Saver::start);
        let shared = Arc::new(Shared::new(Metrics::of::<P>(), self.limits, pubsub, saver));
        let sessions = Arc::new(Sessions::new(shared, self.factory));
        sessions.keep_in_store();
        Endpoint {
            sessions,
            admission: Arc::new(self.admission),
        }
    }
}

impl<P, H> Endpoint<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    /// An endpoint with default limits, in-process pub/sub and same-host origins; `factory`
    /// makes each session's handler.
    pub fn new(factory: impl Fn() -> H + Send + Sync + 'static) -> Self {
        Self::builder(factory).build()
    }

    /// A builder, to change limits, the pub/sub backend or the origin policy.
    pub fn builder(factory: impl Fn() -> H + Send + Sync + 'static) -> EndpointBuilder<P, H> {
        Self::with_props(move |_| factory())
    }

    /// A builder whose `factory` makes each session's handler from its props: the verified
    /// props of the join token when the endpoint is a [`Mux`](crate::server::Mux) module, `null` when a client
    /// connects to the endpoint's own routes.
    ///
    /// ```
    /// use omni::server::Endpoint;
    /// use omni::{Context, HandlerResult};
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
    /// struct Greeter {
    ///     name: String,
    /// }
    ///
    /// impl EchoHandler for Greeter {
    ///     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
    ///         cx.send(EchoFromServer::Heard(format!("{}: {text}", self.name)));
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let endpoint = Endpoint::<Echo, _>::with_props(|props| Greeter {
    ///     name: props["name"].as_str().unwrap_or("stranger").to_owned(),
    /// })
    /// .build();
    /// # let _ = endpoint;
    /// ```
    pub fn with_props(
        factory: impl Fn(&serde_json::Value) -> H + Send + Sync + 'static,
    ) -> EndpointBuilder<P, H> {
        EndpointBuilder {
            factory: Box::new(factory),
            limits: Limits::default(),
            pubsub: None,
            sessions: None,
            admission: Admission::default(),
            presence_messages: Vec::new(),
            protocol: std::marker::PhantomData,
        }
    }

    /// The routes `/ws`, `/http`, `/sse`, and the browser client (`/omni.js` and the modules
    /// it imports, [`BROWSER_CLIENT`](crate::server::BROWSER_CLIENT)), to `nest` under a prefix of your choice, in a router of
    /// any state: the endpoint carries its own, so an app's `Router<AppState>` takes it as it is.
    ///
    /// ```
    /// use omni::axum::Router;
    /// use omni::axum::extract::State;
    /// use omni::axum::routing::get;
    /// use omni::server::Endpoint;
    /// # #[omni::protocol]
    /// # #[derive(Debug, Clone, PartialEq)]
    /// # enum Echo { #[client] Say(String), #[server] Heard(String) }
    /// # struct Parrot;
    /// # impl EchoHandler for Parrot {
    /// #     async fn say(&mut self, _: &mut omni::Context<Echo>, _: String) -> omni::HandlerResult {
    /// #         Ok(())
    /// #     }
    /// # }
    ///
    /// #[derive(Clone)]
    /// struct AppState {
    ///     name: &'static str,
    /// }
    ///
    /// let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
    /// let app: Router = Router::new()
    ///     .route("/", get(|State(app): State<AppState>| async move { app.name }))
    ///     .nest("/omni", endpoint.router())
    ///     .with_state(AppState { name: "echo" });
    /// ```
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/ws", get(ws_route::<P, H>))
            .route("/http", post(http_route::<P, H>))
            .route("/sse", get(sse_route::<P, H>))
            .merge(browser::router())
            .with_state(self.clone())
    }

    /// Upgrades a request to a WebSocket served by this endpoint, for use inside your own
    /// axum handler (after your own checks). Honours `?session=&after=` for resume.
    pub fn upgrade(
        &self,
        upgrade: WebSocketUpgrade,
        request: &axum::http::request::Parts,
    ) -> Response {
        if let Err(refused) = self.admission.check(&request.headers) {
            return refused.into_response();
        }
        let codec = match query::codec_from_uri(&request.uri) {
            Ok(codec) => codec,
            Err(err) => return query::unknown_codec(&err),
        };
        // An unreadable resume point is no resume: the client gets a fresh session.
        let query = request.uri.query().and_then(|q| connect::resume(q).ok());
        let resume = query
            .as_ref()
            .and_then(|q| q.session.map(|id| (id, q.after.unwrap_or(0))));
        let follow = query.as_ref().map(query::Follow::of).unwrap_or_default();
        let sessions = self.sessions.clone();
        let extensions = request.extensions.clone();
        let trace = trace::from_headers(&request.headers);
        ws::configure(upgrade, &self.sessions.shared.limits).on_upgrade(move |socket| {
            ws::run(sessions, socket, resume, follow, extensions, codec, trace)
        })
    }

    /// Serves one already-upgraded WebSocket on this endpoint (a new session).
    pub async fn serve_socket(&self, socket: WebSocket) {
        ws::run(
            self.sessions.clone(),
            socket,
            None,
            query::Follow::default(),
            axum::http::Extensions::new(),
            Codec::Json,
            None,
        )
        .await;
    }

    /// The endpoint's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.sessions.shared.metrics.snapshot()
    }

    /// Sessions currently held (attached or in their grace period).
    pub fn sessions(&self) -> usize {
        self.sessions.session_count()
    }

    /// Closes every connection with a close frame (1001, "server shutting down") and ends
    /// every event stream. Call it from axum's graceful-shutdown future, which then stops
    /// accepting and waits for the connections to finish.
    pub fn shutdown(&self) {
        self.sessions.shared.shutdown.send_replace(true);
    }

    pub(crate) fn registry(&self) -> &Arc<Sessions<P, H>> {
        &self.sessions
    }
}

async fn ws_route<P, H>(State(endpoint): State<Endpoint<P, H>>, request: Request) -> Response
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let (mut parts, _) = request.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => endpoint.upgrade(upgrade, &parts),
        Err(rejection) => rejection.into_response(),
    }
}

async fn http_route<P, H>(State(endpoint): State<Endpoint<P, H>>, request: Request) -> Response
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let (parts, body) = request.into_parts();
    if let Err(refused) = endpoint.admission.check(&parts.headers) {
        return refused.into_response();
    }
    let limits = &endpoint.sessions.shared.limits;
    let limit = limits.max_frame_bytes;
    let codec = http::codec_of(&parts.headers);
    // A body announced too large is refused before any of it is read.
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return http::too_large(limit, codec);
    }
    // One byte over the limit is enough to know the body is too large; a body that trickles
    // in slower than the timeout holds the request no longer.
    let read = axum::body::to_bytes(body, limit + 1);
    let body: Bytes = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return http::too_large(limit, codec),
        Err(_) => return http::body_timeout(limits.body_timeout, codec),
    };
    http::post(
        endpoint.sessions.clone(),
        parts.headers,
        parts.extensions,
        body,
    )
    .await
}

async fn sse_route<P, H>(
    State(endpoint): State<Endpoint<P, H>>,
    headers: HeaderMap,
    request: Request,
) -> Response
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    if let Err(refused) = endpoint.admission.check(&headers) {
        return refused.into_response();
    }
    let query = match connect::resume(request.uri().query().unwrap_or_default()) {
        Ok(query) => query,
        Err(err) => {
            let message = format!("the connect URL's resume point cannot be read: {err}");
            return (StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    match query::codec_from_uri(request.uri()) {
        Ok(Codec::Json) => {}
        Ok(_) => return sse::binary_refused(),
        Err(err) => return query::unknown_codec(&err),
    }
    let resume = sse::resume_point(query.session, query.after, &headers);
    let follow = query::Follow::of(&query);
    let extensions = request.into_parts().0.extensions;
    let trace = trace::from_headers(&headers);
    sse::get(endpoint.sessions.clone(), resume, follow, extensions, trace).await
}

/// Runs one WebSocket with a protocol and a handler, inside your own axum handler, without an
/// [`Endpoint`] of your own: the connection gets a session of its own (with the default
/// limits), and `handler` is cloned again if it fails and must be restarted.
///
/// ```no_run
/// use omni::axum::extract::ws::WebSocketUpgrade;
/// use omni::axum::response::Response;
/// use omni::{Context, HandlerResult};
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
/// #[derive(Clone)]
/// struct Parrot;
///
/// impl EchoHandler for Parrot {
///     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
///         cx.send(EchoFromServer::Heard(text));
///         Ok(())
///     }
/// }
///
/// async fn echo(upgrade: WebSocketUpgrade) -> Response {
///     upgrade.on_upgrade(|socket| omni::server::websocket::<Echo, _>(socket, Parrot))
/// }
/// ```
pub async fn websocket<P, H>(socket: WebSocket, handler: H)
where
    P: Protocol + Dispatch<H>,
    H: Clone + Send + Sync + 'static,
{
    Endpoint::<P, H>::new(move || handler.clone())
        .serve_socket(socket)
        .await;
}
