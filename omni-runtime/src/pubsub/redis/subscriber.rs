//! The subscriber connection: on the node channel always, and on each topic's channel while
//! this process has a subscriber to it; what arrives goes to the local subscribers.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::mpsc;

use super::inner::{Inner, backoff, record};
use super::message::{AnnouncementKind, Received, decode};
use crate::pubsub::PubSub;

/// Channels per `SUBSCRIBE` or `UNSUBSCRIBE`: a process with many topics coming back after a
/// loss asks for them in a few commands, none of them huge.
const BATCH: usize = 1024;

/// How long Redis may take to confirm a batch before the connection is taken to be lost.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps the subscriber connection up, on exactly the channels wanted (`changed` says when
/// they changed), and delivers what arrives to local subscribers.
pub(super) async fn subscriber(
    inner: Weak<Inner>,
    client: redis::Client,
    mut changed: mpsc::Receiver<()>,
) {
    let mut attempt = 0;
    let mut ever_connected = false;
    loop {
        let connected = async {
            let pubsub = client.get_async_pubsub().await?;
            Ok::<_, redis::RedisError>(pubsub.split())
        };
        match tokio::time::timeout(Duration::from_secs(5), connected).await {
            Ok(Ok((mut sink, mut stream))) => {
                if let Some(inner) = inner.upgrade() {
                    inner.channels().reset();
                }
                // A change already asked for is in this first batch.
                while changed.try_recv().is_ok() {}
                if let Err(err) = follow(&inner, &mut sink).await {
                    record(&inner, &err.to_string());
                } else {
                    let Some(strong) = inner.upgrade() else {
                        return;
                    };
                    strong.subscribed.store(true, Ordering::SeqCst);
                    strong.live.notify_waiters();
                    if ever_connected {
                        strong.reconnects.fetch_add(1, Ordering::SeqCst);
                        tracing::info!("redis pub/sub reconnected");
                    }
                    ever_connected = true;
                    attempt = 0;
                    // Whatever was announced while this process could not hear: every other
                    // process sends its whole state.
                    strong.announce_plain(AnnouncementKind::Sync, None);
                    drop(strong);
                    loop {
                        tokio::select! {
                            message = stream.next() => {
                                let Some(message) = message else { break };
                                let Some(inner) = inner.upgrade() else { return };
                                deliver(&inner, &message);
                            }
                            Some(()) = changed.recv() => {
                                if let Err(err) = follow(&inner, &mut sink).await {
                                    record(&inner, &err.to_string());
                                    break;
                                }
                            }
                        }
                    }
                }
                let Some(inner) = inner.upgrade() else { return };
                inner.subscribed.store(false, Ordering::SeqCst);
                inner.channels().reset();
                // Whoever waits for a subscription stops: none is coming on this connection.
                inner.live.notify_waiters();
                *inner.last_error.lock().unwrap() = Some("subscriber connection lost".into());
                tracing::warn!("redis pub/sub connection lost; serving local subscribers only");
            }
            Ok(Err(err)) => record(&inner, &err.to_string()),
            Err(_) => record(&inner, "connecting to redis timed out"),
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// Sends what the channels wanted call for (one batch, in as few commands as it takes), and
/// marks the new subscriptions live once Redis confirmed them.
async fn follow(inner: &Weak<Inner>, sink: &mut PubSubSink) -> redis::RedisResult<()> {
    let Some(batch) = inner.upgrade().map(|inner| inner.channels().batch()) else {
        return Ok(());
    };
    if batch.is_empty() {
        return Ok(());
    }
    for chunk in batch.subscribe.chunks(BATCH) {
        confirmed(sink.subscribe(chunk)).await?;
        let Some(inner) = inner.upgrade() else {
            return Ok(());
        };
        inner.channels().confirm(chunk);
        inner.live.notify_waiters();
    }
    for chunk in batch.unsubscribe.chunks(BATCH) {
        confirmed(sink.unsubscribe(chunk)).await?;
    }
    Ok(())
}

pub(super) async fn confirmed(
    command: impl Future<Output = redis::RedisResult<()>>,
) -> redis::RedisResult<()> {
    match tokio::time::timeout(CONFIRM_TIMEOUT, command).await {
        Ok(done) => done,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "redis did not confirm a subscription",
        ))),
    }
}

/// Hands a message that arrived to the local subscribers of its topic, or to presence.
pub(super) fn deliver(inner: &Inner, message: &redis::Msg) {
    inner.received.fetch_add(1, Ordering::Relaxed);
    let channel = message.get_channel_name();
    let topic = inner.channels().topic(channel);
    match (decode(inner.node, message.get_payload_bytes()), topic) {
        (Some(Received::Presence(node, announcement)), _) => {
            inner.heard_presence(node, announcement);
        }
        (
            Some(Received::Broadcast {
                except: Some(from),
                frame,
            }),
            Some(topic),
        ) => inner.local.broadcast_from(from, &topic, frame),
        (
            Some(Received::Broadcast {
                except: None,
                frame,
            }),
            Some(topic),
        ) => inner.local.broadcast(&topic, frame),
        (Some(Received::Topic(frame)), Some(topic)) => inner.local.deliver_topic(&topic, &frame),
        // A topic left since (its `UNSUBSCRIBE` on its way), or nothing readable.
        _ => {}
    }
}
