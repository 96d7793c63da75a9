//! Messages counted by kind: the protocol's variant names, known from its schema when the
//! endpoint is built, so the label set is bounded and every counter exists before the first
//! message. A message's kind is found without encoding it (see [`TagOf`]), and a kind the
//! build does not know is counted under [`UNKNOWN`], never under the client's string.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The label of a message whose kind this build does not know.
pub(crate) const UNKNOWN: &str = "unknown";

/// One counter per kind, in the order of `names` (sorted), then one for [`UNKNOWN`].
#[derive(Debug)]
pub(crate) struct ByKind {
    names: Box<[String]>,
    counts: Box<[AtomicU64]>,
    /// Where each variant index's name is in `names`, once seen ([`NOT_SEEN`] before): the
    /// kind of every later message of that variant is found without comparing strings.
    seen: Box<[AtomicU32]>,
}

/// A variant index whose name has not been looked up yet.
const NOT_SEEN: u32 = u32::MAX;

impl ByKind {
    /// Counters for `names`, which must be sorted (a schema's keys are).
    pub(crate) fn new(names: impl IntoIterator<Item = String>) -> Self {
        let names: Box<[String]> = names.into_iter().collect();
        debug_assert!(names.is_sorted());
        let counts = (0..=names.len()).map(|_| AtomicU64::new(0)).collect();
        // A wire enum has one variant per kind, so its indexes are below the names' count.
        let seen = names.iter().map(|_| AtomicU32::new(NOT_SEEN)).collect();
        Self {
            names,
            counts,
            seen,
        }
    }

    /// No kinds at all: a mux's own sockets carry no messages of one protocol.
    pub(crate) fn none() -> Self {
        Self::new([])
    }

    /// Counts `message` under its variant's name, and returns that name.
    pub(crate) fn count<M: Serialize>(&self, message: &M) -> &str {
        let at = message
            .serialize(TagOf { kinds: self })
            .ok()
            .flatten()
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

/// Reads the variant name of a protocol's wire enum by serializing it only as far as its tag.
/// The wire enums are adjacently tagged (`{"kind": …, "data": …}`): serde writes a struct
/// whose `kind` field is the variant; this serializer looks that name up and skips the
/// `data` field, so nothing is encoded or allocated.
struct TagOf<'n> {
    kinds: &'n ByKind,
}

/// Not a wire enum: the message is counted under [`UNKNOWN`].
#[derive(Debug)]
struct NotTagged;

impl fmt::Display for NotTagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an adjacently tagged enum")
    }
}

impl std::error::Error for NotTagged {}

impl ser::Error for NotTagged {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotTagged
    }
}

/// The methods of a serializer that refuses every shape but the ones it implements.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, NotTagged> {
            Err(NotTagged)
        })*
    };
}

