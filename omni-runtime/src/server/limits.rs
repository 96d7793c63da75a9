//! The limits an endpoint enforces, all configurable.

use std::time::Duration;

/// Limits and timings of an [`Endpoint`](super::Endpoint). Start from [`Limits::default`] and
/// change what you need.
///
/// ```
/// use std::time::Duration;
/// use omni::server::Limits;
///
/// let limits = Limits {
///     max_frame_bytes: 16 * 1024,
///     grace: Duration::from_secs(5),
///     ..Limits::default()
/// };
/// assert_eq!(limits.log_frames, 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest client frame, in bytes (ws message or HTTP body). Larger: `too_large`, then
    /// close 1009 on a WebSocket, 413 on HTTP. Default 64 KiB.
    pub max_frame_bytes: usize,
    /// Frames a connection's outbound queue holds before the connection is closed as a
    /// `slow_consumer`. Ephemeral frames (pushes, presence) stop at three quarters of it: past
    /// that they are dropped and counted, and the connection stays open. Default 1024.
    pub outbound_queue: usize,
    /// Bytes a connection's outbound queue holds, at most, before the connection is closed as
    /// a `slow_consumer` (ephemeral frames stop at three quarters of it, as above). A frame
    /// larger than this is still delivered when nothing is queued before it. This is what
    /// bounds the memory one request or one slow reader can pin: on `POST /http` it bounds
    /// the response, and the frames of the request after the bound was reached are not
    /// handled. Default 4 MiB.
    pub outbound_queue_bytes: usize,
    /// Sequenced frames a session keeps for resume. Default 1024.
    pub log_frames: usize,
    /// Bytes a session's resume log holds at most (the frames' text plus a small handle per
    /// frame); the oldest frames go first. A frame larger than this on its own is delivered
    /// but not kept (nor are the frames before it): a client that must resume across it gets
    /// `reset`. A client away for longer than the log reaches back gets `reset` too.
    /// Default 64 KiB.
    pub log_bytes: usize,
    /// How long a session outlives its connection, waiting for a resume. Default 30 s.
    pub grace: Duration,
    /// How long a session outlives a connection its client closed saying it is leaving: a
    /// WebSocket closed with 1000 or 1001 (a closed tab, `client.close()`), or a connection
    /// whose page said goodbye (`POST /http` with `omni-leave`, as omni.js does on
    /// `pagehide`). Its presence leaves then, rather than after the whole `grace`; a reload
    /// that resumes the session within it causes no leave and no join. A connection that
    /// drops without a word keeps the whole `grace`. At most `grace`. Default 2 s.
    pub linger: Duration,
    /// Topics one session may subscribe to. Default 64.
    pub max_topics: usize,
    /// Client `ref`s remembered per session, so a message resent after a reconnect is
    /// acknowledged again rather than handled twice. Default 1024.
    pub remembered_refs: usize,
    /// The WebSocket read buffer. tungstenite's default (128 KiB) is zero-filled before every
    /// read; a small buffer is faster and holds far less memory per connection. Default 4 KiB.
    pub read_buffer_bytes: usize,
    /// Interval of SSE keep-alive comments. A client that closes its connection is noticed at
    /// once; the keep-alives are what eventually fail on one that vanished without closing.
    /// Default 1 s.
    pub sse_keep_alive: Duration,
    /// How long one write to a client may make no progress before the client is taken to
    /// have stopped reading: it is closed as a `slow_consumer`, whatever its queue holds.
    /// Default 5 s.
    pub write_timeout: Duration,
    /// How long the body of a `POST /http` may take to arrive; a slower one is answered 408
    /// (a client trickling bytes holds no request open for longer). Default 10 s.
    pub body_timeout: Duration,
    /// Components one mux socket may have joined at once; a join past it is refused with
    /// `too_large`. Default 16.
    pub max_components: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            outbound_queue: 1024,
            outbound_queue_bytes: 4 * 1024 * 1024,
            log_frames: 1024,
            log_bytes: 64 * 1024,
            grace: Duration::from_secs(30),
            linger: Duration::from_secs(2),
            max_topics: 64,
            remembered_refs: 1024,
            read_buffer_bytes: 4 * 1024,
            sse_keep_alive: Duration::from_secs(1),
            max_components: 16,
            write_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
        }
    }
}
