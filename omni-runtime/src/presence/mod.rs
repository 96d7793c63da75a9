//! Presence: who is on a topic right now, kept correct across reconnects, servers and crashes.
//!
//! A handler *tracks* its session under a key (a user id, say) in a topic, with metadata
//! ([`Context::track`](crate::Context::track)); every subscriber of the topic receives the
//! topic's current [`List`] when it subscribes (a `presence_state` frame), then what changes
//! (`presence_diff` frames: [`Diff`]s of joins and leaves). Several sessions under one key (two
//! tabs of one user) show as one key with several [`Entry`]s.
//!
//! An entry belongs to its session, not to a connection: it leaves when the session ends (the
//! client left for good, or its grace period ran out), so a reconnect that resumes the session
//! causes no leave and no join. Tracking the same key with the same metadata again (in a
//! `connected` hook that runs after every reconnect) changes nothing. Diffs are coalesced per
//! topic (at most one `presence_diff` per interval, 100 ms unless the pub/sub backend is set
//! otherwise), so a thousand clients arriving at once cost each subscriber a few frames, not a
//! thousand.
//!
//! With the Redis backend every server sees every server's entries; a server that dies without
//! a word has its entries removed by the others once its heartbeats stop (see
//! `RedisPubSub::with_presence_timing`). Nothing is ever a bare counter on the server; a client
//! chooses per topic what it is shown ([`Mode`]): the list, only the count, or nothing.
//!
//! ```
//! use omni::presence::{Diff, List};
//!
//! // What a client keeps per topic: the list, updated by each diff.
//! let mut list: List = serde_json::from_str(
//!     r#"{"ann":[{"ref":"a1","meta":{"tab":1}}],"bob":[{"ref":"b1","meta":{}}]}"#,
//! )?;
//! let diff: Diff = serde_json::from_str(
//!     r#"{"joins":{"ann":[{"ref":"a2","meta":{"tab":2}}]},"leaves":{"bob":[{"ref":"b1","meta":{}}]}}"#,
//! )?;
//! diff.apply_to(&mut list);
//! assert_eq!(list.keys().collect::<Vec<_>>(), ["ann"]);
//! assert_eq!(list["ann"].len(), 2, "two tabs, one key");
//! assert_eq!(list["ann"][1].meta.decode::<serde_json::Value>()?["tab"], 2);
//! # Ok::<(), serde_json::Error>(())
//! ```

mod mode;
#[cfg(feature = "redis")]
pub(crate) mod peers;
#[cfg(feature = "server")]
pub(crate) mod registry;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use ts_rs::TS;

pub use self::mode::{Count, Mode, Modes};

/// A topic's presence: for each key, the sessions tracked under it, oldest first.
pub type List = BTreeMap<String, Vec<Entry>>;

/// One session tracked under a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
pub struct Entry {
    /// Opaque and unique: tells two tabs of one key apart, and names the entry a leave
    /// removes. Not the session id, which would let anyone resume the session.
    #[serde(rename = "ref")]
    pub reference: String,
    /// What the handler tracked it with.
    pub meta: Meta,
}

/// The metadata of an [`Entry`]: any JSON value, kept as its text (cheap to clone and to
/// send again).
#[derive(Clone, TS)]
#[ts(type = "unknown")]
pub struct Meta(Arc<RawValue>);

impl Meta {
    /// `value` as metadata.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(|raw| Self(Arc::from(raw)))
    }

    /// The metadata as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The metadata's JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }
}

impl Default for Meta {
    /// `null`.
    fn default() -> Self {
        Self::new(&()).expect("null is JSON")
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

// Compared as text: the same value written differently counts as different, which only ever
// costs one diff more.
impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Eq for Meta {}

impl Hash for Meta {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.json().hash(state);
    }
}

impl PartialOrd for Meta {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Meta {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.json().cmp(other.json())
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // JSON: the text as it is.
            self.0.serialize(serializer)
        } else {
            // MessagePack: the value the text holds, keys in their order.
            let mut json = serde_json::Deserializer::from_str(self.0.get());
            serde_transcode::transcode(&mut json, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            Box::<RawValue>::deserialize(deserializer).map(|raw| Self(Arc::from(raw)))
        } else {
            let value = serde_json::Value::deserialize(deserializer)?;
            Self::new(&value).map_err(serde::de::Error::custom)
        }
    }
}

/// What changed in a topic's presence: the entries that left and those that joined. An
/// update of an entry's metadata is a leave of its old entry and a join of the new one.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS,
)]
pub struct Diff {
    /// Entries added, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[ts(as = "Option<List>", optional)]
    pub joins: List,
    /// Entries removed, by key (with the metadata they had).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[ts(as = "Option<List>", optional)]
    pub leaves: List,
}

