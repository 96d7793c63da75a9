//! `GET /sse`: server frames as a `text/event-stream`, `welcome` first. The uplink is
//! `POST /http` with the stream's session in the `omni-session` header.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::Value;
use tokio::sync::watch;
use tracing::Instrument;

use super::conn::{ConnRx, Item, Stop, shutting_down};
use super::encoded::Outgoing;
use super::endpoint::Shared;
use super::metrics::{Metrics, Transport};
use super::query::Follow;
use super::queue::Closer;
use super::session::{Attached, Sessions};
use super::shutdown::tracker::Open;
use crate::wire::{Codec, TraceParent};
use crate::{Dispatch, ErrorCode, Protocol, Seq, ServerFrame, SessionId};

/// Opens an event stream on a new session, or on `resume`'s session from just after its
/// sequence number.
pub(crate) async fn get<P, H>(
    hub: Arc<Sessions<P, H>>,
    resume: Option<(SessionId, Seq)>,
    follow: Follow,
    extensions: axum::http::Extensions,
    trace: Option<TraceParent>,
) -> Response
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let shared = hub.shared.clone();
    shared.metrics.opened(Transport::Sse, Codec::Json);
    let (mut conn, rx) = shared.connection(true);
    conn.transport = Transport::Sse;
    conn.show_presence_as(follow.presence);
    conn.client = follow.client;
    let conn_id = conn.id;
    let span = tracing::info_span!(
        "omni.sse",
        conn = conn_id,
        traceparent = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some(parent) = trace {
        super::trace::adopt(&span, parent);
    }
    let attached = Attached::open(hub, resume, conn, extensions, Value::Null, follow.topics)
        .instrument(span.clone())
        .await;
    let session = attached.session().id();
    span.in_scope(|| tracing::debug!(%session, "sse stream opened"));
    let keep_alive = KeepAlive::new().interval(shared.limits.sse_keep_alive);
    let guard = Arc::new(Mutex::new(Guard {
        attached: Some(attached),
        metrics: shared.clone(),
    }));
    let taken = Arc::new(AtomicU64::new(0));
    tokio::spawn(
        watchdog(
            rx.stop.clone(),
            rx.frames.closer(),
            taken.clone(),
            guard.clone(),
            shared.clone(),
        )
        .instrument(span),
    );
    let stream = events(EventState {
        rx,
        replay: VecDeque::new(),
        shutdown: shared.shutdown.subscribe(),
        _open: shared.tracker.enter(),
        _release: Release(guard),
        taken,
        done: false,
    });
    Sse::new(stream).keep_alive(keep_alive).into_response()
}

/// Reads a resume point from `?session=&after=` or, for `after`, the `Last-Event-ID` header.
pub(crate) fn resume_point(
    session: Option<SessionId>,
    after: Option<Seq>,
    headers: &HeaderMap,
) -> Option<(SessionId, Seq)> {
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    session.map(|id| (id, after.or(last_event).unwrap_or(0)))
}

/// The state behind one event stream.
struct EventState<P: Protocol, H>
where
    P: Dispatch<H>,
    H: Send + 'static,
{
    rx: ConnRx,
    /// Frames of a replay not yet written.
    replay: VecDeque<Outgoing>,
    shutdown: watch::Receiver<bool>,
    /// Counted while the stream lives, for a graceful shutdown to wait for.
    _open: Open,
    /// Dropped with the stream: that is the disconnect.
    _release: Release<P, H>,
    /// Items taken off the queue, for the watchdog to see progress.
    taken: Arc<AtomicU64>,
    done: bool,
}

/// Releases the connection when the stream is dropped, unless the watchdog did first.
struct Release<P: Protocol, H>(Arc<Mutex<Guard<P, H>>>)
where
    P: Dispatch<H>,
    H: Send + 'static;

impl<P, H> Drop for Release<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    fn drop(&mut self) {
        release(&self.0);
    }
}

fn release<P, H>(guard: &Mutex<Guard<P, H>>)
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    guard
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .release();
}

