//! The storm's clients: `storm-clients URL COUNT RATE [PRESENCE]` runs `COUNT` omni clients of
//! the chat demo (`omni::client`, WebSocket, default backoff and heartbeat: what is measured is
//! whether omni's own client and server settle), starting `RATE` a second, and reports on them.
//! `PRESENCE` is what each asks to be shown of the room's presence: `list` (the default) or
//! `count`.
//!
//! Every 200 ms it prints a `status` line of counters (see [`Counters::line`]). Commands on
//! stdin:
//! - `mark`: the driver is about to kill the server or blip the network; from now on each
//!   client's drop, return, session and `reset` are counted, and the time of its return.
//!   Answered with `marked`, after which the driver may strike.
//! - `send I,J,…`: clients `I`, `J`… (indexes in this process) each send one chat message.
//! - `report`: prints `latencies US,US,…` (send to the `Upsert` that confirms it) and
//!   `acked N` (senders whose message the server acknowledged).
//!
//! The process ends with its stdin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use omni::client::Client;
use omni::presence::{Mode, Modes};
use omni::{SessionId, TransportState};

use crate::chat::{ChatMessage, Msg, MsgFromClient, Status};

/// How often the counters are printed.
const STATUS_EVERY: Duration = Duration::from_millis(200);

/// The window the issue asks about: clients back within it count as back "by 30 s".
const WINDOW: Duration = Duration::from_secs(30);

pub fn main(args: &[String]) {
    let (url, count, rate, presence) = match args {
        [url, count, rate] => (url, count, rate, Mode::List),
        [url, count, rate, mode] if mode == "count" => (url, count, rate, Mode::Count),
        [url, count, rate, mode] if mode == "list" => (url, count, rate, Mode::List),
        _ => panic!("storm-clients URL COUNT RATE [list|count], not {args:?}"),
    };
    let count: usize = count.parse().expect("a number of clients");
    let rate: usize = rate.parse().expect("clients a second");
    crate::runtime().block_on(run(url, count, rate, presence));
}

/// Totals over this process's clients. `connected` is now; the rest count since `mark`.
#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    /// Clients that lost their connection since the mark.
    dropped: AtomicU64,
    /// Clients connected again after that loss.
    back: AtomicU64,
    /// … of which within [`WINDOW`] of the mark.
    back_in_window: AtomicU64,
    /// Milliseconds from the mark to the latest return so far.
    last_back_ms: AtomicU64,
    /// Clients back in the session they had before, with no `reset`.
    resumed: AtomicU64,
    /// Clients that got a `reset` (their session was gone).
    resets: AtomicU64,
    /// Closes with 1008 `slow_consumer`.
    slow: AtomicU64,
    /// Disconnections of any client, at any time.
    disconnects: AtomicU64,
    /// Messages sent by this process's senders whose confirming `Upsert` arrived.
    confirmed: AtomicU64,
}

impl Counters {
    fn line(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "status connected={} dropped={} back={} back_in_window={} last_back_ms={} \
             resumed={} resets={} slow={} disconnects={} confirmed={}",
            get(&self.connected),
            get(&self.dropped),
            get(&self.back),
            get(&self.back_in_window),
            get(&self.last_back_ms),
            get(&self.resumed),
            get(&self.resets),
            get(&self.slow),
            get(&self.disconnects),
            get(&self.confirmed),
        )
    }
}

/// What the process's clients share.
struct Shared {
    counters: Counters,
    /// When the driver said `mark`.
    mark: OnceLock<Instant>,
    latencies: Mutex<Vec<u64>>,
    /// What each client asks to be shown of presence.
    presence: Modes,
}

/// A message a client has sent and waits to see confirmed.
struct Pending {
    id: String,
    sent: Instant,
}

/// One client as the command loop sees it.
struct Handle {
    client: Client<Msg>,
    pending: Arc<Mutex<Option<Pending>>>,
    /// It was told to send.
    sender: bool,
}

/// How often a batch of clients starts.
const RAMP_EVERY: Duration = Duration::from_millis(100);

async fn run(url: &str, count: usize, rate: usize, presence: Mode) {
    let shared = Arc::new(Shared {
        counters: Counters::default(),
        mark: OnceLock::new(),
        latencies: Mutex::new(Vec::new()),
        presence: Modes::new().otherwise(presence),
    });
    let mut handles = Vec::with_capacity(count);
    let batch = (rate / 10).max(1);
    let mut ramp = tokio::time::interval(RAMP_EVERY);
    let mut commands = crate::child::stdin_lines();
    let mut status = tokio::time::interval(STATUS_EVERY);
    loop {
        tokio::select! {
            _ = ramp.tick(), if handles.len() < count => {
                for _ in 0..batch.min(count - handles.len()) {
                    handles.push(join(url, &shared));
                }
            }
            _ = status.tick() => println!("{}", shared.counters.line()),
            command = commands.recv() => {
                let Some(command) = command else { break };
                let (verb, rest) = command.split_once(' ').unwrap_or((&command, ""));
                match verb {
                    "mark" => {
                        let _ = shared.mark.set(Instant::now());
                        println!("marked");
                    }
                    "send" => {
                        for index in rest.split(',').filter_map(|i| i.parse::<usize>().ok()) {
                            if let Some(handle) = handles.get_mut(index) {
                                send(handle, index);
                            }
                        }
                    }
                    "report" => {
                        let latencies = shared.latencies.lock().unwrap().clone();
                        let latencies: Vec<String> =
                            latencies.iter().map(u64::to_string).collect();
                        println!("latencies {}", latencies.join(","));
                        let acked = handles
                            .iter()
                            .filter(|h| h.sender && h.client.unacknowledged() == 0)
                            .count();
                        println!("acked {acked}");
                    }
                    other => eprintln!("storm-clients: unknown command {other:?}"),
                }
            }
        }
    }
    // Without this the runtime would wait for every client task at its end.
    std::process::exit(0);
}