/// A change of a topic's presence, as a client hears it
/// ([`Client::presence_changes`](crate::client::Client::presence_changes)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The topic.
    pub topic: String,
    /// The entries that joined and left; empty for a topic the client asked only to count.
    pub diff: Diff,
    /// For a topic the client asked only to count ([`Mode::Count`]): how many are there now.
    pub count: Option<Count>,
}

impl Diff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }

    /// Applies the diff to `list`: the leaves are removed first, then the joins added, so a
    /// key whose only entry was replaced keeps its place.
    pub fn apply_to(&self, list: &mut List) {
        for (key, gone) in &self.leaves {
            if let Some(entries) = list.get_mut(key) {
                let gone: HashSet<&str> = gone.iter().map(|g| g.reference.as_str()).collect();
                entries.retain(|e| !gone.contains(e.reference.as_str()));
                if entries.is_empty() {
                    list.remove(key);
                }
            }
        }
        for (key, joined) in &self.joins {
            let entries = list.entry(key.clone()).or_default();
            let mut held: HashSet<String> = entries.iter().map(|e| e.reference.clone()).collect();
            for entry in joined {
                if held.insert(entry.reference.clone()) {
                    entries.push(entry.clone());
                }
            }
        }
    }

    /// The diff that turns `old` into `new`: how a client that receives a whole list again
    /// (after a reconnect) tells what changed while it was away.
    pub fn between(old: &List, new: &List) -> Self {
        let missing = |from: &List, to: &List| -> List {
            from.iter()
                .filter_map(|(key, entries)| {
                    let others = to.get(key);
                    let gone: Vec<Entry> = entries
                        .iter()
                        .filter(|e| {
                            others.is_none_or(|o| !o.iter().any(|x| x.reference == e.reference))
                        })
                        .cloned()
                        .collect();
                    (!gone.is_empty()).then(|| (key.clone(), gone))
                })
                .collect()
        };
        Self {
            joins: missing(new, old),
            leaves: missing(old, new),
        }
    }
}

/// A topic's list as a client keeps it: each entry found by its ref, so that applying a diff
/// costs what the diff carries, not the size of the list (one key may hold thousands of
/// entries: every anonymous visitor of a busy room). Each string is held once: an entry's
/// ref is shared by the index and the entry, its key by all the key's entries, and metadata
/// written alike (`null`, `{}` for anonymous visitors) by every entry that has it.
#[cfg(feature = "client")]
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// For each key, its entries (ref and metadata) in the order they joined.
    keys: BTreeMap<Arc<str>, Entries>,
    /// Where each entry is: its key and its place in the key's order.
    refs: std::collections::HashMap<Arc<str>, (Arc<str>, u64)>,
    /// One copy of each metadata some entry holds, and how many entries hold it.
    metas: std::collections::HashMap<Meta, usize>,
    joined: u64,
}

#[cfg(feature = "client")]
impl Held {
    /// Applies `diff`: the leaves held are removed, the joins not held added.
    pub(crate) fn apply(&mut self, diff: &Diff) {
        for (key, gone) in &diff.leaves {
            for entry in gone {
                self.remove(key, &entry.reference);
            }
        }
        for (key, entries) in &diff.joins {
            for entry in entries {
                self.insert(key, entry);
            }
        }
    }

    /// Removes the entry `reference` if it is held under `key` (a leave names its key: the
    /// entry goes only from there, as in [`Diff::apply_to`]).
    fn remove(&mut self, key: &str, reference: &str) {
        let Some(&(_, at)) = self.refs.get(reference).filter(|(held, _)| &**held == key) else {
            return;
        };
        self.refs.remove(reference);
        let Some(entries) = self.keys.get_mut(key) else {
            return;
        };
        if let Some((_, meta)) = entries.remove(at)
            && let Some(holders) = self.metas.get_mut(&meta)
        {
            *holders -= 1;
            if *holders == 0 {
                self.metas.remove(&meta);
            }
        }
        if entries.is_empty() {
            self.keys.remove(key);
        }
    }

