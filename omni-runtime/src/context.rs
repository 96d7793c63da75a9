//! The per-connection [`Context`] a handler method receives.
//!
//! A handler does not write to the socket itself: it records [`Effect`]s on its context
//! (`send`, `push`, `subscribe`, `broadcast`, …) and the runtime carries them out once the
//! method returns, in order. That keeps handler code synchronous where it can be, makes a
//! handler testable without sockets, and lets the runtime sequence, log and encode every
//! outgoing frame in one place.
//!
//! ```
//! use omni::{Context, Effect, HandlerResult, SessionId};
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
//! struct Room;
//!
//! impl EchoHandler for Room {
//!     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
//!         cx.send(EchoFromServer::Heard(text.clone()));
//!         cx.broadcast_from("room", EchoFromServer::Heard(text));
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let mut cx = Context::<Echo>::new(SessionId::from_u128(1));
//! Room.say(&mut cx, "hi".into()).await?;
//! // Nothing has been sent: the handler only recorded what to do.
//! let effects = cx.take_effects();
//! assert_eq!(effects[0], Effect::Send(EchoFromServer::Heard("hi".into())));
//! assert!(matches!(&effects[1], Effect::Broadcast { include_self: false, .. }));
//! # Ok::<(), omni::BoxError>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::presence::Meta;
use crate::{Protocol, Ref, SessionId};

/// What a handler asked the runtime to do, in the order it asked.
#[non_exhaustive]
pub enum Effect<P: Protocol> {
    /// Send a sequenced `msg` to this client: logged and replayed on resume.
    Send(P::Server),
    /// Send an ephemeral `push` to this client: never replayed.
    Push(P::Server),
    /// Subscribe this session to a topic.
    Subscribe(String),
    /// Unsubscribe this session from a topic.
    Unsubscribe(String),
    /// Push `msg` to every subscriber of `topic`; to this session too unless `include_self`
    /// is false.
    Broadcast {
        /// The topic.
        topic: String,
        /// The message, encoded once for all subscribers.
        msg: P::Server,
        /// Whether this session receives it too (`broadcast`) or not (`broadcast_from`).
        include_self: bool,
    },
    /// Publish `msg` on sequenced `topic`: numbered by the topic, logged for replay, and
    /// delivered to every subscriber (this session too, if subscribed).
    Publish {
        /// The topic.
        topic: String,
        /// The message, encoded once for all subscribers.
        msg: P::Server,
    },
    /// Track this session under `key` in `topic`'s presence (see [`presence`](crate::presence)).
    Track {
        /// The topic.
        topic: String,
        /// The key (a user id, say); several sessions may share one.
        key: String,
        /// What subscribers see of this entry.
        meta: Meta,
    },
    /// Stop tracking this session under `key` in `topic`.
    Untrack {
        /// The topic.
        topic: String,
        /// The key.
        key: String,
    },
    /// Close this connection after the effects before it are carried out.
    Close,
}

impl<P: Protocol> Clone for Effect<P>
where
    P::Server: Clone,
{
    fn clone(&self) -> Self {
        match self {
            Self::Send(m) => Self::Send(m.clone()),
            Self::Push(m) => Self::Push(m.clone()),
            Self::Subscribe(t) => Self::Subscribe(t.clone()),
            Self::Unsubscribe(t) => Self::Unsubscribe(t.clone()),
            Self::Broadcast {
                topic,
                msg,
                include_self,
            } => Self::Broadcast {
                topic: topic.clone(),
                msg: msg.clone(),
                include_self: *include_self,
            },
            Self::Publish { topic, msg } => Self::Publish {
                topic: topic.clone(),
                msg: msg.clone(),
            },
            Self::Track { topic, key, meta } => Self::Track {
                topic: topic.clone(),
                key: key.clone(),
                meta: meta.clone(),
            },
            Self::Untrack { topic, key } => Self::Untrack {
                topic: topic.clone(),
                key: key.clone(),
            },
            Self::Close => Self::Close,
        }
    }
}

