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

    /// Gives the memory back (the session ended).
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::ws::Utf8Bytes;

    use super::*;
    use crate::server::encoded::Publication;

    fn message(seq: Seq) -> TopicFrame {
        let push = Outgoing::push(Utf8Bytes::from(format!(
            r#"{{"type":"push","payload":{seq},"topic":"t"}}"#
        )));
        let template = format!(r#"{{"type":"msg","seq":0,"payload":{seq},"topic":"t"}}"#);
        Publication::new(&template, push).unwrap().numbered(seq)
    }

    fn texts(frames: impl IntoIterator<Item = Outgoing>) -> Vec<String> {
        frames.into_iter().map(|f| f.text().to_owned()).collect()
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
                .map(|f| f.text().to_owned()),
            None
        );
        assert_eq!(
            topics
                .deliver("t", &message(14))
                .map(|f| f.text().to_owned()),
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

    proptest::proptest! {
        /// Whatever interleaving of live messages (duplicated, in order) and catch-up
        /// results, a follower is sent each number at most once and in increasing order.
        #[test]
        fn a_follower_never_gets_a_number_twice_or_out_of_order(
            steps in proptest::collection::vec((0u8..3, 1u64..40), 1..80),
        ) {
            let mut topics = Topics::default();
            topics.follow(Some(Cursors::new()), false, 8);
            topics.subscribe("t", 8).unwrap();
            let mut sent = Vec::new();
            let mut caught_up = false;
            for (step, n) in steps {
                match step {
                    0 | 1 => sent.extend(topics.deliver("t", &message(n)).map(|f| f.text().to_owned())),
                    _ if !caught_up => {
                        caught_up = true;
                        sent.extend(texts(topics.live("t", Some(n))));
                    }
                    _ => {}
                }
            }
            let numbers: Vec<Seq> = sent
                .iter()
                .map(|t| t[r#"{"type":"msg","seq":"#.len()..].split(',').next().unwrap().parse().unwrap())
                .collect();
            proptest::prop_assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{:?}", numbers);
        }
    }
}
