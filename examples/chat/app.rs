#![allow(dead_code)] // Shared by the demo and the tests; each uses a part.

//! The chat demo's protocol and handler, shared by the server (`main.rs`) and the tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use omni::server::{Endpoint, EndpointBuilder};
use omni::{Context, HandlerResult};

/// The one topic every chat connection subscribes to. Messages are published on it as a
/// sequenced topic, so a client that follows topics and comes back (to any server sharing
/// the Redis) receives exactly the messages it missed; every session is tracked in its
/// presence, under its name.
pub const ROOM: &str = "room";

/// The presence key of a session that has not said its name.
pub const ANONYMOUS: &str = "anonymous";

/// A chat message.
#[omni::wire]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Chosen by the sender; a message resent with the same id is stored once.
    pub id: String,
    /// Who wrote it.
    pub author: String,
    /// What they wrote.
    pub text: String,
    /// `Sending` on the sender's screen until the server's `Upsert` says `Sent`.
    pub status: Status,
    /// Milliseconds since the Unix epoch, set by the server when it stores the message.
    pub sent_at: u64,
}

/// The largest file the room takes; a larger one is refused (`rejected`).
pub const FILE_LIMIT: usize = 64 * 1024;

/// A file shared with the room. Its bytes are `bin` over MessagePack and base64 in JSON.
#[omni::wire]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    /// Its name, as the sender's browser gave it.
    pub name: String,
    /// What it holds, at most [`FILE_LIMIT`] bytes.
    pub data: omni::Bytes,
}

/// Whether the server has stored a message.
#[omni::wire]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Shown as "Sending…".
    Sending,
    /// Stored by the server.
    Sent,
}

/// Everything that can happen in the chat. The schemas of its released versions are kept in
/// `protocol/` (checked by `tests/chat.rs`) and embedded, for the server's negotiation.
#[omni::protocol(schemas = "examples/chat/protocol")]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// The draft input changed; local only.
    DraftChanged(String),
    /// Send a message.
    #[client]
    Send(ChatMessage),
    /// Ask for every stored message.
    #[client]
    FetchAll,
    /// Be shown online under this name (1 to 40 characters).
    #[client]
    SetName(String),
    /// Share a file with everyone in the room.
    #[client]
    Share(SharedFile),
    /// Messages to insert or replace, by id.
    #[server]
    Upsert(BTreeMap<String, ChatMessage>),
    /// How many sessions are in the room, on every server: derived from the room's presence
    /// list, for clients that do not read presence frames.
    #[server]
    Presence {
        /// Sessions tracked in the room.
        online: u32,
    },
    /// A file someone shared. Files are not kept: those in the room when it is shared see it.
    #[server]
    Shared {
        /// The name the sender is online under.
        from: String,
        /// The file.
        file: SharedFile,
    },
}

/// What all connections share: the stored messages. In memory for one server, or in Redis
/// when several servers make one room (presence then spans them through the Redis pub/sub).
#[derive(Clone, Default)]
pub struct Room {
    messages: Arc<Mutex<History>>,
    #[cfg(feature = "redis")]
    shared: Option<Shared>,
}

/// Messages the room keeps: the last [`HISTORY`], so that neither memory nor what a new
/// connection is sent grows with everything ever said.
pub const HISTORY: usize = 200;

/// How long a server keeps the name a client went by, for another to take its session over.
#[cfg(feature = "redis")]
const NAME_EXPIRY_SECS: u64 = 24 * 60 * 60;

/// The stored messages by id, and their ids oldest first.
#[derive(Default)]
struct History {
    by_id: BTreeMap<String, ChatMessage>,
    order: std::collections::VecDeque<String>,
}

/// The room's state in Redis, and the pub/sub that carries broadcasts between servers.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct Shared {
    pub redis: crate::store::Store,
    pub pubsub: Arc<omni::pubsub::RedisPubSub>,
    pub sessions: omni::server::SessionStore,
    /// Key prefix, so that several rooms can share one Redis.
    keys: String,
}