impl<P: Protocol> PartialEq for Effect<P>
where
    P::Server: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Send(a), Self::Send(b)) | (Self::Push(a), Self::Push(b)) => a == b,
            (Self::Subscribe(a), Self::Subscribe(b))
            | (Self::Unsubscribe(a), Self::Unsubscribe(b)) => a == b,
            (
                Self::Broadcast {
                    topic: t1,
                    msg: m1,
                    include_self: s1,
                },
                Self::Broadcast {
                    topic: t2,
                    msg: m2,
                    include_self: s2,
                },
            ) => t1 == t2 && m1 == m2 && s1 == s2,
            (Self::Publish { topic: t1, msg: m1 }, Self::Publish { topic: t2, msg: m2 }) => {
                t1 == t2 && m1 == m2
            }
            (
                Self::Track {
                    topic: t1,
                    key: k1,
                    meta: m1,
                },
                Self::Track {
                    topic: t2,
                    key: k2,
                    meta: m2,
                },
            ) => t1 == t2 && k1 == k2 && m1 == m2,
            (Self::Untrack { topic: t1, key: k1 }, Self::Untrack { topic: t2, key: k2 }) => {
                t1 == t2 && k1 == k2
            }
            (Self::Close, Self::Close) => true,
            _ => false,
        }
    }
}

impl<P: Protocol> fmt::Debug for Effect<P>
where
    P::Server: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send(m) => f.debug_tuple("Send").field(m).finish(),
            Self::Push(m) => f.debug_tuple("Push").field(m).finish(),
            Self::Subscribe(t) => f.debug_tuple("Subscribe").field(t).finish(),
            Self::Unsubscribe(t) => f.debug_tuple("Unsubscribe").field(t).finish(),
            Self::Broadcast {
                topic,
                msg,
                include_self,
            } => f
                .debug_struct("Broadcast")
                .field("topic", topic)
                .field("msg", msg)
                .field("include_self", include_self)
                .finish(),
            Self::Publish { topic, msg } => f
                .debug_struct("Publish")
                .field("topic", topic)
                .field("msg", msg)
                .finish(),
            Self::Track { topic, key, meta } => f
                .debug_struct("Track")
                .field("topic", topic)
                .field("key", key)
                .field("meta", meta)
                .finish(),
            Self::Untrack { topic, key } => f
                .debug_struct("Untrack")
                .field("topic", topic)
                .field("key", key)
                .finish(),
            Self::Close => f.write_str("Close"),
        }
    }
}

/// Where a [`Sender`]'s effects go: the session in a server, a buffer in a plain [`Context`].
pub trait Sink<P: Protocol>: Send + Sync + 'static {
    /// Carries out `effect` now. Fails once the session has ended.
    fn effect(&self, effect: Effect<P>) -> Result<(), SessionGone>;
}

/// The session a [`Sender`] belongs to has ended (its grace period ran out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session has ended")]
pub struct SessionGone;

/// The key of one client message, from [`Context::message_key`]: the client's id and the
/// message's `ref`, which the client keeps with the message until it is acknowledged. Its text
/// form is `client.ref`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct MessageKey {
    /// The id the client gave itself.
    pub client: Arc<str>,
    /// The message's `ref`.
    pub reference: Ref,
}

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.client, self.reference)
    }
}

/// A cloneable handle to one session, for tasks that send to it later (a timer, a database
/// listener). Unlike the context's methods, its effects are carried out at once.
pub struct Sender<P: Protocol> {
    sink: Arc<dyn Sink<P>>,
}

impl<P: Protocol> Clone for Sender<P> {
    fn clone(&self) -> Self {
        Self {
            sink: self.sink.clone(),
        }
    }
}

impl<P: Protocol> fmt::Debug for Sender<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender")
    }
}

impl<P: Protocol> Sender<P> {
    /// A sender whose effects go to `sink`.
    pub fn new(sink: Arc<dyn Sink<P>>) -> Self {
        Self { sink }
    }

    /// Sends a sequenced message to the session (replayed if its client resumes).
    pub fn send(&self, msg: P::Server) -> Result<(), SessionGone> {
        self.sink.effect(Effect::Send(msg))
    }

    /// Sends an ephemeral message to the session's current connection, if any.
    pub fn push(&self, msg: P::Server) -> Result<(), SessionGone> {
        self.sink.effect(Effect::Push(msg))
    }

    /// Pushes `msg` to every subscriber of `topic`, this session included if subscribed.
    pub fn broadcast(&self, topic: impl Into<String>, msg: P::Server) -> Result<(), SessionGone> {
        self.sink.effect(Effect::Broadcast {
            topic: topic.into(),
            msg,
            include_self: true,
        })
    }

    /// Publishes `msg` on sequenced `topic` (see [`Context::publish`]).
    pub fn publish(&self, topic: impl Into<String>, msg: P::Server) -> Result<(), SessionGone> {
        self.sink.effect(Effect::Publish {
            topic: topic.into(),
            msg,
        })
    }

    /// Closes the session's current connection.
    pub fn close(&self) -> Result<(), SessionGone> {
        self.sink.effect(Effect::Close)
    }
}

