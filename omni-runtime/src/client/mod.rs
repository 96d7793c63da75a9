//! The Rust client: a typed connection to an omni endpoint over WebSocket, HTTP or SSE that
//! reconnects by itself and resumes its session: while the session lives (on its server, within
//! the grace period), it loses and doubles nothing. What holds across a server restart is in
//! the README's "What is delivered, and how often".
//!
//! [`Client::builder`] takes the endpoint's URL prefix (the one the server nests its router
//! under). [`ClientBuilder::connect`] starts the connection in the background and returns the
//! [`Client`], to send with, and [`Messages`], the stream of everything the application
//! should apply: server messages, and [`TransportState`](crate::TransportState) changes as
//! the protocol's `Transport` variant, in order.
//!
//! Messages sent while offline wait in a bounded queue; each carries a `ref` and is sent again
//! after every reconnect until the server acknowledges it (the server drops repeats it has
//! already handled). At most a window of them is on its way at once
//! ([`ClientBuilder::window`]), so that a backlog after a reconnect goes out as fast as the
//! server acknowledges it. Every sequenced server message arrives exactly once, in order, across
//! reconnects; when the server can no longer replay what was missed, the application gets
//! `TransportState::Reset` and should drop what it derived from earlier messages.
//!
//! ```no_run
//! use omni::client::{Client, Transport};
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
//! # async fn run() {
//! let (client, mut messages) = Client::<Echo>::builder("http://127.0.0.1:3000/omni")
//!     .transport(Transport::Ws)
//!     .connect();
//! client.send(EchoFromClient::Say("hello".into())).unwrap();
//! while let Some(msg) = messages.recv().await {
//!     match msg {
//!         Echo::Heard(text) => println!("{text}"),
//!         Echo::Transport(state) => println!("transport: {state:?}"),
//!         Echo::Say(_) => {}
//!     }
//! }
//! # }
//! ```

mod builder;
mod config;
mod connect;
mod credentials;
mod dialer;
mod error;
mod handle;
mod http;
mod link;
mod mux;
mod options;
mod outbox;
mod shared;
mod sse;
mod tls;
mod wire;
mod ws;

pub use self::builder::ClientBuilder;
pub use self::config::{Backoff, Heartbeat, Transport};
pub use self::connect::ConnectInfo;
pub use self::error::{AckError, RequestError, SendError};
pub use self::handle::{Client, Messages, PresenceChanges};
pub use self::mux::{Join, Mux, MuxBuilder};
/// The headers a credentials provider returns (see [`ClientBuilder::credentials`]).
pub use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
