//! The chat demo's behaviour, as its users see it: over real WebSockets, and in memory with
//! `omni::test`.

mod common;

#[path = "../examples/chat/app.rs"]
mod app;
#[cfg(feature = "redis")]
#[path = "../examples/chat/store.rs"]
mod store;

use std::collections::BTreeMap;

use app::{ChatMessage, MsgFromClient, MsgFromServer, Room, SharedFile, Status};
use common::{Client, serve};
use omni::ServerFrame;
use omni::test::TestClient;

fn message(id: &str, text: &str) -> ChatMessage {
    ChatMessage {
        id: id.into(),
        author: "ada".into(),
        text: text.into(),
        status: Status::Sending,
        sent_at: 0,
    }
}

async fn next(client: &mut Client) -> ServerFrame<MsgFromServer> {
    client.next().await
}

/// The confirmation of `reference`: the sequenced reply that answers it.
async fn confirmation(client: &mut Client, reference: u64) -> ChatMessage {
    loop {
        if let ServerFrame::Msg {
            payload: MsgFromServer::Upsert(map),
            reference: Some(r),
            ..
        } = next(client).await
            && r == reference
        {
            return map.into_values().next().unwrap();
        }
    }
}

/// The next message pushed on the room, skipping presence and other frames.
async fn pushed(client: &mut Client) -> ServerFrame<MsgFromServer> {
    loop {
        let frame = next(client).await;
        if let ServerFrame::Push {
            payload: MsgFromServer::Upsert(_),
            ..
        } = &frame
        {
            return frame;
        }
    }
}

/// Reads frames until the pushed online count is `online`, skipping others.
async fn presence(client: &mut Client, online: u32) {
    loop {
        if let ServerFrame::Push {
            payload: MsgFromServer::Presence { online: n },
            ..
        } = next(client).await
            && n == online
        {
            return;
        }
    }
}

/// A room whose sessions end soon after their connection: presence follows closes quickly.
fn brief_room() -> (Room, omni::server::Endpoint<app::Msg, app::ChatHandler>) {
    let room = Room::default();
    let limits = omni::server::Limits {
        grace: std::time::Duration::from_millis(100),
        ..omni::server::Limits::default()
    };
    let endpoint = room.builder().limits(limits).build();
    (room, endpoint)
}

#[tokio::test]
async fn a_sent_message_is_confirmed_to_its_sender_and_pushed_to_everyone_else() {
    let (room, endpoint) = brief_room();
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    let mut ada = Client::connect(addr, "/omni/ws").await;
    assert!(matches!(next(&mut ada).await, ServerFrame::Welcome { .. }));
    presence(&mut ada, 1).await;
    let mut bob = Client::connect(addr, "/omni/ws").await;
    assert!(matches!(next(&mut bob).await, ServerFrame::Welcome { .. }));
    presence(&mut bob, 2).await;
    presence(&mut ada, 2).await;

    ada.msg(MsgFromClient::Send(message("m1", "hello")), 1)
        .await;
    let confirmed = confirmation(&mut ada, 1).await;
    assert_eq!(confirmed.status, Status::Sent);
    assert!(confirmed.sent_at > 0, "the server stamps the time");
    assert_eq!(confirmed.text, "hello");

    assert_eq!(
        pushed(&mut bob).await,
        ServerFrame::Push {
            payload: MsgFromServer::Upsert(BTreeMap::from([("m1".into(), confirmed.clone())])),
            topic: Some("room".into()),
            id: None
        }
    );

    // A resend of the same id (after a reconnect) is stored once, confirmed again, and not
    // pushed to others again.
    ada.msg(MsgFromClient::Send(message("m1", "hello")), 2)
        .await;
    assert_eq!(confirmation(&mut ada, 2).await, confirmed);
    assert!(bob.quiet_for(std::time::Duration::from_millis(150)).await);
    assert_eq!(room.len(), 1);

    // FetchAll answers with everything stored.
    bob.msg(MsgFromClient::FetchAll, 1).await;
    loop {
        if let ServerFrame::Msg {
            payload: MsgFromServer::Upsert(map),
            reference: Some(1),
            ..
        } = next(&mut bob).await
        {
            assert_eq!(map.len(), 1);
            break;
        }
    }

    // Presence follows a disconnect, once the session's grace period is over.
    drop(bob);
    presence(&mut ada, 1).await;
}

