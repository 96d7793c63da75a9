//! Hook pairing as a property, checked after every step against a model of the sessions:
//! whatever a client does, each session's hooks alternate `connected`, `disconnected`,
//! starting with `connected`; each runs exactly when the model says, on the handler it
//! says; the registry holds exactly the model's sessions; and a session whose grace period ran
//! out has had its `disconnected` and is gone.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use std::sync::Arc;

use super::{Attached, Sessions};
use crate::protocol::tests_support::{Echo, EchoFromClient, EchoFromServer};
use crate::server::{Endpoint, Limits};
use crate::{ClientFrame, Context, Dispatch, HandlerResult, Seq, SessionId};

const SLOTS: usize = 3;
const LOG_FRAMES: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connected,
    Disconnected,
}

/// A hook that ran: on which session, and on which of the handlers made (numbered from 1
/// in the order the factory made them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    session: SessionId,
    handler: u64,
    kind: Kind,
}

type Events = Arc<Mutex<Vec<Event>>>;

/// Only records its hooks: the runtime catches a panicking hook, so every assertion is
/// made by the test body.
struct Recorder {
    events: Events,
    number: u64,
}

impl Recorder {
    fn record(&self, cx: &Context<Echo>, kind: Kind) {
        self.events.lock().unwrap().push(Event {
            session: cx.session(),
            handler: self.number,
            kind,
        });
    }
}

impl Dispatch<Recorder> for Echo {
    async fn dispatch(
        _: &mut Recorder,
        cx: &mut Context<Echo>,
        msg: EchoFromClient,
    ) -> HandlerResult {
        let EchoFromClient::Say(text) = msg;
        match text.as_str() {
            "panic" => panic!("asked to"),
            "fail" => Err("asked to".into()),
            // A sequenced reply: the log decides whether a later resume is exact.
            _ => {
                cx.send(EchoFromServer::Heard(text));
                Ok(())
            }
        }
    }

    async fn connected(me: &mut Recorder, cx: &mut Context<Echo>) -> HandlerResult {
        me.record(cx, Kind::Connected);
        Ok(())
    }

    async fn disconnected(me: &mut Recorder, cx: &mut Context<Echo>) -> HandlerResult {
        me.record(cx, Kind::Disconnected);
        Ok(())
    }
}

/// A resume point, relative to the last number the resumed session sent.
#[derive(Debug, Clone, Copy)]
enum After {
    Zero,
    Last,
    Behind(u64),
    Ahead,
}

