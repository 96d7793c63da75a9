//! A connection as its session sees it: a bounded outbound queue the session fills without
//! waiting, and a stop signal that skips the queue. The transport drains the other end (the
//! WebSocket [`writer`](super::writer), the SSE stream, an HTTP response).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, watch};

use super::encoded::{ComponentId, Outgoing};
use super::metrics::{Metrics, Transport};
use super::queue::{self, Receiver, Sender, TrySendError};
use crate::presence::{Mode, Modes};
use crate::wire::Codec;

/// Why a connection is being closed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stop {
    /// The WebSocket close code.
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

impl Stop {
    pub(crate) const SLOW_CONSUMER: Stop = Stop {
        code: 1008,
        reason: "slow_consumer",
    };
    pub(crate) const CLOSED_BY_SERVER: Stop = Stop {
        code: 1000,
        reason: "closed by the server",
    };
    pub(crate) const REPLACED: Stop = Stop {
        code: 4000,
        reason: "session resumed on another connection",
    };
    pub(crate) const VERSION_MISMATCH: Stop = Stop {
        code: 1008,
        reason: "version_mismatch",
    };
    pub(crate) const TOO_LARGE: Stop = Stop {
        code: 1009,
        reason: "too_large",
    };
    pub(crate) const INVALID_UTF8: Stop = Stop {
        code: 1007,
        reason: "invalid UTF-8 in a text frame",
    };
    pub(crate) const GOING_AWAY: Stop = Stop {
        code: 1001,
        reason: "server shutting down",
    };
}

/// An item on a connection's outbound queue.
#[derive(Debug)]
pub(crate) enum Item {
    /// A frame; on a mux socket, for the component named (the writer tags it).
    Frame(Outgoing, Option<ComponentId>),
    /// The frames a resume replays, as one item queued past the bound: a full log never
    /// overflows the queue of the connection it is replayed to.
    Replay(Vec<Outgoing>, Option<ComponentId>),
    /// Close after the frames queued before it.
    Close(Stop),
    /// Mux: the component has stopped (its handler closed it, it left, or its session was
    /// resumed elsewhere); the socket stays open for the others.
    Left(ComponentId),
    /// A frame made only when the transport is about to write it (see [`Item::ready`]).
    Refresh(Refresh, Option<ComponentId>),
}

/// Makes a frame as late as possible: the whole presence list of a topic whose diffs a
/// lagging connection missed, taken when the connection has caught up to it.
pub(crate) struct Refresh(Box<dyn FnOnce() -> Option<Outgoing> + Send>);

impl Refresh {
    pub(crate) fn new(make: impl FnOnce() -> Option<Outgoing> + Send + 'static) -> Self {
        Self(Box::new(make))
    }
}

impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Refresh")
    }
}

impl queue::Weigh for Item {
    /// The bytes a transport writes for it. A refresh is counted when it is made: at most one
    /// per topic is queued.
    fn weight(&self) -> usize {
        match self {
            Item::Frame(frame, _) => frame.size(),
            Item::Replay(frames, _) => frames.iter().map(Outgoing::size).sum(),
            Item::Close(_) | Item::Left(_) | Item::Refresh(..) => 0,
        }
    }
}

impl Item {
    /// The item as a transport writes it: a [`Refresh`] made into its frame (or into nothing).
    pub(crate) fn ready(self) -> Self {
        match self {
            Item::Refresh(refresh, to) => match (refresh.0)() {
                Some(frame) => Item::Frame(frame, to),
                None => Item::Replay(Vec::new(), to),
            },
            item => item,
        }
    }
}

/// A connection's handle with id `id` and a queue of `queue` items and `queue_bytes` bytes,
/// and the ends its transport reads. A live one is a WebSocket until its transport says
/// otherwise; one that is not is an HTTP request.
pub(crate) fn connection(id: u64, queue: usize, queue_bytes: usize, live: bool) -> (Conn, ConnRx) {
    let (tx, rx) = queue::queue(queue.max(2), queue_bytes);
    let (stop, stop_rx) = watch::channel(None);
    let conn = Conn {
        id,
        tx,
        stop,
        live,
        transport: if live { Transport::Ws } else { Transport::Http },
        codec: Codec::Json,
        presence: None,
        client: None,
        component: None,
    };
    (
        conn,
        ConnRx {
            frames: rx,
            stop: stop_rx,
        },
    )
}

/// Resolves once `rx` says the endpoint is shutting down.
pub(crate) async fn shutting_down(rx: &mut watch::Receiver<bool>) {
    loop {
        let down = *rx.borrow_and_update();
        if down {
            return;
        }
        if rx.changed().await.is_err() {
            // The endpoint is gone without a shutdown: never resolve.
            std::future::pending::<()>().await;
        }
    }
}

