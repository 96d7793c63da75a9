//! A terminal chat against the chat demo.
//!
//! ```text
//! cargo run --example chat_cli -- --url http://127.0.0.1:3000/omni --author ada
//! cargo run --example chat_cli -- --url http://127.0.0.1:3000/omni --author ada --count 100
//! ```
//!
//! Type a line to send it. `--transport ws|http|sse` picks the transport (default `ws`).
//! With `--count N` it sends N messages, waits until the server has confirmed every one (a
//! `Sent` upsert for its id), prints `N confirmed` and exits 0.

#[path = "../chat/app.rs"]
mod app;

use std::collections::HashSet;
use std::process::ExitCode;

use app::{ChatMessage, Msg, MsgFromClient, Status};
use omni::client::{Client, Transport};
use omni::{TransportError, TransportState};
use tokio::io::AsyncBufReadExt;

struct Args {
    url: String,
    author: String,
    transport: Transport,
    count: Option<u32>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut author = None;
    let mut transport = Transport::Ws;
    let mut count = None;
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
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Args {
        url: url.unwrap_or_else(|| "http://127.0.0.1:3000/omni".into()),
        author: author.ok_or("--author NAME is required")?,
        transport,
        count,
    })
}

/// A message id nobody else will pick.
fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn message(author: &str, text: String) -> ChatMessage {
    ChatMessage {
        id: new_id(),
        author: author.to_owned(),
        text,
        status: Status::Sending,
        sent_at: 0,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            eprintln!(
                "chat_cli: {problem}\nusage: chat_cli --url URL --author NAME [--transport ws|http|sse] [--count N]"
            );
            return ExitCode::from(2);
        }
    };
    let (client, mut messages) = Client::<Msg>::builder(&args.url)
        .transport(args.transport)
        // `--count` queues every message at once.
        .queue(args.count.unwrap_or(0).max(1024) as usize)
        .connect();

    let mut waiting = HashSet::new();
    if let Some(count) = args.count {
        for i in 1..=count {
            let msg = message(&args.author, format!("message {i} of {count}"));
            waiting.insert(msg.id.clone());
            if let Err(err) = client.send(MsgFromClient::Send(msg)) {
                eprintln!("chat_cli: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let client = client.clone();
        let author = args.author.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim().is_empty() {
                    continue;
                }
                if let Err(err) = client.send(MsgFromClient::Send(message(&author, line))) {
                    eprintln!("-- not sent: {err}");
                }
            }
            client.close();
        });
    }

    while let Some(msg) = messages.recv().await {
        match msg {
            Msg::Upsert(map) => {
                for m in map.values() {
                    if args.count.is_none() {
                        println!("{}: {}", m.author, m.text);
                    }
                    if m.status == Status::Sent {
                        waiting.remove(&m.id);
                    }
                }
                if let Some(count) = args.count
                    && waiting.is_empty()
                {
                    println!("{count} confirmed");
                    client.close();
                    return ExitCode::SUCCESS;
                }
            }
            Msg::Presence { online } => {
                if args.count.is_none() {
                    println!("-- {online} online");
                }
            }
            Msg::Transport(state) => {
                eprintln!("-- {}", describe(&state));
                if let TransportState::Error(TransportError::Rejected { code, .. }) = &state
                    && *code == omni::ErrorCode::VersionMismatch
                {
                    return ExitCode::FAILURE;
                }
            }
            Msg::DraftChanged(_) | Msg::Send(_) | Msg::FetchAll => {}
        }
    }
    // The stream ended: closed by us (stdin ended) or refused for good.
    if args.count.is_some() {
        eprintln!("chat_cli: {} messages were never confirmed", waiting.len());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
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
        TransportState::Error(err) => format!("error: {err}"),
    }
}