/// The sink of a context made with [`Context::new`]: it keeps effects until
/// [`Context::take_effects`].
struct Recorder<P: Protocol>(Mutex<Vec<Effect<P>>>);

impl<P: Protocol> Sink<P> for Recorder<P> {
    fn effect(&self, effect: Effect<P>) -> Result<(), SessionGone> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(effect);
        Ok(())
    }
}

/// One session's view of the runtime, handed to every handler method.
pub struct Context<P: Protocol> {
    session: SessionId,
    /// The id the session's client gave itself, if it did.
    client: Option<Arc<str>>,
    /// The `ref` of the message being handled.
    reference: Option<Ref>,
    /// The session was resumed from the session store: another process served it before.
    moved: bool,
    effects: Vec<Effect<P>>,
    sender: Sender<P>,
    recorder: Option<Arc<Recorder<P>>>,
    #[cfg(feature = "server")]
    extensions: axum::http::Extensions,
}

impl<P: Protocol> Context<P> {
    /// A context for `session` with nothing recorded yet. Effects sent through its
    /// [`sender`](Self::sender) are recorded too, after the context's own.
    pub fn new(session: SessionId) -> Self {
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
        let mut cx = Self::with_sender(session, Sender::new(recorder.clone()));
        cx.recorder = Some(recorder);
        cx
    }

    /// A context whose [`sender`](Self::sender) delivers to a live session.
    pub fn with_sender(session: SessionId, sender: Sender<P>) -> Self {
        Self {
            session,
            client: None,
            reference: None,
            moved: false,
            effects: Vec::new(),
            sender,
            recorder: None,
            #[cfg(feature = "server")]
            extensions: axum::http::Extensions::new(),
        }
    }

    /// A handle that sends to this session later, from another task.
    pub fn sender(&self) -> Sender<P> {
        self.sender.clone()
    }

    /// The extensions of the HTTP request that opened the current connection: what an auth
    /// layer (a tower middleware) inserted there reaches the handler this way.
    #[cfg(feature = "server")]
    #[cfg_attr(docsrs, doc(cfg(feature = "server")))]
    pub fn extensions(&self) -> &axum::http::Extensions {
        &self.extensions
    }

    #[cfg(feature = "server")]
    pub(crate) fn set_extensions(&mut self, extensions: axum::http::Extensions) {
        self.extensions = extensions;
    }

    /// The session this connection belongs to; stable across resumes.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The key of the message being handled: the same for every time its client sends it,
    /// to this session or to a new one (after the server restarted, or the session expired,
    /// a client sends again what was not acknowledged, and it may have been handled). An
    /// application that must not apply a message twice keeps the keys it applied in its own
    /// store, with what they did. `None` outside a message method, for a message without a
    /// `ref`, and for a client that gave no id (the Rust client and omni.js give one).
    pub fn message_key(&self) -> Option<MessageKey> {
        Some(MessageKey {
            client: self.client.clone()?,
            reference: self.reference?,
        })
    }

