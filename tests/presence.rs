//! Presence over real sockets on one server: the list on subscribe, coalesced diffs, two tabs
//! under one key, no leave and no join for a reconnect that resumes, none for a handler that
//! panics and is restarted, entries leaving with their session, the Rust client keeping
//! a correct list through a dropped connection, and the linger: a client that closes saying
//! it is leaving (a close frame, a page's goodbye) leaves within it, one that comes back
//! within it makes no diff, and a dropped connection keeps the whole grace.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::proxy::Proxy;
use common::{Client, PATIENCE, serve};
use futures_util::StreamExt;
use omni::client::{Client as RustClient, Transport};
use omni::presence::{Diff, List};
use omni::pubsub::{LocalPubSub, PubSub};
use omni::server::{Endpoint, Limits, Mux};
use omni::token::Keys;
use omni::{ClientFrame, Context, HandlerResult, ServerFrame, SessionId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Lobby {
    /// Be seen as `name`.
    #[client]
    Arrive(String),
    /// Change what others see of this session.
    #[client]
    Status(String),
    #[client]
    Depart,
    #[client]
    Crash,
    #[server]
    Noted,
}

const ROOM: &str = "lobby";

/// Subscribes on connect and, once it knows its name, tracks in `connected` too: that hook
/// runs again after every reconnect and after a restart, and must not make a blip.
#[derive(Default)]
struct Guest {
    name: Option<String>,
    status: String,
    /// Told the guest's name when its `disconnected` hook runs, for a test to wait on.
    gone: Option<mpsc::UnboundedSender<String>>,
}

impl Guest {
    fn track(&self, cx: &mut Context<Lobby>) {
        if let Some(name) = &self.name {
            cx.track(ROOM, name, serde_json::json!({ "status": self.status }));
        }
    }
}

impl LobbyHandler for Guest {
    async fn connected(&mut self, cx: &mut Context<Lobby>) -> HandlerResult {
        cx.subscribe(ROOM);
        self.track(cx);
        Ok(())
    }

    async fn arrive(&mut self, cx: &mut Context<Lobby>, name: String) -> HandlerResult {
        self.name = Some(name);
        self.track(cx);
        cx.send(LobbyFromServer::Noted);
        Ok(())
    }

    async fn status(&mut self, cx: &mut Context<Lobby>, status: String) -> HandlerResult {
        self.status = status;
        self.track(cx);
        Ok(())
    }

    async fn depart(&mut self, cx: &mut Context<Lobby>) -> HandlerResult {
        if let Some(name) = &self.name {
            cx.untrack(ROOM, name);
        }
        Ok(())
    }

    async fn crash(&mut self, _: &mut Context<Lobby>) -> HandlerResult {
        panic!("on purpose")
    }

    async fn disconnected(&mut self, _: &mut Context<Lobby>) -> HandlerResult {
        if let (Some(gone), Some(name)) = (&self.gone, &self.name) {
            let _ = gone.send(name.clone());
        }
        Ok(())
    }
}

type Frame = ServerFrame<LobbyFromServer>;

/// A server whose presence interval is long enough that a burst falls in one interval.
async fn server(interval: Duration, grace: Duration) -> (std::net::SocketAddr, Arc<dyn PubSub>) {
    let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::new().with_presence_interval(interval));
    let endpoint = Endpoint::<Lobby, _>::builder(Guest::default)
        .pubsub(pubsub.clone())
        .limits(Limits {
            grace,
            ..Limits::default()
        })
        .build();
    (serve(endpoint.router()).await, pubsub)
}

