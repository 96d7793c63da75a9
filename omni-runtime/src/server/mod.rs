//! Serving a protocol over WebSocket, HTTP and Server-Sent Events on axum.
//!
//! An [`Endpoint`] is built from a protocol and a handler factory: each session gets its own
//! handler, so `&mut self` in a handler method is that session's state. [`Endpoint::router`]
//! gives an axum [`Router`](axum::Router) serving `/ws`, `/http` and `/sse`, to nest under any prefix.
//!
//! ```no_run
//! use omni::server::Endpoint;
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
//! #[derive(Default)]
//! struct Parrot;
//!
//! impl EchoHandler for Parrot {
//!     async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
//!         cx.send(EchoFromServer::Heard(text));
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let endpoint = Endpoint::<Echo, _>::new(Parrot::default);
//! let app = omni::axum::Router::new().nest("/omni", endpoint.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let shutdown = endpoint.clone();
//! omni::axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         shutdown.shutdown();
//!     })
//!     .await
//! # }
//! ```

mod browser;
pub(crate) mod conn;
pub(crate) mod encoded;
mod endpoint;
mod http;
mod io;
mod limits;
pub(crate) mod metrics;
mod mux;
mod origin;
mod query;
mod queue;
mod serve;
pub(crate) mod session;
mod shutdown;
mod sse;
mod trace;
mod writer;
mod ws;

pub use self::browser::BROWSER_CLIENT;
pub use self::endpoint::{Endpoint, EndpointBuilder, websocket};
pub use self::http::SESSION_HEADER;
pub use self::limits::Limits;
pub use self::metrics::MetricsSnapshot;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use self::metrics::prometheus::Prometheus;
pub use self::mux::{Mux, MuxBuilder};
pub use self::origin::{Hosts, Origins, Refused};
pub use self::serve::{Server, bind};
pub use self::session::SessionStore;
pub use self::shutdown::Shutdown;
