//! The session store in Redis: each session's claim, sequence, kept frames and handled refs,
//! under one hash tag, written and taken over by scripts so that a claim and a save never
//! interleave. Expires when the session has been idle for the store's expiry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::{BoxFuture, join_all};
use tokio::sync::Mutex;

use super::keys::SessionKeys;
use super::servers::{Connection, Servers};
use crate::server::encoded::Outgoing;
use crate::server::session::store::{Claimed, Outcome, Save, Store};
use crate::{Seq, SessionId};

/// Saves one session's changes, unless another process claimed it since (answers 0). Frames
/// that do not follow the saved sequence (saves were lost while Redis was away) start the
/// saved log afresh: it only ever holds a contiguous run, so a resume point it cannot
/// continue is seen as gone. Numbers go through `%d`: Lua would write a large one in exponent
/// notation.
/// KEYS: state, frames, refs. ARGV: epoch, expiry (ms), first number, frames to keep, frame
/// count, refs to keep, client, props, the frames, the refs.
const SAVE: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch and epoch ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[5])
if n > 0 then
  local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
  local first = tonumber(ARGV[3])
  if first ~= last + 1 then redis.call('DEL', KEYS[2]) end
  for i = 1, n do redis.call('RPUSH', KEYS[2], ARGV[8 + i]) end
  local keep = tonumber(ARGV[4])
  if keep == 0 then redis.call('DEL', KEYS[2]) else redis.call('LTRIM', KEYS[2], -keep, -1) end
  redis.call('HSET', KEYS[1], 'seq', string.format('%d', first + n - 1))
end
if #ARGV > 8 + n then
  for i = 9 + n, #ARGV do redis.call('LPUSH', KEYS[3], ARGV[i]) end
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'client', ARGV[7], 'props', ARGV[8])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
";

/// Takes a session over: bumps its claim and returns `{epoch, seq, client, props, frame
/// count, frames…, refs (newest first)…}`, or nil when Redis does not have it.
/// KEYS: state, frames, refs. ARGV: expiry (ms).
const CLAIM: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local state = redis.call('HMGET', KEYS[1], 'seq', 'client', 'props')
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
local frames = redis.call('LRANGE', KEYS[2], 0, -1)
local out = {string.format('%d', epoch), state[1] or '0', state[2] or '', state[3] or 'null',
  string.format('%d', #frames)}
for _, frame in ipairs(frames) do out[#out + 1] = frame end
for _, r in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do out[#out + 1] = r end
return out
";

/// Deletes a session that ended, unless another process claimed it since.
/// KEYS: state, frames, refs. ARGV: epoch.
const FORGET: &str = r"
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
end
return 1
";

/// The Redis session store of one backend.
pub(super) struct RedisSessions {
    servers: Servers,
    prefix: String,
    /// How long an idle session's state stays, in milliseconds.
    pub(super) expiry: AtomicU64,
    connection: Mutex<Option<Connection>>,
    save: redis::Script,
    claim: redis::Script,
    forget: redis::Script,
}

impl RedisSessions {
    pub(super) fn new(servers: Servers, prefix: &str, expiry: u64) -> Self {
        Self {
            servers,
            prefix: prefix.to_owned(),
            expiry: AtomicU64::new(expiry),
            connection: Mutex::new(None),
            save: redis::Script::new(SAVE),
            claim: redis::Script::new(CLAIM),
            forget: redis::Script::new(FORGET),
        }
    }

    /// The shared connection, made on first use and again after one was lost.
    async fn connection(&self) -> redis::RedisResult<Connection> {
        let mut held = self.connection.lock().await;
        if let Some(connection) = &*held {
            return Ok(connection.clone());
        }
        let mode = self.servers.mode().await?;
        let connection = self.servers.connect(mode).await?;
        *held = Some(connection.clone());
        Ok(connection)
    }

    /// The shared connection, or `None` (reported) when Redis cannot be reached.
    async fn connected(&self) -> Option<Connection> {
        match self.connection().await {
            Ok(connection) => Some(connection),
            Err(err) => {
                self.failed(&err).await;
                None
            }
        }
    }

    /// Drops the connection after `err` if it was lost, so the next command makes a new one.
    /// A cluster's connection stays: it follows failovers itself, and a new one would need a
    /// seed node that may be the one that died.
    async fn failed(&self, err: &redis::RedisError) {
        tracing::warn!(%err, "session store command failed");
        let lost = err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal();
        let mut held = self.connection.lock().await;
        if lost && matches!(&*held, Some(Connection::Single(_))) {
            *held = None;
        }
    }

    fn expiry_millis(&self) -> u64 {
        self.expiry.load(Ordering::Relaxed)
    }

    async fn save_one(&self, mut connection: Connection, save: &Save) -> Outcome {
        let keys = SessionKeys::new(&self.prefix, save.id);
        let unsaved = &save.unsaved;
        let mut call = self.save.key(&keys.state);
        call.key(&keys.frames)
            .key(&keys.refs)
            .arg(unsaved.epoch)
            .arg(self.expiry_millis())
            .arg(unsaved.first)
            .arg(save.keep)
            .arg(unsaved.frames.len())
            .arg(save.remembered)
            .arg(save.client.as_deref().unwrap_or(""))
            .arg(&*save.props);
        for frame in &unsaved.frames {
            call.arg(&*frame.text());
        }
        for reference in &unsaved.refs {
            call.arg(*reference);
        }
        match call.invoke_async::<i64>(&mut connection).await {
            Ok(1) => Outcome::Saved,
            Ok(_) => Outcome::Claimed,
            Err(err) => {
                self.failed(&err).await;
                Outcome::Failed
            }
        }
    }
}

impl Store for RedisSessions {
    fn save<'a>(&'a self, saves: &'a [Save]) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let Some(connection) = self.connected().await else {
                return vec![Outcome::Failed; saves.len()];
            };
            // One script per session (their keys are on different slots of a cluster), all
            // sent at once on the shared connection: one round trip for the lot.
            join_all(
                saves
                    .iter()
                    .map(|save| self.save_one(connection.clone(), save)),
            )
            .await
        })
    }

    fn claim(&self, id: SessionId) -> BoxFuture<'_, Option<Claimed>> {
        Box::pin(async move {
            let mut connection = self.connected().await?;
            let keys = SessionKeys::new(&self.prefix, id);
            let answer = self
                .claim
                .key(&keys.state)
                .key(&keys.frames)
                .key(&keys.refs)
                .arg(self.expiry_millis())
                .invoke_async::<Option<Vec<String>>>(&mut connection)
                .await;
            match answer {
                Ok(answer) => claimed(answer?),
                Err(err) => {
                    self.failed(&err).await;
                    None
                }
            }
        })
    }

    fn epoch(&self, id: SessionId) -> BoxFuture<'_, Result<Option<u64>, ()>> {
        Box::pin(async move {
            let mut connection = self.connected().await.ok_or(())?;
            let keys = SessionKeys::new(&self.prefix, id);
            let epoch: Result<Option<u64>, _> = redis::cmd("HGET")
                .arg(&keys.state)
                .arg("epoch")
                .query_async(&mut connection)
                .await;
            match epoch {
                Ok(epoch) => Ok(epoch),
                Err(err) => {
                    self.failed(&err).await;
                    Err(())
                }
            }
        })
    }

    fn touch<'a>(&'a self, ids: &'a [SessionId]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(connection) = self.connected().await else {
                return;
            };
            let expiry = self.expiry_millis();
            let touches = ids.iter().map(|id| {
                let mut connection = connection.clone();
                let keys = SessionKeys::new(&self.prefix, *id);
                async move {
                    // Keys of a session never saved do not exist: nothing happens to them.
                    let mut pipe = redis::pipe();
                    for key in [&keys.state, &keys.frames, &keys.refs] {
                        pipe.cmd("PEXPIRE").arg(key).arg(expiry).ignore();
                    }
                    pipe.query_async::<()>(&mut connection).await
                }
            });
            for touched in join_all(touches).await {
                if let Err(err) = touched {
                    self.failed(&err).await;
                    return;
                }
            }
        })
    }

    fn expiry(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.expiry.load(Ordering::Relaxed))
    }

    fn forget(&self, id: SessionId, epoch: u64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(mut connection) = self.connected().await else {
                return;
            };
            let keys = SessionKeys::new(&self.prefix, id);
            let done = self
                .forget
                .key(&keys.state)
                .key(&keys.frames)
                .key(&keys.refs)
                .arg(epoch)
                .invoke_async::<i64>(&mut connection)
                .await;
            if let Err(err) = done {
                // It expires on its own.
                self.failed(&err).await;
            }
        })
    }
}

