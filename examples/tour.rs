//! A tour of what `#[omni::protocol]` generates: run `cargo run --example tour`.
//!
//! It prints the chat protocol's name and schema hash, a few frames in their exact wire form,
//! how bad input is answered, and the TypeScript declarations a browser client is typed with.

use std::collections::BTreeMap;

use omni::{ClientFrame, Protocol, ServerFrame};

// The chat demo's protocol: `ChatMessage`, `Status` and the `Msg` enum.
#[path = "chat/app.rs"]
mod app;
#[cfg(feature = "redis")]
#[path = "chat/store.rs"]
mod store;

use app::{ChatMessage, Msg, MsgFromClient, MsgFromServer, Status};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("protocol {} version {}\n", Msg::NAME, Msg::version());

    let message = ChatMessage {
        id: "m1".into(),
        author: "ada".into(),
        text: "hello".into(),
        status: Status::Sending,
        sent_at: 0,
    };
    // Applied locally, and sent: `into_client` gives the wire form of a `#[client]` variant.
    let local = Msg::Send(message.clone());
    let up = local
        .clone()
        .into_client()
        .expect("Send is a client message");
    let frame = ClientFrame::Msg {
        payload: up,
        reference: Some(1),
        id: None,
    };
    println!("client -> server  {}", frame.encode()?);

    let confirmed = ChatMessage {
        status: Status::Sent,
        sent_at: 1_700_000_000_000,
        ..message
    };
    let down = ServerFrame::Msg {
        topic: None,
        seq: 1,
        payload: MsgFromServer::Upsert(BTreeMap::from([("m1".to_owned(), confirmed)])),
        reference: Some(1),
        id: None,
    };
    println!("server -> client  {}", down.encode()?);
    let presence = ServerFrame::Push {
        payload: MsgFromServer::Presence { online: 2 },
        topic: Some("room".into()),
        id: None,
    };
    println!("server -> client  {}", presence.encode()?);

    let bad = br#"{"type":"msg","payload":{"kind":"Shout"},"ref":2}"#;
    let err = ClientFrame::<MsgFromClient>::decode(bad).unwrap_err();
    println!(
        "\nclient -> server  {}\nserver -> client  {}",
        String::from_utf8_lossy(bad),
        ServerFrame::<()>::from(&err).encode()?
    );

    println!("\n{}", omni::typescript::declarations::<Msg>());
    Ok(())
}