#[tokio::test]
async fn the_chat_handler_in_memory() {
    let (_, endpoint) = brief_room();
    let mut ada = TestClient::connect(&endpoint).await;
    let mut bob = TestClient::connect(&endpoint).await;
    ada.frames();
    bob.frames();

    ada.send(MsgFromClient::Send(message("m1", "hi"))).await;
    let replies = ada.replies();
    assert!(
        matches!(&replies[..], [MsgFromServer::Upsert(map)] if map["m1"].status == Status::Sent)
    );
    // Presence counts may be pushed too, as the room's presence changes.
    let pushes: Vec<_> = bob
        .pushes()
        .into_iter()
        .filter(|p| matches!(p, MsgFromServer::Upsert(_)))
        .collect();
    assert!(matches!(&pushes[..], [MsgFromServer::Upsert(map)] if map.contains_key("m1")));

    bob.close().await;
    // Bob's session ends after its grace period, and the next presence change goes out.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        ada.pushes().last(),
        Some(&MsgFromServer::Presence { online: 1 })
    );
}

#[tokio::test]
async fn a_shared_file_reaches_the_room_and_a_larger_one_is_refused() {
    let (_, endpoint) = brief_room();
    let mut ada = TestClient::connect(&endpoint).await;
    let mut bob = TestClient::connect(&endpoint).await;
    ada.frames();
    bob.frames();
    let shared = |pushes: Vec<MsgFromServer>| -> Vec<MsgFromServer> {
        pushes
            .into_iter()
            .filter(|p| matches!(p, MsgFromServer::Shared { .. }))
            .collect()
    };

    let data: Vec<u8> = (0..app::FILE_LIMIT).map(|i| (i % 251) as u8).collect();
    let file = SharedFile {
        name: "notes.bin".into(),
        data: data.into(),
    };
    ada.send(MsgFromClient::Share(file.clone())).await;
    let from = app::ANONYMOUS.to_owned();
    assert_eq!(
        shared(bob.pushes()),
        [MsgFromServer::Shared { from, file }],
        "at the limit, byte for byte"
    );

    let larger = SharedFile {
        name: "big.bin".into(),
        data: vec![0; app::FILE_LIMIT + 1].into(),
    };
    let sent = ada.send(MsgFromClient::Share(larger)).await;
    let refused = ada.frames().into_iter().any(|frame| {
        matches!(
            frame,
            ServerFrame::Error { code: omni::ErrorCode::Rejected, reference: Some(r), .. } if r == sent
        )
    });
    assert!(refused, "a file over the limit is rejected");
    assert_eq!(shared(bob.pushes()), [], "and not shared");
}

#[tokio::test]
async fn the_room_keeps_its_last_messages_and_a_new_connection_gets_only_those() {
    let room = Room::default();
    let endpoint = room.endpoint();
    let mut ada = TestClient::connect(&endpoint).await;
    let extra = 25;
    for i in 0..app::HISTORY + extra {
        ada.send(MsgFromClient::Send(message(&format!("m{i:04}"), "hi")))
            .await;
    }
    assert_eq!(room.len(), app::HISTORY, "the oldest are gone");

    let mut bob = TestClient::connect(&endpoint).await;
    bob.send(MsgFromClient::FetchAll).await;
    let all = bob
        .replies()
        .into_iter()
        .find_map(|reply| match reply {
            MsgFromServer::Upsert(map) => Some(map),
            _ => None,
        })
        .expect("the stored messages");
    assert_eq!(all.len(), app::HISTORY);
    assert_eq!(
        all.keys().next().map(String::as_str),
        Some(format!("m{extra:04}").as_str()),
        "exactly the newest are kept"
    );
}

/// The demo's protocol stays compatible with its released versions, kept in
/// `examples/chat/protocol/`: record a release with `OMNI_SCHEMA=record cargo test --test chat`.
#[test]
fn protocol_stays_compatible_with_released_versions() {
    omni::schema::check::<app::Msg>("examples/chat/protocol");
}