/// The server's end of one connection: its bounded outbound queue and its stop signal.
pub(crate) struct Conn {
    pub(crate) id: u64,
    tx: Sender<Item>,
    stop: watch::Sender<Option<Stop>>,
    /// A WebSocket or SSE stream, as opposed to one HTTP request.
    pub(crate) live: bool,
    /// The codec its frames are written in (the queue holds them as JSON either way).
    pub(crate) codec: Codec,
    /// How it reaches the client: the label its frames are counted under.
    pub(crate) transport: Transport,
    /// What its client asked to be shown of each topic's presence; `None`, every topic's
    /// whole list (boxed: most clients ask for nothing, and a connection is kept small).
    pub(crate) presence: Option<Arc<Modes>>,
    /// The id its client gave itself (`wire::connect::CLIENT`), if any: with a message's
    /// `ref`, the message's key in any session.
    pub(crate) client: Option<Arc<str>>,
    /// Mux: the component this connection is, on a socket shared with others.
    component: Option<Component>,
}

/// A mux component's view of its socket.
struct Component {
    id: ComponentId,
    left: Arc<Left>,
}

/// Set once a component's `left` is queued: nothing for it may follow on the socket, and its
/// task stops.
#[derive(Default)]
pub(crate) struct Left {
    flag: AtomicBool,
    /// Set when the client asked to leave (rather than the server closing the component).
    leaving: AtomicBool,
    notify: Notify,
}

impl Left {
    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Whether the client left (its session ends), not the server (its session is held).
    pub(crate) fn by_client(&self) -> bool {
        self.leaving.load(Ordering::SeqCst)
    }

    /// Resolves once the component has left.
    pub(crate) async fn wait(&self) {
        while !self.is_set() {
            self.notify.notified().await;
        }
    }
}

impl Conn {
    /// Component `id` on this mux socket: a connection with its own `conn_id` that shares the
    /// socket's queue and stop signal, whose frames all carry `"id"`, and which signals
    /// `left` when it leaves the socket.
    pub(crate) fn component(&self, conn_id: u64, id: ComponentId, left: Arc<Left>) -> Conn {
        Conn {
            id: conn_id,
            tx: self.tx.clone(),
            stop: self.stop.clone(),
            live: true,
            codec: self.codec,
            transport: Transport::Mux,
            presence: None,
            client: None,
            component: Some(Component { id, left }),
        }
    }

    /// What its client is shown of `topic`'s presence.
    pub(crate) fn presence_mode(&self, topic: &str) -> Mode {
        self.presence
            .as_ref()
            .map_or(Mode::List, |modes| modes.of(topic))
    }

    /// Shows its client each topic's presence as `modes` says.
    pub(crate) fn show_presence_as(&mut self, modes: Modes) {
        self.presence = (!modes.is_default()).then(|| Arc::new(modes));
    }

    /// The connection's stop signal, for the transport's reader (it stops the writer with
    /// `too_large`).
    pub(crate) fn stopper(&self) -> watch::Sender<Option<Stop>> {
        self.stop.clone()
    }

    /// `item` as this connection's: a mux component's carries its id (`None` once it left).
    fn addressed(&self, item: Item) -> Option<Item> {
        match &self.component {
            None => Some(item),
            Some(component) => component.address(item),
        }
    }

    /// Queues `item` without waiting; a full queue stops the connection as a slow consumer.
    /// Returns whether the item was queued.
    pub(crate) fn queue(&self, item: Item, metrics: &Metrics) -> bool {
        match self.try_queue(item, metrics) {
            Ok(queued) => queued,
            Err(_) => {
                self.slow_consumer(metrics);
                false
            }
        }
    }

    /// Queues `item` without waiting: whether it was queued, or the item back when the
    /// queue is full (the connection stays open).
    pub(crate) fn try_queue(&self, item: Item, metrics: &Metrics) -> Result<bool, Item> {
        let Some(item) = self.addressed(item) else {
            return Ok(false);
        };
        let counted = Counted::of(&item);
        match self.tx.try_send(item) {
            Ok(depth) => {
                counted.count(self.transport, metrics, depth);
                Ok(true)
            }
            Err(TrySendError::Full(item)) => Err(item),
            Err(TrySendError::Closed(_)) => Ok(false),
        }
    }

    /// Stops the connection as a slow consumer: its queue is full.
    pub(crate) fn slow_consumer(&self, metrics: &Metrics) {
        if self.stop.borrow().is_none() {
            Metrics::bump(&metrics.slow_consumers);
            tracing::warn!(
                conn = self.id,
                "outbound queue full: closing as slow consumer"
            );
        }
        self.stop.send_replace(Some(Stop::SLOW_CONSUMER));
    }

