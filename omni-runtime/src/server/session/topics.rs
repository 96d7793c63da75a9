//! A session's topics: which it is subscribed to, where the client stands in each sequenced
//! topic, and the messages that wait while a topic is caught up. Plain state, no locks or
//! I/O: every transition returns the frames to deliver.

use std::collections::HashMap;

use crate::server::encoded::{Outgoing, TopicFrame};
use crate::{Cursors, Seq};

/// What a subscription to a sequenced topic needs before its messages flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopicSync {
    /// The client holds no usable resume point: the handler's `snapshot` of the topic.
    Snapshot(String),
    /// The client holds the topic up to `after`: what followed, from the topic's log.
    Replay { topic: String, after: Seq },
}

impl TopicSync {
    pub(crate) fn topic(&self) -> &str {
        match self {
            TopicSync::Snapshot(topic) | TopicSync::Replay { topic, .. } => topic,
        }
    }
}

/// Where a subscription's messages stand.
#[derive(Debug)]
enum State {
    /// Catching up (a replay or snapshot is under way): live messages wait here, so that
    /// they follow what the catch-up sends.
    Buffering(Vec<TopicFrame>),
    /// Messages go straight to the client; `last` is the last number it was sent.
    Live { last: Option<Seq> },
    /// The connection could not take a message (its queue was full): what follows `last` is
    /// dropped here, and sent from the topic's log once the connection has caught up.
    Behind { last: Seq },
}

/// A session's subscriptions.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    subscribed: HashMap<String, State>,
    /// `Some` once the client said it follows sequenced topics: the cursors it gave, each
    /// taken when its topic is caught up.
    cursors: Option<Cursors>,
}

/// A subscription refused: the session holds `max` topics already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full {
    pub(crate) max: usize,
}

impl Topics {
    /// Takes the client's topic cursors (from `hello` or the connect URL): from now on its
    /// topic messages are `msg` frames. At most `max` cursors are kept, so a client cannot
    /// make a session hold more than it may subscribe to. Returns the catch-ups due for
    /// topics already subscribed: a replay where the client holds a cursor; and, when
    /// `resumed` (the client was away, and its topic messages went nowhere meanwhile), a
    /// snapshot where it holds none.
    pub(crate) fn follow(
        &mut self,
        cursors: Option<Cursors>,
        resumed: bool,
        max: usize,
    ) -> Vec<TopicSync> {
        let Some(mut cursors) = cursors else {
            return Vec::new();
        };
        let mut syncs = Vec::new();
        for (topic, state) in &mut self.subscribed {
            let sync = match cursors.remove(topic) {
                Some(after) => TopicSync::Replay {
                    topic: topic.clone(),
                    after,
                },
                None if resumed => TopicSync::Snapshot(topic.clone()),
                None => continue,
            };
            *state = State::Buffering(Vec::new());
            syncs.push(sync);
        }
        let room = max.saturating_sub(self.subscribed.len());
        while cursors.len() > room {
            cursors.pop_last();
        }
        self.cursors = Some(cursors);
        syncs
    }

    /// Subscribes to `topic`: its messages wait until the catch-up returned is done. `None`
    /// when already subscribed.
    pub(crate) fn subscribe(&mut self, topic: &str, max: usize) -> Result<Option<TopicSync>, Full> {
        if self.subscribed.contains_key(topic) {
            return Ok(None);
        }
        if self.subscribed.len() >= max {
            return Err(Full { max });
        }
        self.subscribed
            .insert(topic.to_owned(), State::Buffering(Vec::new()));
        let cursor = self.cursors.as_mut().and_then(|c| c.remove(topic));
        Ok(Some(match cursor {
            Some(after) => TopicSync::Replay {
                topic: topic.to_owned(),
                after,
            },
            None => TopicSync::Snapshot(topic.to_owned()),
        }))
    }

    /// The topics subscribed to.
    pub(crate) fn names(&self) -> impl Iterator<Item = &String> {
        self.subscribed.keys()
    }

    /// Returns whether it was subscribed.
    pub(crate) fn unsubscribe(&mut self, topic: &str) -> bool {
        self.subscribed.remove(topic).is_some()
    }

