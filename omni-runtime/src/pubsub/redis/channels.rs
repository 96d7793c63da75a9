//! Which channels the subscriber connection should be on, as a plain state machine: a
//! topic's channel while this process has a subscriber to it, and a few fixed channels. The
//! connection task takes the difference as one batch (`SUBSCRIBE` the new ones, `UNSUBSCRIBE`
//! the old ones) whenever it changed, and reports when a subscription is confirmed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the subscriber connection must send to match the wanted channels.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Batch {
    pub(super) subscribe: Vec<String>,
    pub(super) unsubscribe: Vec<String>,
}

impl Batch {
    pub(super) fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.unsubscribe.is_empty()
    }
}

/// The channels wanted, asked for and confirmed.
#[derive(Debug)]
pub(super) struct Channels {
    /// Always wanted.
    fixed: Vec<String>,
    /// Each topic with a subscriber in this process: its channel.
    topics: HashMap<String, String>,
    /// The topic of each wanted channel.
    /// Shared, so that a message's topic is taken out of the lock without a copy.
    by_channel: HashMap<String, Arc<str>>,
    /// Asked for on the current connection (a `SUBSCRIBE` sent, confirmed or not).
    asked: HashSet<String>,
    /// Confirmed on the current connection, and still wanted.
    confirmed: HashSet<String>,
}

impl Channels {
    pub(super) fn new(fixed: Vec<String>) -> Self {
        Self {
            fixed,
            topics: HashMap::new(),
            by_channel: HashMap::new(),
            asked: HashSet::new(),
            confirmed: HashSet::new(),
        }
    }

    /// The channels always wanted, once the mode (and so their names) is known.
    pub(super) fn fix(&mut self, fixed: Vec<String>) {
        self.fixed = fixed;
    }

    /// `topic` has `subscribers` in this process now. Returns whether the channels wanted
    /// changed (a batch is due).
    pub(super) fn set(&mut self, topic: &str, channel: &str, subscribers: usize) -> bool {
        if subscribers > 0 {
            if self.topics.contains_key(topic) {
                return false;
            }
            self.topics.insert(topic.to_owned(), channel.to_owned());
            self.by_channel.insert(channel.to_owned(), Arc::from(topic));
            true
        } else {
            let Some(channel) = self.topics.remove(topic) else {
                return false;
            };
            // Still live until the `UNSUBSCRIBE` goes: a subscriber back before then needs
            // no new confirmation.
            self.by_channel.remove(&channel);
            true
        }
    }

    /// The topic whose messages arrive on `channel`, while it is wanted.
    pub(super) fn topic(&self, channel: &str) -> Option<Arc<str>> {
        self.by_channel.get(channel).cloned()
    }

    /// Whether a message published on `topic` from now on reaches this process: its
    /// subscription is confirmed. A topic nobody here subscribes to needs nothing.
    pub(super) fn live(&self, topic: &str) -> bool {
        self.topics
            .get(topic)
            .is_none_or(|channel| self.confirmed.contains(channel))
    }

    /// What to send now so the connection is on exactly the wanted channels; taken as sent.
    pub(super) fn batch(&mut self) -> Batch {
        let wanted: HashSet<&String> = self.fixed.iter().chain(self.topics.values()).collect();
        let mut batch = Batch::default();
        for channel in &wanted {
            if !self.asked.contains(*channel) {
                batch.subscribe.push((*channel).clone());
            }
        }
        for channel in &self.asked {
            if !wanted.contains(channel) {
                batch.unsubscribe.push(channel.clone());
            }
        }
        batch.subscribe.sort();
        batch.unsubscribe.sort();
        for channel in &batch.subscribe {
            self.asked.insert(channel.clone());
        }
        for channel in &batch.unsubscribe {
            self.asked.remove(channel);
            self.confirmed.remove(channel);
        }
        batch
    }

    /// Redis confirmed the subscriptions to `channels` (sent in one batch).
    pub(super) fn confirm(&mut self, channels: &[String]) {
        for channel in channels {
            // One since unsubscribed, or asked again on a newer connection, is not live.
            if self.asked.contains(channel) {
                self.confirmed.insert(channel.clone());
            }
        }
    }