    /// Queues `item` even past the queue's bound, counted: for what is bounded otherwise (a
    /// topic's catch-up, at most its log).
    pub(crate) fn queue_over(&self, item: Item, metrics: &Metrics) {
        if let Some(item) = self.addressed(item) {
            let counted = Counted::of(&item);
            let depth = self.tx.send_over(item);
            counted.count(self.transport, metrics, depth);
        }
    }

    /// Resolves once the connection's queue has drained to a quarter, or it is gone.
    pub(crate) fn drained(&self) -> impl Future<Output = ()> + Send + 'static {
        self.tx.drained()
    }

    /// Queues an ephemeral frame unless the connection is falling behind (its queue three
    /// quarters full): then the frame is dropped and counted, and the connection stays open.
    /// Returns whether it was queued.
    pub(crate) fn queue_ephemeral(&self, frame: Outgoing, metrics: &Metrics) -> bool {
        let kind = frame.kind();
        let item = Item::Frame(frame, None);
        let Some(item) = self.addressed(item) else {
            return false;
        };
        match self.tx.try_send_spare(item) {
            Ok(depth) => {
                metrics.frame_out(self.transport, kind, depth);
                true
            }
            Err(TrySendError::Full(_)) => {
                Metrics::bump(&metrics.ephemeral_dropped);
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Queues `refresh` even past the queue's bound: the caller queues at most one per topic
    /// until it has run.
    pub(crate) fn queue_refresh(&self, refresh: Refresh) {
        if let Some(item) = self.addressed(Item::Refresh(refresh, None)) {
            self.tx.send_over(item);
        }
    }

    /// Mux: the client leaves the component. `left` is queued now, in the socket's order
    /// (before whatever the client sends next, a join under the same id say); nothing of the
    /// component follows it, and its task ends the session once what it was sent before is
    /// handled.
    pub(crate) fn leave(&self, metrics: &Metrics) {
        if let Some(component) = &self.component {
            component.left.leaving.store(true, Ordering::SeqCst);
            self.queue(Item::Left(component.id.clone()), metrics);
        }
    }

    /// The connection lost its session to a newer one: a socket is closed (4000), a mux
    /// component leaves its socket.
    pub(crate) fn displace(&self) {
        match &self.component {
            None => {
                self.stop.send_replace(Some(Stop::REPLACED));
            }
            Some(component) => {
                if let Some(left) = component.address(Item::Left(component.id.clone())) {
                    let _ = self.tx.try_send(left);
                }
            }
        }
    }
}

impl Component {
    /// Addresses an item to the component, and turns a close into a leave: the socket
    /// belongs to the other components too. `None` once the component has left: what its
    /// session still sends (an `ack` after the handler closed it) must not follow `left`.
    fn address(&self, item: Item) -> Option<Item> {
        if self.left.is_set() {
            return None;
        }
        Some(match item {
            Item::Frame(frame, _) => Item::Frame(frame, Some(self.id.clone())),
            Item::Replay(frames, _) => Item::Replay(frames, Some(self.id.clone())),
            Item::Refresh(refresh, _) => Item::Refresh(refresh, Some(self.id.clone())),
            Item::Close(_) | Item::Left(_) => {
                self.left.set();
                Item::Left(self.id.clone())
            }
        })
    }
}

/// What an item queued counts as, taken before the queue has it.
enum Counted {
    Frame(&'static str),
    /// A replay's frames, by type; rare enough to gather.
    Frames(Vec<&'static str>),
    Nothing,
}

impl Counted {
    fn of(item: &Item) -> Self {
        match item {
            Item::Frame(frame, _) => Counted::Frame(frame.kind()),
            Item::Replay(frames, _) => Counted::Frames(frames.iter().map(Outgoing::kind).collect()),
            Item::Left(_) => Counted::Frame("left"),
            // A refresh becomes a frame only in the writer, uncounted; a close is no frame.
            Item::Close(_) | Item::Refresh(..) => Counted::Nothing,
        }
    }

    fn count(self, transport: Transport, metrics: &Metrics, depth: usize) {
        match self {
            Counted::Frame(kind) => metrics.frame_out(transport, kind, depth),
            Counted::Frames(kinds) => metrics.frames_out(transport, kinds.into_iter(), depth),
            Counted::Nothing => {}
        }
    }
}

/// What a transport reads: frames to write, and a stop that skips the queue.
pub(crate) struct ConnRx {
    pub(crate) frames: Receiver<Item>,
    pub(crate) stop: watch::Receiver<Option<Stop>>,
}
