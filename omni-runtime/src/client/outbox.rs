//! Client messages not yet acknowledged: sent again after every reconnect until the server's
//! `ack` (or an `error` for them) arrives. The server recognises a resent `ref` and does not
//! handle it twice.
//!
//! [`Queue`] is the state machine (no locks, no I/O); [`Outbox`] is the one handle every
//! transport and the application reach it through.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};

use super::error::AckError;
use super::wire::Frame;
use crate::Ref;

/// How the server answered a message: `ack`, or an `error` naming its `ref`.
pub(crate) type Answer = Result<(), AckError>;

/// What is known of a `ref`.
#[derive(Debug, PartialEq)]
pub(crate) enum Lookup {
    /// Queued, not answered yet.
    Waiting,
    /// Answered lately.
    Answered(Answer),
    /// Never given out, or answered too long ago to be remembered.
    Unknown,
}

struct Entry {
    reference: Ref,
    frame: Frame,
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
}

/// The queue of unanswered messages, oldest first.
///
/// Frames go out oldest first, so the ones sent on the current connection are always the
/// first `sent` entries. At most `window` of them are in flight at once: after a reconnect a
/// large backlog is paced by the acks instead of written at once (which fills both TCP
/// directions when the server answers as fast as it reads), and every unanswered `ref` is
/// among the last `window` the server handled, inside the refs it remembers to recognise a
/// resend.
pub(crate) struct Queue {
    capacity: usize,
    window: usize,
    next_ref: Ref,
    entries: VecDeque<Entry>,
    sent: usize,
    /// The answers to the last `capacity` messages answered, oldest first: for the
    /// application asking after the answer came.
    answers: VecDeque<(Ref, Answer)>,
}

impl Queue {
    pub(crate) fn new(capacity: usize, window: usize) -> Self {
        Self {
            capacity,
            window: window.max(1),
            next_ref: 1,
            entries: VecDeque::new(),
            sent: 0,
            answers: VecDeque::new(),
        }
    }

    /// Queues a frame made by `encode` from the next `ref`; `None` when full.
    pub(crate) fn push<E>(
        &mut self,
        encode: impl FnOnce(Ref) -> Result<Frame, E>,
    ) -> Option<Result<Ref, E>> {
        if self.entries.len() >= self.capacity {
            return None;
        }
        let reference = self.next_ref;
        Some(encode(reference).map(|frame| {
            self.next_ref += 1;
            self.entries.push_back(Entry { reference, frame });
            reference
        }))
    }

    /// A frame made by `encode` from the next `ref`, which is used up but not queued: for a
    /// message sent once, on one connection.
    pub(crate) fn stamp<E>(
        &mut self,
        encode: impl FnOnce(Ref) -> Result<Frame, E>,
    ) -> Result<Frame, E> {
        let frame = encode(self.next_ref)?;
        self.next_ref += 1;
        Ok(frame)
    }

    /// The server answered `reference` with `answer` (`ack` or `error`). Whether that made
    /// room in the window for a frame that is waiting.
    pub(crate) fn answered(&mut self, reference: Ref, answer: Answer) -> bool {
        let Some(at) = self.entries.iter().position(|e| e.reference == reference) else {
            return false;
        };
        self.entries.remove(at);
        if self.answers.len() == self.capacity {
            self.answers.pop_front();
        }
        self.answers.push_back((reference, answer));
        if at < self.sent {
            self.sent -= 1;
            return self.entries.len() > self.sent;
        }
        false
    }

    /// What is known of `reference`.
    pub(crate) fn lookup(&self, reference: Ref) -> Lookup {
        if self.entries.iter().any(|e| e.reference == reference) {
            return Lookup::Waiting;
        }
        match self.answers.iter().rev().find(|(r, _)| *r == reference) {
            Some((_, answer)) => Lookup::Answered(answer.clone()),
            None => Lookup::Unknown,
        }
    }

    /// Frames not yet sent on this connection, as many as `limit` and the window allow,
    /// marked sent.
    pub(crate) fn take_unsent(&mut self, limit: Batch) -> Vec<Frame> {
        let room = self.window.saturating_sub(self.sent);
        let limit = Batch {
            frames: limit.frames.min(room),
            ..limit
        };
        let taken = take(self.entries.range(self.sent..), limit);
        self.sent += taken.len();
        taken
    }

    /// The oldest unanswered frames, up to `limit`, marked sent (for a transport that
    /// resends everything unanswered each time, one request at a time).
    pub(crate) fn oldest(&mut self, limit: Batch) -> Vec<Frame> {
        let taken = take(self.entries.iter(), limit);
        self.sent = self.sent.max(taken.len());
        taken
    }

    /// A new connection: everything unanswered goes again.
    pub(crate) fn reconnected(&mut self) {
        self.sent = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Sent on this connection and not answered yet.
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.sent
    }
}