/// Connects and reads the `welcome`; returns the session.
async fn join(addr: std::net::SocketAddr) -> (Client, omni::SessionId) {
    let mut client = Client::connect(addr, "/ws").await;
    match client.next::<LobbyFromServer>().await {
        ServerFrame::Welcome { session, .. } => (client, session),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Sends `Arrive(name)` and waits for its ack (the entry is tracked by then).
async fn arrive(client: &mut Client, name: &str, reference: u64) {
    client
        .msg(LobbyFromClient::Arrive(name.into()), reference)
        .await;
    loop {
        if let ServerFrame::Ack { reference: r, .. } = client.next::<LobbyFromServer>().await
            && r == reference
        {
            return;
        }
    }
}

/// The next presence frame, skipping everything else.
async fn presence(client: &mut Client) -> Frame {
    loop {
        let frame = client.next::<LobbyFromServer>().await;
        if matches!(
            frame,
            ServerFrame::PresenceState { .. } | ServerFrame::PresenceDiff { .. }
        ) {
            return frame;
        }
    }
}

fn state(frame: Frame) -> List {
    match frame {
        ServerFrame::PresenceState { topic, state, .. } => {
            assert_eq!(topic, ROOM);
            state
        }
        other => panic!("expected presence_state, got {other:?}"),
    }
}

fn diff(frame: Frame) -> Diff {
    match frame {
        ServerFrame::PresenceDiff { topic, diff, .. } => {
            assert_eq!(topic, ROOM);
            diff
        }
        other => panic!("expected presence_diff, got {other:?}"),
    }
}

fn keys(list: &List) -> Vec<(&str, usize)> {
    list.iter().map(|(k, v)| (k.as_str(), v.len())).collect()
}

/// Whether no presence frame arrives within `wait` (other frames are skipped).
async fn no_presence_for(client: &mut Client, wait: Duration) -> bool {
    tokio::time::timeout(wait, presence(client)).await.is_err()
}

#[tokio::test]
async fn a_subscriber_gets_the_list_then_one_diff_per_interval_for_a_burst() {
    // A long interval, so that the burst below falls in one even on a slow machine.
    let (addr, _) = server(Duration::from_secs(1), Duration::from_secs(30)).await;
    let (mut ann, _) = join(addr).await;
    arrive(&mut ann, "ann", 1).await;
    // Ann sees herself join: her own subscription is a subscriber like any other.
    assert_eq!(keys(&diff(presence(&mut ann).await).joins), [("ann", 1)]);

    let (mut watcher, _) = join(addr).await;
    assert_eq!(keys(&state(presence(&mut watcher).await)), [("ann", 1)]);

    // Five arrive at once: one diff carries them all.
    let mut guests = Vec::new();
    for (i, name) in ["b", "c", "d", "e", "f"].into_iter().enumerate() {
        let (mut guest, _) = join(addr).await;
        arrive(&mut guest, name, i as u64 + 1).await;
        guests.push(guest);
    }
    let burst = diff(presence(&mut watcher).await);
    assert!(burst.leaves.is_empty());
    assert_eq!(
        burst.joins.keys().map(String::as_str).collect::<Vec<_>>(),
        ["b", "c", "d", "e", "f"]
    );
    assert!(no_presence_for(&mut watcher, Duration::from_millis(1200)).await);

    // An update is a leave of the old entry and a join of the new one.
    ann.msg(LobbyFromClient::Status("away".into()), 2).await;
    let update = diff(presence(&mut watcher).await);
    assert_eq!(update.leaves["ann"][0].meta.json(), r#"{"status":""}"#);
    assert_eq!(update.joins["ann"][0].meta.json(), r#"{"status":"away"}"#);
    assert_ne!(
        update.leaves["ann"][0].reference,
        update.joins["ann"][0].reference
    );

    ann.msg(LobbyFromClient::Depart, 3).await;
    assert_eq!(
        keys(&diff(presence(&mut watcher).await).leaves),
        [("ann", 1)]
    );
}

#[tokio::test]
async fn two_tabs_under_one_key_are_one_key_with_two_entries_until_the_last_one_ends() {
    let grace = Duration::from_millis(300);
    let (addr, pubsub) = server(Duration::from_millis(20), grace).await;
    let (mut watcher, _) = join(addr).await;
    let (mut tab1, _) = join(addr).await;
    arrive(&mut tab1, "ann", 1).await;
    let (mut tab2, _) = join(addr).await;
    arrive(&mut tab2, "ann", 1).await;
    let mut list = List::new();
    while list.get("ann").map_or(0, Vec::len) < 2 {
        diff(presence(&mut watcher).await).apply_to(&mut list);
    }
    assert_eq!(keys(&list), [("ann", 2)]);

    // A closed tab's session ends after its grace period: one entry leaves, the key stays.
    drop(tab1);
    let gone = diff(presence(&mut watcher).await);
    assert_eq!(keys(&gone.leaves), [("ann", 1)]);
    gone.apply_to(&mut list);
    assert_eq!(keys(&list), [("ann", 1)]);
    assert_eq!(pubsub.presence(ROOM), list);
    drop(tab2);
    diff(presence(&mut watcher).await).apply_to(&mut list);
    assert!(list.is_empty());
}

#[tokio::test]
async fn a_resume_within_the_grace_period_and_a_restarted_handler_cause_no_diff() {
    let (addr, pubsub) = server(Duration::from_millis(20), Duration::from_secs(30)).await;
    let (mut watcher, _) = join(addr).await;
    let (mut ann, session) = join(addr).await;
    arrive(&mut ann, "ann", 1).await;
    assert_eq!(
        keys(&diff(presence(&mut watcher).await).joins),
        [("ann", 1)]
    );
    let before = pubsub.presence(ROOM);

    // The connection drops; the client comes back to its session.
    drop(ann);
    let mut ann = Client::connect(addr, &format!("/ws?session={session}&after=1")).await;
    // It is shown the list again, unchanged: nothing it holds has to change.
    assert_eq!(state(presence(&mut ann).await), before);
    // The handler panics and is replaced: its fresh `connected` tracks the same entry.
    ann.msg(LobbyFromClient::Crash, 2).await;
    assert!(no_presence_for(&mut watcher, Duration::from_millis(400)).await);
    assert_eq!(pubsub.presence(ROOM), before);
}

#[tokio::test]
async fn a_client_that_was_away_is_shown_leaves_it_missed_even_when_the_list_is_empty() {
    let (addr, pubsub) = server(Duration::from_millis(20), Duration::from_secs(30)).await;
    let (mut reader, session) = join(addr).await;
    let (mut bob, _) = join(addr).await;
    arrive(&mut bob, "bob", 1).await;
    assert_eq!(keys(&diff(presence(&mut reader).await).joins), [("bob", 1)]);
    // The reader's connection drops; bob leaves while it is away.
    drop(reader);
    bob.msg(LobbyFromClient::Depart, 2).await;
    common::until("bob's leave is flushed", || {
        pubsub.presence(ROOM).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut reader = Client::connect(addr, &format!("/ws?session={session}&after=1")).await;
    // The leave went nowhere: the reader is shown the list again, empty as it is now.
    assert!(state(presence(&mut reader).await).is_empty());
}

#[tokio::test]
async fn the_rust_client_keeps_a_correct_list_through_a_dropped_connection() {
    let (addr, pubsub) = server(Duration::from_millis(20), Duration::from_secs(30)).await;
    let proxy = Proxy::start(addr).await;
    let (client, _messages) = RustClient::<Lobby>::builder(format!("http://{}", proxy.addr))
        .transport(Transport::Ws)
        .connect();
    // Presence changes are application data, on a stream of their own.
    let mut messages = client.presence_changes();
    client.send(LobbyFromClient::Arrive("me".into())).unwrap();
    let (mut other, _) = join(addr).await;
    arrive(&mut other, "other", 1).await;

    // Waits until the client's list has `want` keys, checking every event against it.
    async fn settle(
        client: &RustClient<Lobby>,
        messages: &mut omni::client::PresenceChanges,
        want: &[&str],
    ) -> Vec<Diff> {
        let mut seen = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            loop {
                let list = client.presence(ROOM);
                if list.keys().map(String::as_str).collect::<Vec<_>>() == want {
                    return;
                }
                if let Some(change) = messages.recv().await {
                    assert_eq!(change.topic, ROOM);
                    seen.push(change.diff);
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the list never became {want:?}: {:?}",
                client.presence(ROOM)
            )
        });
        seen
    }
    settle(&client, &mut messages, &["me", "other"]).await;

    // The connection drops and the client resumes: the list is the same, and no event says
    // anyone left or joined.
    proxy.cut();
    let (mut third, _) = join(addr).await;
    arrive(&mut third, "third", 1).await;
    let changes = settle(&client, &mut messages, &["me", "other", "third"]).await;
    for diff in &changes {
        assert!(
            !diff.leaves.contains_key("me") && !diff.joins.contains_key("me"),
            "{diff:?}"
        );
    }
    assert_eq!(client.presence(ROOM), pubsub.presence(ROOM));
    client.close();
}

/// The number a `Status` of the busy guest starts with, in `list`.
fn busy_status(list: &List) -> Option<u64> {
    let meta: serde_json::Value = list.get("busy")?.first()?.meta.decode().ok()?;
    meta["status"].as_str()?.split('x').next()?.parse().ok()
}

/// Reads `client`'s frames until `done` holds, applying its presence frames to `list`, each
/// of which must leave it a list the server had: each key once, busy's status never going
/// back. Diffs are idempotent (a leave of a ref not held, a join of one held, change
/// nothing), so a diff applied after a gap leaves a stale entry behind, which this sees.
/// Returns how many whole lists it was sent.
async fn read_presence(
    client: &mut Client,
    list: &mut List,
    round: u32,
    done: impl Fn(&Frame, &List) -> bool,
) -> usize {
    let mut states = 0;
    let read = async {
        loop {
            let frame = match client.socket.next().await {
                Some(Ok(Message::Text(text))) => Frame::decode(text.as_bytes()).unwrap(),
                other => panic!("round {round}: the connection ended: {other:?}"),
            };
            let before = busy_status(list);
            match &frame {
                ServerFrame::PresenceState { state, .. } => {
                    states += 1;
                    *list = state.clone();
                }
                ServerFrame::PresenceDiff { diff, .. } => diff.apply_to(list),
                _ => {}
            }
            assert_eq!(keys(list), [("busy", 1), ("lagging", 1)], "round {round}");
            assert!(busy_status(list) >= before, "round {round}: busy went back");
            if done(&frame, list) {
                return;
            }
        }
    };
    if tokio::time::timeout(PATIENCE, read).await.is_err() {
        panic!(
            "round {round}: not there within {PATIENCE:?}; busy's status is {:?}",
            busy_status(list)
        );
    }
    states
}

#[tokio::test]
async fn a_lagging_client_drops_presence_diffs_stays_open_and_is_sent_the_whole_list() {
    let pubsub: Arc<dyn PubSub> =
        Arc::new(LocalPubSub::new().with_presence_interval(Duration::from_millis(5)));
    let endpoint = Endpoint::<Lobby, _>::builder(Guest::default)
        .pubsub(pubsub.clone())
        .limits(Limits {
            outbound_queue: 16,
            // Long enough that the lagging client is never taken for a stuck one.
            write_timeout: Duration::from_secs(60),
            ..Limits::default()
        })
        .build();
    let addr = serve(endpoint.router()).await;
    let mut lagging = Client::connect_with_small_window(addr, "/ws").await;
    arrive(&mut lagging, "lagging", 1).await;
    let mut list = List::new();
    diff(presence(&mut lagging).await).apply_to(&mut list);
    assert_eq!(keys(&list), [("lagging", 1)]);
    let (mut busy, _) = join(addr).await;
    arrive(&mut busy, "busy", 1).await;

    let padding = "x".repeat(8 * 1024);
    let mut reference = 1;
    let status = async |busy: &mut Client, reference: u64| {
        busy.msg(
            LobbyFromClient::Status(format!("{reference}{padding}")),
            reference,
        )
        .await;
        loop {
            if let ServerFrame::Ack { reference: r, .. } = busy.next::<LobbyFromServer>().await
                && r == reference
            {
                return;
            }
        }
    };
    for round in 1..=3 {
        // The lagging client stops reading while busy changes status over and over, until
        // a presence frame to it is dropped, and a few times more.
        let dropped = endpoint.metrics().ephemeral_dropped;
        let mut after_drop = 0;
        while after_drop < 4 {
            if endpoint.metrics().ephemeral_dropped > dropped {
                after_drop += 1;
            }
            reference += 1;
            assert!(reference < 20_000, "round {round}: nothing was dropped");
            status(&mut busy, reference).await;
        }

        // It reads again, up to the ack of a message of its own (tracking itself again, no
        // change): the connection is open, and the whole list came before the ack.
        let own = u64::from(round) + 1;
        lagging
            .msg(LobbyFromClient::Arrive("lagging".into()), own)
            .await;
        let acked = |frame: &Frame, _: &List| matches!(frame, ServerFrame::Ack { reference, .. } if *reference == own);
        let states = read_presence(&mut lagging, &mut list, round, acked).await;
        assert!(
            states >= 1,
            "round {round}: a dropped diff is made up for by the whole list"
        );

        // Caught up, it is sent the next change, on top of the list it holds.
        reference += 1;
        status(&mut busy, reference).await;
        let last = |_: &Frame, list: &List| busy_status(list) == Some(reference);
        read_presence(&mut lagging, &mut list, round, last).await;
        assert_eq!(list, pubsub.presence(ROOM), "round {round}");
    }
    assert_eq!(endpoint.metrics().slow_consumers, 0);
}

/// A server with `grace` and `linger` whose guests come from `guest`; presence every 20 ms.
async fn lingering(
    grace: Duration,
    linger: Duration,
    guest: impl Fn() -> Guest + Send + Sync + 'static,
) -> (std::net::SocketAddr, Arc<dyn PubSub>) {
    let pubsub: Arc<dyn PubSub> =
        Arc::new(LocalPubSub::new().with_presence_interval(Duration::from_millis(20)));
    let endpoint = Endpoint::<Lobby, _>::builder(guest)
        .pubsub(pubsub.clone())
        .limits(Limits {
            grace,
            linger,
            ..Limits::default()
        })
        .build();
    (serve(endpoint.router()).await, pubsub)
}

/// The next presence frame within `within`, which must be a diff in which exactly `name`
/// leaves; panics naming `why` otherwise.
async fn leaves_within(watcher: &mut Client, name: &str, within: Duration, why: &str) {
    let frame = tokio::time::timeout(within, presence(watcher))
        .await
        .unwrap_or_else(|_| panic!("{name} did not leave within {within:?}: {why}"));
    assert_eq!(keys(&diff(frame).leaves), [(name, 1)], "{why}");
}

#[tokio::test]
async fn the_rust_client_that_closes_leaves_within_the_default_linger_not_the_grace() {
    let linger = Limits::default().linger;
    for transport in [Transport::Ws, Transport::Sse, Transport::Http] {
        let (addr, pubsub) = lingering(Duration::from_secs(30), linger, Guest::default).await;
        let (mut watcher, _) = join(addr).await;
        let (client, _messages) = RustClient::<Lobby>::builder(format!("http://{addr}"))
            .transport(transport)
            .connect();
        let arrived = client.send(LobbyFromClient::Arrive("me".into())).unwrap();
        assert_eq!(keys(&diff(presence(&mut watcher).await).joins), [("me", 1)]);
        tokio::time::timeout(PATIENCE, client.acked(arrived))
            .await
            .unwrap()
            .unwrap();

        // Its close frame (ws) or its goodbye (sse, http) says it is leaving: its session,
        // and its entry, go after the linger, 30 s before the grace would have ended it.
        client.close();
        leaves_within(
            &mut watcher,
            "me",
            linger + Duration::from_secs(2),
            &format!("{transport:?}: a client closed on purpose leaves after the linger"),
        )
        .await;
        assert!(pubsub.presence(ROOM).is_empty(), "{transport:?}");
    }
}

#[tokio::test]
async fn a_mux_socket_closed_on_purpose_leaves_within_the_linger_not_the_grace() {
    let linger = Duration::from_millis(500);
    let pubsub: Arc<dyn PubSub> =
        Arc::new(LocalPubSub::new().with_presence_interval(Duration::from_millis(20)));
    let endpoint = Endpoint::<Lobby, _>::builder(Guest::default)
        .pubsub(pubsub.clone())
        .limits(Limits {
            grace: Duration::from_secs(30),
            linger,
            ..Limits::default()
        })
        .build();
    let mux = Mux::builder(Keys::new(b"the presence tests' key, thirty-two bytes").unwrap())
        .module("lobby", &endpoint)
        .build();
    let token = mux.sign("lobby", &serde_json::json!({}), Duration::from_secs(60));
    let addr = serve(endpoint.router().merge(mux.router())).await;
    let (mut watcher, _) = join(addr).await;

    let mut page = Client::connect(addr, "/mux").await;
    let join = serde_json::json!({ "type": "join", "id": "c", "module": "lobby", "token": token });
    page.send_text(join.to_string()).await;
    let arrive = serde_json::json!({
        "type": "msg", "id": "c", "ref": 1, "payload": { "kind": "Arrive", "data": "mo" }
    });
    page.send_text(arrive.to_string()).await;
    assert_eq!(keys(&diff(presence(&mut watcher).await).joins), [("mo", 1)]);

    // A closed tab: the socket's close frame says the client is leaving, so each of its
    // components' sessions ends after the linger, 30 s before the grace would end it.
    let away = CloseFrame {
        code: CloseCode::Away,
        reason: "".into(),
    };
    page.socket.close(Some(away)).await.unwrap();
    leaves_within(
        &mut watcher,
        "mo",
        linger + Duration::from_secs(2),
        "a mux socket closed going away leaves after the linger",
    )
    .await;
    assert!(pubsub.presence(ROOM).is_empty());
}

#[tokio::test]
async fn a_page_that_goes_away_and_resumes_within_the_linger_makes_no_diff() {
    let linger = Duration::from_millis(500);
    let (gone, mut disconnected) = mpsc::unbounded_channel();
    let guest = move || Guest {
        gone: Some(gone.clone()),
        ..Guest::default()
    };
    let (addr, pubsub) = lingering(Duration::from_secs(30), linger, guest).await;
    let (mut watcher, _) = join(addr).await;
    let (mut ann, session) = join(addr).await;
    arrive(&mut ann, "ann", 1).await;
    assert_eq!(
        keys(&diff(presence(&mut watcher).await).joins),
        [("ann", 1)]
    );
    let before = pubsub.presence(ROOM);

    // A reload: the old page's socket closes going away, the new page resumes the session.
    let away = CloseFrame {
        code: CloseCode::Away,
        reason: "".into(),
    };
    ann.socket.close(Some(away)).await.unwrap();
    // The server has seen the old page go (its linger runs) before the new page connects.
    let noticed = tokio::time::timeout(PATIENCE, disconnected.recv()).await;
    assert_eq!(
        noticed.ok().flatten().as_deref(),
        Some("ann"),
        "ann's socket went"
    );
    // A reload takes a moment: the new page connects halfway through the linger.
    tokio::time::sleep(linger / 2).await;
    let mut ann = Client::connect(addr, &format!("/ws?session={session}&after=1")).await;
    match ann.next::<LobbyFromServer>().await {
        ServerFrame::Welcome {
            session: resumed_session,
            resumed,
            ..
        } => assert!(resumed && resumed_session == session, "the session resumed"),
        other => panic!("expected welcome, got {other:?}"),
    }
    assert_eq!(state(presence(&mut ann).await), before);
    // Well past the linger, the session is still there: nobody left, nobody joined.
    assert!(no_presence_for(&mut watcher, linger * 3).await);
    assert_eq!(pubsub.presence(ROOM), before);

    // Then the page is closed for good.
    let normal = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    ann.socket.close(Some(normal)).await.unwrap();
    leaves_within(
        &mut watcher,
        "ann",
        linger + Duration::from_secs(2),
        "a page closed for good leaves after the linger",
    )
    .await;
}

#[tokio::test]
async fn a_dropped_connection_keeps_the_whole_grace() {
    let grace = Duration::from_secs(2);
    let linger = Duration::from_millis(200);
    let (addr, pubsub) = lingering(grace, linger, Guest::default).await;
    let proxy = Proxy::start(addr).await;
    let (mut watcher, _) = join(addr).await;
    let (client, _messages) = RustClient::<Lobby>::builder(format!("http://{}", proxy.addr))
        .transport(Transport::Ws)
        .connect();
    client.send(LobbyFromClient::Arrive("me".into())).unwrap();
    assert_eq!(keys(&diff(presence(&mut watcher).await).joins), [("me", 1)]);

    // The network goes: the connection is cut without a close frame, and the server cannot
    // be reached again (the proxy now forwards to a port nobody listens on).
    let nowhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    proxy.set_upstream(nowhere.local_addr().unwrap());
    drop(nowhere);
    proxy.cut();
    let cut = Instant::now();
    common::until("the client's connection is cut", || proxy.severed() == 1).await;

    // Long past the linger the session waits for its client; then the grace ends it.
    assert!(
        no_presence_for(&mut watcher, grace - Duration::from_millis(500)).await,
        "a dropped connection left before its grace ran out"
    );
    assert_eq!(keys(&pubsub.presence(ROOM)), [("me", 1)]);
    leaves_within(
        &mut watcher,
        "me",
        Duration::from_secs(3),
        "a dropped connection leaves once the grace runs out",
    )
    .await;
    assert!(
        cut.elapsed() >= grace,
        "left {:?} after the cut",
        cut.elapsed()
    );
    client.close();
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// An event stream opened with `query` (a resume, or a new session when empty), read up to its
/// `welcome`: the open response (dropping it closes the stream) and the session.
async fn event_stream(addr: std::net::SocketAddr, query: &str) -> (reqwest::Response, SessionId) {
    let mut response = http_client()
        .get(format!("http://{addr}/sse{query}"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    loop {
        let chunk = tokio::time::timeout(PATIENCE, response.chunk())
            .await
            .expect("the welcome in time")
            .unwrap()
            .expect("the stream is open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        // `welcome` is the stream's first event.
        let Some(data) = text.lines().find_map(|line| line.strip_prefix("data: ")) else {
            continue;
        };
        match Frame::decode(data.as_bytes()).unwrap() {
            ServerFrame::Welcome { session, .. } => return (response, session),
            other => panic!("expected welcome, got {other:?}"),
        }
    }
}

/// `POST /http` on `session` with `body`, as a goodbye when `leave`; the status.
async fn post(addr: std::net::SocketAddr, session: SessionId, leave: bool, body: String) -> u16 {
    let mut request = http_client()
        .post(format!("http://{addr}/http"))
        .header("content-type", "application/json")
        .header(omni::server::SESSION_HEADER, session.to_string());
    if leave {
        request = request.header("omni-leave", "1");
    }
    request.body(body).send().await.unwrap().status().as_u16()
}

/// A guest on an event stream who arrives as `name` (the watcher sees it join): its stream and
/// session.
async fn sse_guest(
    addr: std::net::SocketAddr,
    watcher: &mut Client,
    name: &str,
) -> (reqwest::Response, SessionId) {
    let (stream, session) = event_stream(addr, "").await;
    let arrive = ClientFrame::Msg {
        payload: LobbyFromClient::Arrive(name.into()),
        reference: Some(1),
        id: None,
    };
    let body = arrive.encode().unwrap();
    assert_eq!(post(addr, session, false, body).await, 202, "{name}");
    assert_eq!(keys(&diff(presence(watcher).await).joins), [(name, 1)]);
    (stream, session)
}

#[tokio::test]
async fn an_event_stream_whose_page_says_goodbye_leaves_within_the_linger() {
    let linger = Duration::from_millis(300);
    let (gone, mut disconnected) = mpsc::unbounded_channel();
    let guest = move || Guest {
        gone: Some(gone.clone()),
        ..Guest::default()
    };
    let (addr, pubsub) = lingering(Duration::from_secs(30), linger, guest).await;
    let (mut watcher, _) = join(addr).await;
    // Waits until the `disconnected` hook of `name`'s session has run `times` times more.
    let mut disconnects = async |name: &str, times: usize| {
        let mut seen = 0;
        let noticed = async {
            while seen < times {
                if disconnected.recv().await.as_deref() == Some(name) {
                    seen += 1;
                }
            }
        };
        tokio::time::timeout(PATIENCE, noticed)
            .await
            .unwrap_or_else(|_| panic!("{name}'s stream was not seen to go"));
    };
    // Time for the stream's end to be noticed (at the latest by the next keep-alive, 1 s),
    // then the linger: far less than the grace.
    let within = linger + Duration::from_secs(2);

    // As omni.js on `pagehide`: the goodbye, then the page's stream goes.
    let (stream, session) = sse_guest(addr, &mut watcher, "ann").await;
    assert_eq!(post(addr, session, true, "[]".into()).await, 204);
    drop(stream);
    leaves_within(&mut watcher, "ann", within, "the goodbye came first").await;

    // The stream's end reached the server first; the goodbye comes after.
    let (stream, session) = sse_guest(addr, &mut watcher, "bob").await;
    drop(stream);
    disconnects("bob", 1).await;
    assert_eq!(post(addr, session, true, "[]".into()).await, 204);
    leaves_within(&mut watcher, "bob", within, "the goodbye came last").await;
    assert!(pubsub.presence(ROOM).is_empty());

    // A reload: the goodbye, and the new page resumes the session at once, which takes the
    // goodbye back. Its stream then drops without a word: the session waits out its grace.
    let (stream, session) = sse_guest(addr, &mut watcher, "cy").await;
    assert_eq!(post(addr, session, true, "[]".into()).await, 204);
    drop(stream);
    let (again, resumed) = event_stream(addr, &format!("?session={session}&after=1")).await;
    assert_eq!(resumed, session, "the reloaded page resumed its session");
    drop(again);
    // Both streams seen gone, then well past the linger.
    disconnects("cy", 2).await;
    assert!(
        no_presence_for(&mut watcher, linger * 3).await,
        "a stream that dropped after its session was resumed left within the linger"
    );
    assert_eq!(keys(&pubsub.presence(ROOM)), [("cy", 1)]);
}
