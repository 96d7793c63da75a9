//! A connection's outbound queue: bounded in items and in bytes, filled without waiting,
//! drained by one task.
//!
//! tokio's bounded channel would do, but it allocates a block of slots when it is made, and
//! most connections are idle most of the time: this queue holds no memory until something is
//! queued, and gives back what a burst made it grow once it is drained. A plain lock around
//! a `VecDeque` is all the synchronisation it needs: every push and pop is a few instructions
//! inside it, and only one task ever waits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

/// Capacity kept after a burst is drained; a larger buffer is given back.
const KEEP: usize = 64;

/// What an item costs against the queue's byte bound.
pub(crate) trait Weigh {
    fn weight(&self) -> usize;
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// The receiving task, when it waits for an item.
    waker: AtomicWaker,
    /// Whoever waits for the queue to drain (see [`Sender::drained`]).
    drain: Notify,
    bound: usize,
    max_bytes: usize,
}

struct State<T> {
    items: VecDeque<T>,
    /// The queued items' weight.
    bytes: usize,
    senders: usize,
    receiving: bool,
    /// Someone waits for the queue to drain: the receiver tells them once it is a quarter
    /// full or less.
    draining: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while locked leaves a consistent deque: nothing here runs user code.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `state` is a quarter full or less, in items and in bytes.
    fn drained(&self, state: &State<T>) -> bool {
        state.items.len() <= self.bound / 4 && state.bytes <= self.max_bytes / 4
    }

    /// Tells whoever waits for a drain, once the queue is drained or ended.
    fn drain_checked(&self, state: &mut State<T>) {
        if state.draining && (!state.receiving || self.drained(state)) {
            state.draining = false;
            self.drain.notify_waiters();
        }
    }
}

/// A queue of at most `bound` items weighing at most `max_bytes` together, and its two
/// ends. One item is taken whatever it weighs when the queue is empty: a frame larger than
/// the bound is still delivered, but nothing waits behind it.
pub(crate) fn queue<T: Weigh>(bound: usize, max_bytes: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            bytes: 0,
            senders: 1,
            receiving: true,
            draining: false,
        }),
        waker: AtomicWaker::new(),
        drain: Notify::new(),
        bound: bound.max(1),
        max_bytes,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// Why an item was not queued; the item comes back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError<T> {
    Full(T),
    Closed(T),
}

/// The filling end; cloned for every producer.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T: Weigh> Sender<T> {
    /// Queues `item` without waiting; returns how many items the queue then holds.
    pub(crate) fn try_send(&self, item: T) -> Result<usize, TrySendError<T>> {
        self.send_below(self.shared.bound, self.shared.max_bytes, item)
    }

    /// Queues `item` without waiting if the queue is less than three quarters full, in items
    /// and in bytes: what may be dropped (an ephemeral frame) leaves the last quarter to what
    /// may not.
    pub(crate) fn try_send_spare(&self, item: T) -> Result<usize, TrySendError<T>> {
        let Shared {
            bound, max_bytes, ..
        } = *self.shared;
        self.send_below(bound - bound / 4, max_bytes - max_bytes / 4, item)
    }

    fn send_below(
        &self,
        limit: usize,
        max_bytes: usize,
        item: T,
    ) -> Result<usize, TrySendError<T>> {
        let weight = item.weight();
        let mut state = self.shared.lock();
        if !state.receiving {
            return Err(TrySendError::Closed(item));
        }
        let heavy = !state.items.is_empty() && state.bytes.saturating_add(weight) > max_bytes;
        if state.items.len() >= limit || heavy {
            return Err(TrySendError::Full(item));
        }
        state.bytes += weight;
        state.items.push_back(item);
        let depth = state.items.len();
        drop(state);
        self.shared.waker.wake();
        Ok(depth)
    }

    /// Resolves once the queue holds a quarter of its bound or less, in items and in bytes,
    /// or nobody receives any more: when a producer that fell behind may send a catch-up.
    pub(crate) fn drained(&self) -> impl Future<Output = ()> + Send + 'static
    where
        T: Send + 'static,
    {
        let shared = self.shared.clone();
        async move {
            loop {
                let notified = shared.drain.notified();
                let mut notified = std::pin::pin!(notified);
                // Registered before looking, so a drain in between is not missed.
                notified.as_mut().enable();
                {
                    let mut state = shared.lock();
                    if !state.receiving || shared.drained(&state) {
                        return;
                    }
                    state.draining = true;
                }
                notified.await;
            }
        }
    }

    /// Queues `item` past the bound. Only for what is bounded otherwise (one presence refresh
    /// per topic at most, a topic's catch-up).
    /// Returns how many items the queue then holds.
    pub(crate) fn send_over(&self, item: T) -> usize {
        let weight = item.weight();
        let mut state = self.shared.lock();
        if !state.receiving {
            return state.items.len();
        }
        state.bytes += weight;
        state.items.push_back(item);
        let depth = state.items.len();
        drop(state);
        self.shared.waker.wake();
        depth
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            // The receiver learns that nothing more will come.
            self.shared.waker.wake();
        }
    }
}

