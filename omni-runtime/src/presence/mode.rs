//! What a client asks to be shown of a topic's presence ([`Mode`]), per topic ([`Modes`]): the
//! whole list, only how many are there, or nothing. A subscriber of a room of ten thousand that
//! shows "9,876 online" asks for the count, and is sent a few dozen bytes instead of the list
//! and every change to it.
//!
//! ```
//! use omni::presence::{Mode, Modes};
//!
//! let modes = Modes::new().topic("lobby", Mode::Count).otherwise(Mode::None);
//! assert_eq!(modes.of("lobby"), Mode::Count);
//! assert_eq!(modes.of("room:7"), Mode::None);
//! // On the wire: a JSON object, `*` for every topic it does not name.
//! assert_eq!(serde_json::to_string(&modes)?, r#"{"*":"none","lobby":"count"}"#);
//! assert_eq!(Modes::default().of("anything"), Mode::List);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How much of a topic's presence a client is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// The whole list (`presence_state`), then what changes (`presence_diff`): the default.
    #[default]
    List,
    /// How many keys and entries there are (`presence_count`), again after each change.
    Count,
    /// Nothing.
    None,
}

/// How many are in a topic's presence, as a client that asked for [`Mode::Count`] is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Count {
    /// Keys tracked (users, say).
    pub keys: u64,
    /// Entries over all keys (a user's tabs, say).
    pub entries: u64,
}

impl Count {
    /// `keys` keys holding `entries` entries.
    pub fn new(keys: u64, entries: u64) -> Self {
        Self { keys, entries }
    }
}

/// The key of [`Modes`]' wire form that stands for every topic it does not name.
const OTHERS: &str = "*";

/// A [`Mode`] for each topic a client names, and one for the rest ([`Mode::List`] unless set
/// with [`otherwise`](Self::otherwise)). Sent in the connect URL's `presence` parameter, or a
/// mux `join`'s `presence` field, as a JSON object of topic to mode with `*` for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modes {
    topics: BTreeMap<String, Mode>,
    otherwise: Mode,
}

impl Modes {
    /// Every topic's whole list: what a client that says nothing gets.
    pub fn new() -> Self {
        Self::default()
    }

    /// `topic` shown in `mode`. The topic `*` is the wire form's name for the rest: it is
    /// [`otherwise`](Self::otherwise).
    #[must_use]
    pub fn topic(mut self, topic: impl Into<String>, mode: Mode) -> Self {
        let topic = topic.into();
        if topic == OTHERS {
            self.otherwise = mode;
        } else {
            self.topics.insert(topic, mode);
        }
        self
    }

    /// Every topic not named shown in `mode`.
    #[must_use]
    pub fn otherwise(mut self, mode: Mode) -> Self {
        self.otherwise = mode;
        self
    }

    /// The mode `topic` is shown in.
    pub fn of(&self, topic: &str) -> Mode {
        self.topics.get(topic).copied().unwrap_or(self.otherwise)
    }

    /// Whether every topic is shown as a list: nothing to send.
    pub fn is_default(&self) -> bool {
        self.otherwise == Mode::List && self.topics.values().all(|m| *m == Mode::List)
    }
}

impl Serialize for Modes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let others = (self.otherwise != Mode::List).then_some((OTHERS, &self.otherwise));
        let named = self.topics.iter().map(|(t, m)| (t.as_str(), m));
        serializer.collect_map(others.into_iter().chain(named))
    }
}

impl<'de> Deserialize<'de> for Modes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut topics = BTreeMap::<String, Mode>::deserialize(deserializer)?;
        let otherwise = topics.remove(OTHERS).unwrap_or_default();
        Ok(Self { topics, otherwise })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_reads_back_and_names_the_rest_with_a_star() {
        let modes = Modes::new()
            .topic("a", Mode::Count)
            .topic("b", Mode::List)
            .otherwise(Mode::None);
        let text = serde_json::to_string(&modes).unwrap();
        assert_eq!(text, r#"{"*":"none","a":"count","b":"list"}"#);
        assert_eq!(serde_json::from_str::<Modes>(&text).unwrap(), modes);
        assert_eq!(serde_json::to_string(&Modes::new()).unwrap(), "{}");
        assert!(serde_json::from_str::<Modes>(r#"{"a":"most"}"#).is_err());
    }
}
