//! The builder of a single-protocol [`Client`], and the task it starts: the dialer running
//! the client's connections on the transport it chose.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::config::Transport;
use super::connect::{Config, ConnectInfo, Hook, setup};
use super::dialer::{self, Dial, Ended};
use super::handle::{Client, Messages};
use super::link::Link;
use super::options::{self, Options};
use super::shared::Shared;
use super::{http, sse, ws};
use crate::wire::Codec;
use crate::{Protocol, TransportError, TransportState};

impl<P: Protocol + Send> Client<P> {
    /// A builder for a client of the endpoint under `url` (`http://host:port/prefix`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder<P> {
        ClientBuilder {
            url: url.into(),
            transport: Transport::default(),
            options: Options::default(),
            poll_interval: http::DEFAULT_POLL,
            hook: None,
            protocol: PhantomData,
        }
    }
}

/// Configures a [`Client`].
#[must_use]
pub struct ClientBuilder<P: Protocol> {
    url: String,
    transport: Transport,
    options: Options,
    poll_interval: Duration,
    hook: Option<Hook<P::Client>>,
    protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol> ClientBuilder<P>
where
    P: Send,
{
    /// The transport. Default: [`Transport::Ws`].
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// HTTP transport only: how often to ask for server messages when the application sends
    /// nothing. Default 1 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    options::setters!();

    /// Calls `hook` after every `welcome`, and sends the messages it returns on that
    /// connection before any queued one: the place to introduce the client again (join its
    /// rooms, say who it is) on a session the server has just made, as after a server
    /// restart, before what waited offline reaches the handler. [`ConnectInfo::resumed`]
    /// tells a resumed session from a new one.
    ///
    /// The hook's messages are not queued: a connection lost before they are acknowledged
    /// does not resend them, since the hook runs again on the next one. On the HTTP
    /// transport, whose session resumes without a `welcome`, the hook runs when an exchange
    /// first succeeds, and the first exchange of each connection carries no queued message.
    ///
    /// ```no_run
    /// use omni::client::Client;
    ///
    /// #[omni::protocol]
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Chat {
    ///     #[client]
    ///     Join(String),
    ///     #[client]
    ///     Say(String),
    ///     #[server]
    ///     Heard(String),
    /// }
    ///
    /// # async fn run() {
    /// let (client, messages) = Client::<Chat>::builder("http://127.0.0.1:3000/omni")
    ///     .on_connect(|info| {
    ///         if info.resumed {
    ///             Vec::new()
    ///         } else {
    ///             vec![ChatFromClient::Join("lobby".into())]
    ///         }
    ///     })
    ///     .connect();
    /// // Reaches the server after the `Join`, however long the client is offline.
    /// client.send(ChatFromClient::Say("hello".into())).unwrap();
    /// # }
    /// ```
    pub fn on_connect<F>(mut self, hook: F) -> Self
    where
        F: Fn(ConnectInfo) -> Vec<P::Client> + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Connects, and waits until the server has welcomed the client (`Ok`) or refused it
    /// (`Err`): a URL that cannot be used, a TLS failure, HTTP 403 or 404, a server of another
    /// protocol version, refused credentials ([`TransportError::Unauthorized`]). A server
    /// that cannot be reached yet is retried as [`connect`](Self::connect) retries it, so
    /// bound the wait with `tokio::time::timeout` where that matters. The stream still
    /// starts with every state, `Connected` included.
    ///
    /// ```no_run
    /// use omni::client::Client;
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
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let (client, _messages) = Client::<Echo>::builder("http://127.0.0.1:3000/omni")
    ///     .connected()
    ///     .await?;
    /// client.send(EchoFromClient::Say("hi".into()))?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connected(self) -> Result<(Client<P>, Messages<P>), TransportError> {
        let (client, messages) = self.connect();
        let mut outcome = client.shared().outcome.subscribe();
        let outcome = match outcome.wait_for(Option::is_some).await {
            Ok(held) => held.clone(),
            // The client's shared state outlives this wait: the sender cannot be gone.
            Err(_) => None,
        };
        match outcome {
            Some(Ok(_)) | None => Ok((client, messages)),
            Some(Err(error)) => Err(error),
        }
    }

    /// Starts connecting in the background (on the current tokio runtime) and returns the
    /// client and its message stream.
    ///
    /// What no retry can fix ends the stream after one `TransportState::Error` that says
    /// why: a URL that cannot be used (malformed, an unknown scheme, `https` without the
    /// `tls` feature), a bad root certificate, or MessagePack asked of SSE, at once, as a
    /// `TransportError::Init`; a server certificate the client does not trust, as a
    /// `TransportError::Tls`; HTTP 403 or 404, a server built from another version of the
    /// protocol, or one that answers in another codec than the one asked for. HTTP 401 (and a failing
    /// credentials provider) is `TransportState::Unauthorized`, after which the client waits
    /// for [`Client::reconnect`] (see [`credentials`](Self::credentials)). Everything else
    /// (refused, unreachable, dropped) is retried with backoff.
    pub fn connect(self) -> (Client<P>, Messages<P>) {
        let Options {
            settings,
            roots,
            credentials,
            presence,
        } = self.options;
        let mut shared = Shared::new(&settings, Arc::new(Notify::new()));
        shared.presence_modes = presence;
        let shared = Arc::new(shared);
        let (tx, rx) = mpsc::channel(1024);
        let client = Client::new(shared.clone());
        let mut link = Link::<P>::new(shared, tx);
        link.hook = self.hook;
        let setup = match (self.transport, settings.codec) {
            // Refused here rather than by the server, with the way out.
            (Transport::Sse, Codec::MsgPack) => Err(format!(
                "Server-Sent Events carry text, so they cannot carry {} frames: \
                 MessagePack is available on Transport::Ws and Transport::Http",
                Codec::MsgPack
            )),
            _ => setup(&self.url, &roots),
        };
        match setup {
            Ok((url, tls, http)) => {
                let config = Config {
                    url,
                    transport: self.transport,
                    settings,
                    poll_interval: self.poll_interval,
                    http,
                    tls,
                    credentials,
                };
                let backoff = config.settings.backoff;
                let shared = link.shared.clone();
                tokio::spawn(async move {
                    let mut single = Single { link, config };
                    dialer::dial(&mut single, backoff, &shared.closed, &shared.reconnect).await;
                });
            }
            Err(message) => {
                let error = TransportError::Init { message };
                link.shared.refuse(error.clone());
                // The link, and with it the stream, ends once this is said.
                tokio::spawn(async move {
                    link.state(TransportState::Error(error)).await;
                });
            }
        }
        (client, Messages::new(rx))
    }
}

/// A single-protocol client's connections, on its transport.
struct Single<P: Protocol> {
    link: Link<P>,
    config: Config,
}

impl<P: Protocol + Send> Dial for Single<P> {
    async fn connection(&mut self) -> Ended {
        match self.config.transport {
            Transport::Ws => ws::session(&mut self.link, &self.config).await,
            Transport::Http => http::connection(&mut self.link, &self.config).await,
            Transport::Sse => sse::connection(&mut self.link, &self.config).await,
        }
    }

    async fn report(&mut self, state: TransportState) {
        self.link.state(state).await;
    }

    fn refused(&mut self, error: &TransportError) {
        self.link.shared.refuse(error.clone());
    }
}
