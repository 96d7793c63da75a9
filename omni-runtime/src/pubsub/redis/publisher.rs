//! The publishing connection: broadcasts, numbered topic messages and replays, run in
//! order from one queue, with the scripts that number, log and expire a topic's messages.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::command::Command;
use super::inner::{Inner, backoff};
use super::keys::{TopicKeys, node_channel};
use super::servers::{Connection, Mode, Servers};
use crate::Seq;
use crate::pubsub::backend::{Replay, topic_origin};
use crate::server::encoded::{Outgoing, Publication};

/// Numbers a topic message, logs it and publishes it, atomically, so that every process sees
/// a topic's messages in the order of their numbers and the log never misses one. A counter
/// that does not exist (first use, expired, or lost with Redis's data) starts at the
/// publisher's [`topic_origin`], and a stream left from before it is dropped: numbers in the
/// log are always contiguous. Both keys expire after the topic's idle time, counted from its
/// last message. Numbers are formatted with `%d`: Lua would write a large one in exponent
/// notation. The publishing command is `PUBLISH`, or `SPUBLISH` on a cluster (allowed in a
/// script there because the channel, listed in KEYS, has the counter's slot).
///
/// Each message is logged with its publication's id. A retry (the attempt before it failed,
/// but may have been carried out, its answer lost with the connection) first looks for that
/// id among the last [`RETRY_SCAN`] messages logged, and returns the number found instead of
/// publishing the message twice.
/// KEYS: counter, stream, channel. ARGV: frame head, frame tail, push frame, message header,
/// log length, origin, idle time in milliseconds, publishing command, id, `1` for a retry,
/// how many logged messages a retry looks through.
const PUBLISH_SCRIPT: &str = r"
if ARGV[10] == '1' then
  for _, entry in ipairs(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[11])) do
    if entry[2][4] == ARGV[9] then
      return string.sub(entry[1], 3)
    end
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[6])
end
local seq = string.format('%d', redis.call('INCR', KEYS[1]))
local msg = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], '0-' .. seq, 'f', msg, 'i', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call(ARGV[8], KEYS[3], ARGV[4] .. ' ' .. seq .. '\n' .. msg .. '\n' .. ARGV[3])
return seq
";

/// How many of a topic's last logged messages a retried publish looks through for itself:
/// more than other processes publish on one topic while a connection is re-established, and
/// only a retry pays for it.
const RETRY_SCAN: usize = 1024;

/// The messages after a cursor, if the stream still holds all of them: `{head, 'held',
/// frames…}`, or `{head, 'gone'}`. A topic without a counter (never used, or expired) starts
/// its numbering here, as the publish script would, so that the `reset` a cursor gets names
/// the number the next message follows.
/// KEYS: counter, stream. ARGV: the cursor, origin, idle time in milliseconds.
const REPLAY_SCRIPT: &str = r"
local head = redis.call('GET', KEYS[1])
if not head then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  head = ARGV[2]
end
head = tonumber(head)
local after = tonumber(ARGV[1])
local shown = string.format('%d', head)
if after == head then return {shown, 'held'} end
if after > head then return {shown, 'gone'} end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #first == 0 or tonumber(string.sub(first[1][1], 3)) > after + 1 then
  return {shown, 'gone'}
