//! What a session whose state is kept in a [store](super::store) holds back from its
//! connection: a frame the client could resume from, or an `ack` saying a message was
//! handled, reaches the client only once the store has it. So a client never holds a number,
//! or a confirmation, that the server process resuming it elsewhere would not know.
//! Plain state, no locks or I/O: the session's lock guards it, the saver task drives it.

// The only store is Redis's: without it, nothing makes or reads a save.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

use std::collections::VecDeque;
use std::sync::Arc;

use crate::server::conn::Item;
use crate::server::encoded::Outgoing;
use crate::{Ref, Seq};

/// A session's unsaved state and the items waiting for it.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Which claim of the session this process holds: a save under an older one is refused.
    epoch: u64,
    /// Changes recorded so far (a frame logged, a message handled)...
    made: u64,
    /// ...and those the store has (or gave up on).
    saved: u64,
    /// Whether the saver has this session queued or in flight: it is queued once.
    scheduled: bool,
    /// Logged frames not yet saved, the first numbered `first`.
    frames: Vec<Outgoing>,
    first: Seq,
    /// Client messages handled, not yet saved.
    refs: Vec<Ref>,
    /// Items for the connection, each with the changes that must be saved before it goes,
    /// and, for a sequenced topic's message, its topic and number.
    held: VecDeque<(u64, Item, Option<TopicMark>)>,
    /// Who the session's client is, and the props its handler is made from (as JSON, written
    /// once, not per save): a process that resumes the session needs both.
    pub(crate) client: Option<Arc<str>>,
    pub(crate) props: Arc<str>,
}

/// A held message of a sequenced topic: its topic and number, so that the topic can be caught
/// up from its log instead, should the connection not take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicMark {
    pub(crate) topic: String,
    pub(crate) seq: Seq,
}

/// One save: what changed since the last, and the change count it brings the store to.
#[derive(Debug)]
pub(crate) struct Unsaved {
    pub(crate) epoch: u64,
    /// The number of `frames[0]`.
    pub(crate) first: Seq,
    pub(crate) frames: Vec<Outgoing>,
    pub(crate) refs: Vec<Ref>,
    pub(crate) upto: u64,
}

