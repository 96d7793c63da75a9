//! The per-connection [`Context`] a handler method receives.
//!
//! A handler does not write to the socket itself: it records [`Effect`]s on its context
//! (`send`, `push`, `subscribe`, `broadcast`, …) and the runtime carries them out once the
//! method returns, in order. That keeps handler code synchronous where it can be, makes a
//! handler testable without sockets, and lets the runtime sequence, log and encode every
//! outgoing frame in one place.
//!
//! ```
//! use omni_runtime::protocol::tests_support::{Echo, EchoFromServer};
//! use omni_runtime::{Context, Effect, SessionId};
//!
//! let mut cx = Context::<Echo>::new(SessionId::from_u128(1));
//! cx.send(EchoFromServer::Heard("hi".into()));
//! cx.broadcast_from("room", EchoFromServer::Heard("hi".into()));
//! let effects = cx.take_effects();
//! assert_eq!(effects[0], Effect::Send(EchoFromServer::Heard("hi".into())));
//! assert!(matches!(&effects[1], Effect::Broadcast { include_self: false, .. }));
//! ```

use std::fmt;

use crate::{Protocol, SessionId};

/// What a handler asked the runtime to do, in the order it asked.
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
            Self::Close => f.write_str("Close"),
        }
    }
}

/// One session's view of the runtime, handed to every handler method.
pub struct Context<P: Protocol> {
    session: SessionId,
    effects: Vec<Effect<P>>,
}

impl<P: Protocol> Context<P> {
    /// A context for `session` with nothing recorded yet.
    pub fn new(session: SessionId) -> Self {
        Self {
            session,
            effects: Vec::new(),
        }
    }

    /// The session this connection belongs to; stable across resumes.
    pub fn session(&self) -> SessionId {
        self.session
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

    /// Closes this connection once the effects recorded before it are carried out.
    pub fn close(&mut self) {
        self.effects.push(Effect::Close);
    }

    /// The effects recorded so far, leaving none behind. The runtime calls this after each
    /// handler method; a test calls it to assert what a handler did.
    pub fn take_effects(&mut self) -> Vec<Effect<P>> {
        std::mem::take(&mut self.effects)
    }
}
