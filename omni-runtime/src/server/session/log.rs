//! A session's sequence: the numbers of its sequenced frames, the frames kept for resume,
//! and the client messages already handled. Plain state, no locks or I/O.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::server::encoded::Outgoing;
use crate::{Ref, Seq};

/// The sequenced frames a session keeps for resume, bounded in frames and in bytes.
#[derive(Debug)]
pub(crate) struct Log {
    last_seq: Seq,
    frames: VecDeque<Outgoing>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
}

/// What the log holds after a client's resume point.
#[derive(Debug)]
pub(crate) enum Since {
    /// Every frame after it, in order (maybe none).
    Held(Vec<Outgoing>),
    /// Some are gone (trimmed, or the point is not one this session reached).
    Gone,
}

impl Log {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            last_seq: 0,
            frames: VecDeque::new(),
            bytes: 0,
            max_frames: max_frames.max(1),
            max_bytes,
        }
    }

    /// The number of the last sequenced frame.
    pub(crate) fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// The number the next sequenced frame gets.
    pub(crate) fn next_seq(&self) -> Seq {
        self.last_seq + 1
    }

    /// Keeps `frame`, numbered [`next_seq`](Self::next_seq), and trims the oldest frames past
    /// either bound. A frame larger than the byte bound on its own is numbered but not kept:
    /// holding it would pin far more than the bound for the whole grace period. Every resume
    /// point before it goes with it, so a client that must resume across it gets `reset`
    /// (and the fresh state that follows) instead.
    pub(crate) fn push(&mut self, frame: Outgoing) {
        debug_assert_eq!(frame.seq(), Some(self.next_seq()));
        self.last_seq += 1;
        let size = cost(&frame);
        if size > self.max_bytes {
            self.clear();
            return;
        }
        self.bytes += size;
        self.frames.push_back(frame);
        while self.frames.len() > self.max_frames || self.bytes > self.max_bytes {
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= cost(&old);
            }
        }
    }

    /// The frames it keeps.
    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    /// Takes over a log saved elsewhere: numbered up to `last_seq`, keeping `frames`, the
    /// last of which is `last_seq` (and within this log's bounds, which trim it as usual).
    pub(crate) fn restore(&mut self, last_seq: Seq, frames: Vec<Outgoing>) {
        self.clear();
        self.last_seq = last_seq.saturating_sub(frames.len() as Seq);
        for frame in frames {
            self.push(frame);
        }
        self.last_seq = last_seq;
    }

    /// The frames after `after`, if the log still holds every one of them.
    pub(crate) fn since(&self, after: Seq) -> Since {
        if after == self.last_seq {
            return Since::Held(Vec::new());
        }
        let oldest = self.frames.front().and_then(Outgoing::seq);
        // Held exactly when `after` is the frame just before the oldest kept, or later.
        let held = after < self.last_seq && oldest.is_some_and(|oldest| oldest <= after + 1);
        if !held {
            return Since::Gone;
        }
        let skip = self.frames.len() - (self.last_seq - after) as usize;
        Since::Held(self.frames.iter().skip(skip).cloned().collect())
    }

    /// The bytes the log holds, its frames' text and their handles.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Gives the memory back; the numbering stays.
    pub(crate) fn clear(&mut self) {
        self.frames = VecDeque::new();
        self.bytes = 0;
    }
}

/// What a kept frame costs: its bytes, in the form it is held in, and its entry.
fn cost(frame: &Outgoing) -> usize {
    frame.size() + std::mem::size_of::<Outgoing>()
}

/// The last client `ref`s handled, so a message resent after a reconnect is acknowledged
/// again rather than handled twice.
#[derive(Debug)]
pub(crate) struct Refs {
    order: VecDeque<Ref>,
    set: HashSet<Ref, BuildHasherDefault<RefHasher>>,
    max: usize,
}

impl Refs {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            order: VecDeque::new(),
            set: HashSet::default(),
            max,
        }
    }

    pub(crate) fn contains(&self, reference: Ref) -> bool {
        self.set.contains(&reference)
    }

    /// Remembers `reference`, forgetting the oldest past the bound.
    pub(crate) fn insert(&mut self, reference: Ref) {
        if self.max == 0 || !self.set.insert(reference) {
            return;
        }
        self.order.push_back(reference);
        if self.order.len() > self.max
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.order = VecDeque::new();
        self.set = HashSet::default();
    }
}

/// Refs are numbers a client counts up, looked up once per message: a multiplicative hash
/// spreads them well enough, at a fraction of SipHash's cost. A client choosing refs to
/// collide only slows its own session's lookups.
#[derive(Default)]
pub(crate) struct RefHasher(u64);

