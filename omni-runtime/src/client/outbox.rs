//! Client messages not yet acknowledged: sent again after every reconnect until the server's
//! `ack` (or an `error` for them) arrives. The server recognises a resent `ref` and does not
//! handle it twice.

use std::collections::VecDeque;

use crate::Ref;

pub(crate) struct Entry {
    pub(crate) reference: Ref,
    pub(crate) text: String,
    /// Sent on the current connection.
    pub(crate) sent: bool,
}

/// How much one write or request carries.
#[derive(Clone, Copy)]
pub(crate) struct Batch {
    pub(crate) frames: usize,
    /// Total bytes of the frames, which a request body must stay under; the first frame is
    /// taken whatever its size.
    pub(crate) bytes: usize,
}

impl Batch {
    pub(crate) const ALL: Batch = Batch {
        frames: usize::MAX,
        bytes: usize::MAX,
    };

    fn take<'a>(self, entries: impl Iterator<Item = &'a mut Entry>) -> Vec<String> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for entry in entries {
            let size = entry.text.len() + 1;
            if out.len() == self.frames || (!out.is_empty() && bytes + size > self.bytes) {
                break;
            }
            bytes += size;
            entry.sent = true;
            out.push(entry.text.clone());
        }
        out
    }
}

pub(crate) struct Outbox {
    pub(crate) capacity: usize,
    next_ref: Ref,
    entries: VecDeque<Entry>,
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next_ref: 1,
            entries: VecDeque::new(),
        }
    }

    /// Queues a frame made by `encode` from the next `ref`; `None` when full.
    pub(crate) fn push<E>(
        &mut self,
        encode: impl FnOnce(Ref) -> Result<String, E>,
    ) -> Option<Result<Ref, E>> {
        if self.entries.len() >= self.capacity {
            return None;
        }
        let reference = self.next_ref;
        Some(encode(reference).map(|text| {
            self.next_ref += 1;
            self.entries.push_back(Entry {
                reference,
                text,
                sent: false,
            });
            reference
        }))
    }

    /// The server answered `reference` (with `ack` or `error`).
    pub(crate) fn answered(&mut self, reference: Ref) {
        if let Some(i) = self.entries.iter().position(|e| e.reference == reference) {
            self.entries.remove(i);
        }
    }

    /// Frames not yet sent on this connection, up to `limit`, marked sent.
    pub(crate) fn take_unsent(&mut self, limit: Batch) -> Vec<String> {
        limit.take(self.entries.iter_mut().filter(|e| !e.sent))
    }

    /// The oldest unanswered frames, up to `limit`, marked sent (for a transport that
    /// resends everything unanswered each time).
    pub(crate) fn oldest(&mut self, limit: Batch) -> Vec<String> {
        limit.take(self.entries.iter_mut())
    }

    /// A new connection: everything unanswered goes again.
    pub(crate) fn reconnected(&mut self) {
        for entry in &mut self.entries {
            entry.sent = false;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_outbox_refuses_and_answers_free_room() {
        let mut outbox = Outbox::new(2);
        let ok = |r: Ref| Ok::<_, ()>(format!("m{r}"));
        assert_eq!(outbox.push(ok), Some(Ok(1)));
        assert_eq!(outbox.push(ok), Some(Ok(2)));
        assert_eq!(outbox.push(ok), None);
        let one = Batch {
            frames: 1,
            bytes: usize::MAX,
        };
        assert_eq!(outbox.take_unsent(one), ["m1"]);
        assert_eq!(outbox.take_unsent(Batch::ALL), ["m2"]);
        assert!(outbox.take_unsent(Batch::ALL).is_empty());
        outbox.answered(1);
        assert_eq!(outbox.push(ok), Some(Ok(3)));
        outbox.reconnected();
        assert_eq!(outbox.take_unsent(Batch::ALL), ["m2", "m3"]);
        let small = Batch {
            frames: 9,
            bytes: 3,
        };
        assert_eq!(
            outbox.oldest(small),
            ["m2"],
            "bytes bound the batch, but one always goes"
        );
    }
}
