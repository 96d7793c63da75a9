//! What `#[omni::protocol]` generates, exercised as a user would: wire form, conversions,
//! schema hashes, dispatch onto a handler, and TypeScript.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};

use omni::{ClientFrame, Context, Dispatch, Effect, ErrorCode, Protocol, ServerFrame, SessionId};

/// A chat message.
#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// Chosen by the sender.
    pub id: String,
    /// What was said.
    pub text: String,
}

/// The chat protocol.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// Local only.
    DraftChanged(String),
    /// Send a message.
    #[client]
    Send(ChatMessage),
    /// Ask for everything.
    #[client]
    FetchAll,
    /// Move the cursor.
    #[client]
    Cursor {
        /// Column.
        x: u16,
        /// Row.
        y: u16,
    },
    /// Messages by id.
    #[server]
    Upsert(BTreeMap<String, ChatMessage>),
    /// Clients online.
    #[server]
    Presence {
        /// How many.
        online: u32,
    },
    /// A pair, to show tuple variants.
    #[server]
    Pair(u8, Option<String>),
}

fn message(id: &str) -> ChatMessage {
    ChatMessage {
        id: id.into(),
        text: format!("text of {id}"),
    }
}

#[test]
fn payloads_are_adjacently_tagged() {
    let cases: [(MsgFromClient, &str); 3] = [
        (
            MsgFromClient::Send(message("m1")),
            r#"{"kind":"Send","data":{"id":"m1","text":"text of m1"}}"#,
        ),
        (MsgFromClient::FetchAll, r#"{"kind":"FetchAll"}"#),
        (
            MsgFromClient::Cursor { x: 3, y: 4 },
            r#"{"kind":"Cursor","data":{"x":3,"y":4}}"#,
        ),
    ];
    for (value, json) in cases {
        assert_eq!(serde_json::to_string(&value).unwrap(), json);
        assert_eq!(serde_json::from_str::<MsgFromClient>(json).unwrap(), value);
    }
    let pair = MsgFromServer::Pair(7, None);
    assert_eq!(
        serde_json::to_string(&pair).unwrap(),
        r#"{"kind":"Pair","data":[7,null]}"#
    );
}

#[test]
fn frames_carry_generated_payloads() {
    let frame = ClientFrame::Msg {
        payload: MsgFromClient::Cursor { x: 1, y: 2 },
        reference: Some(5),
        id: None,
    };
    let text = frame.encode().unwrap();
    assert_eq!(
        text,
        r#"{"type":"msg","payload":{"kind":"Cursor","data":{"x":1,"y":2}},"ref":5}"#
    );
    assert_eq!(ClientFrame::decode(text.as_bytes()).unwrap(), frame);

    // A server message sent to a client is not a client message.
    let err = ClientFrame::<MsgFromClient>::decode(
        br#"{"type":"msg","payload":{"kind":"Presence","data":{"online":1}},"ref":6}"#,
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadPayload);
    assert_eq!(err.reference(), Some(6));
    let reply = ServerFrame::<MsgFromServer>::from(&err).encode().unwrap();
    assert!(
        reply.starts_with(
            r#"{"type":"error","code":"bad_payload","message":"unknown variant `Presence`"#
        ),
        "{reply}"
    );
}

#[test]
fn conversions_keep_local_messages_local() {
    let local = Msg::DraftChanged("typing".into());
    assert_eq!(local.clone().into_client(), Err(local.clone()));
    assert_eq!(local.clone().into_server(), Err(local));

    let send = Msg::Send(message("m2"));
    assert_eq!(
        send.clone().into_client(),
        Ok(MsgFromClient::Send(message("m2")))
    );
    assert_eq!(send.clone().into_server(), Err(send.clone()));
    assert_eq!(Msg::from_client(MsgFromClient::Send(message("m2"))), send);

    let presence = Msg::Presence { online: 3 };
    assert_eq!(
        presence.clone().into_server(),
        Ok(MsgFromServer::Presence { online: 3 })
    );
    assert_eq!(Msg::from(MsgFromServer::Presence { online: 3 }), presence);
    assert_eq!(
        Msg::transport(omni::TransportState::Connecting),
        Msg::Transport(omni::TransportState::Connecting)
    );
}

mod renamed {
    /// Wire names set by `rename_all`, overridden per variant by `rename`.
    #[omni::protocol(rename_all = "snake_case", name = "chat")]
    #[derive(Debug, Clone, PartialEq)]
    pub enum Msg {
        #[client]
        FetchAll,
        #[client]
        #[omni(rename = "post")]
        SendMessage(String),
        #[server]
        UserJoined { name: String },
    }
}

#[test]
fn rename_and_rename_all_set_wire_names() {
    use renamed::{MsgFromClient, MsgFromServer};
    assert_eq!(renamed::Msg::NAME, "chat");
    assert_eq!(
        serde_json::to_string(&MsgFromClient::FetchAll).unwrap(),
        r#"{"kind":"fetch_all"}"#
    );
    assert_eq!(
        serde_json::to_string(&MsgFromClient::SendMessage("hi".into())).unwrap(),
        r#"{"kind":"post","data":"hi"}"#
    );
    assert_eq!(
        serde_json::to_string(&MsgFromServer::UserJoined { name: "ada".into() }).unwrap(),
        r#"{"kind":"user_joined","data":{"name":"ada"}}"#
    );
}

/// Versions of one protocol, to show what changes the schema hash and what does not.
mod versions {
    pub mod base {
        #[omni::protocol]
        pub enum Msg {
            #[client]
            Send { text: String },
            #[server]
            Count(u32),
        }
    }
    pub mod reordered_with_local_and_docs {
        #[omni::protocol]
        pub enum Msg {
            /// Docs do not travel.
            #[server]
            Count(u32),
            #[allow(dead_code)]
            Local,
            #[client]
            Send { text: String },
        }
    }
    pub mod field_renamed {
        #[omni::protocol]
        pub enum Msg {
            #[client]
            Send { body: String },
            #[server]
            Count(u32),
        }
    }
    pub mod field_retyped {
        #[omni::protocol]
        pub enum Msg {
            #[client]
            Send { text: String },
            #[server]
            Count(u64),
        }
    }
    pub mod variant_renamed {
        #[omni::protocol]
        pub enum Msg {
            #[client]
            #[omni(rename = "Post")]
            Send { text: String },
            #[server]
            Count(u32),
        }
    }
    pub mod direction_flipped {
        #[omni::protocol]
        pub enum Msg {
            #[client]
            Send { text: String },
            #[client]
            Count(u32),
        }
    }
}

#[test]
fn schema_hash_follows_what_travels() {
    use versions::*;
    let base = base::Msg::version();
    assert_eq!(base.len(), 16);
    assert!(base.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(reordered_with_local_and_docs::Msg::version(), base);
    for (what, version) in [
        ("field renamed", field_renamed::Msg::version()),
        ("field retyped", field_retyped::Msg::version()),
        ("variant renamed", variant_renamed::Msg::version()),
        ("direction flipped", direction_flipped::Msg::version()),
    ] {
        assert_ne!(version, base, "{what} must change the hash");
    }
}

/// Polls a future that never waits on I/O to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

#[derive(Default)]
struct Room {
    stored: BTreeMap<String, ChatMessage>,
    connects: u32,
}

impl MsgHandler for Room {
    async fn send(&mut self, cx: &mut Context<Msg>, msg: ChatMessage) -> omni::HandlerResult {
        if msg.text.is_empty() {
            return Err("empty message".into());
        }
        let upsert = BTreeMap::from([(msg.id.clone(), msg.clone())]);
        self.stored.insert(msg.id.clone(), msg);
        cx.send(MsgFromServer::Upsert(upsert.clone()));
        cx.broadcast_from("room", MsgFromServer::Upsert(upsert));
        Ok(())
    }

    async fn fetch_all(&mut self, cx: &mut Context<Msg>) -> omni::HandlerResult {
        cx.send(MsgFromServer::Upsert(self.stored.clone()));
        Ok(())
    }

    async fn cursor(&mut self, cx: &mut Context<Msg>, x: u16, y: u16) -> omni::HandlerResult {
        cx.push(MsgFromServer::Pair(x as u8, Some(y.to_string())));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Msg>) -> omni::HandlerResult {
        self.connects += 1;
        cx.subscribe("room");
        Ok(())
    }
}

#[test]
fn dispatch_calls_the_method_for_each_variant() {
    let mut room = Room::default();
    let mut cx = Context::<Msg>::new(SessionId::from_u128(42));

    block_on(<Msg as Dispatch<Room>>::connected(&mut room, &mut cx)).unwrap();
    assert_eq!(room.connects, 1);
    assert_eq!(cx.take_effects(), [Effect::Subscribe("room".into())]);

    block_on(Msg::dispatch(
        &mut room,
        &mut cx,
        MsgFromClient::Send(message("m1")),
    ))
    .unwrap();
    let upsert = MsgFromServer::Upsert(BTreeMap::from([("m1".into(), message("m1"))]));
    assert_eq!(
        cx.take_effects(),
        [
            Effect::Send(upsert.clone()),
            Effect::Broadcast {
                topic: "room".into(),
                msg: upsert,
                include_self: false
            }
        ]
    );

    block_on(Msg::dispatch(
        &mut room,
        &mut cx,
        MsgFromClient::Cursor { x: 9, y: 10 },
    ))
    .unwrap();
    assert_eq!(
        cx.take_effects(),
        [Effect::Push(MsgFromServer::Pair(9, Some("10".into())))]
    );

    block_on(Msg::dispatch(&mut room, &mut cx, MsgFromClient::FetchAll)).unwrap();
    assert_eq!(
        cx.take_effects(),
        [Effect::Send(MsgFromServer::Upsert(room.stored.clone()))]
    );

    let empty = ChatMessage {
        id: "m2".into(),
        text: String::new(),
    };
    let err = block_on(Msg::dispatch(
        &mut room,
        &mut cx,
        MsgFromClient::Send(empty),
    ))
    .unwrap_err();
    assert_eq!(err.to_string(), "empty message");
    assert!(cx.take_effects().is_empty());

    // The disconnect hook was not overridden: it succeeds and does nothing.
    block_on(<Msg as Dispatch<Room>>::disconnected(&mut room, &mut cx)).unwrap();
    assert!(cx.take_effects().is_empty());
}

#[test]
fn typescript_declares_wire_enums_and_their_types() {
    insta::assert_snapshot!(omni::typescript::declarations::<Msg>());
}
