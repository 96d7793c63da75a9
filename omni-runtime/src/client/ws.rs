//! The WebSocket transport: one connection from connect to its end, used by the
//! single-protocol client ([`session`]) and by the mux alike; what the socket carries is a
//! [`Peer`].
//!
//! A connection has a reader and a writer. The writer is a task of its own that owns the
//! socket's sink: it drains its queue, batches, flushes once the queue is empty, sends the
//! close frame, and gives up on a write that makes no progress for the write timeout. The
//! reader (the connection's own task) decodes frames, hands them on, keeps the heartbeat and
//! queues what goes out, without ever waiting for a write. A single task doing both stops
//! reading while a write waits: when both ends write a large backlog at once, both wait for
//! the other to read and neither does, and a heartbeat in that task never fires.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::connect::{self, Config, url_for};
use super::credentials::Credentials;
use super::dialer::{self, Ended, fatal_init};
use super::link::{Link, Step};
use super::options::Settings;
use super::outbox::Batch;
use super::shared::Shared;
use super::tls::{self, Socket};
use super::wire::{self, Frame};
use crate::{Protocol, TransportError};

/// What a socket carries: one protocol's session, or a mux's components.
pub(crate) trait Peer: Send {
    /// Queues what opens every socket, ahead of anything queued: `hello`, or each `join`.
    fn opening(&mut self, out: &Out);

    /// Handles one frame from the server, in the connection's codec. An `Err` ends the
    /// connection with a close frame.
    fn on_frame(
        &mut self,
        bytes: &[u8],
        out: &Out,
    ) -> impl Future<Output = Result<(), Ended>> + Send;

    /// A frame that cannot be read arrived on a connection the server has welcomed us on
    /// (one of the other codec's kind); the connection goes on.
    fn undecodable(&mut self, message: String) -> impl Future<Output = ()> + Send;

    /// Resolves when the application may have something for the socket: a message, room in
    /// the window, a component joined or closed.
    fn wait(&mut self, out: &Out) -> impl Future<Output = ()> + Send;

    /// Queues whatever may go now.
    fn pump(&mut self, out: &Out);

    /// Whether the server welcomed us on this socket.
    fn connected(&self) -> bool;
}

/// The writer's queue.
///
/// Unbounded, so that the reader never waits for a write; what it holds is bounded all the
/// same: at most a window of messages per outbox (the rest wait there), one ping per
/// heartbeat, and the joins and leaves.
pub(crate) struct Out(mpsc::UnboundedSender<Message>);

impl Out {
    pub(crate) fn frame(&self, frame: Frame) {
        // The writer is gone only when the connection is ending anyway.
        let _ = self.0.send(frame.into_message());
    }

    /// Everything the outbox of `shared` lets go now.
    pub(crate) fn outbox(&self, shared: &Shared) {
        for frame in shared.outbox.take_unsent(Batch::ALL) {
            self.frame(frame);
        }
    }

    fn ping(&self) {
        let _ = self.0.send(Message::Ping(Default::default()));
    }
}

/// The writer task; aborted when dropped, so that no way out of a connection leaves it
/// behind on a stuck socket.
struct Writer {
    task: JoinHandle<Result<(), String>>,
    queue: mpsc::UnboundedSender<Message>,
    timeout: Duration,
}

impl Writer {
    fn spawn(sink: SplitSink<Socket, Message>, timeout: Duration) -> (Out, Self) {
        let (queue, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write(sink, rx, timeout));
        let writer = Self {
            task,
            queue: queue.clone(),
            timeout,
        };
        (Out(queue), writer)
    }

    /// Resolves when the writer gave up, with why.
    async fn failed(&mut self) -> String {
        match (&mut self.task).await {
            Ok(Ok(())) => "the writer stopped".into(),
            Ok(Err(reason)) => reason,
            Err(err) => err.to_string(),
        }
    }