/// The draining end.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T: Weigh> Receiver<T> {
    /// The next item; `None` once it is empty and every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(ready) = self.ready() {
            return Poll::Ready(ready);
        }
        self.shared.waker.register(cx.waker());
        // Looked at again after registering: an item queued in between has woken nobody.
        match self.ready() {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    /// An item, or `Some(None)` once there will be none, without waiting.
    fn ready(&mut self) -> Option<Option<T>> {
        let mut state = self.shared.lock();
        match state.items.pop_front() {
            Some(item) => {
                state.bytes -= item.weight();
                if state.items.is_empty() && state.items.capacity() > KEEP {
                    state.items = VecDeque::new();
                }
                self.shared.drain_checked(&mut state);
                Some(Some(item))
            }
            None if state.senders == 0 || !state.receiving => Some(None),
            None => None,
        }
    }

    /// The next item if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        self.ready().flatten()
    }
}

impl<T> Receiver<T> {
    /// A handle that ends the queue from outside its receiver.
    pub(crate) fn closer(&self) -> Closer<T> {
        Closer {
            shared: self.shared.clone(),
        }
    }
}

/// Ends a queue whose receiver may never run again (an event stream hyper no longer polls):
/// what it holds is dropped, what comes is refused, and the receiver sees its end.
pub(crate) struct Closer<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Closer<T> {
    pub(crate) fn close(&self) {
        let mut state = self.shared.lock();
        state.receiving = false;
        state.items = VecDeque::new();
        state.bytes = 0;
        self.shared.drain_checked(&mut state);
        drop(state);
        self.shared.waker.wake();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.shared.lock().items.is_empty()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiving = false;
        state.items = VecDeque::new();
        state.bytes = 0;
        self.shared.drain_checked(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    impl Weigh for i32 {
        fn weight(&self) -> usize {
            1
        }
    }

    impl Weigh for &str {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    #[test]
    fn spare_items_stop_at_three_quarters_and_leave_room_for_the_rest() {
        let (tx, mut rx) = queue(8, usize::MAX);
        for n in 0..6 {
            assert_eq!(
                tx.try_send_spare(n),
                Ok(n as usize + 1),
                "the depth after it"
            );
        }
        assert_eq!(tx.try_send_spare(6), Err(TrySendError::Full(6)));
        assert_eq!(tx.try_send(6), Ok(7));
        assert_eq!(tx.try_send(7), Ok(8));
        assert_eq!(tx.try_send(8), Err(TrySendError::Full(8)));
        assert_eq!(rx.try_recv(), Some(0));
        assert_eq!(tx.try_send_spare(9), Err(TrySendError::Full(9)));
    }

    #[test]
    fn items_come_out_in_order_up_to_the_bound() {
        let (tx, mut rx) = queue(2, usize::MAX);
        assert_eq!(tx.try_send(1), Ok(1));
        assert_eq!(tx.try_send(2), Ok(2));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(tx.try_send(3), Ok(2));
        assert_eq!(rx.recv().now_or_never(), Some(Some(2)));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), None);
        assert_eq!(rx.recv().now_or_never(), None, "waits while a sender lives");
    }

    #[test]
    fn it_ends_when_every_sender_is_gone_and_refuses_once_the_receiver_is() {
        let (tx, mut rx) = queue(4, usize::MAX);
        let other = tx.clone();
        tx.try_send("a").unwrap();
        drop(tx);
        other.try_send("b").unwrap();
        drop(other);
        assert_eq!(rx.try_recv(), Some("a"));
        assert_eq!(rx.recv().now_or_never(), Some(Some("b")));
        assert_eq!(rx.recv().now_or_never(), Some(None));

        let (tx, rx) = queue(4, usize::MAX);
        drop(rx);
        assert_eq!(tx.try_send(1), Err(TrySendError::Closed(1)));
    }

    #[test]
    fn nothing_is_held_until_something_is_queued_and_a_burst_is_given_back() {
        let (tx, mut rx) = queue(10_000, usize::MAX);
        assert_eq!(tx.shared.lock().items.capacity(), 0);
        for i in 0..1000 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert!(tx.shared.lock().items.capacity() <= KEEP);
    }

    #[test]
    fn the_bytes_are_bounded_too_and_one_item_passes_whatever_it_weighs() {
        let (tx, mut rx) = queue(100, 10);
        assert_eq!(
            tx.try_send("0123456789abcdef"),
            Ok(1),
            "alone, over the bound"
        );
        assert_eq!(
            tx.try_send("x"),
            Err(TrySendError::Full("x")),
            "nothing behind it"
        );
        assert_eq!(rx.try_recv(), Some("0123456789abcdef"));
        assert_eq!(tx.try_send("0123"), Ok(1));
        assert_eq!(tx.try_send("456789"), Ok(2));
        assert_eq!(
            tx.try_send("a"),
            Err(TrySendError::Full("a")),
            "ten bytes held"
        );
        assert_eq!(rx.try_recv(), Some("0123"));
        assert_eq!(
            tx.try_send_spare("abc"),
            Err(TrySendError::Full("abc")),
            "past 3/4"
        );
        assert_eq!(tx.try_send_spare("ab"), Ok(2));
        assert_eq!(tx.try_send("ab"), Ok(3));
        assert_eq!(tx.shared.lock().bytes, 10);
        while rx.try_recv().is_some() {}
        assert_eq!(tx.shared.lock().bytes, 0, "the count follows what leaves");
    }

    #[test]
    fn a_closer_empties_the_queue_and_ends_it() {
        let (tx, mut rx) = queue(4, usize::MAX);
        tx.try_send(1).unwrap();
        let closer = rx.closer();
        assert!(!closer.is_empty());
        closer.close();
        assert!(closer.is_empty());
        assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
        assert_eq!(
            rx.recv().now_or_never(),
            Some(None),
            "ended while a sender lives"
        );
    }

    #[test]
    fn a_drain_is_told_at_a_quarter_full_or_when_the_receiver_goes() {
        let (tx, mut rx) = queue(8, usize::MAX);
        for n in 0..8 {
            tx.try_send(n).unwrap();
        }
        let mut drained = Box::pin(tx.drained());
        assert_eq!(drained.as_mut().now_or_never(), None, "full");
        for n in 0..5 {
            assert_eq!(rx.try_recv(), Some(n));
            assert_eq!(drained.as_mut().now_or_never(), None, "{} left", 7 - n);
        }
        assert_eq!(rx.try_recv(), Some(5));
        assert_eq!(
            drained.as_mut().now_or_never(),
            Some(()),
            "two left of eight"
        );
        assert_eq!(tx.drained().now_or_never(), Some(()), "drained already");

        for n in 0..8 {
            let _ = tx.try_send(n);
        }
        let mut drained = Box::pin(tx.drained());
        assert_eq!(drained.as_mut().now_or_never(), None);
        drop(rx);
        assert_eq!(drained.as_mut().now_or_never(), Some(()), "nobody reads");
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send_from_another_task() {
        let (tx, mut rx) = queue(4, usize::MAX);
        let sending = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.try_send(7).unwrap();
            tx
        });
        assert_eq!(rx.recv().await, Some(7));
        drop(sending.await.unwrap());
        assert_eq!(rx.recv().await, None);
    }
}