/// Starts one client and the task that follows its messages.
fn join(url: &str, shared: &Arc<Shared>) -> Handle {
    let (client, messages) = Client::<Msg>::builder(url)
        .presence(shared.presence.clone())
        .connect();
    let pending = Arc::new(Mutex::new(None));
    tokio::spawn(follow(messages, shared.clone(), pending.clone()));
    Handle {
        client,
        pending,
        sender: false,
    }
}

/// Client `index` sends one chat message and starts waiting for its confirmation.
fn send(handle: &mut Handle, index: usize) {
    handle.sender = true;
    let id = format!("storm-{}-{index}", std::process::id());
    let message = ChatMessage {
        id: id.clone(),
        author: format!("storm {index}"),
        text: "hello from the storm".into(),
        status: Status::Sending,
        sent_at: 0,
    };
    *handle.pending.lock().unwrap() = Some(Pending {
        id,
        sent: Instant::now(),
    });
    if let Err(err) = handle.client.send(MsgFromClient::Send(message)) {
        eprintln!("storm-clients: client {index} could not send: {err}");
    }
}

/// What one client's task remembers of it.
#[derive(Default)]
struct Seen {
    connected: bool,
    session: Option<SessionId>,
    /// The mark has been taken into account: `before` holds the session at the mark.
    marked: bool,
    before: Option<SessionId>,
    dropped: bool,
    back: bool,
    resumed: bool,
    reset: bool,
}

/// Consumes one client's messages (the presence storm arrives here) and counts what matters.
async fn follow(
    mut messages: omni::client::Messages<Msg>,
    shared: Arc<Shared>,
    pending: Arc<Mutex<Option<Pending>>>,
) {
    let counters = &shared.counters;
    let bump = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
    let mut seen = Seen::default();
    while let Some(msg) = messages.recv().await {
        let mark = shared.mark.get();
        if mark.is_some() && !seen.marked {
            // Nothing happened to this client between the mark and this message, so its
            // session now is the one it had at the mark.
            seen.marked = true;
            seen.before = seen.session;
        }
        match msg {
            Msg::Transport(TransportState::Connected { session }) => {
                if !seen.connected {
                    seen.connected = true;
                    bump(&counters.connected);
                }
                if let Some(mark) = mark
                    && seen.dropped
                    && !seen.back
                {
                    seen.back = true;
                    bump(&counters.back);
                    let after = mark.elapsed();
                    if after <= WINDOW {
                        bump(&counters.back_in_window);
                    }
                    counters
                        .last_back_ms
                        .fetch_max(after.as_millis() as u64, Ordering::Relaxed);
                    // A `reset` follows the welcome when the session is new.
                    if Some(session) == seen.before && !seen.reset {
                        seen.resumed = true;
                        bump(&counters.resumed);
                    }
                }
                seen.session = Some(session);
            }
            Msg::Transport(TransportState::Disconnected { code, reason }) => {
                if seen.connected {
                    seen.connected = false;
                    counters.connected.fetch_sub(1, Ordering::Relaxed);
                }
                bump(&counters.disconnects);
                if seen.marked && code == 1008 && reason.contains("slow_consumer") {
                    bump(&counters.slow);
                }
                if seen.marked && !seen.dropped {
                    seen.dropped = true;
                    bump(&counters.dropped);
                }
            }
            Msg::Transport(TransportState::Reset) if seen.marked && !seen.reset => {
                seen.reset = true;
                bump(&counters.resets);
                if seen.resumed {
                    seen.resumed = false;
                    counters.resumed.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Msg::Upsert(map) => {
                let mut slot = pending.lock().unwrap();
                let confirmed = slot.as_ref().is_some_and(|p| {
                    map.get(&p.id)
                        .is_some_and(|stored| stored.status == Status::Sent)
                });
                if confirmed && let Some(p) = slot.take() {
                    let latency = p.sent.elapsed().as_micros() as u64;
                    shared.latencies.lock().unwrap().push(latency);
                    bump(&counters.confirmed);
                }
            }
            _ => {}
        }
    }
}
