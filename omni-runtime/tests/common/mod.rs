//! A chat protocol's wire enums, written the way `#[omni::protocol]` generates them, shared by
//! the integration tests of this crate.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: String,
    pub author: String,
    pub text: String,
}

/// Client -> server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data")]
pub enum ChatUp {
    Send(ChatMessage),
    FetchAll,
}

/// Server -> client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data")]
pub enum ChatDown {
    Upsert(BTreeMap<String, ChatMessage>),
    Presence { online: u32 },
}

pub fn message(id: &str, author: &str, text: &str) -> ChatMessage {
    ChatMessage {
        id: id.into(),
        author: author.into(),
        text: text.into(),
    }
}