/// Ends a stream that hyper no longer writes: one whose client stopped reading shows only as a
/// body that is not polled, with its frames, session and presence held for as long as the
/// socket lives. Like a WebSocket's writer, it ends the connection once it is a slow consumer
/// (its queue overflowed), or once nothing was taken off a non-empty queue for the write
/// timeout: the queue is emptied and the session detached (it then expires after its grace,
/// as after any disconnect). It ends by itself once the connection is gone.
async fn watchdog<P, H>(
    mut stop: watch::Receiver<Option<Stop>>,
    closer: Closer<Item>,
    taken: Arc<AtomicU64>,
    guard: Arc<Mutex<Guard<P, H>>>,
    shared: Arc<Shared>,
) where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let timeout = shared.limits.write_timeout;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + timeout, timeout);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = taken.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
                if *stop.borrow_and_update() == Some(Stop::SLOW_CONSUMER) {
                    // A stream still read gets its `slow_consumer` error and ends itself.
                    tokio::time::sleep(timeout).await;
                    break;
                }
            }
            _ = tick.tick() => {
                let now = taken.load(Ordering::Relaxed);
                if now == seen && !closer.is_empty() {
                    tracing::warn!(?timeout, "an event stream made no progress: closing it");
                    Metrics::bump(&shared.metrics.slow_consumers);
                    Metrics::bump(&shared.metrics.write_timeouts);
                    break;
                }
                seen = now;
            }
        }
    }
    closer.close();
    release(&guard);
}

/// Detaches the connection when the stream is dropped, which is how a vanished client shows:
/// hyper drops the body once writing to the socket fails (at the latest at the next
/// keep-alive); or when the watchdog finds the stream no longer read.
struct Guard<P: Protocol, H>
where
    P: Dispatch<H>,
    H: Send + 'static,
{
    attached: Option<Attached<P, H>>,
    metrics: Arc<Shared>,
}

impl<P, H> Guard<P, H>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    /// Detaches the connection, once.
    fn release(&mut self) {
        let Some(attached) = self.attached.take() else {
            return;
        };
        self.metrics.metrics.closed(Transport::Sse, Codec::Json);
        tracing::debug!(session = %attached.session().id(), "sse stream closed");
        // The disconnect hook is async; a runtime is always present where hyper drops bodies.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(attached.closed());
        }
    }
}

/// One frame as an event: `event: <type>`, `id: <seq>` for sequenced frames, `data: <frame>`.
fn event(frame: &Outgoing) -> Event {
    let event = Event::default().event(frame.kind()).data(frame.text());
    match frame.seq() {
        Some(seq) => event.id(seq.to_string()),
        None => event,
    }
}

fn events<P, H>(state: EventState<P, H>) -> impl Stream<Item = Result<Event, Infallible>>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        // Asked for the next event: hyper has taken the last one.
        state.taken.fetch_add(1, Ordering::Relaxed);
        if let Some(frame) = state.replay.pop_front() {
            return Some((Ok(event(&frame)), state));
        }
        let event = tokio::select! {
            biased;
            item = state.rx.frames.recv() => match item.map(Item::ready) {
                Some(Item::Frame(frame, _)) => event(&frame),
                Some(Item::Replay(frames, _)) => {
                    state.replay.extend(frames);
                    match state.replay.pop_front() {
                        Some(frame) => event(&frame),
                        None => Event::default().comment(""),
                    }
                }
                Some(Item::Close(_) | Item::Left(_)) | None => return None,
                // Made ready above.
                Some(Item::Refresh(..)) => Event::default().comment(""),
            },
            _ = state.rx.stop.changed() => {
                state.done = true;
                let stop = *state.rx.stop.borrow_and_update();
                if stop != Some(Stop::SLOW_CONSUMER) {
                    return None;
                }
                let frame = ServerFrame::<()>::error(
                    ErrorCode::SlowConsumer,
                    "the stream could not keep up with its messages",
                );
                Event::default().event("error").data(frame.encode().unwrap_or_default())
            }
            _ = shutting_down(&mut state.shutdown) => return None,
        };
        Some((Ok(event), state))
    })
}

/// The `400` a stream asked for in a binary codec gets: an event stream carries text.
pub(crate) fn binary_refused() -> Response {
    let message = "Server-Sent Events carry text, so an SSE stream is always JSON; \
                   MessagePack is available on /ws, /mux and POST /http";
    (StatusCode::BAD_REQUEST, message).into_response()
}
