//! What one process knows of the other processes' presence announcements, as a plain state
//! machine: whether an announcement follows the last one heard from its process, which
//! processes must be asked for their whole state, and which went silent for too long and are
//! taken to be dead.
//!
//! Each process numbers its announcements of changes (1, 2, …) and repeats its last number in a
//! heartbeat. Changes out of order, a number skipped (a message lost while Redis was away) or a
//! process never heard from before all lead to the same repair: ask that process for its whole
//! state, which replaces what was held of it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::registry::NodeId;

/// What a process announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Changes numbered `seq`.
    Changes { seq: u64 },
    /// Its whole state, as of its change number `seq`.
    State { seq: u64 },
    /// It is alive, and its last change number is `seq`.
    Beat { seq: u64 },
}

/// What to do with an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Apply it (changes are idempotent: applying more than needed does no harm).
    pub(crate) apply: bool,
    /// Ask the process for its whole state: something of it was missed.
    pub(crate) ask: bool,
}

struct Peer {
    seq: u64,
    seen: Instant,
    /// A state was asked for and has not come yet: not asked again until it is overdue.
    asked: Option<Instant>,
}

/// The other processes, as heard.
pub(crate) struct Peers {
    peers: HashMap<NodeId, Peer>,
    expiry: Duration,
}

impl Peers {
    /// Processes not heard from for `expiry` are dead.
    pub(crate) fn new(expiry: Duration) -> Self {
        Self {
            peers: HashMap::new(),
            expiry,
        }
    }

    /// `node` announced `heard` at `now`.
    pub(crate) fn heard(&mut self, node: NodeId, heard: Heard, now: Instant) -> Verdict {
        let expiry = self.expiry;
        let known = self.peers.contains_key(&node);
        let peer = self.peers.entry(node).or_insert(Peer {
            seq: 0,
            seen: now,
            asked: None,
        });
        peer.seen = now;
        let (apply, missed) = match heard {
            Heard::State { seq } => {
                peer.seq = seq;
                peer.asked = None;
                return Verdict {
                    apply: true,
                    ask: false,
                };
            }
            Heard::Changes { seq } if known && seq == peer.seq + 1 => {
                peer.seq = seq;
                (true, false)
            }
            Heard::Changes { seq } if known && seq <= peer.seq => (false, false),
            Heard::Changes { seq } => {
                peer.seq = peer.seq.max(seq);
                (true, true)
            }
            Heard::Beat { seq } => (false, !known || seq > peer.seq),
        };
        let overdue = peer
            .asked
            .is_none_or(|at| now.duration_since(at) >= expiry / 2);
        let ask = missed && overdue;
        if ask {
            peer.asked = Some(now);
        }
        Verdict { apply, ask }
    }

    /// The processes not heard from within the expiry, forgotten.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<NodeId> {
        let expiry = self.expiry;
        let dead: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| now.duration_since(p.seen) > expiry)
            .map(|(n, _)| *n)
            .collect();
        for node in &dead {
            self.peers.remove(node);
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPIRY: Duration = Duration::from_secs(10);

    fn verdict(apply: bool, ask: bool) -> Verdict {
        Verdict { apply, ask }
    }

    #[test]
    fn changes_in_order_apply_and_a_gap_asks_for_the_state_once() {
        let mut peers = Peers::new(EXPIRY);
        let t = Instant::now();
        // Never heard of it: apply, and ask for what came before.
        assert_eq!(
            peers.heard(1, Heard::Changes { seq: 4 }, t),
            verdict(true, true)
        );
        assert_eq!(
            peers.heard(1, Heard::State { seq: 5 }, t),
            verdict(true, false)
        );
        assert_eq!(
            peers.heard(1, Heard::Changes { seq: 6 }, t),
            verdict(true, false)
        );
        // A repeat is ignored.
        assert_eq!(
            peers.heard(1, Heard::Changes { seq: 6 }, t),
            verdict(false, false)
        );
        // 7 was lost: 8 applies, and the state is asked for, but not again while it is due.
        assert_eq!(
            peers.heard(1, Heard::Changes { seq: 8 }, t),
            verdict(true, true)
        );
        assert_eq!(
            peers.heard(1, Heard::Beat { seq: 9 }, t),
            verdict(false, false)
        );
        let later = t + EXPIRY;
        assert_eq!(
            peers.heard(1, Heard::Beat { seq: 9 }, later),
            verdict(false, true)
        );
    }

    #[test]
    fn a_beat_ahead_of_what_was_heard_asks_for_the_state() {
        let mut peers = Peers::new(EXPIRY);
        let t = Instant::now();
        assert_eq!(
            peers.heard(2, Heard::Beat { seq: 0 }, t),
            verdict(false, true)
        );
        assert_eq!(
            peers.heard(2, Heard::State { seq: 0 }, t),
            verdict(true, false)
        );
        assert_eq!(
            peers.heard(2, Heard::Beat { seq: 0 }, t),
            verdict(false, false)
        );
        assert_eq!(
            peers.heard(2, Heard::Beat { seq: 1 }, t),
            verdict(false, true)
        );
    }

    #[test]
    fn a_silent_process_expires_and_a_talking_one_does_not() {
        let mut peers = Peers::new(EXPIRY);
        let t = Instant::now();
        peers.heard(1, Heard::State { seq: 0 }, t);
        peers.heard(2, Heard::State { seq: 0 }, t);
        peers.heard(2, Heard::Beat { seq: 0 }, t + Duration::from_secs(8));
        assert!(peers.expired(t + Duration::from_secs(9)).is_empty());
        assert_eq!(peers.expired(t + Duration::from_secs(11)), [1]);
        assert_eq!(peers.expired(t + Duration::from_secs(19)), [2]);
        assert!(peers.expired(t + Duration::from_secs(60)).is_empty());
    }
}