impl Room {
    /// A room whose messages, presence and broadcasts live in the Redis at `url` (a server,
    /// a cluster node, or several cluster nodes separated by commas), shared by every server
    /// started with the same `url` and `name`.
    #[cfg(feature = "redis")]
    pub async fn with_redis(url: &str, name: &str) -> Result<Self, redis::RedisError> {
        let redis = crate::store::Store::connect(url).await?;
        let pubsub = Arc::new(omni::pubsub::RedisPubSub::with_prefix(
            url,
            &format!("{name}:topic:"),
        )?);
        pubsub.ready(std::time::Duration::from_secs(10)).await;
        // Sessions live in Redis too: a client whose server dies resumes on another.
        let sessions = pubsub.session_store();
        Ok(Self {
            shared: Some(Shared {
                redis,
                pubsub,
                sessions,
                keys: format!("{name}:"),
            }),
            ..Self::default()
        })
    }

    /// The chat endpoint, one [`ChatHandler`] per session.
    pub fn endpoint(&self) -> Endpoint<Msg, ChatHandler> {
        self.builder().build()
    }

    /// The Redis and pub/sub the room lives in, when several servers share it.
    #[cfg(feature = "redis")]
    pub fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
    }

    /// The chat endpoint's builder, for limits or host names of the server's own.
    pub fn builder(&self) -> EndpointBuilder<Msg, ChatHandler> {
        let room = self.clone();
        let builder = Endpoint::builder(move || ChatHandler {
            room: room.clone(),
            name: None,
        })
        // The count clients written before presence frames show, now derived from the list:
        // pushed once per change interval, however many come and go in it.
        .presence_message(ROOM, |list| MsgFromServer::Presence {
            online: list.values().map(Vec::len).sum::<usize>() as u32,
        });
        #[cfg(feature = "redis")]
        let builder = match &self.shared {
            Some(shared) => builder
                .pubsub(shared.pubsub.clone())
                .session_store(shared.sessions.clone()),
            None => builder,
        };
        builder
    }

    /// How many messages are stored.
    pub fn len(&self) -> usize {
        self.messages.lock().unwrap().by_id.len()
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `msg` unless its id is stored already; returns the stored message and whether
    /// it is new.
    async fn store(&self, msg: ChatMessage) -> Result<(ChatMessage, bool), omni::BoxError> {
        let confirmed = ChatMessage {
            status: Status::Sent,
            sent_at: now_ms(),
            ..msg
        };
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let mut redis = shared.redis.clone();
            let key = format!("{}messages", shared.keys);
            let json = serde_json::to_string(&confirmed)?;
            let new: bool = redis::cmd("HSETNX")
                .arg(&key)
                .arg(&confirmed.id)
                .arg(&json)
                .query_async(&mut redis)
                .await?;
            let stored: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg(&confirmed.id)
                .query_async(&mut redis)
                .await?;
            if new {
                // The ids in order; past the history the oldest go, from both.
                let order = format!("{}order", shared.keys);
                let len: usize = redis::cmd("RPUSH")
                    .arg(&order)
                    .arg(&confirmed.id)
                    .query_async(&mut redis)
                    .await?;
                if len > HISTORY {
                    let old: Vec<String> = redis::cmd("LPOP")
                        .arg(&order)
                        .arg(len - HISTORY)
                        .query_async(&mut redis)
                        .await?;
                    // Another server may have trimmed the same overflow first.
                    if !old.is_empty() {
                        let _: () = redis::cmd("HDEL")
                            .arg(&key)
                            .arg(old)
                            .query_async(&mut redis)
                            .await?;
                    }
                }
            }
            let stored = match stored {
                Some(json) => serde_json::from_str(&json)?,
                None => confirmed,
            };
            return Ok((stored, new));
        }
        let mut history = self.messages.lock().unwrap();
        if let Some(stored) = history.by_id.get(&confirmed.id) {
            return Ok((stored.clone(), false));
        }
        history.order.push_back(confirmed.id.clone());
        history
            .by_id
            .insert(confirmed.id.clone(), confirmed.clone());
        while history.order.len() > HISTORY {
            if let Some(old) = history.order.pop_front() {
                history.by_id.remove(&old);
            }
        }
        Ok((confirmed, true))
    }

    /// Keeps the name client `client` goes by, for the server that takes its session over.
    async fn remember_name(&self, client: Option<&str>, name: &str) -> Result<(), omni::BoxError> {
        #[cfg(feature = "redis")]
        if let (Some(shared), Some(client)) = (&self.shared, client) {
            let mut redis = shared.redis.clone();
            let key = format!("{}name:{client}", shared.keys);
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(name)
                .arg("EX")
                .arg(NAME_EXPIRY_SECS)
                .query_async(&mut redis)
                .await?;
        }
        let _ = (client, name);
        Ok(())
    }

    /// The name client `client` went by, if a server kept it.
    async fn name_of(&self, client: Option<&str>) -> Result<Option<String>, omni::BoxError> {
        #[cfg(feature = "redis")]
        if let (Some(shared), Some(client)) = (&self.shared, client) {
            let mut redis = shared.redis.clone();
            let key = format!("{}name:{client}", shared.keys);
            return Ok(redis::cmd("GET").arg(&key).query_async(&mut redis).await?);
        }
        let _ = client;
        Ok(None)
    }

    /// Every stored message (the last [`HISTORY`]).
    async fn all(&self) -> Result<BTreeMap<String, ChatMessage>, omni::BoxError> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let mut redis = shared.redis.clone();
            let all: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
                .arg(format!("{}messages", shared.keys))
                .query_async(&mut redis)
                .await?;
            return all
                .into_iter()
                .map(|(id, json)| Ok((id, serde_json::from_str(&json)?)))
                .collect();
        }
        Ok(self.messages.lock().unwrap().by_id.clone())
    }
}

