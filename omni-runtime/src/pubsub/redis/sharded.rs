//! The subscriber connection on a Redis Cluster: sharded subscriptions (`SSUBSCRIBE`), each
//! sent by the cluster client to the master of its channel's slot, with what arrives coming
//! back as RESP3 pushes. A subscription the cluster drops (its slot moved: Redis says
//! `sunsubscribe`; its node died: the client says its connection closed) is asked for again
//! until the slot's owner confirms it, on the same cluster connection: the other shards'
//! subscriptions carry on meanwhile.

use std::collections::HashMap;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::inner::{Inner, backoff, record};
use super::message::AnnouncementKind;
use super::servers::Servers;
use super::subscriber::{confirmed, deliver};

/// Slots whose subscriptions are sent at once: a process coming back with many topics does
/// not open thousands of requests together.
const CONCURRENT: usize = 64;

/// Failed batches in a row after which the cluster connection is built anew from the seeds.
const FAILURES_BEFORE_RECONNECT: u32 = 8;

/// Keeps sharded subscriptions on exactly the channels wanted (`changed` says when they
/// changed), on whichever node owns each channel's slot, and delivers what arrives.
pub(super) async fn subscriber(
    inner: Weak<Inner>,
    servers: Servers,
    mut changed: mpsc::Receiver<()>,
) {
    let mut attempt = 0;
    let mut ever_connected = false;
    loop {
        let (push, mut pushes) = mpsc::unbounded_channel();
        let connected = async { servers.cluster(Some(push))?.get_async_connection().await };
        match tokio::time::timeout(Duration::from_secs(5), connected).await {
            Ok(Ok(conn)) => {
                let Some(strong) = inner.upgrade() else {
                    return;
                };
                strong.channels().reset();
                drop(strong);
                // A change already asked for is in this first batch.
                while changed.try_recv().is_ok() {}
                let mut healthy = false;
                let mut failures = 0;
                let mut due = Some(Instant::now());
                while failures < FAILURES_BEFORE_RECONNECT {
                    let wait = async {
                        match due {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        push = pushes.recv() => {
                            let Some(push) = push else { break };
                            let Some(strong) = inner.upgrade() else { return };
                            if pushed(&strong, push) {
                                due = Some(Instant::now());
                            }
                        }
                        Some(()) = changed.recv() => {
                            due = Some(due.map_or_else(Instant::now, |at| at.min(Instant::now())));
                        }
                        () = wait => {
                            due = None;
                            let Some(strong) = inner.upgrade() else { return };
                            match follow(&strong, &conn).await {
                                Ok(()) => {
                                    failures = 0;
                                    if !healthy {
                                        healthy = true;
                                        strong.subscribed.store(true, Ordering::SeqCst);
                                        strong.live.notify_waiters();
                                        if ever_connected {
                                            strong.reconnects.fetch_add(1, Ordering::SeqCst);
                                            tracing::info!("redis cluster subscriptions restored");
                                        }
                                        ever_connected = true;
                                        // Whatever was announced while this process could not
                                        // hear: every other process sends its whole state.
                                        strong.announce_plain(AnnouncementKind::Sync, None);
                                    }
                                }
                                Err(err) => {
                                    failures += 1;
                                    if healthy {
                                        healthy = false;
                                        strong.subscribed.store(false, Ordering::SeqCst);
                                        tracing::warn!("redis cluster subscriptions lost; serving local subscribers only");
                                    }
                                    // Whoever waits for a subscription stops: it may be a while.
                                    strong.live.notify_waiters();
                                    record(&inner, &err.to_string());
                                    due = Some(Instant::now() + backoff(failures));
                                }
                            }
                        }
                    }
                }
                // Let go of the connection (and its pushes) before building a new one.
                drop(conn);
                let Some(strong) = inner.upgrade() else {
                    return;
                };
                strong.subscribed.store(false, Ordering::SeqCst);
                strong.channels().reset();
                strong.live.notify_waiters();
            }
            Ok(Err(err)) => record(&inner, &err.to_string()),
            Err(_) => record(&inner, "connecting to the redis cluster timed out"),
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// Handles one push: a message goes to the local subscribers; a subscription the cluster
/// dropped is marked for asking again. Returns whether a batch is due.
fn pushed(inner: &Inner, push: PushInfo) -> bool {
    match push.kind {
        PushKind::SMessage | PushKind::Message => {
            if let Some(message) = redis::Msg::from_push_info(push) {
                deliver(inner, &message);
            }
            false
        }
        // Also the confirmation of this process's own `SUNSUBSCRIBE`: that channel is no
        // longer asked for, so nothing is due for it.
        PushKind::SUnsubscribe => {
            let Some(Value::BulkString(channel)) = push.data.first() else {
                return false;
            };
            let Ok(channel) = std::str::from_utf8(channel) else {
                return false;
            };
            inner.channels().lost([channel])
        }
        // A node's connection closed: which channels were on it is not said, so every one is
        // asked for again (a node that still has one just confirms it).
        PushKind::Disconnection => {
            let mut channels = inner.channels();
            let asked = channels.asked();
            channels.lost(asked.iter().map(String::as_str))
        }
        _ => false,
    }
}

/// Sends what the channels wanted call for, one command per slot (a sharded subscription
/// names channels of one slot), and marks the subscriptions live as their slots' owners
/// confirm them. A slot whose subscription failed is asked for in the next batch.
async fn follow(inner: &Inner, conn: &ClusterConnection) -> redis::RedisResult<()> {
    let batch = inner.channels().batch();
    if batch.is_empty() {
        return Ok(());
    }
    let mut first_error = None;
    let mut subscribed = futures_util::stream::iter(by_slot(batch.subscribe))
        .map(|channels| {
            let mut conn = conn.clone();
            async move {
                let done = confirmed(conn.ssubscribe(&channels)).await;
                (channels, done)
            }
        })
        .buffer_unordered(CONCURRENT);
    while let Some((channels, done)) = subscribed.next().await {
        match done {
            Ok(()) => {
                inner.channels().confirm(&channels);
                inner.live.notify_waiters();
            }
            Err(err) => {
                inner.channels().refused(&channels);
                first_error.get_or_insert(err);
            }
        }
    }
    let mut unsubscribed = futures_util::stream::iter(by_slot(batch.unsubscribe))
        .map(|channels| {
            let mut conn = conn.clone();
            async move { confirmed(conn.sunsubscribe(&channels)).await }
        })
        .buffer_unordered(CONCURRENT);
    while let Some(done) = unsubscribed.next().await {
        // A node that cannot be reached has dropped the subscription already.
        if let Err(err) = done {
            tracing::debug!(%err, "redis cluster unsubscribe failed");
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// `channels` grouped by their slot.
fn by_slot(channels: Vec<String>) -> Vec<Vec<String>> {
    let mut slots: HashMap<Slot, Vec<String>> = HashMap::new();
    for channel in channels {
        slots
            .entry(Slot::for_key(&channel))
            .or_default()
            .push(channel);
    }
    slots.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::redis::keys::{TopicKeys, node_channel};
    use crate::pubsub::redis::servers::Mode;

    #[test]
    fn one_group_per_slot() {
        let room = TopicKeys::new("omni:", "room").channel;
        let hall = TopicKeys::new("omni:", "hall").channel;
        let node = node_channel("omni:", Mode::Cluster);
        // The node channel shares the tag of the topic named "" only.
        let empty = TopicKeys::new("omni:", "").channel;
        let mut groups = by_slot(vec![
            room.clone(),
            hall.clone(),
            node.clone(),
            empty.clone(),
        ]);
        for group in &mut groups {
            group.sort();
        }
        groups.sort();
        let mut want = vec![vec![hall], vec![room], vec![empty, node]];
        want.sort();
        assert_eq!(groups, want);
    }
}
