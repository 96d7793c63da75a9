//! The state a process's Redis backend shares between its handle, its publishing connection
//! and its subscriber connection, and what they do with it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::channels::Channels;
use super::command::Command;
use super::keys::TopicKeys;
use super::message::{Announcement, AnnouncementKind, node_name};
use crate::presence::peers::{Heard, Peers};
use crate::presence::registry::{Changes, NodeId};
use crate::pubsub::local::LocalPubSub;
use crate::server::metrics::Histogram;

/// How long a replay may wait for Redis before the subscriber is given a snapshot instead.
pub(super) const REPLAY_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct Inner {
    pub(super) local: LocalPubSub,
    pub(super) node: u128,
    pub(super) prefix: String,
    pub(super) publish: mpsc::Sender<Command>,
    /// Presence announcements and heartbeats, on a connection of their own: after an outage,
    /// a backlog of topic messages must not hold them up past the others' expiry (they
    /// would take this process for dead, and it them).
    pub(super) announcements: mpsc::Sender<Command>,
    pub(super) log_frames: AtomicUsize,
    /// A sequenced topic's idle time before its keys expire, in milliseconds.
    pub(super) idle: AtomicU64,
    /// The channels the subscriber connection should be on, and those it is on.
    pub(super) channels: Mutex<Channels>,
    /// Tells the subscriber connection the channels wanted changed.
    pub(super) channels_changed: mpsc::Sender<()>,
    /// Woken when a subscription is confirmed, or the subscriber connection is lost.
    pub(super) live: Notify,
    /// Messages the subscriber connection received.
    pub(super) received: AtomicU64,
    pub(super) subscribed: AtomicBool,
    pub(super) publishing: AtomicBool,
    pub(super) reconnects: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) last_error: Mutex<Option<String>>,
    /// The number of this process's last announcement of presence changes; moved only under
    /// the local presence lock, so numbers follow the order of the changes.
    pub(super) presence_seq: AtomicU64,
    pub(super) peers: Mutex<Peers>,
    pub(super) heartbeat: Mutex<Duration>,
    /// How long each broadcast and topic message took to reach Redis, in nanoseconds.
    pub(super) publish_latency: Histogram,
}

impl Inner {
    pub(super) fn channels(&self) -> MutexGuard<'_, Channels> {
        // The set holds no invariant a panic elsewhere could break halfway.
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn idle_millis(&self) -> u64 {
        self.idle.load(Ordering::SeqCst)
    }

    /// Runs `change` on the local subscriptions, then has the subscriber connection follow
    /// the topics whose subscribers it changed: all under the channels' lock, so that the
    /// subscriptions asked for always match the local subscribers.
    pub(super) fn subscriptions<T>(
        &self,
        topics: impl FnOnce(&LocalPubSub) -> (T, Vec<String>),
    ) -> T {
        let mut channels = self.channels();
        let (out, touched) = topics(&self.local);
        let mut changed = false;
        for topic in touched {
            let channel = TopicKeys::new(&self.prefix, &topic).channel;
            changed |= channels.set(&topic, &channel, self.local.subscribers(&topic));
        }
        drop(channels);
        if changed {
            // Full: a wake-up is already pending, and it takes this change too.
            let _ = self.channels_changed.try_send(());
        }
        out
    }

    /// Resolves once messages published on `topic` from now on reach this process (its
    /// subscription is confirmed), the subscriber connection is down (nothing would), or
    /// after [`REPLAY_TIMEOUT`].
    pub(super) async fn listening(self: Arc<Self>, topic: String) {
        let confirmed = async {
            loop {
                let notified = self.live.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if !self.subscribed.load(Ordering::SeqCst) || self.channels().live(&topic) {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(REPLAY_TIMEOUT, confirmed).await;
    }
    pub(super) fn queue(&self, command: Command) {
        if self.publish.try_send(command).is_err() {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Publishes a presence announcement for the other processes. Dropped when Redis is
    /// unreachable: they notice the gap in the numbers (or the silence) and repair it.
    pub(super) fn announce(&self, announcement: &Announcement) {
        let Ok(json) = serde_json::to_string(announcement) else {
            return;
        };
        let payload = format!("{:032x} - presence\n{json}", self.node).into_bytes();
        let command = Command::Broadcast {
            topic: None,
            payload,
        };
        if self.announcements.try_send(command).is_err() {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Announces this process's whole presence state (`to` one process, or to all), with the
    /// number of its last change.
    pub(super) fn announce_state(&self, to: Option<NodeId>) {
        // Under the presence lock: no change can slip between the entries and the number.
        let registry = self.local.lock_presence();
        let seq = self.presence_seq.load(Ordering::SeqCst);
        self.announce(&Announcement {
            kind: AnnouncementKind::State,
            seq,
            to: to.map(node_name),
            joins: registry.own_entries(),
            leaves: Vec::new(),
        });
    }

    /// Announces `kind` (a heartbeat, a request for states) with the current number.
    pub(super) fn announce_plain(&self, kind: AnnouncementKind, to: Option<NodeId>) {
        let _registry = self.local.lock_presence();
        let seq = self.presence_seq.load(Ordering::SeqCst);
        self.announce(&Announcement {
            kind,
            seq,
            to: to.map(node_name),
            joins: Vec::new(),
            leaves: Vec::new(),
        });
    }

    /// Another process's presence announcement arrived.
    pub(super) fn heard_presence(&self, node: NodeId, announcement: Announcement) {
        let Announcement {
            kind,
            seq,
            to,
            joins,
            leaves,
        } = announcement;
        if to.is_some_and(|to| to != node_name(self.node)) {
            return;
        }
        let heard = match kind {
            AnnouncementKind::Changes => Heard::Changes { seq },
            AnnouncementKind::State => Heard::State { seq },
            AnnouncementKind::Beat => Heard::Beat { seq },
            AnnouncementKind::Sync => {
                self.announce_state(Some(node));
                Heard::Beat { seq }
            }
        };
        let verdict = self
            .peers
            .lock()
            .unwrap()
            .heard(node, heard, std::time::Instant::now());
        if verdict.apply {
            self.local.change_presence(|registry| match kind {
                AnnouncementKind::State => registry.replace_node(node, joins),
                _ => registry.apply_node(node, Changes { joins, leaves }),
            });
        }
        if verdict.ask {
            self.announce_plain(AnnouncementKind::Sync, Some(node));
        }
    }
}

/// Delay before reconnection attempt `attempt`: 100 ms doubling to 5 s.
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)).min(5_000))
}

/// Whole milliseconds, at least one (Redis refuses an expiry of zero).
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Notes an error reaching Redis, for the health report.
pub(super) fn record(inner: &Weak<Inner>, error: &str) {
    if let Some(inner) = inner.upgrade() {
        tracing::warn!(%error, "redis unreachable");
        *inner.last_error.lock().unwrap() = Some(error.to_owned());
    }
}
