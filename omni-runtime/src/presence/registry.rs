//! One process's presence state as a plain state machine: every entry it knows (its own
//! sessions' and other processes'), the diffs not yet sent, and its own changes not yet told
//! to the other processes. No I/O and no timers: the pub/sub backend flushes it on its
//! interval and carries its changes between processes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Diff, Entry, List, Meta};
use crate::SessionId;
use crate::server::encoded::Outgoing;

/// A server process, as the pub/sub backend names it.
pub(crate) type NodeId = u128;

/// Whose an entry is: a session of this process, or another process's.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // Other processes: the Redis backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Owner {
    Session(SessionId),
    Node(NodeId),
}

/// Where an entry is.
#[derive(Debug)]
struct Place {
    topic: String,
    key: String,
    owner: Owner,
}

/// An entry with its topic and key: how one process tells another about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tracked {
    pub(crate) topic: String,
    pub(crate) key: String,
    pub(crate) entry: Entry,
}

/// This process's own changes since they were last taken, netted: an entry that joined and
/// left in between is in neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Changes {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) joins: Vec<Tracked>,
    /// The refs of entries that left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) leaves: Vec<String>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }
}

/// A topic's list, and its `presence_state` frame once encoded.
#[derive(Default)]
struct Topic {
    list: List,
    /// Encoded on demand and kept until the next flush that changes the topic. A state taken
    /// between two flushes may already hold some of the changes the next diff carries; diffs
    /// are idempotent (a join of a ref held, a leave of a ref gone, change nothing), so the
    /// state followed by the diff is right either way.
    state: Option<Outgoing>,
    /// Its `presence_count` frame, encoded on demand as `state` is.
    count: Option<Outgoing>,
    /// How many entries `list` holds over all its keys.
    entries: usize,
    /// Whether a state was handed out since the last flush. A subscriber may then hold an
    /// entry that joins and leaves within the interval (or miss one that leaves and joins
    /// again), so such pairs are sent rather than cancelled.
    observed: bool,
}

/// A topic's changes since the last flush, by ref.
#[derive(Default)]
struct Pending {
    joins: BTreeMap<String, (String, Entry)>,
    leaves: BTreeMap<String, (String, Entry)>,
}

impl Pending {
    fn into_diff(self) -> Diff {
        let group = |entries: BTreeMap<String, (String, Entry)>| {
            let mut list = List::new();
            for (key, entry) in entries.into_values() {
                list.entry(key).or_default().push(entry);
            }
            list
        };
        Diff {
            joins: group(self.joins),
            leaves: group(self.leaves),
        }
    }
}

/// Every presence entry one process knows.
pub(crate) struct Registry {
    topics: HashMap<String, Topic>,
    places: HashMap<String, Place>,
    /// This process's sessions' entries: (topic, key) → ref.
    sessions: HashMap<SessionId, HashMap<(String, String), String>>,
    /// Other processes' entries' refs.
    nodes: HashMap<NodeId, HashSet<String>>,
    pending: HashMap<String, Pending>,
    /// This process's own joins (by ref) and leaves since last taken.
    own_joins: BTreeMap<String, Tracked>,
    own_leaves: Vec<String>,
    /// Refs are `{prefix}.{n}`: unique across processes, and saying nothing of the session.
    prefix: String,
    next_ref: u64,
}

impl Registry {
    /// An empty registry whose refs start with `prefix` (unique to this process).
    pub(crate) fn new(prefix: String) -> Self {
        Self {
            topics: HashMap::new(),
            places: HashMap::new(),
            sessions: HashMap::new(),
            nodes: HashMap::new(),
            pending: HashMap::new(),
            own_joins: BTreeMap::new(),
            own_leaves: Vec::new(),
            prefix,
            next_ref: 0,
        }
    }