    /// Sends a close frame after what is queued, and waits (at most the write timeout) for
    /// it to go. Without a code it says the client means to come back; `CloseCode::Normal`
    /// says it is leaving, and the server lets its session (and presence) go soon after.
    async fn close(mut self, code: Option<CloseCode>, ended: Ended) -> Ended {
        let frame = code.map(|code| CloseFrame {
            code,
            reason: ended.reason.as_str().into(),
        });
        let _ = self.queue.send(Message::Close(frame));
        let _ = tokio::time::timeout(self.timeout, &mut self.task).await;
        ended
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The writer task: writes what the reader queues until the connection ends.
///
/// Every feed and flush moves at most about one write buffer of bytes, so a timeout on each
/// is a timeout on progress: a slow reader on the other end is waited for, one that stopped
/// reading is not.
async fn write(
    mut sink: SplitSink<Socket, Message>,
    mut queue: mpsc::UnboundedReceiver<Message>,
    timeout: Duration,
) -> Result<(), String> {
    while let Some(mut message) = queue.recv().await {
        loop {
            if let Message::Close(frame) = message {
                // Queued first: `close` alone would send a close frame without a code.
                within(timeout, sink.feed(Message::Close(frame))).await?;
                return within(timeout, sink.close()).await;
            }
            within(timeout, sink.feed(message)).await?;
            match queue.try_recv() {
                Ok(next) => message = next,
                Err(_) => break,
            }
        }
        within(timeout, sink.flush()).await?;
    }
    Ok(())
}

async fn within(
    timeout: Duration,
    write: impl Future<Output = Result<(), WsError>>,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("a write made no progress for {timeout:?}")),
    }
}

/// How a WebSocket is opened: where, with what, through what.
pub(crate) struct Dialing<'a> {
    pub(crate) url: &'a reqwest::Url,
    pub(crate) settings: &'a Settings,
    pub(crate) tls: &'a tls::Connector,
    pub(crate) credentials: &'a Credentials,
}

/// One WebSocket connection carrying `peer`, from connect to its end.
pub(crate) async fn connection(
    peer: &mut impl Peer,
    dialing: Dialing<'_>,
    mut closed: watch::Receiver<bool>,
) -> Ended {
    let Dialing {
        url,
        settings,
        tls,
        credentials,
    } = dialing;
    let headers = match credentials.headers(settings.connect_timeout).await {
        Ok(headers) => headers,
        Err(ended) => return ended,
    };
    let config = WebSocketConfig::default().read_buffer_size(settings.read_buffer);
    let connect = tls.websocket(url, headers, config);
    let socket = match tokio::time::timeout(settings.connect_timeout, connect).await {
        Err(_) => return Ended::dropped("connect timed out", false),
        Ok(Err(WsError::Http(response))) => {
            let status = response.status().as_u16();
            let reason = format!("handshake refused with HTTP {status}");
            return Ended::refused(status, reason, false);
        }
        Ok(Err(err)) => return Ended::failed(&err),
        Ok(Ok(socket)) => socket,
    };
    let (sink, mut stream) = socket.split();
    let (out, mut writer) = Writer::spawn(sink, settings.write_timeout);
    peer.opening(&out);
    let codec = settings.codec;

    let heartbeat = settings.heartbeat;
    let mut last_heard = Instant::now();
    let mut ticks = tokio::time::interval(heartbeat.interval);
    ticks.tick().await;
    let closed = dialer::closed(&mut closed);
    tokio::pin!(closed);
    let ended = loop {
        tokio::select! {
            incoming = stream.next() => {
                last_heard = Instant::now();
                let (bytes, binary) = match &incoming {
                    Some(Ok(Message::Text(text))) => (text.as_bytes(), false),
                    Some(Ok(Message::Binary(bytes))) => (&bytes[..], true),
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame.as_ref().map_or((1005, String::new()), |f| {
                            (u16::from(f.code), f.reason.to_string())
                        });
                        break Ended { code, reason, connected: false, fatal: None, unauthorized: false };
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => break Ended::dropped(err.to_string(), false),
                    None => break Ended::dropped("connection closed", false),
                };
                if wire::carries(codec, binary) {
                    if let Err(ended) = peer.on_frame(bytes, &out).await {
                        break writer.close(None, ended).await;
                    }
                } else if peer.connected() {
                    peer.undecodable(wire::foreign(codec, binary)).await;
                } else {
                    // Before any welcome: a server that does not speak the codec asked for
                    // (one from before MessagePack answers binary frames with a text
                    // `bad_frame`, and ignores `codec=msgpack`). Waiting would wait for ever.
                    let answered = if binary { "binary frames" } else { "text frames" };
                    let message = wire::refused(codec, answered);
                    let ended = Ended::fatal(TransportError::Init { message }, false);
                    break writer.close(None, ended).await;
                }
            }
            () = peer.wait(&out) => peer.pump(&out),
            _ = ticks.tick() => {
                // A half-open connection sends no error: silence is the only sign. Measured
                // here, so that a write stuck on a peer that is gone does not hide it.
                if last_heard.elapsed() > heartbeat.interval + heartbeat.timeout {
                    break Ended::dropped("heartbeat timed out", false);
                }
                out.ping();
            }
            reason = writer.failed() => break Ended::dropped(reason, false),
            () = &mut closed => {
                break writer.close(Some(CloseCode::Normal), Ended::closed(false)).await;
            }
        }
    };
    ended.connected_if(peer.connected())
}