impl Gate {
    /// A gate for a session held under claim `epoch` (1 for a session this process opened),
    /// whose handler is made from `props`.
    pub(crate) fn new(epoch: u64, props: &serde_json::Value) -> Self {
        Self {
            epoch,
            made: 0,
            saved: 0,
            scheduled: false,
            frames: Vec::new(),
            first: 0,
            refs: Vec::new(),
            held: VecDeque::new(),
            client: None,
            props: props.to_string().into(),
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Records a frame the log just took. Returns whether the session must be handed to the
    /// saver (it is not queued there yet).
    pub(crate) fn frame(&mut self, frame: &Outgoing) -> bool {
        if self.frames.is_empty() {
            self.first = frame.seq().unwrap_or_default();
        }
        self.frames.push(frame.clone());
        self.changed()
    }

    /// Records a client message handled; as [`frame`](Self::frame).
    pub(crate) fn handled(&mut self, reference: Ref) -> bool {
        self.refs.push(reference);
        self.changed()
    }

    fn changed(&mut self) -> bool {
        self.made += 1;
        !std::mem::replace(&mut self.scheduled, true)
    }

    /// Takes `item` to hold if it must wait for a save (one is pending, or items before it
    /// wait); gives it back when it may go now.
    pub(crate) fn hold(&mut self, item: Item) -> Option<Item> {
        if self.clear() {
            return Some(item);
        }
        self.held.push_back((self.made, item, None));
        None
    }

    /// As [`hold`](Self::hold), for message `seq` of a sequenced topic, but refused
    /// (`Err`) when `limit` items wait already: the topic then catches up from its log, so
    /// what a burst leaves waiting is bounded like a connection's queue.
    pub(crate) fn hold_topic(
        &mut self,
        item: Item,
        (topic, seq): (&str, Seq),
        limit: usize,
    ) -> Result<Option<Item>, Item> {
        if self.clear() {
            return Ok(Some(item));
        }
        if self.held.len() >= limit {
            return Err(item);
        }
        let mark = TopicMark {
            topic: topic.to_owned(),
            seq,
        };
        self.held.push_back((self.made, item, Some(mark)));
        Ok(None)
    }

    /// Whether nothing waits: everything is saved and nothing is held.
    fn clear(&self) -> bool {
        self.made == self.saved && self.held.is_empty()
    }

    /// Drops the held messages of `topic` (it fell behind: its catch-up from the log sends
    /// them); returns the number of the first, if any.
    pub(crate) fn drop_topic(&mut self, topic: &str) -> Option<Seq> {
        let mut first = None;
        self.held.retain(|(_, _, mark)| match mark {
            Some(mark) if mark.topic == topic => {
                first = first.or(Some(mark.seq));
                false
            }
            _ => true,
        });
        first
    }

    /// What the saver writes next, if anything changed.
    pub(crate) fn take(&mut self) -> Option<Unsaved> {
        if self.frames.is_empty() && self.refs.is_empty() {
            return None;
        }
        Some(Unsaved {
            epoch: self.epoch,
            first: self.first,
            frames: std::mem::take(&mut self.frames),
            refs: std::mem::take(&mut self.refs),
            upto: self.made,
        })
    }

    /// The store has the changes up to `upto`: returns the items that may go now, and whether
    /// more changes wait for a save (the session stays queued with the saver).
    pub(crate) fn saved(&mut self, upto: u64) -> (Vec<(Item, Option<TopicMark>)>, bool) {
        self.saved = self.saved.max(upto);
        let mut ready = Vec::new();
        while self
            .held
            .front()
            .is_some_and(|(needs, _, _)| *needs <= self.saved)
        {
            if let Some((_, item, mark)) = self.held.pop_front() {
                ready.push((item, mark));
            }
        }
        let more = self.made > self.saved;
        self.scheduled = more;
        (ready, more)
    }

    /// The connection the held items were for is gone: they go with it (a resume replays
    /// what the client lacks, from the log).
    pub(crate) fn drop_held(&mut self) {
        self.held = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::conn::Stop;

    fn frame(seq: Seq) -> Outgoing {
        Outgoing::new("msg", Some(seq), format!("{{\"seq\":{seq}}}"))
    }

    fn item(seq: Seq) -> Item {
        Item::Frame(frame(seq), None)
    }

    fn seqs(items: &[(Item, Option<TopicMark>)]) -> Vec<Option<Seq>> {
        items
            .iter()
            .map(|(item, _)| match item {
                Item::Frame(frame, _) => frame.seq(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn nothing_waits_while_everything_is_saved() {
        let mut gate = Gate::new(1, &serde_json::Value::Null);
        assert!(gate.hold(item(1)).is_some());
        assert!(gate.take().is_none());
    }

    #[test]
    fn a_frame_waits_for_its_save_and_what_follows_waits_behind_it() {
        let mut gate = Gate::new(1, &serde_json::Value::Null);
        assert!(gate.frame(&frame(1)), "the first change queues the session");
        assert!(gate.hold(item(1)).is_none());
        assert!(!gate.handled(7), "queued already");
        assert!(gate.hold(Item::Close(Stop::CLOSED_BY_SERVER)).is_none());

        let save = gate.take().expect("changes");
        assert_eq!((save.first, save.frames.len(), save.refs), (1, 1, vec![7]));
        // Meanwhile another frame, and an item that needs nothing new but comes after it.
        gate.frame(&frame(2));
        gate.hold(item(2));
        gate.hold(Item::Close(Stop::CLOSED_BY_SERVER));

        let (ready, more) = gate.saved(save.upto);
        assert_eq!(seqs(&ready), vec![Some(1), None]);
        assert!(more, "frame 2 is not saved yet");
        let save = gate.take().expect("frame 2");
        assert_eq!(save.first, 2);
        let (ready, more) = gate.saved(save.upto);
        assert_eq!(seqs(&ready), vec![Some(2), None]);
        assert!(!more);
        assert!(gate.hold(item(3)).is_some(), "all saved: nothing waits");
        assert!(
            gate.frame(&frame(3)),
            "idle again: the next change queues it anew"
        );
    }

    #[test]
    fn items_that_need_nothing_new_go_once_what_is_before_them_is_saved() {
        let mut gate = Gate::new(1, &serde_json::Value::Null);
        gate.frame(&frame(1));
        gate.hold(item(1));
        let save = gate.take().unwrap();
        // Arrives while the save is in flight: it waits behind frame 1 only.
        gate.hold(Item::Close(Stop::CLOSED_BY_SERVER));
        let (ready, more) = gate.saved(save.upto);
        assert_eq!(ready.len(), 2);
        assert!(!more);
    }

    #[test]
    fn a_new_connection_drops_what_was_held_for_the_old_one() {
        let mut gate = Gate::new(3, &serde_json::Value::Null);
        gate.frame(&frame(1));
        gate.hold(item(1));
        gate.drop_held();
        let save = gate.take().unwrap();
        assert_eq!(save.epoch, 3);
        assert_eq!(save.frames.len(), 1, "the change itself is still saved");
        let (ready, _) = gate.saved(save.upto);
        assert!(ready.is_empty());
    }

    fn mark(topic: &str, seq: Seq) -> TopicMark {
        TopicMark {
            topic: topic.to_owned(),
            seq,
        }
    }

    #[test]
    fn a_topic_s_messages_wait_up_to_a_limit_and_can_be_dropped_for_a_catch_up() {
        let mut gate = Gate::new(1, &serde_json::Value::Null);
        assert!(matches!(
            gate.hold_topic(item(10), ("t", 10), 2),
            Ok(Some(_))
        ));
        gate.frame(&frame(1));
        gate.hold(item(1));
        assert!(matches!(gate.hold_topic(item(11), ("t", 11), 2), Ok(None)));
        assert!(
            gate.hold_topic(item(12), ("t", 12), 2).is_err(),
            "two wait already"
        );
        assert!(matches!(gate.hold_topic(item(5), ("u", 5), 3), Ok(None)));
        assert_eq!(gate.drop_topic("t"), Some(11), "the first of t held");
        assert_eq!(gate.drop_topic("t"), None);
        let save = gate.take().unwrap();
        let (ready, _) = gate.saved(save.upto);
        assert_eq!(seqs(&ready), vec![Some(1), Some(5)]);
        assert_eq!(
            ready[1].1,
            Some(mark("u", 5)),
            "a topic's message keeps its mark"
        );
    }

    #[derive(Debug, Clone)]
    enum Step {
        Frame,
        Handled,
        Hold,
        /// The saver takes a batch (if none is in flight) or finishes the one in flight.
        Save,
        Reconnect,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            1 => Just(Step::Frame),
            1 => Just(Step::Handled),
            3 => Just(Step::Hold),
            2 => Just(Step::Save),
            1 => Just(Step::Reconnect),
        ]
    }

    proptest::proptest! {
        /// Whatever the interleaving: items go in the order they came, none before every
        /// change recorded ahead of it is saved, none twice; the session is queued with the
        /// saver exactly when it has unsaved changes; and once all is saved, nothing waits.
        #[test]
        fn items_wait_for_what_came_before_them_and_no_longer(steps in proptest::collection::vec(step(), 1..80)) {
            let mut gate = Gate::new(1, &serde_json::Value::Null);
            let (mut made, mut saved, mut queued) = (0u64, 0u64, false);
            let mut next_seq = 1;
            let mut in_flight: Option<u64> = None;
            // Each held item: its number and the changes made before it.
            let mut waiting: VecDeque<(Seq, u64)> = VecDeque::new();
            let mut last_out = 0;
            let mut out = |seq: Seq, needs: u64, saved: u64| {
                assert!(seq > last_out, "in order, once");
                assert!(needs <= saved, "item {seq} went before its changes were saved");
                last_out = seq;
            };
            let mut item_no = 0;
            for step in steps {
                match step {
                    Step::Frame | Step::Handled => {
                        let fresh = match step {
                            Step::Frame => {
                                next_seq += 1;
                                gate.frame(&frame(next_seq - 1))
                            }
                            _ => gate.handled(made),
                        };
                        made += 1;
                        assert_eq!(fresh, !queued, "queued once");
                        queued = true;
                    }
                    Step::Hold => {
                        item_no += 1;
                        match gate.hold(item(item_no)) {
                            Some(_) => {
                                assert!(waiting.is_empty());
                                out(item_no, made, saved);
                            }
                            None => waiting.push_back((item_no, made)),
                        }
                    }
                    Step::Save => match in_flight.take() {
                        None => {
                            if let Some(save) = gate.take() {
                                assert_eq!(save.upto, made);
                                in_flight = Some(save.upto);
                            } else {
                                assert_eq!(made, saved);
                            }
                        }
                        Some(upto) => {
                            saved = upto;
                            let (ready, more) = gate.saved(upto);
                            for (item, _) in &ready {
                                let Item::Frame(frame, _) = item else { unreachable!() };
                                let (no, needs) = waiting.pop_front().expect("held");
                                assert_eq!(frame.seq(), Some(no));
                                out(no, needs, saved);
                            }
                            assert_eq!(more, made > saved);
                            queued = more;
                            if let Some(&(_, needs)) = waiting.front() {
                                assert!(needs > saved, "an item that could go was kept");
                            }
                        }
                    },
                    Step::Reconnect => {
                        gate.drop_held();
                        waiting.clear();
                    }
                }
            }
            // The saver runs until nothing is left: everything still held goes.
            if let Some(upto) = in_flight.take() {
                let (ready, _) = gate.saved(upto);
                for _ in &ready {
                    waiting.pop_front();
                }
            }
            if let Some(save) = gate.take() {
                let (ready, more) = gate.saved(save.upto);
                assert!(!more);
                for _ in &ready {
                    waiting.pop_front();
                }
            }
            let (ready, _) = gate.saved(made);
            assert_eq!(ready.len(), waiting.len(), "nothing waits once all is saved");
        }
    }
}
