//! A TCP proxy for fault injection: it forwards bytes between clients and a server until told
//! to cut every connection (both ends see it close) or to pause (bytes stop flowing but no
//! connection closes: a half-open link, as when a network path dies silently).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    cuts: watch::Sender<u64>,
    paused: Arc<AtomicBool>,
    muted: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    severed: Arc<AtomicU64>,
    upstream: Arc<Mutex<SocketAddr>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cuts, _) = watch::channel(0u64);
        let paused = Arc::new(AtomicBool::new(false));
        let muted = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let severed = Arc::new(AtomicU64::new(0));
        let upstream = Arc::new(Mutex::new(upstream));
        let proxy = Self {
            addr,
            cuts: cuts.clone(),
            paused: paused.clone(),
            muted: muted.clone(),
            accepted: accepted.clone(),
            severed: severed.clone(),
            upstream: upstream.clone(),
        };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nodelay(true);
                let cut = cuts.subscribe();
                let paused = paused.clone();
                let muted = muted.clone();
                let severed = severed.clone();
                let upstream = *upstream.lock().unwrap();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = server.set_nodelay(true);
                    if pipe(client, server, cut, paused, muted).await == Ended::Cut {
                        severed.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        proxy
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Stops forwarding without closing anything.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        self.muted.store(false, Ordering::SeqCst);
    }

    /// Stops forwarding what the server sends, and only that: a request still reaches the
    /// server and is carried out, but its answer is held (lost, if a cut follows).
    pub fn mute(&self) {
        self.muted.store(true, Ordering::SeqCst);
    }

    /// Sends new connections to `upstream` (as a load balancer moving a client to another
    /// server); open ones stay where they are until cut.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections closed by a cut so far. A cut while nothing is connected closes nothing, so
    /// this, not the number of calls to [`Proxy::cut`], is what a test did to its client.
    pub fn severed(&self) -> u64 {
        self.severed.load(Ordering::Relaxed)
    }
}

/// Why a connection through the proxy ended.
#[derive(PartialEq)]
enum Ended {
    /// One end closed it.
    Closed,
    /// A cut closed it.
    Cut,
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    mut cut: watch::Receiver<u64>,
    paused: Arc<AtomicBool>,
    muted: Arc<AtomicBool>,
) -> Ended {
    // No `borrow_and_update` here: the receiver was subscribed when the client was accepted,
    // so a cut made while the upstream connection was being opened still closes this one.
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (up_held, down_held) = ([&*paused], [&*paused, &*muted]);
    let up = forward(&mut cr, &mut sw, &up_held);
    let down = forward(&mut sr, &mut cw, &down_held);
    // Dropping the halves on return closes both connections.
    tokio::select! {
        _ = up => Ended::Closed,
        _ = down => Ended::Closed,
        _ = cut.changed() => Ended::Cut,
    }
}

async fn forward(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    held: &[&AtomicBool],
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // While paused, bytes are held back: the connection stays open and silent.
        while held.iter().any(|flag| flag.load(Ordering::SeqCst)) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
