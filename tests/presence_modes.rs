//! Presence modes over real sockets: a client that asks for a topic's count is sent
//! `presence_count` frames and never the list, one that asks for nothing is sent no presence
//! frame, the rest keep the list; the Rust client and a mux component ask the same way; a
//! counting client that falls behind is sent a count again, never a list; and a count
//! subscriber of a room of ten thousand is sent a few dozen bytes where a list subscriber is
//! sent hundreds of KiB.

mod common;

use std::time::Duration;

use common::feed::urlencode;
use common::{Client, PATIENCE, serve};
use omni::client::Client as RustClient;
use omni::presence::{Count, Mode, Modes};
use omni::pubsub::LocalPubSub;
use omni::server::{Endpoint, Limits, Mux};
use omni::token::Keys;
use omni::{Context, HandlerResult, ServerFrame};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Hall {
    /// Be seen as `name`.
    #[client]
    Arrive(String),
    /// Track this session under `n` more keys: a crowd from one socket.
    #[client]
    Crowd(u32),
    /// Say something to the whole room (a `push` to each of its subscribers).
    #[client]
    Shout(String),
    #[server]
    Noted,
    #[server]
    Heard(String),
}

const ROOM: &str = "hall";

/// Subscribes to the room on connect; tracks what it is asked to.
struct Guest;

impl HallHandler for Guest {
    async fn connected(&mut self, cx: &mut Context<Hall>) -> HandlerResult {
        cx.subscribe(ROOM);
        Ok(())
    }

    async fn arrive(&mut self, cx: &mut Context<Hall>, name: String) -> HandlerResult {
        cx.track(ROOM, &name, serde_json::json!({ "name": name }));
        cx.send(HallFromServer::Noted);
        Ok(())
    }

    async fn shout(&mut self, cx: &mut Context<Hall>, text: String) -> HandlerResult {
        cx.broadcast(ROOM, HallFromServer::Heard(text));
        Ok(())
    }

    async fn crowd(&mut self, cx: &mut Context<Hall>, n: u32) -> HandlerResult {
        for i in 0..n {
            let name = format!("guest-{i:05}");
            cx.track(ROOM, &name, serde_json::json!({ "name": name }));
        }
        cx.send(HallFromServer::Noted);
        Ok(())
    }
}

const INTERVAL: Duration = Duration::from_millis(30);

fn endpoint() -> Endpoint<Hall, Guest> {
    let pubsub = LocalPubSub::new().with_presence_interval(INTERVAL);
    Endpoint::<Hall, _>::builder(|| Guest)
        .pubsub(std::sync::Arc::new(pubsub))
        .build()
}

/// `/ws`, asking for `modes`.
fn path(modes: &Modes) -> String {
    let modes = serde_json::to_string(modes).unwrap();
    format!("/ws?presence={}", urlencode(&modes))
}