impl Hasher for RefHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn frame(seq: Seq, size: usize) -> Outgoing {
        Outgoing::new("msg", Some(seq), "x".repeat(size))
    }

    fn fill(log: &mut Log, n: Seq, size: usize) {
        for _ in 0..n {
            log.push(frame(log.next_seq(), size));
        }
    }

    fn seqs(since: Since) -> Option<Vec<Seq>> {
        match since {
            Since::Held(frames) => Some(frames.iter().filter_map(Outgoing::seq).collect()),
            Since::Gone => None,
        }
    }

    #[test]
    fn a_resume_point_is_held_while_every_later_frame_is_kept() {
        let mut log = Log::new(3, usize::MAX);
        assert_eq!(seqs(log.since(0)), Some(vec![]), "nothing sent yet");
        fill(&mut log, 5, 10);
        assert_eq!(log.last_seq(), 5);
        assert_eq!(seqs(log.since(5)), Some(vec![]));
        assert_eq!(seqs(log.since(4)), Some(vec![5]));
        assert_eq!(
            seqs(log.since(2)),
            Some(vec![3, 4, 5]),
            "3 is the oldest kept"
        );
        assert_eq!(seqs(log.since(1)), None, "2 was trimmed");
        assert_eq!(seqs(log.since(0)), None);
        assert_eq!(
            seqs(log.since(6)),
            None,
            "a point this session never reached"
        );
    }

    #[test]
    fn the_log_is_bounded_in_bytes_and_never_keeps_a_frame_over_the_bound() {
        let per = 1000 + std::mem::size_of::<Outgoing>();
        let mut log = Log::new(1024, 10 * per);
        fill(&mut log, 50, 1000);
        assert_eq!(log.bytes(), 10 * per);
        assert_eq!(seqs(log.since(40)).map(|s| s.len()), Some(10));
        assert_eq!(seqs(log.since(39)), None);

        log.push(frame(log.next_seq(), 100_000));
        assert_eq!(
            log.bytes(),
            0,
            "larger than the bound: not kept, nor what came before"
        );
        assert_eq!(
            seqs(log.since(51)),
            Some(vec![]),
            "a client that has it is up to date"
        );
        assert_eq!(seqs(log.since(50)), None, "one that lacks it must be reset");
        assert_eq!(seqs(log.since(45)), None);
        log.push(frame(log.next_seq(), 1000));
        assert_eq!(seqs(log.since(51)), Some(vec![52]), "held again after it");
        assert_eq!(seqs(log.since(50)), None);
        log.clear();
        assert_eq!(log.bytes(), 0);
        assert_eq!(log.next_seq(), 53, "the numbering outlives the frames");
    }

    #[test]
    fn refs_remember_the_last_ones_handled() {
        let mut refs = Refs::new(3);
        for r in [1, 2, 3, 2] {
            refs.insert(r);
        }
        assert!(refs.contains(1) && refs.contains(3));
        refs.insert(4);
        assert!(!refs.contains(1), "the oldest is forgotten");
        assert!(refs.contains(2) && refs.contains(4));
        let mut none = Refs::new(0);
        none.insert(1);
        assert!(!none.contains(1));
    }

    proptest::proptest! {
        /// Whatever was sent and wherever a client stands, a held resume gives exactly the
        /// frames after its point, in order, each once; and the log never exceeds its bounds.
        #[test]
        fn a_held_resume_has_no_gap_and_no_duplicate(
            sizes in proptest::collection::vec(1usize..400, 0..200),
            max_frames in 1usize..50,
            max_bytes in 200usize..5000,
            after in 0u64..220,
        ) {
            let mut log = Log::new(max_frames, max_bytes);
            for size in &sizes {
                log.push(frame(log.next_seq(), *size));
            }
            let last = sizes.len() as Seq;
            proptest::prop_assert!(log.frames.len() <= max_frames);
            proptest::prop_assert!(log.bytes() <= max_bytes);
            // The newest frames that fit, back to the first one over the bound on its own.
            let per = std::mem::size_of::<Outgoing>();
            let (mut kept, mut bytes) = (0usize, 0usize);
            for size in sizes.iter().rev() {
                if kept == max_frames || bytes + size + per > max_bytes {
                    break;
                }
                kept += 1;
                bytes += size + per;
            }
            proptest::prop_assert_eq!(log.frames.len(), kept);
            if let Some(got) = seqs(log.since(after)) {
                let expected: Vec<Seq> = (after + 1..=last).collect();
                proptest::prop_assert_eq!(got, expected);
            } else {
                let oldest = last + 1 - kept as Seq;
                proptest::prop_assert!(after > last || after + 1 < oldest);
            }
        }
    }
}