    /// The id the session's client gave itself (the Rust client and omni.js give one, kept
    /// for the client's life, and for a page's across reloads): a key for what an application
    /// keeps of a client beyond one handler, say what a handler made anew after
    /// [`moved`](Self::moved) restores.
    pub fn client(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// Whether this session was resumed from a session store
    /// ([`EndpointBuilder::session_store`](crate::server::EndpointBuilder::session_store)):
    /// another server process served it before and this handler is new, though the client's
    /// session is not (its sequence, and the messages it had handled, carried over). A
    /// `connected` hook that sees it restores what the old handler held (its subscriptions,
    /// its presence) without treating the client as new.
    pub fn moved(&self) -> bool {
        self.moved
    }

    #[cfg(feature = "server")]
    pub(crate) fn set_moved(&mut self, moved: bool) {
        self.moved = moved;
    }

    #[cfg(feature = "server")]
    pub(crate) fn set_client(&mut self, client: Option<Arc<str>>) {
        self.client = client;
    }

    #[cfg(feature = "server")]
    pub(crate) fn set_reference(&mut self, reference: Option<Ref>) {
        self.reference = reference;
    }

    /// Sends a sequenced message to this client (replayed if the client resumes).
    pub fn send(&mut self, msg: P::Server) {
        self.effects.push(Effect::Send(msg));
    }

    /// Sends an ephemeral message to this client (not replayed).
    pub fn push(&mut self, msg: P::Server) {
        self.effects.push(Effect::Push(msg));
    }

    /// Subscribes this session to `topic`.
    pub fn subscribe(&mut self, topic: impl Into<String>) {
        self.effects.push(Effect::Subscribe(topic.into()));
    }

    /// Unsubscribes this session from `topic`.
    pub fn unsubscribe(&mut self, topic: impl Into<String>) {
        self.effects.push(Effect::Unsubscribe(topic.into()));
    }

    /// Pushes `msg` to every subscriber of `topic`, this session included if subscribed.
    pub fn broadcast(&mut self, topic: impl Into<String>, msg: P::Server) {
        self.effects.push(Effect::Broadcast {
            topic: topic.into(),
            msg,
            include_self: true,
        });
    }

    /// Pushes `msg` to every subscriber of `topic` except this session.
    pub fn broadcast_from(&mut self, topic: impl Into<String>, msg: P::Server) {
        self.effects.push(Effect::Broadcast {
            topic: topic.into(),
            msg,
            include_self: false,
        });
    }

    /// Publishes `msg` on sequenced `topic`: the topic numbers it and keeps it in a bounded
    /// log (in Redis with the Redis backend), and every subscriber receives it, this session
    /// too if subscribed. A client that follows sequenced topics and comes back, on any server,
    /// with the last number it holds receives exactly what it missed; past the log it gets
    /// `reset` for the topic and the handler's `snapshot` of it. Clients that do not follow
    /// sequenced topics receive it as an ordinary `push`.
    pub fn publish(&mut self, topic: impl Into<String>, msg: P::Server) {
        self.effects.push(Effect::Publish {
            topic: topic.into(),
            msg,
        });
    }

    /// Tracks this session under `key` in `topic`'s presence, with `meta` (anything
    /// serializable; `null` if its `Serialize` fails). Every subscriber of `topic` sees it join;
    /// it leaves when [`untrack`](Self::untrack)ed or when the session ends — not when a
    /// connection drops and the client resumes. Tracking the same key again with the same
    /// meta changes nothing, so a `connected` hook (which runs after every reconnect) is the
    /// place for it; another meta updates the entry. See [`presence`](crate::presence).
    ///
    /// ```
    /// use omni::{Context, Effect, HandlerResult};
    ///
    /// #[omni::protocol]
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Chat {
    ///     #[client]
    ///     Say(String),
    /// }
    ///
    /// struct Member { name: String }
    ///
    /// impl ChatHandler for Member {
    ///     async fn connected(&mut self, cx: &mut Context<Chat>) -> HandlerResult {
    ///         cx.subscribe("room");
    ///         cx.track("room", &self.name, serde_json::json!({ "status": "here" }));
    ///         Ok(())
    ///     }
    ///     async fn say(&mut self, _: &mut Context<Chat>, _: String) -> HandlerResult {
    ///         Ok(())
    ///     }
    /// }
    /// # let mut cx = Context::<Chat>::new(omni::SessionId::from_u128(1));
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// #     Member { name: "ann".into() }.connected(&mut cx).await.unwrap();
    /// # });
    /// # assert!(matches!(&cx.take_effects()[1], Effect::Track { key, .. } if key == "ann"));
    /// ```
    pub fn track(
        &mut self,
        topic: impl Into<String>,
        key: impl Into<String>,
        meta: impl serde::Serialize,
    ) {
        self.effects.push(Effect::Track {
            topic: topic.into(),
            key: key.into(),
            meta: Meta::new(&meta).unwrap_or_default(),
        });
    }

    /// Stops tracking this session under `key` in `topic`.
    pub fn untrack(&mut self, topic: impl Into<String>, key: impl Into<String>) {
        self.effects.push(Effect::Untrack {
            topic: topic.into(),
            key: key.into(),
        });
    }

    /// Closes this connection once the effects recorded before it are carried out.
    pub fn close(&mut self) {
        self.effects.push(Effect::Close);
    }

    /// Takes back the vector [`take_effects`](Self::take_effects) returned, emptied, so
    /// the next message's effects reuse its allocation.
    #[cfg(feature = "server")]
    pub(crate) fn recycle(&mut self, mut effects: Vec<Effect<P>>) {
        if self.effects.is_empty() {
            effects.clear();
            self.effects = effects;
        }
    }

    /// The effects recorded so far, leaving none behind. The runtime calls this after each
    /// handler method; a test calls it to assert what a handler did.
    pub fn take_effects(&mut self) -> Vec<Effect<P>> {
        let mut effects = std::mem::take(&mut self.effects);
        if let Some(recorder) = &self.recorder {
            effects.append(&mut recorder.0.lock().unwrap_or_else(PoisonError::into_inner));
        }
        effects
    }
}