/// Connects and reads the `welcome`.
async fn connect(addr: std::net::SocketAddr, path: &str) -> Client {
    let mut client = Client::connect(addr, path).await;
    match client.next::<HallFromServer>().await {
        ServerFrame::Welcome { .. } => client,
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Sends `payload` and waits for its ack; the frames read meanwhile are returned.
async fn handled(client: &mut Client, payload: HallFromClient, reference: u64) -> Vec<Value> {
    client.msg(payload, reference).await;
    let mut seen = Vec::new();
    loop {
        let frame = text(client).await;
        if frame["type"] == "ack" && frame["ref"] == reference {
            return seen;
        }
        seen.push(frame);
    }
}

/// The next text frame as JSON.
async fn text(client: &mut Client) -> Value {
    match client.next_message().await {
        Some(Message::Text(text)) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Every text frame that arrives until none has for `quiet`, with its size in bytes.
async fn drain(client: &mut Client, quiet: Duration) -> Vec<(Value, usize)> {
    let mut frames = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(quiet, futures_util::StreamExt::next(&mut client.socket)).await
    {
        if let Message::Text(text) = message {
            frames.push((serde_json::from_str(&text).unwrap(), text.len()));
        }
    }
    frames
}

fn presence_frames(frames: &[(Value, usize)]) -> Vec<&Value> {
    frames
        .iter()
        .map(|(frame, _)| frame)
        .filter(|f| {
            f["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("presence"))
        })
        .collect()
}

#[tokio::test]
async fn each_client_is_sent_what_it_asked_for_of_the_room() {
    let addr = serve(endpoint().router()).await;
    let mut lister = connect(addr, "/ws").await;
    let mut counter = connect(addr, &path(&Modes::new().topic(ROOM, Mode::Count))).await;
    let mut silent = connect(addr, &path(&Modes::new().otherwise(Mode::None))).await;

    handled(&mut lister, HallFromClient::Arrive("ada".into()), 1).await;
    handled(&mut counter, HallFromClient::Arrive("bob".into()), 1).await;
    handled(&mut silent, HallFromClient::Arrive("cy".into()), 1).await;
    // A second entry under one key: three keys, four entries.
    let mut tab = connect(addr, &path(&Modes::new().otherwise(Mode::None))).await;
    handled(&mut tab, HallFromClient::Arrive("ada".into()), 1).await;

    let quiet = INTERVAL * 10;
    let listed = drain(&mut lister, quiet).await;
    let counted = drain(&mut counter, quiet).await;
    let nothing = drain(&mut silent, quiet).await;
    assert!(presence_frames(&nothing).is_empty(), "{nothing:?}");
    assert!(presence_frames(&drain(&mut tab, quiet).await).is_empty());

    // The list subscriber holds the list; nothing of it reached the counter.
    assert!(
        presence_frames(&listed)
            .iter()
            .all(|f| f["type"] == "presence_state" || f["type"] == "presence_diff")
    );
    let counts = presence_frames(&counted);
    assert!(!counts.is_empty());
    assert!(
        counts.iter().all(|f| f["type"] == "presence_count"),
        "{counts:?}"
    );
    let last = counts.last().unwrap();
    assert_eq!(
        (&last["topic"], &last["keys"], &last["entries"]),
        (&Value::from(ROOM), &Value::from(3), &Value::from(4))
    );

    // The modes are the connection's: another client, asking nothing, is shown the list.
    let mut again = connect(addr, "/ws").await;
    let frames = drain(&mut again, quiet).await;
    let presence = presence_frames(&frames);
    assert_eq!(presence.len(), 1, "{presence:?}");
    assert_eq!(presence[0]["type"], "presence_state");
}

#[tokio::test]
async fn a_count_subscriber_of_a_room_of_ten_thousand_is_sent_under_a_kib() {
    let addr = serve(endpoint().router()).await;
    let mut crowd = connect(addr, &path(&Modes::new().otherwise(Mode::None))).await;
    handled(&mut crowd, HallFromClient::Crowd(10_000), 1).await;
    // Past the interval: the crowd's arrival is told, and the room is still.
    tokio::time::sleep(INTERVAL * 3).await;

    let mut counter = connect(addr, &path(&Modes::new().topic(ROOM, Mode::Count))).await;
    let counted = drain(&mut counter, INTERVAL * 10).await;
    let mut lister = connect(addr, "/ws").await;
    let listed = drain(&mut lister, INTERVAL * 10).await;

    let bytes = |frames: &[(Value, usize)]| -> usize {
        frames
            .iter()
            .filter(|(f, _)| {
                f["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("presence"))
            })
            .map(|(_, size)| size)
            .sum()
    };
    let (count_bytes, list_bytes) = (bytes(&counted), bytes(&listed));
    println!("on subscribe to a room of 10,000: count {count_bytes} B, list {list_bytes} B");
    assert!(count_bytes > 0 && count_bytes < 1024, "{count_bytes}");
    assert!(list_bytes > 300_000, "{list_bytes}");
    let count = presence_frames(&counted);
    assert_eq!(count.len(), 1);
    assert_eq!(
        (&count[0]["keys"], &count[0]["entries"]),
        (&Value::from(10_000), &Value::from(10_000))
    );
}

#[tokio::test]
async fn the_rust_client_keeps_a_count_and_no_list_for_a_topic_it_counts() {
    let addr = serve(endpoint().router()).await;
    let mut ada = connect(addr, "/ws").await;
    handled(&mut ada, HallFromClient::Arrive("ada".into()), 1).await;

    let (client, _messages) = RustClient::<Hall>::builder(format!("http://{addr}"))
        .presence(Modes::new().topic(ROOM, Mode::Count))
        .connect();
    let mut changes = client.presence_changes();
    let arrived = client.send(HallFromClient::Arrive("bob".into())).unwrap();
    tokio::time::timeout(PATIENCE, client.acked(arrived))
        .await
        .unwrap()
        .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while client.presence_count(ROOM) != Some(Count::new(2, 2)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            client.presence_count(ROOM)
        );
        tokio::time::sleep(INTERVAL).await;
    }
    assert!(
        client.presence(ROOM).is_empty(),
        "no list is kept for a counted topic"
    );
    let change = tokio::time::timeout(PATIENCE, changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.topic, ROOM);
    assert!(change.diff.is_empty());
    assert!(change.count.is_some());
}

#[tokio::test]
async fn a_mux_component_asks_in_its_join() {
    let endpoint = endpoint();
    let mux = Mux::builder(Keys::new(b"the presence mode tests' key, 32 bytes").unwrap())
        .module("hall", &endpoint)
        .build();
    let token = mux.sign("hall", &serde_json::json!({}), Duration::from_secs(60));
    let addr = serve(endpoint.router().merge(mux.router())).await;
    let mut ada = connect(addr, "/ws").await;
    handled(&mut ada, HallFromClient::Arrive("ada".into()), 1).await;
    tokio::time::sleep(INTERVAL * 3).await;

    let mut page = Client::connect(addr, "/mux").await;
    for (id, modes) in [
        ("counted", serde_json::json!({ ROOM: "count" })),
        ("quiet", serde_json::json!({ "*": "none" })),
    ] {
        let join = serde_json::json!({
            "type": "join", "id": id, "module": "hall", "token": token, "presence": modes
        });
        page.send_text(join.to_string()).await;
    }
    let frames = drain(&mut page, INTERVAL * 10).await;
    let presence = presence_frames(&frames);
    assert_eq!(presence.len(), 1, "{frames:?}");
    assert_eq!(presence[0]["type"], "presence_count");
    assert_eq!(presence[0]["id"], "counted");
    assert_eq!(presence[0]["keys"], 1);

    // An unknown mode is a malformed join.
    let join = serde_json::json!({
        "type": "join", "id": "odd", "module": "hall", "token": token, "presence": { ROOM: "most" }
    });
    page.send_text(join.to_string()).await;
    let refused = text(&mut page).await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&Value::from("error"), &Value::from("bad_frame"))
    );
}

#[tokio::test]
async fn a_lagging_counter_drops_counts_stays_open_and_is_sent_the_count_again() {
    let endpoint = Endpoint::<Hall, _>::builder(|| Guest)
        .pubsub(std::sync::Arc::new(
            LocalPubSub::new().with_presence_interval(Duration::from_millis(5)),
        ))
        .limits(Limits {
            outbound_queue: 16,
            // Long enough that the lagging client is never taken for a stuck one.
            write_timeout: Duration::from_secs(60),
            ..Limits::default()
        })
        .build();
    let addr = serve(endpoint.router()).await;
    let counted = path(&Modes::new().topic(ROOM, Mode::Count));
    let mut lagging = Client::connect_with_small_window(addr, &counted).await;
    assert_eq!(text(&mut lagging).await["type"], "welcome");
    handled(&mut lagging, HallFromClient::Arrive("lagging".into()), 1).await;
    let mut busy = connect(addr, &path(&Modes::new().otherwise(Mode::None))).await;

    // The lagging client stops reading while the room fills its window with shouts and its
    // count keeps changing, until presence frames to it are dropped, a few times.
    let padding = "x".repeat(8 * 1024);
    let dropped = endpoint.metrics().ephemeral_dropped;
    let mut reference = 1;
    while endpoint.metrics().ephemeral_dropped < dropped + 8 {
        reference += 1;
        assert!(reference < 20_000, "nothing was dropped");
        let name = format!("arrival-{reference}");
        handled(&mut busy, HallFromClient::Arrive(name), reference).await;
        let shout = HallFromClient::Shout(padding.clone());
        handled(&mut busy, shout, reference + 100_000).await;
    }
    // Every arrival told (past the interval), the room is still.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let keys = presence_keys(addr).await;

    // It reads again: what it missed is made up for by a count, never by a list, and the
    // last count it is sent is the room's.
    let mut last = None;
    while last != Some(keys) {
        let frame = tokio::time::timeout(PATIENCE, text(&mut lagging))
            .await
            .unwrap_or_else(|_| panic!("no count of {keys} keys; the last was {last:?}"));
        let kind = frame["type"].as_str().unwrap_or_default().to_owned();
        assert!(
            kind != "presence_state" && kind != "presence_diff",
            "{frame}"
        );
        if kind == "presence_count" {
            last = frame["keys"].as_u64();
        }
    }
    assert_eq!(endpoint.metrics().slow_consumers, 0);
}

/// How many keys the room has now, as a client that asks for its count is told on connect.
async fn presence_keys(addr: std::net::SocketAddr) -> u64 {
    let mut counter = connect(addr, &path(&Modes::new().topic(ROOM, Mode::Count))).await;
    loop {
        let frame = text(&mut counter).await;
        if frame["type"] == "presence_count" {
            return frame["keys"].as_u64().unwrap();
        }
    }
}

/// Every presence byte `n` clients asking for `modes` receive while they all arrive in one
/// room at once (what a server restart makes of a room: every client back, every entry new),
/// until the room has been quiet for a second.
async fn arrival_storm(n: usize, modes: &Modes) -> usize {
    let pubsub = LocalPubSub::new();
    let endpoint = Endpoint::<Hall, _>::builder(|| Guest)
        .pubsub(std::sync::Arc::new(pubsub))
        .build();
    let addr = serve(endpoint.router()).await;
    let path = path(modes);
    let clients: Vec<_> = (0..n)
        .map(|i| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut client = connect(addr, &path).await;
                let mut bytes = 0;
                let seen = handled(
                    &mut client,
                    HallFromClient::Arrive(format!("guest-{i:05}")),
                    1,
                )
                .await;
                for frame in seen {
                    if frame["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("presence"))
                    {
                        bytes += frame.to_string().len();
                    }
                }
                for (frame, size) in drain(&mut client, Duration::from_secs(1)).await {
                    if frame["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("presence"))
                    {
                        bytes += size;
                    }
                }
                bytes
            })
        })
        .collect();
    let mut total = 0;
    for client in clients {
        total += client.await.unwrap();
    }
    total
}

/// The presence bytes of a room's arrival storm, for list subscribers (what every client got
/// before presence modes) and for count subscribers. A measurement, not a check of a bound:
/// `cargo test --release --all-features --test presence_modes -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn arrival_storm_presence_bytes_by_mode() {
    for n in [500, 1_000, 2_000] {
        let list = arrival_storm(n, &Modes::new()).await;
        let count = arrival_storm(n, &Modes::new().topic(ROOM, Mode::Count)).await;
        println!(
            "{n} clients arriving at once: list {list} B, count {count} B, count/list {:.4}",
            count as f64 / list as f64
        );
        assert!(count < list / 10, "{count} against {list}");
    }
}
