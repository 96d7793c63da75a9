//! What a build knows of its own protocol at run time, worked out once from its schema:
//! which builds it serves (from the versions it keeps: the compatible ones, the others refused
//! with their breaking changes as the reason), and the message kinds it knows, so that a
//! message of another kind is told apart from a malformed one.

use std::any::TypeId;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::compare::compare;
use super::model::Schema;
use crate::Protocol;
use crate::wire::hello::Served;

/// The builds of `P` this build serves, and those it refuses with why: its own schema, every
/// kept version its schema is compatible with, and every other kept version with its
/// breaking changes. Worked out once per protocol (it reads and compares every kept schema).
pub fn served<P: Protocol>() -> Arc<Served> {
    known::<P>().served.clone()
}

/// The message kinds of `P`'s build: its `#[client]` and `#[server]` variants' wire names.
#[derive(Debug)]
// A server reads both (it counts messages of each kind), a client only the server kinds.
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) struct Kinds {
    pub(crate) client: BTreeSet<String>,
    pub(crate) server: BTreeSet<String>,
}

/// The kinds of `P`'s messages, for telling an unknown message from a malformed one.
#[cfg_attr(not(any(feature = "server", feature = "client")), allow(dead_code))]
pub(crate) fn kinds<P: Protocol>() -> Arc<Kinds> {
    known::<P>().kinds.clone()
}

/// What is worked out once per protocol.
struct Known {
    served: Arc<Served>,
    kinds: Arc<Kinds>,
}

fn known<P: Protocol>() -> Arc<Known> {
    static SERVED: OnceLock<Mutex<HashMap<TypeId, Arc<Known>>>> = OnceLock::new();
    let cache = SERVED.get_or_init(Mutex::default);
    if let Some(served) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&TypeId::of::<P>())
    {
        return served.clone();
    }
    // Outside the lock: a protocol's schema may be large, and another protocol may be asked
    // for meanwhile. Two threads may both work it out; they get the same answer.
    let schema = P::schema();
    let kinds = Kinds {
        client: schema.client.keys().cloned().collect(),
        server: schema.server.keys().cloned().collect(),
    };
    let served = Arc::new(Known {
        served: Arc::new(work_out::<P>(&schema)),
        kinds: Arc::new(kinds),
    });
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(TypeId::of::<P>())
        .or_insert(served)
        .clone()
}

fn work_out<P: Protocol>(current: &Schema) -> Served {
    let own = P::version();
    let mut served = Served::new(own);
    // A kept file that does not read is left out: the `check` test reports it.
    for kept in P::kept()
        .iter()
        .filter_map(|text| Schema::from_json(text).ok())
    {
        let id = kept.id();
        if id == own {
            continue;
        }
        let report = compare(&kept, current);
        served = if report.is_compatible() {
            served.serving(id)
        } else {
            let why: Vec<String> = report.breaking().map(ToString::to_string).collect();
            served.refusing(id, why.join("; "))
        };
    }
    served
}
