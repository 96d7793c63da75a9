//! Counters an application can export: to Prometheus with [`Prometheus`](crate::server::Prometheus) (feature
//! `prometheus`), or read from Rust with [`Endpoint::metrics`](super::Endpoint::metrics).
//!
//! Each endpoint (and each mux) owns its counters, plain atomics; a label from a bounded set
//! (transport, codec, frame type) is an index into an array of them. So counting an event on
//! the path of a message is one relaxed atomic add: no lock, no lookup by name, no
//! allocation. They are read, and labelled, only when scraped.

mod histogram;
mod kinds;
#[cfg(feature = "prometheus")]
pub(super) mod prometheus;
#[cfg(feature = "prometheus")]
pub(super) mod source;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(crate) use self::histogram::{Histogram, Read};
pub(crate) use self::kinds::ByKind;
use crate::wire::{Codec, Kinds};
use crate::{Effect, Protocol};

/// How a connection reaches the server: the `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Ws,
    Http,
    Sse,
    /// A component of a mux socket, or the socket itself.
    Mux,
}

// The names are read only by the exporter.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
impl Transport {
    const ALL: [Transport; 4] = [
        Transport::Ws,
        Transport::Http,
        Transport::Sse,
        Transport::Mux,
    ];

    fn name(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Http => "http",
            Transport::Sse => "sse",
            Transport::Mux => "mux",
        }
    }
}

/// The `codec` label's values, in index order.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
const CODECS: [&str; 2] = ["json", "msgpack"];

fn codec_index(codec: Codec) -> usize {
    match codec {
        Codec::MsgPack => 1,
        _ => 0,
    }
}

/// What a client frame was: the `type` label of `omni_frames_received_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameIn {
    Msg,
    Hello,
    Join,
    Leave,
    /// It could not be decoded.
    Invalid,
}

#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
const FRAMES_IN: [&str; 5] = ["msg", "hello", "join", "leave", "invalid"];

/// The server frame types (`ServerFrame::kind`), and `other` for a type added later, in the
/// order of [`frame_out_index`].
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
const FRAMES_OUT: [&str; 12] = [
    "welcome",
    "msg",
    "push",
    "ack",
    "error",
    "reset",
    "presence_state",
    "presence_diff",
    "joined",
    "left",
    "presence_count",
    "other",
];

fn frame_out_index(kind: &str) -> usize {
    match kind {
        "msg" => 1,
        "push" => 2,
        "ack" => 3,
        "welcome" => 0,
        "error" => 4,
        "reset" => 5,
        "presence_state" => 6,
        "presence_diff" => 7,
        "joined" => 8,
        "left" => 9,
        "presence_count" => 10,
        _ => 11,
    }
}

type ByTransport<const N: usize> = [[AtomicU64; N]; 4];

fn zeroed<const N: usize>() -> ByTransport<N> {
    std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))
}

/// Live counters of one endpoint, or of one mux's sockets.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// The `protocol` label: the protocol's name, or `mux` for a mux's own.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) protocol: &'static str,
    connections_opened: ByTransport<2>,
    connections_closed: ByTransport<2>,
    pub(crate) sessions_created: AtomicU64,
    pub(crate) sessions_resumed: AtomicU64,
    pub(crate) sessions_moved: AtomicU64,
    pub(crate) session_saves_failed: AtomicU64,
    pub(crate) sessions_reset: AtomicU64,
    pub(crate) sessions_expired: AtomicU64,
    frames_in: ByTransport<5>,
    frames_out: ByTransport<12>,
    /// Client messages by kind: each handled one, and those of a kind this build lacks.
    pub(crate) messages_in: ByKind,
    /// Server messages by kind, as handlers send them (a broadcast counts once).
    pub(crate) messages_out: ByKind,
    pub(crate) decode_errors: AtomicU64,
    /// Client messages of a kind this build does not know, answered `unknown_message`.
    pub(crate) unknown_messages: AtomicU64,
    /// How long a handler method took, messages only (not hooks), in nanoseconds.
    pub(crate) handler_duration: Histogram,
    /// A handler method returned `Err`.
    pub(crate) handler_rejections: AtomicU64,
    /// A handler method panicked.
    pub(crate) handler_panics: AtomicU64,
    /// A hook (`connected`, `disconnected`, `snapshot`) returned `Err` or panicked.
    pub(crate) hook_failures: AtomicU64,
    pub(crate) broadcasts: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) write_timeouts: AtomicU64,
    pub(crate) ephemeral_dropped: AtomicU64,
    /// A sequenced topic's message a connection's queue could not take: the topic is sent
    /// from its log once the connection drains, and the connection stays open.
    pub(crate) topic_catch_ups: AtomicU64,
    /// The most items any one outbound queue held.
    queue_high_water: AtomicU64,
    /// A resume whose topic log no longer held what the client missed: a snapshot instead.
    pub(crate) replay_fallbacks: AtomicU64,
    /// How long the last graceful shutdown took to close every connection, in nanoseconds.
    drain: AtomicU64,
}

