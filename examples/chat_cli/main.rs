//! A terminal chat against the chat demo, written as an Elm program: `init` makes the model,
//! `update` applies each message (the server's, the transport's, and the ones it dispatches
//! itself), `view` says what the terminal should show, and [`Terminal`] prints what it has
//! not printed yet.
//!
//! ```text
//! cargo run --example chat_cli -- --url http://127.0.0.1:3000/omni --author ada
//! cargo run --example chat_cli -- --url http://127.0.0.1:3000/omni --author ada --count 100
//! ```
//!
//! Type a line to send it; each stored message is printed once, as `author: text`, the room's
//! history oldest first. When input ends, it leaves once the server has stored what was typed.
//! `--transport ws|http|sse` picks the transport (default `ws`; over `http`, which has no
//! connection for the room to push on, it fetches the room every second). With `--count N`
//! it prints no chat: it sends N messages, waits until the server has stored every one,
//! prints `N confirmed` and exits 0.
//!
//! An `https://` URL is reached through TLS, trusting the system's roots (or those of
//! `SSL_CERT_FILE`) and the PEM certificates of `--ca-cert PATH` (a private CA's). A server
//! it does not trust, like any refusal that retrying cannot change (a 401 included), ends it
//! with a non-zero exit and the reason.

#[path = "../chat/app.rs"]
mod app;
#[cfg(feature = "redis")]
#[path = "../chat/store.rs"]
mod store;

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use app::{ChatMessage, Msg, Status};
use omni::TransportState;
use omni::client::{Client, SendError, Transport};
use tokio::io::AsyncBufReadExt;

struct Args {
    url: String,
    author: String,
    transport: Transport,
    count: Option<u32>,
    ca_cert: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut author = None;
    let mut transport = Transport::Ws;
    let mut count = None;
    let mut ca_cert = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => url = Some(value()?),
            "--author" => author = Some(value()?),
            "--transport" => transport = value()?.parse()?,
            "--count" => {
                let n = value()?;
                count = Some(n.parse().map_err(|_| format!("`{n}` is not a count"))?);
            }
            "--ca-cert" => ca_cert = Some(value()?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Args {
        url: url.unwrap_or_else(|| "http://127.0.0.1:3000/omni".into()),
        author: author.ok_or("--author NAME is required")?,
        transport,
        count,
        ca_cert,
    })
}

/// Everything the terminal knows.
struct Model {
    /// The room's messages by id: stored ones, and ours until the server stores them.
    messages: BTreeMap<String, ChatMessage>,
    /// Ours that the server has not stored yet.
    waiting: HashSet<String>,
    online: Option<u32>,
    /// The latest change of the connection.
    transport: Option<TransportState>,
    /// `--count` prints no chat.
    quiet: bool,
}

/// Over plain HTTP the room's messages never come by themselves: an HTTP request is not a
/// connection, so the chat handler's `connected` hook, which subscribes to the room and sends
/// its history, does not run. There the room is fetched at start and then this often.
const REFRESH: Duration = Duration::from_secs(1);

/// The model, and what to dispatch at start: the `--count` messages, or over HTTP the room.
fn init(args: &Args) -> (Model, Vec<Msg>) {
    let model = Model {
        messages: BTreeMap::new(),
        waiting: HashSet::new(),
        online: None,
        transport: None,
        quiet: args.count.is_some(),
    };
    let start = match args.count {
        Some(count) => (1..=count)
            .map(|i| message(&args.author, format!("message {i} of {count}")))
            .collect(),
        None if args.transport == Transport::Http => vec![Msg::FetchAll],
        // Online under our name: said again to every new session (see `main`).
        None => vec![Msg::SetName(args.author.clone())],
    };
    (model, start)
}

