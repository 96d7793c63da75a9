//! Messages counted by kind: the protocol's variant names, known from its schema when the
//! endpoint is built, so the label set is bounded and every counter exists before the first
//! message. A message's kind is its variant's index ([`Kinds`]), mapped once to its counter;
//! a kind the build does not know is counted under [`UNKNOWN`], never under the client's
//! string.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::Kinds;

/// The label of a message whose kind this build does not know.
pub(crate) const UNKNOWN: &str = "unknown";

/// One counter per kind, in the order of `names` (sorted), then one for [`UNKNOWN`].
#[derive(Debug)]
pub(crate) struct ByKind {
    names: Box<[String]>,
    counts: Box<[AtomicU64]>,
    /// For each variant index of the wire enum ([`Kinds::KINDS`]), its counter's position:
    /// counting a message is a lookup by index, with no string compared.
    slots: Box<[usize]>,
}

impl ByKind {
    /// Counters for `names`, which must be sorted (a schema's keys are), for messages of a
    /// wire enum whose variants are named `kinds` in declaration order.
    pub(crate) fn new(names: impl IntoIterator<Item = String>, kinds: &[&str]) -> Self {
        let names: Box<[String]> = names.into_iter().collect();
        debug_assert!(names.is_sorted());
        let counts = (0..=names.len()).map(|_| AtomicU64::new(0)).collect();
        // A variant missing from the names (behind a `cfg` that is off) is never built, so
        // never counted; `UNKNOWN`'s counter is its slot all the same.
        let slots = kinds
            .iter()
            .map(|kind| position(&names, kind).unwrap_or(names.len()))
            .collect();
        Self {
            names,
            counts,
            slots,
        }
    }

    /// No kinds at all: a mux's own sockets carry no messages of one protocol.
    pub(crate) fn none() -> Self {
        Self::new([], &[])
    }

    /// Counts `message` under its variant's name, and returns that name.
    pub(crate) fn count<M: Kinds>(&self, message: &M) -> &str {
        let at = self
            .slots
            .get(message.kind_index())
            .copied()
            .unwrap_or(self.names.len());
        self.counts[at].fetch_add(1, Ordering::Relaxed);
        self.names.get(at).map_or(UNKNOWN, String::as_str)
    }

    /// Counts a message whose kind is not one of this build's.
    pub(crate) fn unknown(&self) {
        self.counts[self.names.len()].fetch_add(1, Ordering::Relaxed);
    }

    /// Each kind's label and counter, [`UNKNOWN`] last.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn each(&self) -> impl Iterator<Item = (&str, &AtomicU64)> {
        let names = self.names.iter().map(String::as_str);
        names.chain([UNKNOWN]).zip(self.counts.iter())
    }
}

/// Where `kind` is among the sorted `names`.
fn position(names: &[String], kind: &str) -> Option<usize> {
    names.binary_search_by(|name| name.as_str().cmp(kind)).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    /// A wire enum as the macro numbers one: declaration order, wire names.
    #[allow(dead_code)] // Only the variants are read.
    enum Wire {
        Say(String),
        Ping,
        Moved { x: i32 },
    }

    impl Kinds for Wire {
        const KINDS: &'static [&'static str] = &["Said", "Ping", "Moved"];
        fn kind_index(&self) -> usize {
            match self {
                Wire::Say(_) => 0,
                Wire::Ping => 1,
                Wire::Moved { .. } => 2,
            }
        }
    }

    fn counts(by: &ByKind) -> Vec<(String, u64)> {
        by.each()
            .map(|(name, n)| (name.to_owned(), n.load(Ordering::Relaxed)))
            .collect()
    }

    #[test]
    fn counts_each_variant_under_its_wire_name() {
        let by = ByKind::new(["Moved", "Ping", "Said"].map(String::from), Wire::KINDS);
        assert_eq!(by.count(&Wire::Say("hi".into())), "Said");
        by.count(&Wire::Say("again".into()));
        by.count(&Wire::Ping);
        by.count(&Wire::Moved { x: 1 });
        by.unknown();
        assert_eq!(
            counts(&by),
            [("Moved", 1), ("Ping", 1), ("Said", 2), ("unknown", 1)]
                .map(|(n, c)| (n.to_owned(), c))
        );
    }

    #[test]
    fn a_kind_missing_from_the_names_is_unknown() {
        let by = ByKind::new(["Ping"].map(String::from), Wire::KINDS);
        assert_eq!(by.count(&Wire::Moved { x: 1 }), UNKNOWN);
        assert_eq!(by.count(&Wire::Ping), "Ping");
        assert_eq!(
            counts(&by),
            [("Ping", 1), ("unknown", 1)].map(|(n, c)| (n.to_owned(), c))
        );
    }
}