impl Metrics {
    /// A mux's own counters: its sockets carry frames, and the messages are its modules'.
    pub(crate) fn new(protocol: &'static str) -> Self {
        Self::with_kinds(protocol, ByKind::none(), ByKind::none())
    }

    /// The counters of an endpoint serving `P`, one per message kind of its schema made now,
    /// so that counting a message later is an index and an atomic add.
    pub(crate) fn of<P: Protocol>() -> Self {
        let kinds = crate::schema::kinds::<P>();
        Self::with_kinds(
            P::NAME,
            ByKind::new(kinds.client.iter().cloned(), <P::Client as Kinds>::KINDS),
            ByKind::new(kinds.server.iter().cloned(), <P::Server as Kinds>::KINDS),
        )
    }

    fn with_kinds(protocol: &'static str, messages_in: ByKind, messages_out: ByKind) -> Self {
        Self {
            protocol,
            messages_in,
            messages_out,
            connections_opened: zeroed(),
            connections_closed: zeroed(),
            sessions_created: AtomicU64::new(0),
            sessions_resumed: AtomicU64::new(0),
            sessions_moved: AtomicU64::new(0),
            session_saves_failed: AtomicU64::new(0),
            sessions_reset: AtomicU64::new(0),
            sessions_expired: AtomicU64::new(0),
            frames_in: zeroed(),
            frames_out: zeroed(),
            decode_errors: AtomicU64::new(0),
            unknown_messages: AtomicU64::new(0),
            handler_duration: Histogram::durations(),
            handler_rejections: AtomicU64::new(0),
            handler_panics: AtomicU64::new(0),
            hook_failures: AtomicU64::new(0),
            broadcasts: AtomicU64::new(0),
            slow_consumers: AtomicU64::new(0),
            topic_catch_ups: AtomicU64::new(0),
            write_timeouts: AtomicU64::new(0),
            ephemeral_dropped: AtomicU64::new(0),
            queue_high_water: AtomicU64::new(0),
            replay_fallbacks: AtomicU64::new(0),
            drain: AtomicU64::new(0),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn opened(&self, transport: Transport, codec: Codec) {
        Self::bump(&self.connections_opened[transport as usize][codec_index(codec)]);
    }

    pub(crate) fn closed(&self, transport: Transport, codec: Codec) {
        Self::bump(&self.connections_closed[transport as usize][codec_index(codec)]);
    }

    pub(crate) fn frame_in(&self, transport: Transport, frame: FrameIn) {
        Self::bump(&self.frames_in[transport as usize][frame as usize]);
    }

    /// A frame of type `kind` queued to a connection whose queue now holds `depth` items.
    pub(crate) fn frame_out(&self, transport: Transport, kind: &str, depth: usize) {
        Self::bump(&self.frames_out[transport as usize][frame_out_index(kind)]);
        self.queue_depth(depth);
    }

    /// `frames`, the frames of one replay, queued at once.
    pub(crate) fn frames_out<'a>(
        &self,
        transport: Transport,
        frames: impl Iterator<Item = &'a str>,
        depth: usize,
    ) {
        for kind in frames {
            Self::bump(&self.frames_out[transport as usize][frame_out_index(kind)]);
        }
        self.queue_depth(depth);
    }

    fn queue_depth(&self, depth: usize) {
        let depth = depth as u64;
        // A plain load nearly always: the mark rises rarely.
        if depth > self.queue_high_water.load(Ordering::Relaxed) {
            self.queue_high_water.fetch_max(depth, Ordering::Relaxed);
        }
    }

    /// Counts the server messages among `effects` by kind, before they are carried out.
    pub(crate) fn sent<P: Protocol>(&self, effects: &[Effect<P>]) {
        for effect in effects {
            match effect {
                Effect::Send(msg)
                | Effect::Push(msg)
                | Effect::Broadcast { msg, .. }
                | Effect::Publish { msg, .. } => {
                    self.messages_out.count(msg);
                }
                _ => {}
            }
        }
    }

    pub(crate) fn drained(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.drain.store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            connections_opened: self.connections_opened.iter().flatten().map(get).sum(),
            connections_closed: self.connections_closed.iter().flatten().map(get).sum(),
            sessions_created: get(&self.sessions_created),
            sessions_resumed: get(&self.sessions_resumed),
            sessions_moved: get(&self.sessions_moved),
            session_saves_failed: get(&self.session_saves_failed),
            sessions_reset: get(&self.sessions_reset),
            sessions_expired: get(&self.sessions_expired),
            frames_in: self.frames_in.iter().flatten().map(get).sum(),
            frames_out: self.frames_out.iter().flatten().map(get).sum(),
            decode_errors: get(&self.decode_errors),
            handler_failures: get(&self.handler_rejections)
                + get(&self.handler_panics)
                + get(&self.hook_failures),
            slow_consumers: get(&self.slow_consumers),
            broadcasts: get(&self.broadcasts),
            ephemeral_dropped: get(&self.ephemeral_dropped),
            topic_catch_ups: get(&self.topic_catch_ups),
        }
    }
}