fn update(model: &mut Model, msg: Msg) {
    match msg {
        // Our own, applied as it is dispatched: shown once the server stores it.
        Msg::Send(message) => {
            model.waiting.insert(message.id.clone());
            model.messages.insert(message.id.clone(), message);
        }
        Msg::Upsert(stored) => {
            for (id, message) in stored {
                if message.status == Status::Sent {
                    model.waiting.remove(&id);
                }
                model.messages.insert(id, message);
            }
        }
        Msg::Presence { online } => model.online = Some(online),
        // Ours, for the server: who we are online as.
        Msg::SetName(_) => {}
        // Files are the page's: a terminal neither shares nor shows them.
        Msg::Share(_) | Msg::Shared { .. } => {}
        Msg::Transport(state) => {
            // What the server sent before is gone; its snapshot follows. Ours that wait for
            // the server are still queued, and stay.
            if matches!(
                &state,
                TransportState::Reset | TransportState::TopicReset { .. }
            ) {
                model
                    .messages
                    .retain(|id, _| model.waiting.contains(id.as_str()));
            }
            model.transport = Some(state);
        }
        Msg::DraftChanged(_) | Msg::FetchAll => {}
    }
}

/// What the terminal should show.
struct Screen {
    /// Stored messages, oldest first, by id.
    chat: Vec<(String, String)>,
    online: Option<String>,
    transport: Option<String>,
}

fn view(model: &Model) -> Screen {
    let mut stored: Vec<&ChatMessage> = if model.quiet {
        Vec::new()
    } else {
        model
            .messages
            .values()
            .filter(|m| m.status == Status::Sent)
            .collect()
    };
    // Ids are random: the order is the server's clock, ties broken by id so it is stable.
    stored.sort_by(|a, b| (a.sent_at, &a.id).cmp(&(b.sent_at, &b.id)));
    Screen {
        chat: stored
            .into_iter()
            .map(|m| (m.id.clone(), format!("{}: {}", m.author, m.text)))
            .collect(),
        online: model
            .online
            .filter(|_| !model.quiet)
            .map(|n| format!("-- {n} online")),
        transport: model.transport.as_ref().map(describe),
    }
}

/// The printed lines: a terminal only appends, so each message is printed the first time a
/// screen shows it, and never again when the server sends it again (its reply and the room
/// both carry a sent message; a reset sends all of them again).
#[derive(Default)]
struct Terminal {
    printed: HashSet<String>,
    online: Option<String>,
    transport: Option<String>,
}

impl Terminal {
    fn render(&mut self, screen: Screen) {
        for (id, line) in screen.chat {
            if self.printed.insert(id) {
                println!("{line}");
            }
        }
        if let Some(line) = screen
            .online
            .filter(|line| self.online.as_ref() != Some(line))
        {
            println!("{line}");
            self.online = Some(line);
        }
        // Transport changes go to stderr, so that stdout is the room alone.
        if let Some(line) = screen
            .transport
            .filter(|line| self.transport.as_ref() != Some(line))
        {
            eprintln!("-- {line}");
            self.transport = Some(line);
        }
    }
}

