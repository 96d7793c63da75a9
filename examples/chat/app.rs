#![allow(dead_code)] // Shared by the demo and the tests; each uses a part.

//! The chat demo's protocol and handler, shared by the server (`main.rs`) and the tests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use omni::server::Endpoint;
use omni::{Context, HandlerResult};

/// The one topic every chat connection subscribes to.
pub const ROOM: &str = "room";

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

/// Whether the server has stored a message.
#[omni::wire]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Shown as "Sending…".
    Sending,
    /// Stored by the server.
    Sent,
}

/// Everything that can happen in the chat.
#[omni::protocol]
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
    /// Messages to insert or replace, by id.
    #[server]
    Upsert(BTreeMap<String, ChatMessage>),
    /// How many clients are connected.
    #[server]
    Presence {
        /// Live connections right now.
        online: u32,
    },
}

/// What all connections share: the stored messages and the online count.
#[derive(Clone, Default)]
pub struct Room {
    messages: Arc<Mutex<BTreeMap<String, ChatMessage>>>,
    online: Arc<AtomicU32>,
}

impl Room {
    /// The chat endpoint, one [`ChatHandler`] per session.
    pub fn endpoint(&self) -> Endpoint<Msg, ChatHandler> {
        let room = self.clone();
        Endpoint::new(move || ChatHandler { room: room.clone() })
    }

    /// How many messages are stored.
    pub fn len(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One session's handler.
pub struct ChatHandler {
    room: Room,
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
        let (stored, new) = {
            let mut messages = self.room.messages.lock().unwrap();
            let new = !messages.contains_key(&msg.id);
            let stored = messages
                .entry(msg.id.clone())
                .or_insert_with(|| ChatMessage {
                    status: Status::Sent,
                    sent_at: now_ms(),
                    ..msg
                })
                .clone();
            (stored, new)
        };
        let upsert = BTreeMap::from([(stored.id.clone(), stored)]);
        cx.send(MsgFromServer::Upsert(upsert.clone()));
        if new {
            cx.broadcast_from(ROOM, MsgFromServer::Upsert(upsert));
        }
        Ok(())
    }

    async fn fetch_all(&mut self, cx: &mut Context<Msg>) -> HandlerResult {
        let all = self.room.messages.lock().unwrap().clone();
        cx.send(MsgFromServer::Upsert(all));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Msg>) -> HandlerResult {
        cx.subscribe(ROOM);
        let online = self.room.online.fetch_add(1, Ordering::SeqCst) + 1;
        cx.broadcast(ROOM, MsgFromServer::Presence { online });
        Ok(())
    }

    async fn disconnected(&mut self, cx: &mut Context<Msg>) -> HandlerResult {
        let online = self.room.online.fetch_sub(1, Ordering::SeqCst) - 1;
        cx.broadcast_from(ROOM, MsgFromServer::Presence { online });
        Ok(())
    }
}