impl After {
    fn of(self, last: Seq) -> Seq {
        match self {
            After::Zero => 0,
            After::Last => last,
            After::Behind(n) => last.saturating_sub(n),
            After::Ahead => last + 1,
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// Opens a connection in `slot` (closing what was there): a new session, or a resume
    /// of `from`'s session at `after`.
    Open {
        slot: usize,
        from: Option<usize>,
        after: After,
    },
    /// `hello` resuming `from`'s session (its own when `from == slot`, or when `from` is
    /// empty) at `after`.
    Hello {
        slot: usize,
        from: usize,
        after: After,
    },
    Say {
        slot: usize,
        what: &'static str,
    },
    Close {
        slot: usize,
    },
    Leave {
        slot: usize,
    },
    Wait {
        ms: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let slot = 0..SLOTS;
    let after = prop_oneof![
        Just(After::Zero),
        Just(After::Last),
        (1u64..4).prop_map(After::Behind),
        Just(After::Ahead),
    ];
    prop_oneof![
        (slot.clone(), proptest::option::of(0..SLOTS), after.clone())
            .prop_map(|(slot, from, after)| Step::Open { slot, from, after }),
        (slot.clone(), 0..SLOTS, after).prop_map(|(slot, from, after)| Step::Hello {
            slot,
            from,
            after
        }),
        (
            slot.clone(),
            prop_oneof![Just("hi"), Just("panic"), Just("fail")]
        )
            .prop_map(|(slot, what)| Step::Say { slot, what }),
        slot.clone().prop_map(|slot| Step::Close { slot }),
        slot.prop_map(|slot| Step::Leave { slot }),
        (0u64..80).prop_map(|ms| Step::Wait { ms }),
    ]
}

/// What the registry should hold of one session.
#[derive(Debug)]
struct Modeled {
    handler: u64,
    connected: bool,
    conn: Option<u64>,
    /// In the registry's registry.
    held: bool,
    /// When it ends if nothing attaches before.
    expires: Option<Instant>,
    last_seq: Seq,
    /// Frames its log keeps.
    logged: u64,
}

/// The registry as the docs describe it, run beside the real one.
struct Model {
    sessions: HashMap<SessionId, Modeled>,
    /// Each slot's session and connection id.
    slots: [Option<(SessionId, u64)>; SLOTS],
    handlers_made: u64,
    grace: Duration,
    /// The hooks due since the last check, in order.
    expected: Vec<Event>,
}

impl Model {
    fn session(&mut self, id: SessionId) -> &mut Modeled {
        self.sessions.get_mut(&id).expect("a modeled session")
    }

    fn last_seq(&self, id: SessionId) -> Seq {
        self.sessions[&id].last_seq
    }

    fn hook(&mut self, id: SessionId, kind: Kind) {
        let handler = self.sessions[&id].handler;
        self.expected.push(Event {
            session: id,
            handler,
            kind,
        });
    }

    fn create(&mut self, id: SessionId, conn: u64) {
        self.handlers_made += 1;
        self.sessions.insert(
            id,
            Modeled {
                handler: self.handlers_made,
                connected: false,
                conn: Some(conn),
                held: true,
                expires: None,
                last_seq: 0,
                logged: 0,
            },
        );
        self.connect(id);
    }

    fn connect(&mut self, id: SessionId) {
        let session = self.session(id);
        if !session.connected {
            session.connected = true;
            self.hook(id, Kind::Connected);
        }
    }

    fn disconnect(&mut self, id: SessionId) {
        let session = self.session(id);
        if session.connected {
            session.connected = false;
            self.hook(id, Kind::Disconnected);
        }
    }

    /// A fresh handler, connected if a connection is attached.
    fn restart(&mut self, id: SessionId) {
        self.disconnect(id);
        self.handlers_made += 1;
        let handler = self.handlers_made;
        let session = self.session(id);
        session.handler = handler;
        if session.conn.is_some() {
            self.connect(id);
        }
    }

    /// Whether the log holds every frame after `after`.
    fn exact(&self, id: SessionId, after: Seq) -> bool {
        let s = &self.sessions[&id];
        after == s.last_seq
            || (after < s.last_seq && s.logged > 0 && s.last_seq - s.logged <= after)
    }

    fn replay(&mut self, id: SessionId, after: Seq) {
        if !self.exact(id, after) {
            self.restart(id);
        }
    }

    fn resume_onto(&mut self, id: SessionId, conn: u64, after: Seq) {
        let exact = self.exact(id, after);
        let session = self.session(id);
        let displaced = session.conn.replace(conn).is_some();
        session.expires = None;
        if displaced {
            self.disconnect(id);
        }
        if !exact {
            self.restart(id);
        }
        self.connect(id);
    }

    /// Takes `conn` off `id` if it is still its connection.
    fn detach(&mut self, id: SessionId, conn: u64) -> bool {
        let session = self.session(id);
        if session.conn == Some(conn) {
            session.conn = None;
            true
        } else {
            false
        }
    }

    fn end(&mut self, id: SessionId) {
        let session = self.session(id);
        session.held = false;
        session.conn = None;
        session.expires = None;
        session.logged = 0;
    }

    fn closed(&mut self, slot: usize, now: Instant) {
        if let Some((id, conn)) = self.slots[slot].take()
            && self.detach(id, conn)
        {
            self.disconnect(id);
            let grace = self.grace;
            self.session(id).expires = Some(now + grace);
        }
    }

    fn leave(&mut self, slot: usize) {
        if let Some((id, conn)) = self.slots[slot].take()
            && self.detach(id, conn)
        {
            self.disconnect(id);
            self.end(id);
        }
    }

    fn say(&mut self, slot: usize, what: &str) {
        let Some((id, _)) = self.slots[slot] else {
            return;
        };
        match what {
            "panic" => self.restart(id),
            "hi" => {
                let session = self.session(id);
                session.last_seq += 1;
                session.logged = (session.logged + 1).min(LOG_FRAMES);
            }
            _ => {}
        }
    }

    /// The `after` a `hello` from `slot` carries, and the session it names.
    fn hello_target(&self, slot: usize, from: usize, after: After) -> (Option<SessionId>, Seq) {
        let own = self.slots[slot].map(|(id, _)| id);
        let target = self.slots[from].map(|(id, _)| id);
        let relative_to = target.or(own).map_or(0, |id| self.last_seq(id));
        (target, after.of(relative_to))
    }

    fn hello(&mut self, slot: usize, target: Option<SessionId>, after: Seq) {
        let Some((own, conn)) = self.slots[slot] else {
            return;
        };
        match target {
            Some(target) if target != own => {
                // Moves onto a session still held, if this connection is still its own
                // session's; the session it leaves ends.
                if !self.sessions[&target].held || !self.detach(own, conn) {
                    return;
                }
                self.disconnect(own);
                self.end(own);
                self.resume_onto(target, conn, after);
                self.slots[slot] = Some((target, conn));
            }
            // A point its own session never reached is refused: nothing changes.
            _ if after > self.last_seq(own) => {}
            _ => self.replay(own, after),
        }
    }

    /// Ends the sessions whose grace period ran out by `now`; returns them.
    fn expire(&mut self, now: Instant) -> Vec<SessionId> {
        let mut ended = Vec::new();
        for (id, session) in &mut self.sessions {
            if session.held && session.conn.is_none() && session.expires.is_some_and(|t| t <= now) {
                session.held = false;
                session.expires = None;
                session.logged = 0;
                ended.push(*id);
            }
        }
        ended
    }
}

/// Lets the tasks due at this instant (expiry timers) run; the paused clock stays put.
async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

/// Checks the hooks that ran, the sessions held and the slots against the model.
fn check(
    step: &dyn std::fmt::Debug,
    model: &mut Model,
    events: &Events,
    last_hook: &mut HashMap<SessionId, Kind>,
    registry: &Sessions<Echo, Recorder>,
    slots: &[Option<Attached<Echo, Recorder>>],
) -> Result<(), TestCaseError> {
    let expired = model.expire(Instant::now());
    let ran = std::mem::take(&mut *events.lock().unwrap());
    for event in &ran {
        let before = last_hook.insert(event.session, event.kind);
        prop_assert!(
            matches!(
                (before, event.kind),
                (None | Some(Kind::Disconnected), Kind::Connected)
                    | (Some(Kind::Connected), Kind::Disconnected)
            ),
            "{:?} after {:?} on session {} at {:?}",
            event.kind,
            before,
            event.session,
            step
        );
    }
    let expected = std::mem::take(&mut model.expected);
    prop_assert_eq!(&ran, &expected, "hooks run by {:?}", step);
    let held: BTreeSet<SessionId> = registry.sessions().keys().copied().collect();
    let modeled: BTreeSet<SessionId> = model
        .sessions
        .iter()
        .filter(|(_, s)| s.held)
        .map(|(id, _)| *id)
        .collect();
    prop_assert_eq!(&held, &modeled, "sessions held after {:?}", step);
    for id in expired {
        prop_assert!(
            !held.contains(&id),
            "session {} outlived its grace period",
            id
        );
        prop_assert_ne!(
            last_hook.get(&id),
            Some(&Kind::Connected),
            "session {} ended without `disconnected`",
            id
        );
    }
    let attached: Vec<Option<(SessionId, u64)>> = slots
        .iter()
        .map(|a| a.as_ref().map(|a| (a.session().id(), a.conn_id)))
        .collect();
    prop_assert_eq!(&attached[..], &model.slots[..], "slots after {:?}", step);
    Ok(())
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let events = Events::default();
    let made = Arc::new(AtomicU64::new(0));
    let grace = Duration::from_millis(50);
    let endpoint = {
        let events = events.clone();
        Endpoint::<Echo, _>::builder(move || Recorder {
            events: events.clone(),
            number: made.fetch_add(1, Ordering::Relaxed) + 1,
        })
        .limits(Limits {
            grace,
            log_frames: LOG_FRAMES as usize,
            ..Limits::default()
        })
        .build()
    };
    let registry = endpoint.registry().clone();
    let mut model = Model {
        sessions: HashMap::new(),
        slots: [None; SLOTS],
        handlers_made: 0,
        grace,
        expected: Vec::new(),
    };
    let mut last_hook = HashMap::new();
    let mut slots: Vec<Option<Attached<Echo, Recorder>>> = (0..SLOTS).map(|_| None).collect();
    let mut receivers = Vec::new();
    for step in &steps {
        match *step {
            Step::Open { slot, from, after } => {
                let resume = from
                    .and_then(|f| model.slots[f])
                    .map(|(id, _)| (id, after.of(model.last_seq(id))));
                model.closed(slot, Instant::now());
                if let Some(old) = slots[slot].take() {
                    old.closed().await;
                }
                let (conn, rx) = registry.shared.connection(true);
                let conn_id = conn.id;
                receivers.push(rx);
                let attached = Attached::open(
                    registry.clone(),
                    resume,
                    conn,
                    axum::http::Extensions::new(),
                    serde_json::Value::Null,
                    None,
                )
                .await;
                match resume {
                    Some((target, after)) if model.sessions[&target].held => {
                        model.resume_onto(target, conn_id, after);
                        model.slots[slot] = Some((target, conn_id));
                    }
                    _ => {
                        let id = attached.session().id();
                        prop_assert!(
                            !model.sessions.contains_key(&id),
                            "a new session expected, got {}",
                            id
                        );
                        model.create(id, conn_id);
                        model.slots[slot] = Some((id, conn_id));
                    }
                }
                slots[slot] = Some(attached);
            }
            Step::Hello { slot, from, after } => {
                let (target, after) = model.hello_target(slot, from, after);
                model.hello(slot, target, after);
                if let Some(attached) = slots[slot].as_mut() {
                    let hello = ClientFrame::Hello {
                        protocol: None,
                        version: None,
                        compatible: None,
                        session: target,
                        after: Some(after),
                        topics: None,
                        traceparent: None,
                    };
                    attached.handle(Ok(hello)).await;
                }
            }
            Step::Say { slot, what } => {
                model.say(slot, what);
                if let Some(attached) = slots[slot].as_mut() {
                    let msg = ClientFrame::msg(EchoFromClient::Say(what.into()));
                    attached.handle(Ok(msg)).await;
                }
            }
            Step::Close { slot } => {
                model.closed(slot, Instant::now());
                if let Some(attached) = slots[slot].take() {
                    attached.closed().await;
                }
            }
            Step::Leave { slot } => {
                model.leave(slot);
                if let Some(attached) = slots[slot].take() {
                    attached.leave().await;
                }
            }
            Step::Wait { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
        settle().await;
        check(step, &mut model, &events, &mut last_hook, &registry, &slots)?;
    }
    // Every connection goes; past the grace period nothing is left.
    for (slot, attached) in slots.iter_mut().enumerate() {
        model.closed(slot, Instant::now());
        if let Some(attached) = attached.take() {
            attached.closed().await;
        }
    }
    tokio::time::sleep(grace + Duration::from_millis(1)).await;
    settle().await;
    check(
        &"the end",
        &mut model,
        &events,
        &mut last_hook,
        &registry,
        &slots,
    )?;
    prop_assert_eq!(
        endpoint.sessions(),
        0,
        "a session outlived its grace period"
    );
    for (session, kind) in &last_hook {
        prop_assert_eq!(
            *kind,
            Kind::Disconnected,
            "session {} ended connected",
            session
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_connected_has_exactly_one_disconnected(
        steps in proptest::collection::vec(step(), 1..24),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(run(steps))?;
    }
}