/// Reads the claim script's answer; `None` if it is not one (the session is then unknown).
fn claimed(answer: Vec<String>) -> Option<Claimed> {
    let mut answer = answer.into_iter();
    let epoch = answer.next()?.parse().ok()?;
    let last_seq: Seq = answer.next()?.parse().ok()?;
    let client = Some(answer.next()?)
        .filter(|client| !client.is_empty())
        .map(Arc::from);
    let props = serde_json::from_str(&answer.next()?).ok()?;
    let count: usize = answer.next()?.parse().ok()?;
    let first = last_seq.checked_sub(count as Seq)? + 1;
    let frames = answer
        .by_ref()
        .take(count)
        .zip(first..)
        .map(|(text, seq)| Outgoing::new("msg", Some(seq), text))
        .collect::<Vec<_>>();
    if frames.len() != count {
        return None;
    }
    let mut refs = answer.map(|r| r.parse().ok()).collect::<Option<Vec<_>>>()?;
    refs.reverse();
    Some(Claimed {
        epoch,
        last_seq,
        frames,
        refs,
        client,
        props,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_claim_numbers_the_kept_frames_up_to_the_last() {
        let claimed = claimed(strings(&[
            "3",
            "12",
            "c1",
            r#"{"room":"a"}"#,
            "2",
            "f11",
            "f12",
            "9",
            "8",
        ]))
        .expect("a claim");
        assert_eq!((claimed.epoch, claimed.last_seq), (3, 12));
        let seqs: Vec<_> = claimed.frames.iter().map(Outgoing::seq).collect();
        assert_eq!(seqs, vec![Some(11), Some(12)]);
        assert_eq!(claimed.frames[1].text(), "f12");
        assert_eq!(claimed.refs, vec![8, 9], "oldest first");
        assert_eq!(claimed.client.as_deref(), Some("c1"));
        assert_eq!(claimed.props["room"], "a");
    }

    #[test]
    fn a_malformed_claim_is_no_claim() {
        assert!(claimed(strings(&["1", "0", "", "null", "0"])).is_some());
        assert!(claimed(strings(&["1", "1", "", "null", "2", "a", "b"])).is_none());
        assert!(claimed(strings(&["1", "5", "", "not json", "0"])).is_none());
        assert!(claimed(strings(&["1", "5", "", "null", "0", "x"])).is_none());
        assert!(claimed(strings(&["x"])).is_none());
    }
}
