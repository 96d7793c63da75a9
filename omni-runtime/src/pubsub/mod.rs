//! Topics and fan-out: who receives a broadcast.
//!
//! A [`PubSub`] keeps, for each topic, the sessions subscribed to it, and hands every
//! broadcast to them. A broadcast arrives already encoded, so it is serialized once however
//! many subscribers there are, and every subscriber receives the same shared bytes.
//!
//! A topic may also be *sequenced*: what is [`publish`](PubSub::publish)ed on it is numbered
//! by the topic and kept in a bounded log, so a subscriber that comes back with the last
//! number it holds gets exactly what it missed ([`replay`](PubSub::replay)), on any server
//! sharing the backend.
//! [`LocalPubSub`] does this within one process; `RedisPubSub` (feature `redis`) spans
//! processes, delivering to its own process's subscribers through a `LocalPubSub` and to the
//! others through Redis.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use omni::pubsub::{LocalPubSub, Member, Outgoing, PubSub};
//! use omni::SessionId;
//!
//! /// A member that keeps what it receives.
//! #[derive(Default)]
//! struct Inbox(Mutex<Vec<String>>);
//! impl Member for Inbox {
//!     fn deliver(&self, frame: Outgoing) {
//!         self.0.lock().unwrap().push(frame.text().into_owned());
//!     }
//! }
//!
//! let pubsub = LocalPubSub::new();
//! let (a, b) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
//! let (ida, idb) = (SessionId::from_u128(1), SessionId::from_u128(2));
//! pubsub.register(ida, a.clone());
//! pubsub.register(idb, b.clone());
//! pubsub.subscribe(ida, "room");
//! pubsub.subscribe(idb, "room");
//!
//! pubsub.broadcast_from(ida, "room", Outgoing::push(r#"{"type":"push","payload":1}"#));
//! assert!(a.0.lock().unwrap().is_empty());
//! assert_eq!(b.0.lock().unwrap().len(), 1);
//! ```

mod backend;
mod local;
#[cfg(feature = "redis")]
mod redis;

#[doc(hidden)]
pub use self::backend::Report;
pub use self::backend::{
    Member, PRESENCE_INTERVAL, PresenceFrames, PresenceWatcher, PubSub, Replay, TOPIC_LOG,
    topic_origin,
};
pub use self::local::LocalPubSub;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisHealth, RedisPubSub, SESSION_EXPIRY, TOPIC_EXPIRY};
pub use crate::server::encoded::{Outgoing, Publication, TopicFrame};