fn take<'a>(entries: impl Iterator<Item = &'a Entry>, limit: Batch) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for entry in entries {
        let size = entry.frame.len() + 1;
        if out.len() == limit.frames || (!out.is_empty() && bytes + size > limit.bytes) {
            break;
        }
        bytes += size;
        out.push(entry.frame.clone());
    }
    out
}

/// The client's queue, shared by the application's [`Client`](crate::client::Client) handles and
/// the connection; the only way to it.
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    /// Who awaits the answer to a waiting `ref`. Locked only with `queue` held, so that an
    /// answer cannot slip between a lookup and the registration.
    waiters: Mutex<HashMap<Ref, Vec<oneshot::Sender<Answer>>>>,
    /// Told when there is something new to send: a message, or room in the window.
    wake: Arc<Notify>,
}

impl Outbox {
    pub(crate) fn new(capacity: usize, window: usize, wake: Arc<Notify>) -> Self {
        Self {
            queue: Mutex::new(Queue::new(capacity, window)),
            waiters: Mutex::default(),
            wake,
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Nothing panics while holding it, but a poisoned queue is still a consistent one.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`Queue::push`]; wakes the connection when queued.
    pub(crate) fn push<E>(
        &self,
        encode: impl FnOnce(Ref) -> Result<Frame, E>,
    ) -> Option<Result<Ref, E>> {
        let queued = self.queue().push(encode);
        if let Some(Ok(_)) = queued {
            self.wake.notify_one();
        }
        queued
    }

    /// See [`Queue::stamp`].
    pub(crate) fn stamp<E>(
        &self,
        encode: impl FnOnce(Ref) -> Result<Frame, E>,
    ) -> Result<Frame, E> {
        self.queue().stamp(encode)
    }

    /// See [`Queue::answered`]; wakes the connection when the window opened, and whoever
    /// awaits the answer.
    pub(crate) fn answered(&self, reference: Ref, answer: Answer) {
        let mut queue = self.queue();
        if queue.answered(reference, answer.clone()) {
            self.wake.notify_one();
        }
        let waiting = self.waiters().remove(&reference);
        for waiter in waiting.into_iter().flatten() {
            // A waiter that stopped waiting is no matter.
            let _ = waiter.send(answer.clone());
        }
    }

    /// The answer to `reference` if it is known, otherwise where it will arrive.
    pub(crate) fn watch(&self, reference: Ref) -> Result<oneshot::Receiver<Answer>, Answer> {
        let queue = self.queue();
        match queue.lookup(reference) {
            Lookup::Waiting => {
                let (tx, rx) = oneshot::channel();
                let mut waiters = self.waiters();
                let list = waiters.entry(reference).or_default();
                // Waiters that gave up go, so that a ref watched in a loop does not pile up.
                list.retain(|waiter| !waiter.is_closed());
                list.push(tx);
                Ok(rx)
            }
            Lookup::Answered(answer) => Err(answer),
            Lookup::Unknown => Err(Err(AckError::Unknown)),
        }
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<Ref, Vec<oneshot::Sender<Answer>>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`Queue::take_unsent`].
    pub(crate) fn take_unsent(&self, limit: Batch) -> Vec<Frame> {
        self.queue().take_unsent(limit)
    }

    /// See [`Queue::oldest`].
    pub(crate) fn oldest(&self, limit: Batch) -> Vec<Frame> {
        self.queue().oldest(limit)
    }

    /// See [`Queue::reconnected`].
    pub(crate) fn reconnected(&self) {
        self.queue().reconnected();
    }

    pub(crate) fn len(&self) -> usize {
        self.queue().len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.queue().capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(r: Ref) -> Result<Frame, ()> {
        Ok(Frame::Text(format!("m{r}")))
    }

    fn filled(capacity: usize, window: usize, count: usize) -> Queue {
        let mut queue = Queue::new(capacity, window);
        for _ in 0..count {
            queue.push(ok).unwrap().unwrap();
        }
        queue
    }

    #[test]
    fn answers_are_remembered_for_as_many_messages_as_the_queue_holds() {
        let mut queue = filled(2, 8, 2);
        assert_eq!(queue.lookup(1), Lookup::Waiting);
        assert_eq!(queue.lookup(3), Lookup::Unknown, "never given out");
        let refused = AckError::Rejected {
            code: crate::ErrorCode::Rejected,
            message: "no".into(),
        };
        queue.answered(1, Err(refused.clone()));
        queue.answered(2, Ok(()));
        assert_eq!(queue.lookup(1), Lookup::Answered(Err(refused)));
        assert_eq!(queue.lookup(2), Lookup::Answered(Ok(())));
        queue.push(ok).unwrap().unwrap();
        queue.answered(3, Ok(()));
        assert_eq!(queue.lookup(1), Lookup::Unknown, "forgotten");
        assert_eq!(queue.lookup(3), Lookup::Answered(Ok(())));
    }

    #[test]
    fn full_outbox_refuses_and_answers_free_room() {
        let mut outbox = Queue::new(2, 256);
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
        outbox.answered(1, Ok(()));
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

    #[test]
    fn a_backlog_goes_out_a_window_at_a_time_and_more_as_acks_arrive() {
        let mut queue = filled(100, 3, 10);
        assert_eq!(queue.take_unsent(Batch::ALL), ["m1", "m2", "m3"]);
        assert!(
            queue.take_unsent(Batch::ALL).is_empty(),
            "the window is full"
        );
        assert!(
            queue.answered(1, Ok(())),
            "an ack opens the window for a waiting frame"
        );
        assert_eq!(queue.take_unsent(Batch::ALL), ["m4"]);
        assert!(queue.answered(2, Ok(())));
        assert!(queue.answered(3, Ok(())));
        assert_eq!(queue.take_unsent(Batch::ALL), ["m5", "m6"]);
        assert_eq!(queue.in_flight(), 3);
        assert!(
            !queue.answered(99, Ok(())),
            "an unknown ref changes nothing"
        );
        assert_eq!(queue.in_flight(), 3);
    }

    #[test]
    fn an_emptied_window_with_nothing_waiting_wakes_nobody() {
        let mut queue = filled(100, 2, 2);
        assert_eq!(queue.take_unsent(Batch::ALL), ["m1", "m2"]);
        assert!(!queue.answered(1, Ok(())), "nothing waits for the room");
        assert!(!queue.answered(2, Ok(())));
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_reconnect_resends_every_unanswered_frame_in_order() {
        let mut queue = filled(100, 4, 6);
        assert_eq!(queue.take_unsent(Batch::ALL), ["m1", "m2", "m3", "m4"]);
        queue.answered(2, Ok(()));
        queue.answered(3, Ok(()));
        queue.reconnected();
        assert_eq!(queue.in_flight(), 0);
        assert_eq!(queue.take_unsent(Batch::ALL), ["m1", "m4", "m5", "m6"]);
        queue.answered(1, Ok(()));
        assert_eq!(queue.len(), 3);
        assert!(queue.take_unsent(Batch::ALL).is_empty());
        queue.reconnected();
        assert_eq!(queue.take_unsent(Batch::ALL), ["m4", "m5", "m6"]);
    }

    #[test]
    fn an_answer_for_a_frame_not_sent_on_this_connection_keeps_the_window() {
        let mut queue = filled(100, 2, 4);
        assert_eq!(queue.take_unsent(Batch::ALL), ["m1", "m2"]);
        // An `error` for `m3` (say, from a request on another transport) removes it only.
        assert!(!queue.answered(3, Ok(())));
        assert_eq!(queue.in_flight(), 2);
        queue.answered(1, Ok(()));
        assert_eq!(queue.take_unsent(Batch::ALL), ["m4"]);
    }

    /// The server recognises a resent `ref` only among the last refs it handled (1024 by
    /// default). With in-order acks, everything the server handled after the oldest
    /// unanswered frame was sent after it, and so was in the window with it: whatever a
    /// dropped connection lost, every `ref` resent is one of the last `window` handled.
    #[test]
    fn unanswered_refs_stay_within_the_window_the_server_remembers() {
        fn refs(frames: Vec<Frame>) -> Vec<Ref> {
            let text = |frame: &Frame| match frame {
                Frame::Text(text) => text[1..].parse().unwrap(),
                Frame::Binary(_) => unreachable!("the test queues text"),
            };
            frames.iter().map(text).collect()
        }
        let window = 8;
        let mut queue = filled(1000, window, 200);
        // What the server handled, in order; it handles what it has not seen yet.
        let mut handled: Vec<Ref> = Vec::new();
        let mut acked = 0;
        for round in 0..60 {
            if round % 7 == 6 {
                // A drop: the acks on their way are lost; everything unanswered goes again.
                queue.reconnected();
                let resent = refs(queue.take_unsent(Batch::ALL));
                let recent = &handled[handled.len().saturating_sub(window)..];
                for r in &resent {
                    assert!(
                        !handled.contains(r) || recent.contains(r),
                        "ref {r} resent, but handled before the last {window}"
                    );
                }
                for r in resent {
                    if !handled.contains(&r) {
                        handled.push(r);
                    }
                }
                continue;
            }
            for r in refs(queue.take_unsent(Batch::ALL)) {
                assert!(!handled.contains(&r), "a fresh frame, never a repeat");
                handled.push(r);
            }
            assert!(queue.in_flight() <= window);
            // The acks lag behind: three arrive per round.
            for _ in 0..3 {
                if acked < handled.len() {
                    queue.answered(handled[acked], Ok(()));
                    acked += 1;
                }
            }
        }
        assert!(acked > 100, "the backlog drains: {acked} answered");
    }
}