/// One session's handler.
pub struct ChatHandler {
    room: Room,
    /// The name the client gave; until then it is online as [`ANONYMOUS`].
    name: Option<String>,
}

impl ChatHandler {
    fn key(&self) -> &str {
        self.name.as_deref().unwrap_or(ANONYMOUS)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MsgHandler for ChatHandler {
    async fn send(&mut self, cx: &mut Context<Msg>, msg: ChatMessage) -> HandlerResult {
        if msg.id.is_empty() {
            return Err("a message needs an id".into());
        }
        let (stored, new) = self.room.store(msg).await?;
        let upsert = BTreeMap::from([(stored.id.clone(), stored)]);
        // The sender's confirmation answers its `ref`; everyone (the sender too) gets the
        // message on the room, where clients that missed it can catch up.
        cx.send(MsgFromServer::Upsert(upsert.clone()));
        if new {
            cx.publish(ROOM, MsgFromServer::Upsert(upsert));
        }
        Ok(())
    }

    async fn fetch_all(&mut self, cx: &mut Context<Msg>) -> HandlerResult {
        cx.send(MsgFromServer::Upsert(self.room.all().await?));
        Ok(())
    }

    async fn set_name(&mut self, cx: &mut Context<Msg>, name: String) -> HandlerResult {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 40 {
            return Err("a name is 1 to 40 characters".into());
        }
        if self.name.as_deref() != Some(name) {
            cx.untrack(ROOM, self.key());
            self.name = Some(name.to_owned());
            cx.track(ROOM, self.key(), serde_json::json!({}));
            self.room.remember_name(cx.client(), name).await?;
        }
        Ok(())
    }

    async fn share(&mut self, cx: &mut Context<Msg>, file: SharedFile) -> HandlerResult {
        if file.data.len() > FILE_LIMIT {
            let limit = FILE_LIMIT / 1024;
            return Err(format!("a shared file is at most {limit} KiB").into());
        }
        // Ephemeral, like a voice in the room: not stored, not replayed to a client that
        // comes back, so a room full of files holds no memory.
        let from = self.key().to_owned();
        cx.broadcast(ROOM, MsgFromServer::Shared { from, file });
        Ok(())
    }

    /// Runs after every (re)connection: tracking again what is tracked changes nothing, so a
    /// resumed session makes no leave and no join. Entries leave when the session ends.
    async fn connected(&mut self, cx: &mut Context<Msg>) -> HandlerResult {
        if cx.moved() && self.name.is_none() {
            // A new handler for a session another server served: the name it was given there.
            self.name = self.room.name_of(cx.client()).await?;
        }
        cx.subscribe(ROOM);
        cx.track(ROOM, self.key(), serde_json::json!({}));
        Ok(())
    }

    /// A client that cannot catch up on the room from its log gets every stored message.
    async fn snapshot(&mut self, cx: &mut Context<Msg>, topic: String) -> HandlerResult {
        if topic == ROOM {
            cx.send(MsgFromServer::Upsert(self.room.all().await?));
        }
        Ok(())
    }
}