/// The refusals both serializers share: every scalar but a string.
macro_rules! refuse_scalars {
    () => {
        refuse! {
            serialize_bool(bool);
            serialize_i8(i8);
            serialize_i16(i16);
            serialize_i32(i32);
            serialize_i64(i64);
            serialize_u8(u8);
            serialize_u16(u16);
            serialize_u32(u32);
            serialize_u64(u64);
            serialize_f32(f32);
            serialize_f64(f64);
            serialize_char(char);
            serialize_bytes(&[u8]);
            serialize_none();
            serialize_unit();
            serialize_unit_struct(&'static str);
        }

        fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<Self::Ok, NotTagged> {
            Err(NotTagged)
        }

        fn serialize_newtype_struct<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, NotTagged> {
            Err(NotTagged)
        }

        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, NotTagged> {
            Err(NotTagged)
        }

        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotTagged> {
            Err(NotTagged)
        }

        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotTagged> {
            Err(NotTagged)
        }

        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, NotTagged> {
            Err(NotTagged)
        }

        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, NotTagged> {
            Err(NotTagged)
        }

        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotTagged> {
            Err(NotTagged)
        }

        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, NotTagged> {
            Err(NotTagged)
        }
    };
}

impl<'n> ser::Serializer for TagOf<'n> {
    type Ok = Option<usize>;
    type Error = NotTagged;
    type SerializeSeq = Impossible<Self::Ok, NotTagged>;
    type SerializeTuple = Impossible<Self::Ok, NotTagged>;
    type SerializeTupleStruct = Impossible<Self::Ok, NotTagged>;
    type SerializeTupleVariant = Impossible<Self::Ok, NotTagged>;
    type SerializeMap = Impossible<Self::Ok, NotTagged>;
    type SerializeStruct = Tagged<'n>;
    type SerializeStructVariant = Impossible<Self::Ok, NotTagged>;

    refuse_scalars!();
    refuse! {
        serialize_str(&str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Tagged<'n>, NotTagged> {
        Ok(Tagged {
            kinds: self.kinds,
            found: None,
        })
    }
}

/// The struct serde writes for an adjacently tagged variant.
struct Tagged<'n> {
    kinds: &'n ByKind,
    found: Option<usize>,
}

impl ser::SerializeStruct for Tagged<'_> {
    type Ok = Option<usize>;
    type Error = NotTagged;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), NotTagged> {
        // The `data` field is never looked at: that is what makes this cheap.
        if key == "kind" {
            self.found = value.serialize(Name { kinds: self.kinds })?;
        }
        Ok(())
    }

    fn end(self) -> Result<Option<usize>, NotTagged> {
        Ok(self.found)
    }
}

/// The tag's value: serde writes it as a unit variant (older serde as a string).
struct Name<'n> {
    kinds: &'n ByKind,
}

impl ser::Serializer for Name<'_> {
    type Ok = Option<usize>;
    type Error = NotTagged;
    type SerializeSeq = Impossible<Self::Ok, NotTagged>;
    type SerializeTuple = Impossible<Self::Ok, NotTagged>;
    type SerializeTupleStruct = Impossible<Self::Ok, NotTagged>;
    type SerializeTupleVariant = Impossible<Self::Ok, NotTagged>;
    type SerializeMap = Impossible<Self::Ok, NotTagged>;
    type SerializeStruct = Impossible<Self::Ok, NotTagged>;
    type SerializeStructVariant = Impossible<Self::Ok, NotTagged>;

    refuse_scalars!();

    fn serialize_str(self, kind: &str) -> Result<Option<usize>, NotTagged> {
        Ok(position(&self.kinds.names, kind))
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        index: u32,
        kind: &'static str,
    ) -> Result<Option<usize>, NotTagged> {
        let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|index| self.kinds.seen.get(index))
        else {
            return Ok(position(&self.kinds.names, kind));
        };
        match slot.load(Ordering::Relaxed) {
            NOT_SEEN => {
                let at = position(&self.kinds.names, kind);
                if let Some(at) = at.and_then(|at| u32::try_from(at).ok()) {
                    slot.store(at, Ordering::Relaxed);
                }
                Ok(at)
            }
            at => Ok(Some(at as usize)),
        }
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotTagged> {
        Err(NotTagged)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "kind", content = "data")]
    enum Wire {
        #[serde(rename = "Said")]
        Say(String),
        Ping,
        Moved {
            x: i32,
        },
    }

    fn counts(by: &ByKind) -> Vec<(String, u64)> {
        by.each()
            .map(|(name, n)| (name.to_owned(), n.load(Ordering::Relaxed)))
            .collect()
    }

    #[test]
    fn counts_each_variant_under_its_wire_name() {
        let by = ByKind::new(["Moved", "Ping", "Said"].map(String::from));
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
    fn a_kind_missing_from_the_names_or_not_an_enum_is_unknown() {
        let by = ByKind::new(["Ping"].map(String::from));
        assert_eq!(by.count(&Wire::Moved { x: 1 }), UNKNOWN);
        by.count(&"plain text");
        by.count(&42);
        assert_eq!(
            counts(&by),
            [("Ping", 0), ("unknown", 3)].map(|(n, c)| (n.to_owned(), c))
        );
    }
}