    /// Adds `entry` under `key` unless its ref is held.
    fn insert(&mut self, key: &str, entry: &Entry) {
        if self.refs.contains_key(entry.reference.as_str()) {
            return;
        }
        let meta = match self.metas.entry(entry.meta.clone()) {
            std::collections::hash_map::Entry::Occupied(mut held) => {
                *held.get_mut() += 1;
                held.key().clone()
            }
            std::collections::hash_map::Entry::Vacant(fresh) => {
                let meta = fresh.key().clone();
                fresh.insert(1);
                meta
            }
        };
        let key: Arc<str> = match self.keys.get_key_value(key) {
            Some((held, _)) => held.clone(),
            None => Arc::from(key),
        };
        let reference: Arc<str> = Arc::from(entry.reference.as_str());
        self.joined += 1;
        self.refs
            .insert(reference.clone(), (key.clone(), self.joined));
        self.keys
            .entry(key)
            .or_default()
            .insert(self.joined, (reference, meta));
    }

    /// The entries held under `key`, in the order they joined.
    #[cfg(test)]
    fn of(&self, key: &str) -> Vec<&(Arc<str>, Meta)> {
        self.keys
            .get(key)
            .map(|e| e.values().collect())
            .unwrap_or_default()
    }

    /// Replaces the list with `list`; returns what changed.
    pub(crate) fn replace(&mut self, list: List) -> Diff {
        let new: HashSet<&str> = list
            .values()
            .flatten()
            .map(|e| e.reference.as_str())
            .collect();
        let mut leaves = List::new();
        for (key, entries) in &self.keys {
            let gone: Vec<Entry> = entries
                .values()
                .filter(|(reference, _)| !new.contains(&**reference))
                .map(|(reference, meta)| entry_of(reference, meta))
                .collect();
            if !gone.is_empty() {
                leaves.insert(key.to_string(), gone);
            }
        }
        let mut joins = List::new();
        for (key, entries) in list {
            let fresh: Vec<Entry> = entries
                .into_iter()
                .filter(|e| !self.refs.contains_key(e.reference.as_str()))
                .collect();
            if !fresh.is_empty() {
                joins.insert(key, fresh);
            }
        }
        let diff = Diff { joins, leaves };
        self.apply(&diff);
        diff
    }

    /// The list as a [`List`].
    pub(crate) fn list(&self) -> List {
        self.keys
            .iter()
            .map(|(key, entries)| {
                let entries = entries.values().map(|(r, meta)| entry_of(r, meta));
                (key.to_string(), entries.collect())
            })
            .collect()
    }
}

/// One key's entries in the order they joined, by their place in that order. Most keys hold
/// one entry (a user with one tab): that one is kept inline, since a map of one entry costs
/// a whole node.
#[cfg(feature = "client")]
#[derive(Debug, Default)]
enum Entries {
    #[default]
    None,
    One(u64, (Arc<str>, Meta)),
    Many(BTreeMap<u64, (Arc<str>, Meta)>),
}

#[cfg(feature = "client")]
impl Entries {
    fn insert(&mut self, at: u64, entry: (Arc<str>, Meta)) {
        *self = match std::mem::take(self) {
            Entries::None => Entries::One(at, entry),
            Entries::One(first, held) => Entries::Many([(first, held), (at, entry)].into()),
            Entries::Many(mut map) => {
                map.insert(at, entry);
                Entries::Many(map)
            }
        };
    }

    fn remove(&mut self, at: u64) -> Option<(Arc<str>, Meta)> {
        match self {
            Entries::One(held, _) if *held == at => match std::mem::take(self) {
                Entries::One(_, entry) => Some(entry),
                _ => None,
            },
            Entries::Many(map) => {
                let entry = map.remove(&at);
                if map.len() == 1
                    && let Some((at, last)) = map.pop_first()
                {
                    *self = Entries::One(at, last);
                }
                entry
            }
            _ => None,
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Entries::None)
    }

    fn values(&self) -> impl Iterator<Item = &(Arc<str>, Meta)> {
        let (one, many) = match self {
            Entries::None => (None, None),
            Entries::One(_, entry) => (Some(entry), None),
            Entries::Many(map) => (None, Some(map)),
        };
        one.into_iter()
            .chain(many.into_iter().flat_map(BTreeMap::values))
    }
}