    /// A message of `topic` arrived: what to send the client now, if anything (nothing while
    /// the topic catches up, nor a number it was already sent).
    pub(crate) fn deliver(&mut self, topic: &str, frame: &TopicFrame) -> Option<Outgoing> {
        let following = self.cursors.is_some();
        match self.subscribed.get_mut(topic)? {
            State::Buffering(waiting) => {
                waiting.push(frame.clone());
                None
            }
            State::Behind { .. } => None,
            State::Live { last } => {
                if following {
                    // A replay and the live stream may overlap: each number goes once.
                    if last.is_some_and(|last| frame.seq() <= last) {
                        return None;
                    }
                    *last = Some(frame.seq());
                    Some(frame.sequenced().clone())
                } else {
                    Some(frame.push().clone())
                }
            }
        }
    }

    /// The catch-up of `topic` is done, the client holding it up to `last` (if known): the
    /// messages that waited meanwhile, to send now; the next ones flow.
    pub(crate) fn live(&mut self, topic: &str, mut last: Option<Seq>) -> Vec<Outgoing> {
        let following = self.cursors.is_some();
        let Some(state) = self.subscribed.get_mut(topic) else {
            return Vec::new();
        };
        let State::Buffering(waiting) = state else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(waiting.len());
        for frame in std::mem::take(waiting) {
            if !following {
                out.push(frame.push().clone());
            } else if last.is_none_or(|last| frame.seq() > last) {
                last = Some(frame.seq());
                out.push(frame.sequenced().clone());
            }
        }
        *state = State::Live { last };
        out
    }

    /// The connection could not take message `first` of `topic` (returned by
    /// [`deliver`](Self::deliver), like those after it): the topic falls behind, and what
    /// follows waits in its log. Returns whether it did (it had been live, and the client
    /// follows topics; a push a client cannot take has no number to catch up from).
    pub(crate) fn fall_behind(&mut self, topic: &str, first: Seq) -> bool {
        if self.cursors.is_none() {
            return false;
        }
        match self.subscribed.get_mut(topic) {
            Some(state @ State::Live { .. }) => {
                // That message was not sent: the catch-up starts with it.
                *state = State::Behind {
                    last: first.saturating_sub(1),
                };
                true
            }
            _ => false,
        }
    }

    /// Whether `topic` fell behind and waits for its catch-up.
    pub(crate) fn is_behind(&self, topic: &str) -> bool {
        matches!(self.subscribed.get(topic), Some(State::Behind { .. }))
    }

    /// Starts catching up a topic that fell behind: from the number it was sent last, which
    /// [`live`](Self::live) ends. `None` when it is not behind (a resume caught it up since,
    /// or it was left).
    pub(crate) fn catch_up(&mut self, topic: &str) -> Option<TopicSync> {
        let state = self.subscribed.get_mut(topic)?;
        let State::Behind { last } = *state else {
            return None;
        };
        *state = State::Buffering(Vec::new());
        Some(TopicSync::Replay {
            topic: topic.to_owned(),
            after: last,
        })
    }

    /// Gives the memory back (the session ended).
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::server::encoded::Publication;