end
local out = {shown, 'held'}
local from = '0-' .. string.format('%d', after + 1)
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], from, '+')) do
  out[#out + 1] = entry[2][2]
end
return out
";

/// Runs the queued commands on one connection, reconnecting when one fails. A broadcast
/// that fails is dropped (counted in `dropped`); a topic message is retried until Redis is
/// back, since its subscribers would otherwise miss a number.
pub(super) async fn publisher(
    inner: Weak<Inner>,
    servers: Servers,
    mode: Mode,
    mut queue: mpsc::Receiver<Command>,
) {
    let mut connection: Option<Connection> = None;
    let mut attempt = 0;
    while let Some(command) = queue.recv().await {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let mut command = Some(command);
        while let Some(current) = command.take() {
            if matches!(current, Command::Publish { .. })
                && !strong.subscribed.load(Ordering::SeqCst)
            {
                // This process's subscribers receive a topic message through the subscription:
                // publishing while it is down would skip them.
                command = Some(current);
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            if connection.is_none() {
                let connect = servers.connect(mode);
                match tokio::time::timeout(Duration::from_secs(5), connect).await {
                    Ok(Ok(conn)) => {
                        connection = Some(conn);
                        attempt = 0;
                    }
                    _ => {
                        strong.publishing.store(false, Ordering::SeqCst);
                        attempt += 1;
                        command = unreachable(&strong, current);
                        if command.is_some() {
                            tokio::time::sleep(backoff(attempt)).await;
                        }
                        continue;
                    }
                }
            }
            let conn = connection.as_mut().expect("connected above");
            let timed = !matches!(current, Command::Replay { .. });
            let started = std::time::Instant::now();
            match run(&strong, mode, conn, current).await {
                Ok(()) => {
                    if timed {
                        strong.publish_latency.observe_duration(started.elapsed());
                    }
                    strong.publishing.store(true, Ordering::SeqCst);
                }
                Err((err, retry)) => {
                    strong.publishing.store(false, Ordering::SeqCst);
                    *strong.last_error.lock().unwrap() = Some(err.to_string());
                    tracing::warn!(%err, "redis publish failed");
                    let lost = err.is_io_error()
                        || err.is_connection_dropped()
                        || err.is_connection_refusal()
                        || err.is_timeout();
                    if lost || err.is_unrecoverable_error() {
                        connection = None;
                    }
                    // Worth another try: the connection, or a cluster failing over.
                    let transient =
                        lost || !matches!(err.retry_method(), redis::RetryMethod::NoRetry);
                    match retry {
                        Some(retry) if transient => {
                            attempt += 1;
                            tokio::time::sleep(backoff(attempt)).await;
                            command = Some(retry);
                        }
                        _ => {
                            strong.dropped.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
        }
    }
}

/// Redis cannot be reached for `command`: a broadcast stays local, a replay is answered
/// "gone" (by its caller's timeout), a topic message is kept for a retry.
fn unreachable(inner: &Inner, command: Command) -> Option<Command> {
    match command {
        Command::Publish { .. } => Some(command),
        Command::Broadcast { .. } => {
            inner.dropped.fetch_add(1, Ordering::SeqCst);
            None
        }
        Command::Replay { .. } => None,
    }
}

/// Runs one command. On failure, a topic message comes back to be retried.
async fn run(
    inner: &Inner,
    mode: Mode,
    conn: &mut Connection,
    command: Command,
) -> Result<(), (redis::RedisError, Option<Command>)> {
    match command {
        Command::Broadcast { topic, payload } => {
            let channel = match topic {
                Some(topic) => TopicKeys::new(&inner.prefix, &topic).channel,
                None => node_channel(&inner.prefix, mode),
            };
            let published: Result<i64, _> = redis::cmd(mode.publish())
                .arg(&channel)
                .arg(&payload)
                .query_async(conn)
                .await;
            published.map(drop).map_err(|err| (err, None))
        }
        Command::Publish {
            topic,
            publication,
            id,
            retry,
        } => {
            let header = format!("{:032x} - topic", inner.node);
            let keys = TopicKeys::new(&inner.prefix, &topic);
            let published: Result<String, _> = redis::cmd("EVAL")
                .arg(PUBLISH_SCRIPT)
                .arg(3)
                .arg(&keys.counter)
                .arg(&keys.stream)
                .arg(&keys.channel)
                .arg(Publication::HEAD)
                .arg(publication.tail())
                .arg(publication.push().text())
                .arg(header)
                .arg(inner.log_frames.load(Ordering::SeqCst))
                .arg(topic_origin())
                .arg(inner.idle_millis())
                .arg(mode.publish())
                .arg(id)
                .arg(if retry { "1" } else { "0" })
                .arg(RETRY_SCAN)
                .query_async(conn)
                .await;
            match published {
                Ok(_) => Ok(()),
                Err(err) => {
                    let retry = Command::Publish {
                        topic,
                        publication,
                        id,
                        retry: true,
                    };
                    Err((err, Some(retry)))
                }
            }
        }
        Command::Replay {
            topic,
            after,
            reply,
        } => {
            let keys = TopicKeys::new(&inner.prefix, &topic);
            let answer: Result<Vec<String>, _> = redis::cmd("EVAL")
                .arg(REPLAY_SCRIPT)
                .arg(2)
                .arg(&keys.counter)
                .arg(&keys.stream)
                .arg(after)
                .arg(topic_origin())
                .arg(inner.idle_millis())
                .query_async(conn)
                .await;
            let answer = answer.map_err(|err| (err, None))?;
            let _ = reply.send(replay_from(after, answer));
            Ok(())
        }
    }
}

/// Reads the replay script's answer.
fn replay_from(after: Seq, answer: Vec<String>) -> Replay {
    let mut answer = answer.into_iter();
    let head = answer.next().and_then(|h| h.parse().ok()).unwrap_or(after);
    match answer.next().as_deref() {
        Some("held") => Replay::Held(
            answer
                .map(|text| Outgoing::new("msg", None, text))
                .collect(),
        ),
        _ => Replay::Gone { head },
    }
}