/// One WebSocket connection of a single-protocol client, resuming its session.
pub(crate) async fn session<P: Protocol + Send>(link: &mut Link<P>, config: &Config) -> Ended {
    let codec = config.settings.codec;
    let url = match url_for(&config.url, "ws", true, &link.connect_params(codec)) {
        Ok(url) => url,
        Err(message) => return fatal_init(message),
    };
    let closed = link.shared.closed.subscribe();
    let mut session = Session {
        link,
        welcomed: false,
    };
    let dialing = Dialing {
        url: &url,
        settings: &config.settings,
        tls: &config.tls,
        credentials: &config.credentials,
    };
    connection(&mut session, dialing, closed).await
}

/// A single protocol's session on a socket.
struct Session<'a, P: Protocol> {
    link: &'a mut Link<P>,
    welcomed: bool,
}

impl<P: Protocol + Send> Peer for Session<'_, P> {
    fn opening(&mut self, out: &Out) {
        // The server refuses a client built from another version of the protocol enum.
        out.frame(connect::hello::<P>(
            self.link.shared.codec,
            None,
            None,
            self.link.shared.traceparent,
        ));
    }

    async fn on_frame(&mut self, bytes: &[u8], out: &Out) -> Result<(), Ended> {
        match self.link.receive(bytes).await {
            Step::Continue => Ok(()),
            Step::Welcomed => {
                self.welcomed = true;
                // Everything unanswered goes again on a new connection; the server
                // acknowledges what it already handled without redoing it.
                self.link.shared.outbox.reconnected();
                // The connect hook's messages go first.
                for frame in self.link.take_greeting() {
                    out.frame(frame);
                }
                out.outbox(&self.link.shared);
                Ok(())
            }
            Step::Gap => Err(Ended::dropped("missed frames; resuming", self.welcomed)),
            Step::Fatal(error) => Err(Ended::fatal(error, self.welcomed)),
        }
    }

    async fn undecodable(&mut self, message: String) {
        self.link.undecodable(message).await;
    }

    async fn wait(&mut self, _: &Out) {
        self.link.shared.wake.notified().await;
    }

    fn pump(&mut self, out: &Out) {
        if self.welcomed {
            out.outbox(&self.link.shared);
        }
    }

    fn connected(&self) -> bool {
        self.welcomed
    }
}
