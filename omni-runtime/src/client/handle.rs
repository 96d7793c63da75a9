//! The application's two halves of a client: the [`Client`] handle it sends with, and the
//! [`Messages`] stream it applies.

use std::marker::PhantomData;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::dialer;
use super::error::{AckError, RequestError, SendError};
use super::shared::{Reply, Shared};
use crate::{Protocol, Ref, SessionId};

/// A handle to send client messages with. Cheap to clone; the connection lives until
/// [`close`](Self::close) or until every handle and the [`Messages`] are dropped.
pub struct Client<P> {
    shared: Arc<Shared>,
    protocol: PhantomData<fn() -> P>,
}

impl<P> Clone for Client<P> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            protocol: PhantomData,
        }
    }
}

impl<P> Client<P> {
    /// The handle to the client whose state is `shared`.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            protocol: PhantomData,
        }
    }

    /// The state the handle reaches.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl<P: Protocol + Send> Client<P> {
    /// Queues a message for the server and returns its `ref`. It is sent at once when
    /// connected, otherwise after the next reconnect, and again until acknowledged.
    pub fn send(&self, msg: P::Client) -> Result<Ref, SendError> {
        self.queue(&msg)
    }

    /// Sends `msg` when it is one of the protocol's `#[client]` messages, and hands it back in
    /// every case, so that the application's `update` applies what it dispatched, as an Elm
    /// program does. The second value is `None` for a message that stays local, otherwise
    /// what [`send`](Self::send) returned.
    ///
    /// ```no_run
    /// use omni::client::Client;
    ///
    /// #[omni::protocol]
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Chat {
    ///     // Local: the text box changed.
    ///     Draft(String),
    ///     #[client]
    ///     Say(String),
    ///     #[server]
    ///     Heard(String),
    /// }
    ///
    /// fn update(draft: &mut String, msg: Chat) {
    ///     match msg {
    ///         Chat::Draft(text) => *draft = text,
    ///         Chat::Say(_) => draft.clear(),
    ///         Chat::Heard(_) | Chat::Transport(_) => {}
    ///     }
    /// }
    ///
    /// # async fn run() {
    /// let (client, _messages) = Client::<Chat>::builder("http://127.0.0.1:3000/omni").connect();
    /// let mut draft = String::new();
    /// for msg in [Chat::Draft("hello".into()), Chat::Say("hello".into())] {
    ///     let (msg, sent) = client.dispatch(msg);
    ///     if let Some(Err(err)) = sent {
    ///         eprintln!("not sent: {err}");
    ///     }
    ///     update(&mut draft, msg);
    /// }
    /// # }
    /// ```
    pub fn dispatch(&self, msg: P) -> (P, Option<Result<Ref, SendError>>) {
        // The wire form is encoded by reference and then lifted back: the message makes the
        // round trip by moves, so no `Clone` bound is needed.
        match msg.into_client() {
            Ok(client) => {
                let sent = self.queue(&client);
                (P::from_client(client), Some(sent))
            }
            Err(local) => (local, None),
        }
    }

    /// Encodes `msg` into a `msg` frame and queues it.
    fn queue(&self, msg: &P::Client) -> Result<Ref, SendError> {
        if *self.shared.closed.borrow() {
            return Err(match self.shared.refusal() {
                Some(error) => SendError::Refused(error),
                None => SendError::Closed,
            });
        }
        let queued = self
            .shared
            .outbox
            .push(|reference| self.shared.encode(msg, reference));
        match queued {
            None => Err(SendError::QueueFull {
                capacity: self.shared.outbox.capacity(),
            }),
            Some(Err(err)) => Err(err),
            Some(Ok(reference)) => Ok(reference),
        }
    }

    /// Resolves once the server has answered the message that [`send`](Self::send) returned
    /// `reference` for: `Ok` for its `ack` (the handler handled it), an
    /// [`AckError::Rejected`] for the `error` frame that answered it. Resends across
    /// reconnects are waited through. An answer that arrived before the call is reported
    /// too, for as many of the latest messages as the queue holds.
    ///
    /// ```no_run
    /// use omni::client::{AckError, Client};
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
    /// # async fn run() {
    /// let (client, _messages) = Client::<Echo>::builder("http://127.0.0.1:3000/omni").connect();
    /// let sent = client.send(EchoFromClient::Say("hello".into())).unwrap();
    /// match client.acked(sent).await {
    ///     Ok(()) => println!("handled"),
    ///     Err(AckError::Rejected { code, message }) => println!("refused ({code}): {message}"),
    ///     Err(err) => println!("{err}"),
    /// }
    /// # }
    /// ```
    pub async fn acked(&self, reference: Ref) -> Result<(), AckError> {
        let answer = match self.shared.outbox.watch(reference) {
            Ok(answer) => answer,
            Err(known) => return known,
        };
        let mut closed = self.shared.closed.subscribe();
        let ended = || match self.shared.refusal() {
            Some(error) => AckError::Refused(error),
            None => AckError::Closed,
        };
        tokio::select! {
            biased;
            answer = answer => answer.unwrap_or_else(|_| Err(ended())),
            () = dialer::closed(&mut closed) => Err(ended()),
        }
    }

    /// Sends `msg` and waits for the server's reply: the first sequenced message its handler
    /// sent while handling it (`cx.send`, which ties it to the message's `ref`). The reply
    /// also arrives on the message stream, as every server message does. A refusal (the
    /// handler's `Err`) is [`RequestError::Answer`] with [`AckError::Rejected`]; a handler
    /// that replies nothing is [`RequestError::NoReply`]. Resends across reconnects are
    /// waited through; bound the wait with `tokio::time::timeout` where that matters.
    ///
    /// ```no_run
    /// use omni::client::Client;
    ///
    /// #[omni::wire]
    /// #[derive(Debug, Clone, PartialEq)]
    /// pub struct Todo {
    ///     pub id: u64,
    ///     pub title: String,
    /// }
    ///
    /// #[omni::protocol]
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Board {
    ///     #[client]
    ///     Add(String),
    ///     #[server]
    ///     Added(Todo),
    /// }
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let (client, _messages) = Client::<Board>::builder("http://127.0.0.1:3000/omni").connect();
    /// let BoardFromServer::Added(todo) = client.request(BoardFromClient::Add("milk".into())).await?;
    /// println!("created #{}", todo.id);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request(&self, msg: P::Client) -> Result<P::Server, RequestError>
    where
        P::Server: Clone + Send + 'static,
    {
        let (tx, reply) = tokio::sync::oneshot::channel();
        let take: Reply = Box::new(move |payload| {
            if let Some(payload) = payload.downcast_ref::<P::Server>() {
                let _ = tx.send(payload.clone());
            }
        });
        let reference = {
            // Registered under the lock the link takes to look: the reply cannot slip past.
            let mut requests = self.shared.requests.lock().unwrap();
            let reference = self.queue(&msg)?;
            requests.insert(reference, take);
            reference
        };
        let mut reply = std::pin::pin!(reply);
        let timeout = self.shared.request_timeout;
        let waited = tokio::time::timeout(timeout, async {
            tokio::select! {
                biased;
                Ok(payload) = &mut reply => Ok(payload),
                answer = self.acked(reference) => Err(answer),
            }
        })
        .await;
        let answer = match waited {
            Ok(Ok(payload)) => return Ok(payload),
            Ok(Err(answer)) => answer,
            Err(_) => {
                // Given up on: a late reply has nobody to go to.
                self.shared.requests.lock().unwrap().remove(&reference);
                return Err(RequestError::Timeout(timeout));
            }
        };
        self.shared.requests.lock().unwrap().remove(&reference);
        // The reply, when there is one, is handled before the `ack` that follows it.
        if let Ok(payload) = reply.try_recv() {
            return Ok(payload);
        }
        match answer {
            Ok(()) => Err(RequestError::NoReply),
            Err(err) => Err(RequestError::Answer(err)),
        }
    }

    /// How many server messages of kinds this build does not know arrived (each also
    /// reported as [`TransportState::UnknownMessage`](crate::TransportState::UnknownMessage)):
    /// a newer server's, during a deploy.
    pub fn unknown_messages(&self) -> u64 {
        self.shared
            .unknown
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Messages sent but not yet acknowledged by the server.
    pub fn unacknowledged(&self) -> usize {
        self.shared.outbox.len()
    }

    /// The session the server assigned, once welcomed.
    pub fn session(&self) -> Option<SessionId> {
        *self.shared.session.lock().unwrap()
    }

    /// Who is on `topic` (a topic this client's session is subscribed to), as last heard:
    /// empty for a topic without presence. Kept correct through reconnects: a resumed session
    /// gets the list again, and [`presence_changes`](Self::presence_changes) reports only what
    /// changed meanwhile.
    pub fn presence(&self, topic: &str) -> crate::presence::List {
        let lists = self.shared.presence.lock().unwrap();
        lists.get(topic).map(|held| held.list()).unwrap_or_default()
    }

    /// How many are on `topic`, for a topic this client asked only to count
    /// ([`Mode::Count`](crate::presence::Mode::Count), see
    /// [`ClientBuilder::presence`](crate::client::ClientBuilder::presence)), as last heard;
    /// `None` before the first count.
    pub fn presence_count(&self, topic: &str) -> Option<crate::presence::Count> {
        self.shared
            .presence_counts
            .lock()
            .unwrap()
            .get(topic)
            .copied()
    }

    /// The changes of every topic's presence from now on: application data, so apart from the
    /// message stream (which carries the protocol's messages and the connection's states).
    ///
    /// ```no_run
    /// # #[omni::protocol]
    /// # #[derive(Debug, Clone, PartialEq)]
    /// # enum Room { #[client] Say(String), #[server] Said(String) }
    /// # async fn show(client: omni::client::Client<Room>) {
    /// let mut changes = client.presence_changes();
    /// while let Some(change) = changes.recv().await {
    ///     println!("{}: {} joined, {} left", change.topic, change.diff.joins.len(), change.diff.leaves.len());
    /// }
    /// # }
    /// ```
    pub fn presence_changes(&self) -> PresenceChanges {
        PresenceChanges {
            changes: self.shared.presence_changes.subscribe(),
        }
    }

    /// Connects again now: after `TransportState::Unauthorized` (once the application has
    /// credentials again; the provider is called first), or instead of waiting out a backoff
    /// delay. While connected, or connecting, it does nothing. On a mux component it
    /// reconnects the mux.
    pub fn reconnect(&self) {
        self.shared.reconnect.notify_waiters();
    }

    /// Closes the connection and stops reconnecting. The message stream ends. A mux
    /// component leaves its socket, and its session ends.
    pub fn close(&self) {
        self.shared.closed.send_replace(true);
        self.shared.wake.notify_one();
    }
}

/// The application's side of a client: server messages and transport changes, in order.
pub struct Messages<P> {
    rx: mpsc::Receiver<P>,
}

impl<P> Messages<P> {
    /// The stream of what the connection task sends into `rx`.
    pub(crate) fn new(rx: mpsc::Receiver<P>) -> Self {
        Self { rx }
    }

    /// The next message, or `None` once the client is closed.
    pub async fn recv(&mut self) -> Option<P> {
        self.rx.recv().await
    }
}

impl<P> futures_util::Stream for Messages<P> {
    type Item = P;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<P>> {
        self.rx.poll_recv(cx)
    }
}

/// The presence changes of a client's topics, from [`Client::presence_changes`].
pub struct PresenceChanges {
    changes: tokio::sync::broadcast::Receiver<crate::presence::Change>,
}

impl PresenceChanges {
    /// The next change; `None` once the client is gone. A listener that fell more than 1,024
    /// changes behind skips the oldest it missed (logged): [`Client::presence`] still has the
    /// whole list.
    pub async fn recv(&mut self) -> Option<crate::presence::Change> {
        loop {
            match self.changes.recv().await {
                Ok(change) => return Some(change),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a presence listener fell behind");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
