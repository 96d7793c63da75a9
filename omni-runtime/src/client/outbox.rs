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

    /// Up to `limit` frames not yet sent on this connection, marked sent.
    pub(crate) fn take_unsent(&mut self, limit: usize) -> Vec<String> {
        self.entries
            .iter_mut()
            .filter(|e| !e.sent)
            .take(limit)
            .map(|e| {
                e.sent = true;
                e.text.clone()
            })
            .collect()
    }

    /// The oldest `limit` unanswered frames, marked sent (for a transport that resends
    /// everything unanswered each time).
    pub(crate) fn oldest(&mut self, limit: usize) -> Vec<String> {
        self.entries
            .iter_mut()
            .take(limit)
            .map(|e| {
                e.sent = true;
                e.text.clone()
            })
            .collect()
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
        assert_eq!(outbox.take_unsent(1), ["m1"]);
        assert_eq!(outbox.take_unsent(9), ["m2"]);
        assert!(outbox.take_unsent(9).is_empty());
        outbox.answered(1);
        assert_eq!(outbox.push(ok), Some(Ok(3)));
        outbox.reconnected();
        assert_eq!(outbox.take_unsent(9), ["m2", "m3"]);
        assert_eq!(outbox.oldest(1), ["m2"]);
    }
}