    fn message(seq: Seq) -> TopicFrame {
        let push = Outgoing::push(format!(r#"{{"type":"push","payload":{seq},"topic":"t"}}"#));
        let template = format!(r#"{{"type":"msg","seq":0,"payload":{seq},"topic":"t"}}"#);
        Publication::new(&template, push).unwrap().numbered(seq)
    }

    fn texts(frames: impl IntoIterator<Item = Outgoing>) -> Vec<String> {
        frames.into_iter().map(|f| f.text().into_owned()).collect()
    }

    fn msg(seq: Seq) -> String {
        format!(r#"{{"type":"msg","seq":{seq},"payload":{seq},"topic":"t"}}"#)
    }

    #[test]
    fn messages_wait_for_the_catch_up_then_flow_once_each() {
        let mut topics = Topics::default();
        topics.follow(Some(Cursors::from([("t".to_owned(), 10)])), false, 8);
        let sync = topics.subscribe("t", 8).unwrap();
        assert_eq!(
            sync,
            Some(TopicSync::Replay {
                topic: "t".into(),
                after: 10
            })
        );
        assert_eq!(topics.subscribe("t", 8), Ok(None), "already subscribed");
        // While the replay of 11..=12 is fetched, 12 and 13 arrive live.
        assert!(topics.deliver("t", &message(12)).is_none());
        assert!(topics.deliver("t", &message(13)).is_none());
        // The replay sent up to 12: only 13 of what waited follows it.
        assert_eq!(texts(topics.live("t", Some(12))), [msg(13)]);
        assert_eq!(
            topics
                .deliver("t", &message(13))
                .map(|f| f.text().into_owned()),
            None
        );
        assert_eq!(
            topics
                .deliver("t", &message(14))
                .map(|f| f.text().into_owned()),
            Some(msg(14))
        );
    }

    #[test]
    fn a_client_that_does_not_follow_topics_gets_pushes() {
        let mut topics = Topics::default();
        assert_eq!(
            topics.subscribe("t", 8),
            Ok(Some(TopicSync::Snapshot("t".into())))
        );
        assert!(topics.deliver("t", &message(1)).is_none());
        let waited = topics.live("t", None);
        assert_eq!(waited.len(), 1);
        assert_eq!(waited[0].kind(), "push");
        assert_eq!(topics.deliver("t", &message(1)).unwrap().kind(), "push");
        assert!(
            topics.deliver("other", &message(2)).is_none(),
            "not subscribed"
        );
    }

    #[test]
    fn following_resyncs_topics_already_subscribed() {
        let mut topics = Topics::default();
        topics.subscribe("a", 8).unwrap();
        topics.subscribe("b", 8).unwrap();
        topics.live("a", None);
        topics.live("b", None);
        let mut syncs = topics.follow(Some(Cursors::from([("a".to_owned(), 5)])), true, 8);
        syncs.sort_by(|x, y| x.topic().cmp(y.topic()));
        assert_eq!(
            syncs,
            [
                TopicSync::Replay {
                    topic: "a".into(),
                    after: 5
                },
                TopicSync::Snapshot("b".into()),
            ]
        );
        assert!(
            topics.deliver("a", &message(6)).is_none(),
            "a catches up again"
        );
        // Not resumed: a topic without a cursor keeps flowing.
        let mut fresh = Topics::default();
        fresh.subscribe("b", 8).unwrap();
        fresh.live("b", None);
        assert!(fresh.follow(Some(Cursors::new()), false, 8).is_empty());
    }

    #[test]
    fn cursors_and_subscriptions_are_bounded() {
        let mut topics = Topics::default();
        let many: Cursors = (0..4000).map(|i| (format!("t{i}"), i)).collect();
        topics.follow(Some(many), false, 4);
        assert_eq!(topics.cursors.as_ref().map(Cursors::len), Some(4));
        for i in 0..4 {
            topics.subscribe(&format!("x{i}"), 4).unwrap();
        }
        assert_eq!(topics.subscribe("one more", 4), Err(Full { max: 4 }));
        assert!(topics.unsubscribe("x0"));
        assert!(!topics.unsubscribe("x0"));
        assert!(topics.subscribe("one more", 4).unwrap().is_some());
    }

    /// A session's topics as a client sees them, against a model, over the real topic log
    /// of [`LocalPubSub`]: several topics, catch-ups from `subscribe` and from `follow`
    /// (replays, resets, snapshots), and live messages that reach the session late (as
    /// across Redis: the log holds a message before its live copy arrives) at every point of
    /// them.
    mod catch_ups {
        use std::collections::{BTreeMap, VecDeque};
        use std::sync::{Arc, Mutex};

        use futures_util::FutureExt;
        use proptest::prelude::*;

        use super::super::*;
        use crate::SessionId;
        use crate::pubsub::{LocalPubSub, Member, PubSub, Publication, Replay};

        const TOPICS: [&str; 3] = ["a", "b", "c"];
        const TOPIC_LOG: u64 = 4;
        const MAX: usize = 8;

        /// What the client is sent of one topic.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Seen {
            Msg(Seq),
            Push,
            /// The topic's `reset` to `head` (the log no longer holds what it asked for).
            Reset(Seq),
            /// The handler's `snapshot` of the topic.
            Snapshot,
        }

        /// A cursor the client gives in `follow`, relative to what it holds.
        #[derive(Debug, Clone, Copy)]
        enum Cursor {
            Absent,
            /// The last number it was sent.
            Held,
            /// Some numbers before it (replayed again, or gone from the log).
            Behind(u64),
            /// A number the topic never reached.
            Ahead,
            /// A number from before the topic's log began.
            Ancient,
        }

        #[derive(Debug, Clone)]
        enum Step {
            /// The topic numbers and logs a message; its live copy is on its way.
            Publish(usize),
            /// The oldest live copy on its way for the topic reaches the session.
            Arrive(usize),
            /// As `Arrive`, but the connection's queue is full: a message to send is refused,
            /// and the topic falls behind.
            Refuse(usize),
            /// The connection has drained: a topic that fell behind starts its catch-up.
            Drain(usize),
            Subscribe(usize),
            Unsubscribe(usize),
            Follow {
                cursors: [Cursor; 3],
                resumed: bool,
            },
            /// The catch-up in front fetches its replay (sending a `reset` if it is gone),
            /// or, fetched, finishes: what it fetched, then the messages that waited.
            Advance,
        }

        fn step() -> impl Strategy<Value = Step> {
            let topic = 0..TOPICS.len();
            let cursor = prop_oneof![
                1 => Just(Cursor::Absent),
                3 => Just(Cursor::Held),
                1 => (1u64..7).prop_map(Cursor::Behind),
                1 => Just(Cursor::Ahead),
                1 => Just(Cursor::Ancient),
            ];
            prop_oneof![
                4 => topic.clone().prop_map(Step::Publish),
                4 => topic.clone().prop_map(Step::Arrive),
                1 => topic.clone().prop_map(Step::Refuse),
                1 => topic.clone().prop_map(Step::Drain),
                2 => topic.clone().prop_map(Step::Subscribe),
                1 => topic.prop_map(Step::Unsubscribe),
                1 => ([cursor.clone(), cursor.clone(), cursor], any::<bool>())
                    .prop_map(|(cursors, resumed)| Step::Follow { cursors, resumed }),
                4 => Just(Step::Advance),
            ]
        }

        /// Takes each message's live copy as the topic numbers it.
        #[derive(Default)]
        struct Inbox(Mutex<Vec<(String, TopicFrame)>>);

        impl Member for Inbox {
            // Only sequenced topics are published here.
            fn deliver(&self, _: Outgoing) {}

            fn deliver_topic(&self, topic: &str, frame: &TopicFrame) {
                self.0
                    .lock()
                    .unwrap()
                    .push((topic.to_owned(), frame.clone()));
            }
        }

        fn index(topic: &str) -> usize {
            TOPICS.iter().position(|t| *t == topic).unwrap()
        }

        fn seen(frame: &Outgoing) -> (usize, Seen) {
            let value: serde_json::Value = serde_json::from_str(&frame.text()).unwrap();
            let topic = index(value["topic"].as_str().unwrap());
            match value["type"].as_str() {
                Some("msg") => (topic, Seen::Msg(value["seq"].as_u64().unwrap())),
                Some("push") => (topic, Seen::Push),
                other => panic!("not a topic message: {other:?}"),
            }
        }

        /// What a catch-up's fetch found.
        enum Fetched {
            Replayed { after: Seq, missed: Vec<Outgoing> },
            Reset { head: Seq },
            Snapshot,
        }

        /// The session's side, driven as the hub and the session drive it: the state machine
        /// under test, the topic log, and what the client was sent.
        struct Session {
            topics: Topics,
            pubsub: LocalPubSub,
            inbox: Arc<Inbox>,
            on_the_way: [VecDeque<TopicFrame>; 3],
            due: VecDeque<(TopicSync, Option<Fetched>)>,
            sent: Vec<(usize, Seen)>,
        }

        impl Session {
            fn publish(&mut self, topic: usize) {
                let publication = Publication::encode(TOPICS[topic], &topic).unwrap();
                self.pubsub.publish(TOPICS[topic], publication);
                for (topic, frame) in std::mem::take(&mut *self.inbox.0.lock().unwrap()) {
                    self.on_the_way[index(&topic)].push_back(frame);
                }
            }

            fn arrive(&mut self, topic: usize, refused: bool) {
                if let Some(frame) = self.on_the_way[topic].pop_front()
                    && let Some(out) = self.topics.deliver(TOPICS[topic], &frame)
                    && !(refused && self.topics.fall_behind(TOPICS[topic], frame.seq()))
                {
                    self.sent.push(seen(&out));
                }
            }

            /// What the hub's `sync` and the session's `topic_replayed`, `topic_reset` and
            /// `topic_live` do, one half at a time.
            fn advance(&mut self) {
                let Some((sync, fetched)) = self.due.front_mut() else {
                    return;
                };
                let topic = index(sync.topic());
                let Some(fetched) = fetched.take() else {
                    *fetched = Some(match sync {
                        TopicSync::Replay { topic: name, after } => {
                            match self.pubsub.replay(name, *after).now_or_never().unwrap() {
                                Replay::Held(missed) => Fetched::Replayed {
                                    after: *after,
                                    missed,
                                },
                                Replay::Gone { head } => {
                                    self.sent.push((topic, Seen::Reset(head)));
                                    Fetched::Reset { head }
                                }
                            }
                        }
                        TopicSync::Snapshot(_) => Fetched::Snapshot,
                    });
                    return;
                };
                self.due.pop_front();
                let last = match fetched {
                    Fetched::Replayed { after, missed } => {
                        self.sent.extend(missed.iter().map(seen));
                        Some(after + missed.len() as Seq)
                    }
                    Fetched::Reset { head } => {
                        self.sent.push((topic, Seen::Snapshot));
                        Some(head)
                    }
                    Fetched::Snapshot => {
                        self.sent.push((topic, Seen::Snapshot));
                        None
                    }
                };
                let waited = self.topics.live(TOPICS[topic], last);
                self.sent.extend(waited.iter().map(seen));
            }
        }

        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Phase {
            Unsubscribed,
            Live,
            /// A message was refused: nothing is sent until the catch-up from the log.
            Behind,
            /// Live copies wait from when `arrived` was `start`. Once done, the client holds
            /// every number up to `base`, then up to at least `upto` (the head its replay or
            /// reset was fetched at).
            CatchingUp {
                start: Seq,
                base: Seq,
                upto: Seq,
            },
        }

        #[derive(Debug)]
        struct Modeled {
            /// The number the topic began at (its log's first is the one after).
            origin: Seq,
            /// The last number published.
            head: Seq,
            /// The last number whose live copy reached the session.
            arrived: Seq,
            phase: Phase,
            /// Following: the client holds every number of its current run up to this one.
            base: Seq,
            /// The last number the client was sent (or reset to): its cursor.
            last: Option<Seq>,
        }

        impl Modeled {
            fn catch_up(&mut self) {
                self.phase = Phase::CatchingUp {
                    start: self.arrived,
                    base: self.arrived,
                    upto: self.arrived,
                };
            }
        }

        /// What the protocol promises the client, kept apart from the code under test: each
        /// number after its cursor (or its `reset`, or the start of its snapshot) exactly
        /// once, in order, with no gap.
        struct Model {
            topics: Vec<Modeled>,
            following: bool,
            /// The cursors `follow` gave for topics not yet subscribed.
            cursors: BTreeMap<usize, Seq>,
            expected: Vec<(usize, Seen)>,
        }

        impl Model {
            fn arrive(&mut self, topic: usize, refused: bool) {
                let t = &mut self.topics[topic];
                if t.arrived == t.head {
                    return;
                }
                t.arrived += 1;
                let n = t.arrived;
                if t.phase != Phase::Live {
                    return;
                }
                if !self.following {
                    // A push has no number to catch up from: the connection would be closed,
                    // which is not this state machine's to model.
                    self.expected.push((topic, Seen::Push));
                } else if n > t.base {
                    assert_eq!(n, t.base + 1, "the model skipped a number");
                    if refused {
                        t.phase = Phase::Behind;
                        return;
                    }
                    t.base = n;
                    t.last = Some(n);
                    self.expected.push((topic, Seen::Msg(n)));
                }
            }

            /// The catch-up a topic that fell behind starts once its connection drained:
            /// from the last number it was sent.
            fn drain(&mut self, topic: usize) -> Option<TopicSync> {
                let t = &mut self.topics[topic];
                if t.phase != Phase::Behind {
                    return None;
                }
                t.catch_up();
                Some(TopicSync::Replay {
                    topic: TOPICS[topic].to_owned(),
                    after: t.base,
                })
            }

            /// The catch-up a subscription starts now.
            fn subscribe(&mut self, topic: usize) -> Option<TopicSync> {
                let t = &mut self.topics[topic];
                if t.phase != Phase::Unsubscribed {
                    return None;
                }
                t.catch_up();
                let name = TOPICS[topic].to_owned();
                Some(match self.cursors.remove(&topic) {
                    Some(after) => TopicSync::Replay { topic: name, after },
                    None => TopicSync::Snapshot(name),
                })
            }

            fn cursor(&self, topic: usize, cursor: Cursor) -> Option<Seq> {
                let t = &self.topics[topic];
                match cursor {
                    Cursor::Absent => None,
                    Cursor::Held => t.last,
                    Cursor::Behind(n) => t.last.map(|last| last.saturating_sub(n)),
                    Cursor::Ahead => Some(t.head + 2),
                    Cursor::Ancient => Some(t.origin - 1),
                }
            }

            /// The catch-ups `follow` starts, by topic.
            fn follow(&mut self, cursors: &Cursors, resumed: bool) -> BTreeMap<usize, TopicSync> {
                if !self.following {
                    // What it was pushed so far, it holds.
                    for t in &mut self.topics {
                        t.base = t.arrived;
                    }
                    self.following = true;
                }
                self.cursors.clear();
                let mut syncs = BTreeMap::new();
                for (name, &after) in cursors {
                    let topic = index(name);
                    if self.topics[topic].phase == Phase::Unsubscribed {
                        self.cursors.insert(topic, after);
                    } else {
                        let name = name.clone();
                        syncs.insert(topic, TopicSync::Replay { topic: name, after });
                    }
                }
                for (topic, t) in self.topics.iter_mut().enumerate() {
                    if t.phase == Phase::Unsubscribed {
                        continue;
                    }
                    if resumed && !syncs.contains_key(&topic) {
                        syncs.insert(topic, TopicSync::Snapshot(TOPICS[topic].to_owned()));
                    }
                    if syncs.contains_key(&topic) {
                        t.catch_up();
                    }
                }
                syncs
            }

            /// The fetch of `sync`'s replay: a `reset` if the log no longer holds every
            /// number after its cursor.
            fn fetch(&mut self, sync: &TopicSync) {
                let TopicSync::Replay { topic, after } = sync else {
                    return;
                };
                let topic = index(topic);
                let t = &mut self.topics[topic];
                let Phase::CatchingUp { start, .. } = t.phase else {
                    panic!("{sync:?} fetches for a topic that is not catching up");
                };
                let oldest = t.head + 1 - (t.head - t.origin).min(TOPIC_LOG);
                let base = if *after > t.head || after + 1 < oldest {
                    t.last = Some(t.head);
                    self.expected.push((topic, Seen::Reset(t.head)));
                    t.head
                } else {
                    *after
                };
                t.phase = Phase::CatchingUp {
                    start,
                    base,
                    upto: t.head,
                };
            }

            /// The end of a catch-up: the snapshot if there is one, then the numbers after
            /// its base: those its replay held and those whose live copies waited.
            fn finish(&mut self, sync: &TopicSync, snapshot: bool) {
                let topic = index(sync.topic());
                let t = &mut self.topics[topic];
                let Phase::CatchingUp { start, base, upto } = t.phase else {
                    panic!("{sync:?} finishes a topic that is not catching up");
                };
                if snapshot {
                    self.expected.push((topic, Seen::Snapshot));
                }
                t.phase = Phase::Live;
                if !self.following {
                    let waited = t.arrived - start;
                    self.expected
                        .extend(std::iter::repeat_n((topic, Seen::Push), waited as usize));
                    return;
                }
                let top = upto.max(t.arrived);
                self.expected
                    .extend((base + 1..=top).map(|n| (topic, Seen::Msg(n))));
                if top > base {
                    t.last = Some(top);
                }
                t.base = top;
            }
        }

        fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
            let pubsub = LocalPubSub::with_topic_log(TOPIC_LOG as usize);
            let inbox = Arc::new(Inbox::default());
            let id = SessionId::from_u128(1);
            pubsub.register(id, inbox.clone());
            let mut model = Model {
                topics: Vec::new(),
                following: false,
                cursors: BTreeMap::new(),
                expected: Vec::new(),
            };
            for topic in TOPICS {
                pubsub.subscribe(id, topic);
                // Asking an unused topic for a replay starts its log: learns where it begins.
                let Some(Replay::Gone { head }) = pubsub.replay(topic, 0).now_or_never() else {
                    panic!("a fresh topic holds nothing");
                };
                model.topics.push(Modeled {
                    origin: head,
                    head,
                    arrived: head,
                    phase: Phase::Unsubscribed,
                    base: head,
                    last: None,
                });
            }
            let mut session = Session {
                topics: Topics::default(),
                pubsub,
                inbox,
                on_the_way: Default::default(),
                due: VecDeque::new(),
                sent: Vec::new(),
            };
            // In the end every live copy arrives, every connection drains and every catch-up
            // finishes.
            let arrivals =
                (0..TOPICS.len()).flat_map(|t| std::iter::repeat_n(Step::Arrive(t), steps.len()));
            let drains = (0..TOPICS.len()).map(Step::Drain);
            let advances = std::iter::repeat_n(Step::Advance, 2 * TOPICS.len() * steps.len());
            let end = arrivals.chain(drains).chain(advances);
            for step in steps.iter().cloned().chain(end) {
                match &step {
                    Step::Publish(topic) => {
                        model.topics[*topic].head += 1;
                        session.publish(*topic);
                    }
                    Step::Arrive(topic) => {
                        model.arrive(*topic, false);
                        session.arrive(*topic, false);
                    }
                    Step::Refuse(topic) => {
                        model.arrive(*topic, true);
                        session.arrive(*topic, true);
                    }
                    Step::Drain(topic) => {
                        let expected = model.drain(*topic);
                        let sync = session.topics.catch_up(TOPICS[*topic]);
                        prop_assert_eq!(&sync, &expected);
                        session.due.extend(sync.map(|sync| (sync, None)));
                    }
                    Step::Subscribe(topic) => {
                        let expected = model.subscribe(*topic);
                        let sync = session.topics.subscribe(TOPICS[*topic], MAX).unwrap();
                        prop_assert_eq!(&sync, &expected);
                        session.due.extend(sync.map(|sync| (sync, None)));
                    }
                    // The hub unsubscribes and follows only between catch-ups.
                    Step::Unsubscribe(topic) if session.due.is_empty() => {
                        let subscribed = model.topics[*topic].phase != Phase::Unsubscribed;
                        model.topics[*topic].phase = Phase::Unsubscribed;
                        prop_assert_eq!(session.topics.unsubscribe(TOPICS[*topic]), subscribed);
                    }
                    Step::Follow { cursors, resumed } if session.due.is_empty() => {
                        let cursors: Cursors = (0..TOPICS.len())
                            .filter_map(|t| {
                                let after = model.cursor(t, cursors[t])?;
                                Some((TOPICS[t].to_owned(), after))
                            })
                            .collect();
                        let expected = model.follow(&cursors, *resumed);
                        let syncs = session.topics.follow(Some(cursors), *resumed, MAX);
                        let by_topic: BTreeMap<usize, TopicSync> = syncs
                            .iter()
                            .map(|s| (index(s.topic()), s.clone()))
                            .collect();
                        prop_assert_eq!(by_topic.len(), syncs.len(), "one catch-up a topic");
                        prop_assert_eq!(&by_topic, &expected);
                        session
                            .due
                            .extend(syncs.into_iter().map(|sync| (sync, None)));
                    }
                    Step::Unsubscribe(_) | Step::Follow { .. } => {}
                    Step::Advance => {
                        if let Some((sync, fetched)) = session.due.front() {
                            match fetched {
                                None => model.fetch(sync),
                                Some(Fetched::Replayed { .. }) => model.finish(sync, false),
                                Some(Fetched::Reset { .. } | Fetched::Snapshot) => {
                                    model.finish(sync, true);
                                }
                            }
                        }
                        session.advance();
                    }
                }
                let sent = std::mem::take(&mut session.sent);
                let expected = std::mem::take(&mut model.expected);
                prop_assert_eq!(sent, expected, "sent on {:?}", step);
            }
            for (topic, t) in model.topics.iter().enumerate() {
                match t.phase {
                    Phase::Unsubscribed => {}
                    Phase::Live if model.following => prop_assert_eq!(
                        t.base,
                        t.head,
                        "{} is not sent up to its last number",
                        TOPICS[topic]
                    ),
                    Phase::Live => {}
                    Phase::CatchingUp { .. } | Phase::Behind => {
                        prop_assert!(false, "{} never caught up", TOPICS[topic]);
                    }
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever the interleaving of catch-ups, `follow`s, live copies and messages
            /// the connection could not take, the client is sent exactly what the model says,
            /// step by step: each topic's numbers after its cursor, once each, in order, with
            /// no gap.
            #[test]
            fn a_follower_gets_exactly_the_numbers_after_its_cursor(
                steps in proptest::collection::vec(step(), 1..60),
            ) {
                run(steps)?;
            }
        }
    }
}