/// A message of ours, with an id nobody else will pick.
fn message(author: &str, text: String) -> Msg {
    Msg::Send(ChatMessage {
        id: format!("{:016x}", rand::random::<u64>()),
        author: author.to_owned(),
        text,
        status: Status::Sending,
        sent_at: 0,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            eprintln!(
                "chat_cli: {problem}\nusage: chat_cli --url URL --author NAME [--transport ws|http|sse] [--count N] [--ca-cert PATH]"
            );
            return ExitCode::from(2);
        }
    };
    let mut builder = Client::<Msg>::builder(&args.url);
    if let Some(path) = &args.ca_cert {
        match std::fs::read(path) {
            Ok(pem) => builder = builder.root_certificate(pem),
            Err(err) => {
                eprintln!("chat_cli: --ca-cert {path}: {err}");
                return ExitCode::from(2);
            }
        }
    }
    let (client, mut messages) = builder
        .transport(args.transport)
        // `--count` queues every message at once.
        .queue(args.count.unwrap_or(0).max(1024) as usize)
        .connect();
    let (mut model, start) = init(&args);
    let mut terminal = Terminal::default();
    for msg in start {
        let (msg, sent) = client.dispatch(msg);
        if let Some(Err(err)) = sent {
            if matches!(err, SendError::Refused(_)) {
                // Refused before we got here (a server certificate not trusted, say): the
                // states that led there are still on the stream, which ends after them.
                while let Some(msg) = messages.recv().await {
                    update(&mut model, msg);
                    terminal.render(view(&model));
                }
            }
            eprintln!("chat_cli: {err}");
            return ExitCode::FAILURE;
        }
        update(&mut model, msg);
    }

    let mut input = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // `--count` reads no input; otherwise, once input ends, we leave when nothing of ours waits.
    let mut reading = args.count.is_none();
    let refreshing = args.count.is_none() && args.transport == Transport::Http;
    let mut refresh = tokio::time::interval_at(tokio::time::Instant::now() + REFRESH, REFRESH);
    let mut named = None;
    loop {
        let msg = tokio::select! {
            line = input.next_line(), if reading => match line {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => dispatch(&client, message(&args.author, line)),
                Ok(None) | Err(_) => {
                    reading = false;
                    if model.waiting.is_empty() {
                        client.close();
                    }
                    continue;
                }
            },
            _ = refresh.tick(), if refreshing => dispatch(&client, Msg::FetchAll),
            msg = messages.recv() => match msg {
                Some(Msg::Transport(TransportState::Connected { session }))
                    if args.count.is_none() && named != Some(session) =>
                {
                    // A new session knows us as nobody yet (a resumed one still knows).
                    if named.is_some() {
                        dispatch(&client, Msg::SetName(args.author.clone()));
                    }
                    named = Some(session);
                    Msg::Transport(TransportState::Connected { session })
                }
                Some(msg) => msg,
                // Closed by us, or refused for good (its error came last).
                None => break,
            },
        };
        update(&mut model, msg);
        terminal.render(view(&model));

        if let Some(TransportState::Incompatible { reason }) = &model.transport {
            eprintln!("chat_cli: this build is no longer served: {reason}");
            return ExitCode::FAILURE;
        }
        if let Some(TransportState::Unauthorized { reason }) = &model.transport {
            // It has no credentials to offer instead: waiting would be forever.
            eprintln!("chat_cli: not authorized: {reason}");
            return ExitCode::FAILURE;
        }
        if model.waiting.is_empty() {
            if let Some(count) = args.count {
                println!("{count} confirmed");
                client.close();
                return ExitCode::SUCCESS;
            }
            if !reading {
                client.close();
            }
        }
    }
    if let Some(TransportState::Error(err)) = &model.transport {
        eprintln!("chat_cli: giving up: {err}");
        return ExitCode::FAILURE;
    }
    if args.count.is_some() || !model.waiting.is_empty() {
        eprintln!(
            "chat_cli: {} messages were never confirmed",
            model.waiting.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Sends `msg` if it is for the server, and hands it back to be applied here all the same.
fn dispatch(client: &Client<Msg>, msg: Msg) -> Msg {
    let (msg, sent) = client.dispatch(msg);
    if let Some(Err(err)) = sent {
        eprintln!("-- not sent: {err}");
    }
    msg
}

fn describe(state: &TransportState) -> String {
    match state {
        TransportState::Connecting => "connecting".into(),
        TransportState::Connected { session } => format!("connected (session {session})"),
        TransportState::Disconnected { code, reason } => format!("disconnected ({code}: {reason})"),
        TransportState::Reconnecting { attempt, delay } => {
            format!(
                "reconnecting in {} ms (attempt {attempt})",
                delay.as_millis()
            )
        }
        TransportState::Reset => "the server lost our session; starting over".into(),
        TransportState::TopicReset { topic } => {
            format!("missed too much of `{topic}`; reloading it")
        }
        TransportState::Incompatible { reason } => {
            format!("this build is no longer served: {reason}")
        }
        TransportState::Unauthorized { reason } => format!("not authorized: {reason}"),
        TransportState::Error(err) => format!("error: {err}"),
        // A state added after this client was written.
        other => format!("{other:?}"),
    }
}
