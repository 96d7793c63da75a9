//! A session, from the first connection to its end: the [`registry`] of an endpoint's
//! sessions (open, resume, move, expire), the [`handler`] each runs (methods and hooks, panics
//! recovered), the `hello` that checks a client and resumes it ([`hello`]), the connection a
//! transport holds ([`attached`]), and beneath them the protocol state ([`core`]) with its
//! state machines: the sequence and resume [`log`], the [`topics`], and the [`gate`] that holds
//! frames back until the session [`store`] has saved what they depend on.

mod attached;
mod core;
mod gate;
mod handler;
mod hello;
mod log;
mod registry;
pub(crate) mod store;
mod topics;

#[cfg(test)]
mod pairing;

pub(crate) use self::attached::Attached;
pub(crate) use self::handler::Factory;
pub(crate) use self::registry::Sessions;
pub(crate) use self::store::Saver;
pub use self::store::SessionStore;
