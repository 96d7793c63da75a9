//! What the Rust client holds for a large room's presence, counted by a global allocator: a
//! server on a raw socket fills a room one join at a time (small frames, so the socket's
//! buffers stay small), and the client's live heap is read before and after.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use omni::Protocol;
use omni::client::Client;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The heap's live bytes.
fn live() -> isize {
    dhat::HeapStats::get().curr_bytes as isize
}

/// A protocol with nothing but presence in use.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Room {
    /// Unused: the room is only watched.
    #[client]
    Hi,
    /// Unused.
    #[server]
    Hello,
}

const ENTRIES: usize = 10_000;

/// How the room's entries look.
#[derive(Clone, Copy, Debug)]
enum Members {
    /// Each a user of its own: a key and a name each.
    Named,
    /// Anonymous visitors: one key, `null` metadata.
    Anonymous,
}

/// The client's live heap growth per entry, once `ENTRIES` have joined.
async fn bytes_per_entry(members: Members) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (go, ready) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let welcome = format!(
            r#"{{"type":"welcome","session":"{:032x}","seq":0,"resumed":false,"protocol":"{}","version":"{}"}}"#,
            7,
            Room::NAME,
            Room::version()
        );
        socket.send(Message::text(welcome)).await.unwrap();
        let state = r#"{"type":"presence_state","topic":"room","state":{}}"#;
        socket.send(Message::text(state)).await.unwrap();
        ready.await.unwrap();
        for i in 0..ENTRIES {
            let (key, meta) = match members {
                Members::Named => (format!("user{i}"), format!(r#"{{"name":"User {i}"}}"#)),
                Members::Anonymous => ("anon".to_owned(), "null".to_owned()),
            };
            let join = format!(
                r#"{{"type":"presence_diff","topic":"room","joins":{{"{key}":[{{"ref":"{i:016x}.1","meta":{meta}}}]}}}}"#
            );
            socket.send(Message::text(join)).await.unwrap();
        }
        // Held open, reading, until the client goes.
        while let Some(Ok(_)) = socket.next().await {}
    });

    let (client, _messages) = Client::<Room>::builder(format!("http://{addr}/omni")).connect();
    until(|| client.session().is_some()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = live();
    go.send(()).unwrap();
    until(|| entries(&client) == ENTRIES).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = live();
    drop(client);
    server.abort();
    (after - before) as f64 / ENTRIES as f64
}

fn entries(client: &Client<Room>) -> usize {
    client.presence("room").values().map(Vec::len).sum()
}

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 10 s");
}

/// The client keeps an entry in about what its strings take: each string once (a ref
/// shared by the index and the entry, a key by its entries, metadata written alike by every
/// entry that has it). Bounds a little over what was measured (`--nocapture` prints it).
#[tokio::test(flavor = "current_thread")]
async fn the_client_holds_a_presence_entry_in_little_more_than_its_strings() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let named = bytes_per_entry(Members::Named).await;
    let anonymous = bytes_per_entry(Members::Anonymous).await;
    println!("client heap per presence entry: named {named:.0} B, anonymous {anonymous:.0} B");
    // Before each string was held once and a lone entry inline: 817 and 252 bytes.
    assert!(named < 400.0, "named: {named:.0} B an entry");
    assert!(anonymous < 230.0, "anonymous: {anonymous:.0} B an entry");
}