#[cfg(feature = "client")]
fn entry_of(reference: &str, meta: &Meta) -> Entry {
    Entry {
        reference: reference.to_owned(),
        meta: meta.clone(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(reference: &str) -> Entry {
        Entry {
            reference: reference.into(),
            meta: Meta::default(),
        }
    }

    /// Lists over a few keys and refs, so that lists overlap. A ref names its key, as refs
    /// from a server do (one entry is under one key).
    fn list() -> impl Strategy<Value = List> {
        proptest::collection::btree_set(
            (prop_oneof![Just("a"), Just("b"), Just("c")], 0u8..6),
            0..8,
        )
        .prop_map(|entries| {
            let mut list = List::new();
            for (key, n) in entries {
                list.entry(key.to_owned())
                    .or_default()
                    .push(entry(&format!("{key}{n}")));
            }
            list
        })
    }

    proptest! {
        /// What a client does on a reconnect (diff its old list against the new one) and what
        /// it does on a diff (apply it) agree: applying `between(old, new)` to `old` gives `new`.
        #[test]
        fn the_diff_between_two_lists_turns_one_into_the_other(old in list(), new in list()) {
            let diff = Diff::between(&old, &new);
            let mut got = old.clone();
            diff.apply_to(&mut got);
            for entries in got.values_mut() {
                entries.sort();
            }
            prop_assert_eq!(got, new.clone());
            prop_assert_eq!(Diff::between(&new, &new).is_empty(), true);
        }

        /// The client's indexed list agrees with a plain one: after a whole list and any
        /// diffs, and on what a whole list received again reports as changed.
        #[cfg(feature = "client")]
        #[test]
        fn the_indexed_list_agrees_with_the_plain_one(
            first in list(),
            diffs in proptest::collection::vec((list(), list()), 0..6),
            again in list(),
        ) {
            let mut held = Held::default();
            prop_assert_eq!(held.replace(first.clone()), Diff::between(&List::new(), &first));
            let mut plain = first;
            for (joins, leaves) in diffs {
                let diff = Diff { joins, leaves };
                diff.apply_to(&mut plain);
                held.apply(&diff);
                prop_assert_eq!(held.list(), plain.clone());
            }
            let mut changed = held.replace(again.clone());
            let mut expected = Diff::between(&plain, &again);
            for list in [&mut changed.joins, &mut changed.leaves, &mut expected.joins, &mut expected.leaves] {
                for entries in list.values_mut() {
                    entries.sort();
                }
            }
            prop_assert_eq!(changed, expected);
            let mut got = held.list();
            for entries in got.values_mut() {
                entries.sort();
            }
            prop_assert_eq!(got, again);
        }
    }

    /// Entries written alike share their strings, and what no entry holds any more is let go.
    #[cfg(feature = "client")]
    #[test]
    fn the_client_holds_each_string_once() {
        let mut held = Held::default();
        let list: List = [(
            "anon".to_owned(),
            (0..3).map(|i| entry(&format!("r{i}"))).collect(),
        )]
        .into();
        held.replace(list);
        let metas: Vec<_> = held.of("anon").iter().map(|(_, m)| m.0.clone()).collect();
        assert!(Arc::ptr_eq(&metas[0], &metas[1]) && Arc::ptr_eq(&metas[1], &metas[2]));
        let (key, _) = held.keys.get_key_value("anon").unwrap();
        let (index_ref, (index_key, _)) = held.refs.get_key_value("r1").unwrap();
        assert!(Arc::ptr_eq(key, index_key), "the key is held once");
        assert!(
            Arc::ptr_eq(index_ref, &held.of("anon")[1].0),
            "so is the ref"
        );
        drop(metas);
        let mut other = entry("r9");
        other.meta = Meta::new(&serde_json::json!({"name": "ann"})).unwrap();
        held.apply(&Diff {
            joins: [("ann".to_owned(), vec![other.clone()])].into(),
            leaves: List::new(),
        });
        assert_eq!(held.metas.len(), 2);
        held.apply(&Diff {
            joins: List::new(),
            leaves: [("ann".to_owned(), vec![other])].into(),
        });
        assert_eq!(held.metas.len(), 1, "a metadata nobody holds is let go");
    }

    #[test]
    fn meta_round_trips_as_json_text() {
        let meta = Meta::new(&serde_json::json!({"name": "ann", "tabs": [1, 2]})).unwrap();
        let text = serde_json::to_string(&entry("r").meta).unwrap();
        assert_eq!(text, "null");
        let back: Meta = serde_json::from_str(&serde_json::to_string(&meta).unwrap()).unwrap();
        assert_eq!(back, meta);
        assert_eq!(back.json(), r#"{"name":"ann","tabs":[1,2]}"#);
    }
}
