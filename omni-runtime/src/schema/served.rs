//! Which builds of a protocol this build serves, from the versions it keeps: the compatible
//! ones are served, the others refused with their breaking changes as the reason.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::compare::compare;
use super::model::Schema;
use crate::Protocol;
use crate::wire::hello::Served;

/// The builds of `P` this build serves, and those it refuses with why: its own schema, every
/// kept version its schema is compatible with, and every other kept version with its
/// breaking changes. Worked out once per protocol (it reads and compares every kept schema).
pub fn served<P: Protocol>() -> Arc<Served> {
    static SERVED: OnceLock<Mutex<HashMap<TypeId, Arc<Served>>>> = OnceLock::new();
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
    let served = Arc::new(work_out::<P>());
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(TypeId::of::<P>())
        .or_insert(served)
        .clone()
}

fn work_out<P: Protocol>() -> Served {
    let own = P::version();
    let current = P::schema();
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
        let report = compare(&kept, &current);
        served = if report.is_compatible() {
            served.serving(id)
        } else {
            let why: Vec<String> = report.breaking().map(ToString::to_string).collect();
            served.refusing(id, why.join("; "))
        };
    }
    served
}