/// A point-in-time copy of an endpoint's counters, from
/// [`Endpoint::metrics`](super::Endpoint::metrics). All counts are since the endpoint was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Connections accepted (ws, sse; an HTTP request is not a connection).
    pub connections_opened: u64,
    /// Connections that ended.
    pub connections_closed: u64,
    /// Sessions started.
    pub sessions_created: u64,
    /// Resumes that found their session.
    pub sessions_resumed: u64,
    /// Sessions resumed from the session store, which another process served before.
    pub sessions_moved: u64,
    /// Saves to the session store that failed or timed out: their frames went to the client
    /// unsaved.
    pub session_saves_failed: u64,
    /// Resumes answered with `reset`.
    pub sessions_reset: u64,
    /// Sessions dropped after their grace period.
    pub sessions_expired: u64,
    /// Client frames received.
    pub frames_in: u64,
    /// Server frames queued to connections (each frame of a replay counts).
    pub frames_out: u64,
    /// Client frames answered with `bad_frame` or `bad_payload`.
    pub decode_errors: u64,
    /// Handler errors and panics, in message handlers and in hooks.
    pub handler_failures: u64,
    /// Connections closed as `slow_consumer`: their queue overflowed, or a write made no
    /// progress for the write timeout.
    pub slow_consumers: u64,
    /// Broadcasts made.
    pub broadcasts: u64,
    /// Ephemeral frames (`push`, presence) not queued to a connection that was falling
    /// behind: it stays open, and its next presence frame is the whole list.
    pub ephemeral_dropped: u64,
    /// Times a connection fell behind on a sequenced topic (its queue was full): it stays
    /// open, and the topic is sent from its log once the connection has drained.
    pub topic_catch_ups: u64,
}
