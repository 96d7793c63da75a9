//! Drive a handler through the real runtime, in memory: no sockets, no HTTP.
//!
//! A [`TestClient`] connects to an [`Endpoint`] the way a WebSocket would (a session, the
//! `connected` hook, `welcome`), sends client messages that run the real handler, and reads
//! back every frame the client would have received: replies, pushes, broadcasts from other
//! clients, acks and errors. Several test clients on one endpoint see each other's broadcasts.
//!
//! ```
//! use omni::server::Endpoint;
//! use omni::test::TestClient;
//! use omni::{Context, HandlerResult, ServerFrame};
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
//! struct Parrot;
//!
//! impl EchoHandler for Parrot {
//!     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
//!         cx.send(EchoFromServer::Heard(text));
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
//! let mut client = TestClient::connect(&endpoint).await;
//! assert!(matches!(client.recv(), Some(ServerFrame::Welcome { .. })));
//!
//! client.send(EchoFromClient::Say("hi".into())).await;
//! assert_eq!(client.replies(), [EchoFromServer::Heard("hi".into())]);
//! # });
//! ```

use crate::server::Endpoint;
use crate::server::conn::{Conn, ConnRx, Item};
use crate::server::session::Attached;
use crate::{ClientFrame, Dispatch, Protocol, Ref, ServerFrame, SessionId};

/// What a [`TestClient`] connects with, before it connects.
#[must_use]
pub struct TestConnect<'e, P: Protocol + Dispatch<H>, H: Send + 'static> {
    endpoint: &'e Endpoint<P, H>,
    extensions: axum::http::Extensions,
    props: serde_json::Value,
}

impl<P, H> TestConnect<'_, P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    /// Puts `value` in the connection's request extensions, as a tower layer would.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// The session's props, as a mux join token would carry them.
    pub fn props(mut self, props: serde_json::Value) -> Self {
        self.props = props;
        self
    }

    /// Connects: a new session, its `connected` hook, `welcome`.
    pub async fn connect(self) -> TestClient<P, H> {
        let hub = self.endpoint.registry();
        let (conn, rx): (Conn, ConnRx) = hub.shared.connection(true);
        let attached =
            Attached::open(hub.clone(), None, conn, self.extensions, self.props, None).await;
        TestClient {
            attached,
            rx,
            replay: std::collections::VecDeque::new(),
            next_ref: 1,
        }
    }
}

/// A client connected to an endpoint in memory.
pub struct TestClient<P: Protocol + Dispatch<H>, H: Send + 'static> {
    attached: Attached<P, H>,
    rx: ConnRx,
    /// Frames taken off the queue (a replay arrives as one item) and not yet read.
    replay: std::collections::VecDeque<crate::pubsub::Outgoing>,
    next_ref: Ref,
}

impl<P, H> TestClient<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    /// Connects as a WebSocket would: a new session, its `connected` hook, `welcome`.
    pub async fn connect(endpoint: &Endpoint<P, H>) -> Self {
        Self::builder(endpoint).connect().await
    }

    /// A connection with what a real one would carry: the request's extensions (what an auth
    /// layer inserted, read with [`Context::extensions`](crate::Context::extensions)) and the
    /// session's props (a mux component's verified token props, which the endpoint's
    /// [`with_props`](crate::server::Endpoint::with_props) factory makes the handler from).
    ///
    /// ```
    /// use omni::server::Endpoint;
    /// use omni::test::TestClient;
    /// use omni::{Context, HandlerResult};
    ///
    /// #[omni::protocol]
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Greet {
    ///     #[client]
    ///     Hello,
    ///     #[server]
    ///     Hi(String),
    /// }
    ///
    /// #[derive(Clone)]
    /// struct User(&'static str);
    ///
    /// struct Greeter {
    ///     room: String,
    /// }
    ///
    /// impl GreetHandler for Greeter {
    ///     async fn hello(&mut self, cx: &mut Context<Greet>) -> HandlerResult {
    ///         let user = cx.extensions().get::<User>().ok_or("not signed in")?.0;
    ///         cx.send(GreetFromServer::Hi(format!("{user} in {}", self.room)));
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let endpoint = Endpoint::<Greet, _>::with_props(|props| Greeter {
    ///     room: props["room"].as_str().unwrap_or("lobby").to_owned(),
    /// })
    /// .build();
    /// let mut client = TestClient::builder(&endpoint)
    ///     .extension(User("ada"))
    ///     .props(serde_json::json!({"room": "kitchen"}))
    ///     .connect()
    ///     .await;
    /// client.send(GreetFromClient::Hello).await;
    /// assert_eq!(client.replies(), [GreetFromServer::Hi("ada in kitchen".into())]);
    /// # });
    /// ```
    pub fn builder(endpoint: &Endpoint<P, H>) -> TestConnect<'_, P, H> {
        TestConnect {
            endpoint,
            extensions: axum::http::Extensions::new(),
            props: serde_json::Value::Null,
        }
    }

    /// This client's session.
    pub fn session(&self) -> SessionId {
        self.attached.session().id()
    }

    /// Sends a client message with the next `ref`, and waits until the handler is done with
    /// it. Returns the `ref`.
    pub async fn send(&mut self, msg: P::Client) -> Ref {
        let reference = self.next_ref;
        self.next_ref += 1;
        self.send_frame(ClientFrame::Msg {
            payload: msg,
            reference: Some(reference),
            id: None,
        })
        .await;
        reference
    }

    /// Sends any client frame, as its JSON would arrive.
    pub async fn send_frame(&mut self, frame: ClientFrame<P::Client>) {
        self.attached.handle(Ok(frame)).await;
    }

    /// The next frame this client received, if any is waiting.
    pub fn recv(&mut self) -> Option<ServerFrame<P::Server>> {
        while self.replay.is_empty() {
            match self.rx.frames.try_recv()?.ready() {
                Item::Frame(frame, _) => self.replay.push_back(frame),
                Item::Replay(frames, _) => self.replay.extend(frames),
                Item::Close(_) | Item::Left(_) => return None,
                // Made ready above.
                Item::Refresh(..) => {}
            }
        }
        let frame = self.replay.pop_front()?;
        ServerFrame::decode(frame.text().as_bytes()).ok()
    }

    /// Every frame waiting, in order.
    pub fn frames(&mut self) -> Vec<ServerFrame<P::Server>> {
        std::iter::from_fn(|| self.recv()).collect()
    }

    /// The payloads of the sequenced (`msg`) frames waiting, discarding the other frames.
    pub fn replies(&mut self) -> Vec<P::Server> {
        self.frames()
            .into_iter()
            .filter_map(|f| match f {
                ServerFrame::Msg { payload, .. } => Some(payload),
                _ => None,
            })
            .collect()
    }

    /// The payloads of the `push` frames waiting (broadcasts included), discarding the rest.
    pub fn pushes(&mut self) -> Vec<P::Server> {
        self.frames()
            .into_iter()
            .filter_map(|f| match f {
                ServerFrame::Push { payload, .. } => Some(payload),
                _ => None,
            })
            .collect()
    }

    /// Disconnects: runs the `disconnected` hook and starts the session's grace period.
    pub async fn close(self) {
        self.attached.closed().await;
    }
}
