//! One message enum in, a typed client/server protocol out.
//!
//! A web application's `Msg` enum already lists everything that can happen. Mark the variants
//! a client sends with `#[client]` and those the server sends back with `#[server]`, and
//! [`#[omni::protocol]`](macro@protocol) generates the wire enums, their codec, a
//! transport-state variant, a handler trait and the [`Protocol`] impl the runtime needs.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! #[omni::wire]
//! #[derive(Debug, Clone, PartialEq)]
//! pub struct ChatMessage {
//!     pub id: String,
//!     pub text: String,
//! }
//!
//! #[omni::protocol]
//! #[derive(Debug, Clone, PartialEq)]
//! pub enum Msg {
//!     /// Local: never leaves the client.
//!     DraftChanged(String),
//!     #[client]
//!     Send(ChatMessage),
//!     #[client]
//!     FetchAll,
//!     #[server]
//!     Upsert(BTreeMap<String, ChatMessage>),
//!     #[server]
//!     Presence { online: u32 },
//! }
//!
//! // What the client sends, in the v1 wire form:
//! let up = omni::ClientFrame::msg(MsgFromClient::FetchAll);
//! assert_eq!(up.encode()?, r#"{"type":"msg","payload":{"kind":"FetchAll"}}"#);
//!
//! // Local variants stay local; client variants have a wire form.
//! use omni::Protocol;
//! assert!(Msg::DraftChanged("hi".into()).into_client().is_err());
//! assert_eq!(Msg::FetchAll.into_client().ok(), Some(MsgFromClient::FetchAll));
//!
//! // The server's handler: one async method per `#[client]` variant.
//! struct Room;
//! impl MsgHandler for Room {
//!     async fn send(&mut self, cx: &mut omni::Context<Msg>, msg: ChatMessage) -> omni::HandlerResult {
//!         cx.broadcast("room", MsgFromServer::Upsert(BTreeMap::from([(msg.id.clone(), msg)])));
//!         Ok(())
//!     }
//!     async fn fetch_all(&mut self, cx: &mut omni::Context<Msg>) -> omni::HandlerResult {
//!         cx.send(MsgFromServer::Upsert(BTreeMap::new()));
//!         Ok(())
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Serving it
//!
//! An [`Endpoint`](server::Endpoint) serves one protocol on `/ws`, `/http` and `/sse` (and the
//! browser client at `/omni.js`); its router mounts in any axum app, with state or without.
//! [`Server`](server::Server) serves it with the timeouts a server facing the internet needs,
//! and a [`Shutdown`](server::Shutdown) that drains every connection on SIGTERM.
//!
//! ```no_run
//! use omni::server::{Endpoint, Server, Shutdown};
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
//! struct Parrot;
//!
//! impl EchoHandler for Parrot {
//!     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
//!         cx.send(EchoFromServer::Heard(text));
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
//!     let app = omni::axum::Router::new().nest("/omni", endpoint.router());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     Server::new()
//!         .shutdown(Shutdown::new().endpoint(&endpoint))
//!         .serve(listener, app)
//!         .await
//! }
//! ```
//!
//! # Where things are
//!
//! | to | see |
//! |---|---|
//! | declare the protocol: `#[client]`, `#[server]`, renames, the generated types and trait | [`macro@protocol`], [`macro@wire`] |
//! | handle messages: reply, broadcast, topics, presence, credentials | [`Context`], the generated `…Handler` trait |
//! | hook into a session's life: `connected`, `disconnected`, `snapshot` | [`Dispatch`] and the handler trait's provided methods |
//! | serve: routes, limits, origins and hosts | [`server::Endpoint`], [`server::Limits`], [`server::Hosts`], [`server::Origins`] |
//! | serve on a socket: timeouts, TLS, HTTP/2, graceful shutdown | [`server::Server`], [`server::Shutdown`], [`server::bind`] |
//! | many components over one socket, signed join tokens | [`server::Mux`], [`token`] |
//! | several servers, one room | [`pubsub`] (`RedisPubSub` with the `redis` feature) |
//! | who is online | [`presence`], [`Context::track`] |
//! | a Rust client: ws, http, sse, resume, a queue that survives reconnects | [`client`] |
//! | a browser client | `omni.js`, served by every endpoint; `docs/PROTOCOL.md` for others |
//! | test a handler in memory | [`test::TestClient`] |
//! | the wire contract: frames, codecs, connect parameters | [`mod@wire`], `docs/PROTOCOL.md` |
//! | TypeScript declarations of the wire types | [`typescript`] |
//! | the protocol's schema, compatibility of two versions, the check for released ones | [`schema`] |
//!
//! Features: `server`, `client`, `tls` (default), `tls-webpki-roots`, `redis`. serde, serde_json,
//! axum and ts-rs come through omni ([`serde`], [`serde_json`], `omni::axum`, [`ts_rs`]), so
//! an app needs only `omni` (and `serde` for its own derives).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use omni_macros::{protocol, wire};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use omni_runtime::client;
/// Bytes in a message: `bin` in MessagePack, base64 in JSON (see [`wire::Bytes`]).
pub use omni_runtime::wire::{Bytes, Codec};
pub use omni_runtime::{
    BoxError, ClientFrame, Context, DecodeError, Dispatch, Effect, EncodeError, ErrorCode,
    HandlerResult, MessageKey, Protocol, Ref, Sender, Seq, ServerFrame, SessionGone, SessionId,
    TransportError, TransportState,
};
pub use omni_runtime::{context, presence, schema, session, token, transport, typescript, wire};
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use omni_runtime::{pubsub, server, test};

/// axum, re-exported so that the `Router` an endpoint gives you and the one you serve are
/// the same version.
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use omni_runtime::axum;

/// The README's examples, compiled and run by `cargo test --doc` so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// `ts-rs`, re-exported so that `#[derive(omni::TS)]` works without a direct dependency.
pub use ts_rs::{self, TS};

/// serde, as omni uses it: an app whose payload types derive `Serialize` and `Deserialize`
/// needs `serde` in its own manifest for the derives (or `#[serde(crate = "omni::serde")]` on
/// each type), and nothing else.
pub use serde;
/// serde_json, for values and errors of the JSON codec.
pub use serde_json;

/// Paths the generated code names, so a user never adds serde or ts-rs just to make the
/// macro's output compile. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;
    pub use ts_rs;

    pub use omni_runtime::schema;
    pub use omni_runtime::typescript::build as typescript;
    pub use omni_runtime::wire::Kinds;
    pub use omni_runtime::{Context, Dispatch, HandlerResult, Protocol, TransportState};
    pub use std::collections::BTreeMap;
    pub use std::path::PathBuf;
    pub use std::string::{String, ToString};
    pub use std::sync::OnceLock;
    pub use std::vec::Vec;

    /// Required of a protocol field's type whose type is not `Serialize + DeserializeOwned`,
    /// so that the one error the macro's check raises says how to fix it. It has no impls:
    /// types that travel never meet this bound (the check's autoref probe resolves elsewhere).
    /// Defined here, not in the generated code, because `#[diagnostic::…]` cannot be named
    /// under `#![no_implicit_prelude]`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot travel in a protocol message: it must be both `Serialize` and `DeserializeOwned`",
        label = "the type of a `#[client]` or `#[server]` variant's field",
        note = "derive `serde::Serialize` and `serde::Deserialize` for it, or put `#[omni::wire]` on it (which derives `TS` too)",
        note = "for a type from another crate, enable that crate's `serde` feature"
    )]
    pub trait Wire {}
}