    /// The server dropped these subscriptions while the connection stayed up (a cluster slot
    /// moved to another node, or a node was lost): those still wanted are asked for again in
    /// the next batch, and are not live until confirmed. Returns whether a batch is due.
    pub(super) fn lost<'a>(&mut self, channels: impl IntoIterator<Item = &'a str>) -> bool {
        let mut due = false;
        for channel in channels {
            self.confirmed.remove(channel);
            let wanted = self.fixed.iter().any(|fixed| fixed == channel)
                || self.by_channel.contains_key(channel);
            // One no longer wanted stays asked for: its `UNSUBSCRIBE` is still due.
            if wanted && self.asked.remove(channel) {
                due = true;
            }
        }
        due
    }

    /// Every channel asked for on the current connection, for [`lost`](Self::lost) when
    /// the server may have dropped any of them.
    pub(super) fn asked(&self) -> Vec<String> {
        self.asked.iter().cloned().collect()
    }

    /// A `SUBSCRIBE` of these channels failed: they are asked for again in a later batch.
    pub(super) fn refused(&mut self, channels: &[String]) {
        for channel in channels {
            self.asked.remove(channel);
            self.confirmed.remove(channel);
        }
    }

    /// The connection was lost: nothing is asked for or confirmed on the next one yet.
    pub(super) fn reset(&mut self) {
        self.asked.clear();
        self.confirmed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> Channels {
        Channels::new(vec!["node".into()])
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn subscriptions_follow_the_topics_in_batches() {
        let mut c = channels();
        assert_eq!(c.batch().subscribe, names(&["node"]));
        c.confirm(&names(&["node"]));
        assert!(c.set("a", "{a}", 1));
        assert!(!c.set("a", "{a}", 2), "a second subscriber changes nothing");
        assert!(c.set("b", "{b}", 1));
        assert!(!c.live("a"));
        assert!(c.live("z"), "no subscriber here: nothing to wait for");
        let batch = c.batch();
        assert_eq!(batch.subscribe, names(&["{a}", "{b}"]), "one command");
        assert!(c.batch().is_empty(), "asked once");
        c.confirm(&batch.subscribe);
        assert!(c.live("a") && c.live("b"));
        assert_eq!(c.topic("{a}").as_deref(), Some("a"));
        assert!(c.set("a", "{a}", 0));
        assert_eq!(c.topic("{a}").as_deref(), None);
        assert_eq!(
            c.batch(),
            Batch {
                subscribe: vec![],
                unsubscribe: names(&["{a}"])
            }
        );
    }

    #[test]
    fn a_subscribe_then_a_quick_unsubscribe_leaks_nothing() {
        let mut c = channels();
        c.batch();
        // Both before the batch is taken: nothing to send.
        c.set("a", "{a}", 1);
        c.set("a", "{a}", 0);
        assert!(c.batch().is_empty());
        // The subscribe is on its way when the last subscriber leaves: it is undone next.
        c.set("a", "{a}", 1);
        let asked = c.batch();
        c.set("a", "{a}", 0);
        c.confirm(&asked.subscribe);
        assert!(c.live("a"), "nobody to wait for");
        assert_eq!(c.batch().unsubscribe, names(&["{a}"]));
    }

    #[test]
    fn an_unsubscribe_then_a_quick_resubscribe_loses_nothing() {
        let mut c = channels();
        c.batch();
        c.set("a", "{a}", 1);
        let asked = c.batch();
        c.confirm(&asked.subscribe);
        // Left and back before the batch is taken: the subscription never stopped.
        c.set("a", "{a}", 0);
        c.set("a", "{a}", 1);
        assert!(c.batch().is_empty());
        assert!(c.live("a"));
        // Left with the unsubscribe on its way, then back: subscribed again after it.
        c.set("a", "{a}", 0);
        assert_eq!(c.batch().unsubscribe, names(&["{a}"]));
        c.set("a", "{a}", 1);
        assert!(!c.live("a"), "waits for the new subscription");
        let again = c.batch();
        assert_eq!(again.subscribe, names(&["{a}"]));
        c.confirm(&again.subscribe);
        assert!(c.live("a"));
    }

    #[test]
    fn a_subscription_the_server_dropped_is_asked_for_again() {
        let mut c = channels();
        c.set("a", "{a}", 1);
        c.set("b", "{b}", 1);
        let first = c.batch();
        c.confirm(&first.subscribe);
        assert!(c.lost(["{a}"]));
        assert!(!c.live("a"), "not live until confirmed again");
        assert!(c.live("b"));
        assert_eq!(c.batch().subscribe, names(&["{a}"]));
        // Dropped when it was no longer wanted: its unsubscribe still goes, nothing is asked.
        c.set("b", "{b}", 0);
        assert!(!c.lost(["{b}"]));
        assert_eq!(
            c.batch(),
            Batch {
                subscribe: vec![],
                unsubscribe: names(&["{b}"])
            }
        );
        // A node lost: every channel may be gone; the fixed one too.
        c.confirm(&names(&["{a}"]));
        let asked = c.asked();
        assert!(c.lost(asked.iter().map(String::as_str)));
        assert_eq!(c.batch().subscribe, names(&["node", "{a}"]));
    }

    #[test]
    fn a_refused_subscription_is_asked_for_in_the_next_batch() {
        let mut c = channels();
        c.set("a", "{a}", 1);
        let batch = c.batch();
        c.refused(&names(&["{a}"]));
        c.confirm(&batch.subscribe);
        assert!(!c.live("a"));
        assert_eq!(c.batch().subscribe, names(&["{a}"]));
    }

    #[test]
    fn a_new_connection_asks_for_exactly_the_current_set() {
        let mut c = channels();
        c.set("a", "{a}", 1);
        c.set("b", "{b}", 1);
        let first = c.batch();
        c.confirm(&first.subscribe);
        c.set("b", "{b}", 0);
        c.reset();
        assert!(!c.live("a"));
        let batch = c.batch();
        assert_eq!(batch.subscribe, names(&["node", "{a}"]));
        assert!(batch.unsubscribe.is_empty());
    }
}