    /// Tracks `session` under `key` in `topic`. Tracked there already: with the same `meta`
    /// nothing changes; with another, the old entry leaves and a new one joins. Returns
    /// whether anything changed.
    pub(crate) fn track(&mut self, session: SessionId, topic: &str, key: &str, meta: Meta) -> bool {
        let place = (topic.to_owned(), key.to_owned());
        if let Some(old) = self.sessions.get(&session).and_then(|s| s.get(&place)) {
            if self.entry(old).is_some_and(|e| e.meta == meta) {
                return false;
            }
            let old = old.clone();
            self.remove(&old);
        }
        self.next_ref += 1;
        let reference = format!("{}.{}", self.prefix, self.next_ref);
        self.sessions
            .entry(session)
            .or_default()
            .insert(place, reference.clone());
        let entry = Entry { reference, meta };
        self.add(Owner::Session(session), topic, key, entry);
        true
    }

    /// Stops tracking `session` under `key` in `topic`. Returns whether it was.
    pub(crate) fn untrack(&mut self, session: SessionId, topic: &str, key: &str) -> bool {
        let place = (topic.to_owned(), key.to_owned());
        let Some(reference) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.remove(&place))
        else {
            return false;
        };
        if self.sessions.get(&session).is_some_and(HashMap::is_empty) {
            self.sessions.remove(&session);
        }
        self.remove(&reference).is_some()
    }

    /// Stops tracking `session` everywhere (it ended). Returns whether it was tracked.
    pub(crate) fn untrack_session(&mut self, session: SessionId) -> bool {
        let Some(places) = self.sessions.remove(&session) else {
            return false;
        };
        for reference in places.into_values() {
            self.remove(&reference);
        }
        true
    }

    /// Another process's changes. Idempotent: a join of a ref already held and a leave of a
    /// ref not held change nothing, so a change heard twice (a diff, then a full state that
    /// already had it) does no harm.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn apply_node(&mut self, node: NodeId, changes: Changes) -> bool {
        let mut changed = false;
        for reference in &changes.leaves {
            if self.places.get(reference).map(|p| p.owner) == Some(Owner::Node(node)) {
                changed |= self.remove(reference).is_some();
            }
        }
        for tracked in changes.joins {
            changed |= self.join_node(node, tracked);
        }
        changed
    }

    /// Another process's every entry: what this registry held of it and is not in `entries`
    /// leaves, what is new joins, what is unchanged stays without a diff.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn replace_node(&mut self, node: NodeId, entries: Vec<Tracked>) -> bool {
        let keep: HashSet<&str> = entries.iter().map(|t| t.entry.reference.as_str()).collect();
        let gone: Vec<String> = self
            .nodes
            .get(&node)
            .map(|refs| {
                refs.iter()
                    .filter(|r| !keep.contains(r.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut changed = false;
        for reference in gone {
            changed |= self.remove(&reference).is_some();
        }
        for tracked in entries {
            changed |= self.join_node(node, tracked);
        }
        changed
    }

    /// Forgets another process's entries (it said goodbye, or its heartbeats stopped).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn remove_node(&mut self, node: NodeId) -> bool {
        let Some(refs) = self.nodes.remove(&node) else {
            return false;
        };
        for reference in refs {
            self.remove(&reference);
        }
        true
    }

    /// This process's every entry, for another process that needs them all.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn own_entries(&self) -> Vec<Tracked> {
        self.sessions
            .values()
            .flat_map(|places| places.values())
            .filter_map(|reference| {
                let place = self.places.get(reference)?;
                Some(Tracked {
                    topic: place.topic.clone(),
                    key: place.key.clone(),
                    entry: self.entry(reference)?.clone(),
                })
            })
            .collect()
    }

    /// This process's own changes since the last call.
    pub(crate) fn take_changes(&mut self) -> Changes {
        Changes {
            joins: std::mem::take(&mut self.own_joins).into_values().collect(),
            leaves: std::mem::take(&mut self.own_leaves),
        }
    }

    /// The diffs of every topic that changed since the last flush. Their topics' encoded
    /// states are dropped: the next one is encoded from the list as it is now.
    pub(crate) fn flush(&mut self) -> Vec<(String, Diff)> {
        let mut out = Vec::with_capacity(self.pending.len());
        for (topic, pending) in self.pending.drain() {
            let diff = pending.into_diff();
            if let Some(t) = self.topics.get_mut(&topic) {
                t.state = None;
                t.count = None;
                t.observed = false;
            }
            if self.topics.get(&topic).is_some_and(|t| t.list.is_empty()) {
                self.topics.remove(&topic);
            }
            if !diff.is_empty() {
                out.push((topic, diff));
            }
        }
        out
    }

    /// `topic`'s list, if anyone is tracked in it.
    pub(crate) fn list(&self, topic: &str) -> Option<&List> {
        self.topics.get(topic).map(|t| &t.list)
    }

    /// `topic`'s `presence_state` frame, encoded once per change. `None` if nobody is tracked
    /// in it and `empty` is false; with `empty`, an empty state then.
    pub(crate) fn state(&mut self, topic: &str, empty: bool) -> Option<Outgoing> {
        match self.topics.get_mut(topic) {
            Some(t) => {
                t.observed = true;
                let list = &t.list;
                Some(
                    t.state
                        .get_or_insert_with(|| Outgoing::presence_state(topic, list))
                        .clone(),
                )
            }
            None => empty.then(|| Outgoing::presence_state(topic, &List::new())),
        }
    }

    /// `topic`'s `presence_count` frame, encoded once per change: zero for a topic nobody is
    /// tracked in.
    pub(crate) fn count(&mut self, topic: &str) -> Outgoing {
        match self.topics.get_mut(topic) {
            Some(t) => {
                let (keys, entries) = (t.list.len(), t.entries);
                t.count
                    .get_or_insert_with(|| Outgoing::presence_count(topic, keys, entries))
                    .clone()
            }
            None => Outgoing::presence_count(topic, 0, 0),
        }
    }

    /// How many entries this registry holds.
    pub(crate) fn len(&self) -> usize {
        self.places.len()
    }

    fn entry(&self, reference: &str) -> Option<&Entry> {
        let place = self.places.get(reference)?;
        self.topics
            .get(&place.topic)?
            .list
            .get(&place.key)?
            .iter()
            .find(|e| e.reference == reference)
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn join_node(&mut self, node: NodeId, tracked: Tracked) -> bool {
        if self.places.contains_key(&tracked.entry.reference) {
            return false;
        }
        self.nodes
            .entry(node)
            .or_default()
            .insert(tracked.entry.reference.clone());
        self.add(
            Owner::Node(node),
            &tracked.topic,
            &tracked.key,
            tracked.entry,
        );
        true
    }

    fn add(&mut self, owner: Owner, topic: &str, key: &str, entry: Entry) {
        let reference = entry.reference.clone();
        self.places.insert(
            reference.clone(),
            Place {
                topic: topic.to_owned(),
                key: key.to_owned(),
                owner,
            },
        );
        let observed = self.topics.get(topic).is_some_and(|t| t.observed);
        let pending = self.pending.entry(topic.to_owned()).or_default();
        // A leave and a join of one ref within an interval (a process's state heard again)
        // cancel out, unless a state was handed out in between.
        if pending.leaves.remove(&reference).is_none() || observed {
            pending
                .joins
                .insert(reference.clone(), (key.to_owned(), entry.clone()));
        }
        if matches!(owner, Owner::Session(_)) {
            let tracked = Tracked {
                topic: topic.to_owned(),
                key: key.to_owned(),
                entry: entry.clone(),
            };
            self.own_joins.insert(reference, tracked);
        }
        let held = self.topics.entry(topic.to_owned()).or_default();
        held.entries += 1;
        held.list.entry(key.to_owned()).or_default().push(entry);
    }

    fn remove(&mut self, reference: &str) -> Option<(Place, Entry)> {
        let place = self.places.remove(reference)?;
        let topic = self.topics.get_mut(&place.topic)?;
        let entries = topic.list.get_mut(&place.key)?;
        let at = entries.iter().position(|e| e.reference == reference)?;
        let entry = entries.remove(at);
        if entries.is_empty() {
            topic.list.remove(&place.key);
        }
        topic.entries -= 1;
        match place.owner {
            Owner::Node(node) => {
                if let Some(refs) = self.nodes.get_mut(&node) {
                    refs.remove(reference);
                }
            }
            Owner::Session(_) => {
                if self.own_joins.remove(reference).is_none() {
                    self.own_leaves.push(reference.to_owned());
                }
            }
        }
        let observed = topic.observed;
        let pending = self.pending.entry(place.topic.clone()).or_default();
        // Joined since the last flush: nobody was told, so nobody is told it left (unless a
        // state handed out in between had it).
        if pending.joins.remove(reference).is_none() || observed {
            pending
                .leaves
                .insert(reference.to_owned(), (place.key.clone(), entry.clone()));
        }
        Some((place, entry))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn meta(n: u8) -> Meta {
        Meta::new(&n).unwrap()
    }

    fn session(n: u8) -> SessionId {
        SessionId::from_u128(u128::from(n) + 1)
    }

    fn keys(list: Option<&List>) -> Vec<(String, usize)> {
        list.map(|l| l.iter().map(|(k, v)| (k.clone(), v.len())).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_track_repeated_with_the_same_meta_changes_nothing() {
        let mut r = Registry::new("n".into());
        assert!(r.track(session(1), "room", "ann", meta(1)));
        let first = r.flush();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1.joins["ann"].len(), 1);
        // The `connected` hook of a resumed session tracks again.
        assert!(!r.track(session(1), "room", "ann", meta(1)));
        assert!(r.flush().is_empty());
        // Another meta is an update: the old entry leaves, a new one joins.
        assert!(r.track(session(1), "room", "ann", meta(2)));
        let update = r.flush();
        assert_eq!(update[0].1.leaves["ann"][0].meta, meta(1));
        assert_eq!(update[0].1.joins["ann"][0].meta, meta(2));
        assert_eq!(keys(r.list("room")), [("ann".to_owned(), 1)]);
    }

    #[test]
    fn two_sessions_under_one_key_are_one_key_with_two_entries() {
        let mut r = Registry::new("n".into());
        r.track(session(1), "room", "ann", meta(1));
        r.track(session(2), "room", "ann", meta(2));
        assert_eq!(keys(r.list("room")), [("ann".to_owned(), 2)]);
        r.flush();
        assert!(r.untrack_session(session(1)));
        let diff = r.flush();
        assert_eq!(diff[0].1.leaves["ann"][0].meta, meta(1));
        assert!(diff[0].1.joins.is_empty());
        assert_eq!(keys(r.list("room")), [("ann".to_owned(), 1)]);
    }

    #[test]
    fn a_join_and_a_leave_within_one_interval_send_nothing_and_tell_no_other_process() {
        let mut r = Registry::new("n".into());
        r.track(session(1), "room", "ann", meta(1));
        r.untrack(session(1), "room", "ann");
        assert!(r.flush().is_empty());
        assert!(r.take_changes().is_empty());
        assert!(r.list("room").is_none(), "an empty topic is forgotten");
        assert!(r.state("room", false).is_none());
        assert!(
            r.state("room", true)
                .unwrap()
                .text()
                .contains(r#""state":{}"#)
        );
    }

    #[test]
    fn another_process_state_heard_again_causes_no_diff() {
        let mut a = Registry::new("a".into());
        a.track(session(1), "room", "ann", meta(1));
        a.track(session(2), "room", "bob", meta(2));
        let mut b = Registry::new("b".into());
        assert!(b.apply_node(7, a.take_changes()));
        assert_eq!(b.flush()[0].1.joins.len(), 2);
        // The same state again (a heartbeat's repair) is no change.
        assert!(!b.replace_node(7, a.own_entries()));
        assert!(b.flush().is_empty());
        a.untrack_session(session(2));
        assert!(b.replace_node(7, a.own_entries()));
        assert_eq!(b.flush()[0].1.leaves.keys().collect::<Vec<_>>(), ["bob"]);
        assert!(b.remove_node(7));
        assert_eq!(b.flush()[0].1.leaves.keys().collect::<Vec<_>>(), ["ann"]);
        assert_eq!(b.len(), 0);
    }

    const TOPICS: [&str; 3] = ["t", "u", "v"];

    /// What the registry can be asked to do.
    #[derive(Debug, Clone)]
    enum Op {
        /// Session, topic, key, meta.
        Track(u8, usize, u8, u8),
        Untrack(u8, usize, u8),
        End(u8),
        /// The interval ends: the diffs go out, the changes go to the other process.
        Flush,
        /// A new subscriber of the topic is handed its state (an empty one when nobody is
        /// tracked there, or nothing if `always` is false).
        Show(usize, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        let topic = 0..TOPICS.len();
        prop_oneof![
            4 => (0u8..4, topic.clone(), 0u8..3, 0u8..2)
                .prop_map(|(s, t, k, m)| Op::Track(s, t, k, m)),
            2 => (0u8..4, topic.clone(), 0u8..3).prop_map(|(s, t, k)| Op::Untrack(s, t, k)),
            1 => (0u8..4).prop_map(Op::End),
            3 => Just(Op::Flush),
            1 => (topic, any::<bool>()).prop_map(|(t, always)| Op::Show(t, always)),
        ]
    }

    /// Some operations, and for each topic a point among them where a subscriber joins.
    fn ops_and_joins() -> impl Strategy<Value = (Vec<Op>, [usize; 3])> {
        proptest::collection::vec(op(), 1..60).prop_flat_map(|ops| {
            let n = ops.len();
            (Just(ops), proptest::array::uniform3(0..n))
        })
    }

    /// The list a `presence_state` frame carries.
    fn state_of(frame: &Outgoing) -> List {
        let mut value: serde_json::Value = serde_json::from_str(&frame.text()).unwrap();
        serde_json::from_value(value["state"].take()).unwrap()
    }

    /// What a `presence_diff` frame carries.
    fn diff_of(frame: &Outgoing) -> Diff {
        serde_json::from_str(&frame.text()).unwrap()
    }

    fn sorted(mut list: List) -> List {
        for entries in list.values_mut() {
            entries.sort();
        }
        list
    }

    /// Each key's metadata, one per entry: what the model can say without the refs.
    type Seen = BTreeMap<String, Vec<Meta>>;

    fn seen(list: &List) -> Seen {
        list.iter()
            .map(|(key, entries)| {
                let mut metas: Vec<Meta> = entries.iter().map(|e| e.meta.clone()).collect();
                metas.sort();
                (key.clone(), metas)
            })
            .collect()
    }

    /// Who is tracked where, kept apart from the registry: per topic, (session, key) → meta.
    #[derive(Default)]
    struct Model(Vec<BTreeMap<(u8, String), u8>>);

    impl Model {
        fn seen(&self, topic: usize) -> Seen {
            let mut out = Seen::new();
            for ((_, key), &m) in &self.0[topic] {
                out.entry(key.clone()).or_default().push(meta(m));
            }
            for metas in out.values_mut() {
                metas.sort();
            }
            out
        }
    }

    /// A subscriber: its topic, the list it holds (its state plus every diff since), and
    /// the list it must hold: its state's, then the model's at each flush.
    struct Subscriber {
        topic: usize,
        holds: List,
        owed: Seen,
    }

    proptest! {
        /// Every subscriber (whenever it took its state) that applies every diff holds,
        /// after every step, the model's list as of its state or the last flush since, and
        /// at a flush exactly the registry's list, refs included; another process fed only
        /// this one's changes holds it too.
        #[test]
        fn state_plus_diffs_is_the_list_on_this_and_on_other_processes(
            (ops, joins) in ops_and_joins(),
        ) {
            let mut r = Registry::new("a".into());
            let mut other = Registry::new("b".into());
            let mut model = Model(vec![BTreeMap::new(); TOPICS.len()]);
            let mut subscribers: Vec<Subscriber> = Vec::new();
            // Each topic's lists since the last flush: a state handed out in between may be
            // any of them (it is encoded once per interval), the next diff making up the rest.
            let mut since_flush: Vec<Vec<Seen>> = vec![vec![Seen::new()]; TOPICS.len()];
            for (i, op) in ops.iter().enumerate() {
                let mut shown: Vec<(usize, bool)> = (0..TOPICS.len())
                    .filter(|&t| joins[t] == i)
                    .map(|t| (t, i % 2 == 0))
                    .collect();
                if let Op::Show(t, always) = *op {
                    shown.push((t, always));
                }
                for (topic, always) in shown {
                    let holds = r
                        .state(TOPICS[topic], always)
                        .map(|frame| state_of(&frame))
                        .unwrap_or_default();
                    let owed = seen(&holds);
                    prop_assert!(
                        since_flush[topic].contains(&owed),
                        "{} shown {:?}, which it never was since the last flush: {:?}",
                        TOPICS[topic], owed, since_flush[topic]
                    );
                    subscribers.push(Subscriber { topic, holds, owed });
                }
                match *op {
                    Op::Track(s, t, k, m) => {
                        r.track(session(s), TOPICS[t], &k.to_string(), meta(m));
                        model.0[t].insert((s, k.to_string()), m);
                    }
                    Op::Untrack(s, t, k) => {
                        r.untrack(session(s), TOPICS[t], &k.to_string());
                        model.0[t].remove(&(s, k.to_string()));
                    }
                    Op::End(s) => {
                        r.untrack_session(session(s));
                        for topic in &mut model.0 {
                            topic.retain(|(owner, _), _| *owner != s);
                        }
                    }
                    Op::Flush | Op::Show(..) => {}
                }
                for (t, lists) in since_flush.iter_mut().enumerate() {
                    lists.push(model.seen(t));
                }
                let last = i + 1 == ops.len();
                if matches!(op, Op::Flush) || last {
                    since_flush = (0..TOPICS.len()).map(|t| vec![model.seen(t)]).collect();
                    for (topic, diff) in r.flush() {
                        prop_assert!(!diff.is_empty(), "an empty diff for {}", topic);
                        let diff = diff_of(&Outgoing::presence_diff(&topic, &diff));
                        for s in subscribers.iter_mut().filter(|s| TOPICS[s.topic] == topic) {
                            diff.apply_to(&mut s.holds);
                        }
                    }
                    other.apply_node(1, r.take_changes());
                    for s in &mut subscribers {
                        s.owed = model.seen(s.topic);
                        let now = sorted(r.list(TOPICS[s.topic]).cloned().unwrap_or_default());
                        prop_assert_eq!(sorted(s.holds.clone()), now, "{} after op {}", TOPICS[s.topic], i);
                    }
                    for (t, topic) in TOPICS.iter().enumerate() {
                        let there = other.list(topic).cloned().unwrap_or_default();
                        prop_assert_eq!(seen(&there), model.seen(t), "{} on the other process", topic);
                    }
                    // The count a counting subscriber is sent is the list's, keys and entries.
                    for topic in TOPICS {
                        let count: serde_json::Value =
                            serde_json::from_str(&r.count(topic).text()).unwrap();
                        let list = r.list(topic).cloned().unwrap_or_default();
                        let entries: usize = list.values().map(Vec::len).sum();
                        prop_assert_eq!(&count["keys"], &serde_json::Value::from(list.len()));
                        prop_assert_eq!(&count["entries"], &serde_json::Value::from(entries));
                    }
                }
                for s in &subscribers {
                    prop_assert_eq!(&seen(&s.holds), &s.owed, "{} after op {}", TOPICS[s.topic], i);
                }
            }
            for (t, topic) in TOPICS.iter().enumerate() {
                let now = r.list(topic).cloned().unwrap_or_default();
                prop_assert_eq!(seen(&now), model.seen(t));
                prop_assert_eq!(sorted(other.list(topic).cloned().unwrap_or_default()), sorted(now));
            }
            let tracked: usize = model.0.iter().map(BTreeMap::len).sum();
            prop_assert_eq!(r.own_entries().len(), tracked);
        }
    }
}
