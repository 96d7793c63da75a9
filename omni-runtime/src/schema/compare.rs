//! Whether two builds of one protocol can talk, during a rolling deploy where each one writes
//! messages the other reads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::model::{EnumDef, Field, Payload, Schema, Shape, StructDef, TypeDef};

/// Whether a change lets the two builds keep talking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Old and new builds still understand each other.
    Compatible,
    /// One of them cannot read what the other writes.
    Breaking,
}

/// One difference between two schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// Where: `#[client] Send.data.author`.
    pub path: String,
    /// Whether it breaks.
    pub severity: Severity,
    /// What changed: `removed #[client] variant FetchAll`.
    pub what: String,
    /// What follows for the builds on each side: `clients built with 3f2a1b0c… would be
    /// refused`.
    pub effect: String,
}

impl Change {
    /// Whether this change breaks old and new builds apart.
    pub fn is_breaking(&self) -> bool {
        self.severity == Severity::Breaking
    }
}

/// `removed #[client] variant FetchAll: clients built with 3f2a1b0c… would be refused`.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.effect)
    }
}

/// What [`compare`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Every change, in the order met: `#[client]` variants (and what they reach) first.
    pub changes: Vec<Change>,
    /// Opaque types both schemas name: the same by name, their insides unchecked.
    pub unchecked: BTreeSet<String>,
}

impl Report {
    /// The changes that break.
    pub fn breaking(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.is_breaking())
    }

    /// Whether old and new builds can talk: no change breaks.
    pub fn is_compatible(&self) -> bool {
        self.breaking().next().is_none()
    }
}

/// Compares the schema of a released build (`old`) with the current one (`new`), as both run
/// side by side: each reads what the other writes, both ways.
///
/// Variants are compared by wire name and direction. A `#[client]` variant may be added (an
/// old server answers it with an error, and the connection stays) but not removed or renamed
/// (old clients still send it). A `#[server]` variant may be added (old clients report it as
/// unknown) or removed. Inside the messages, types are compared by structure, not by Rust
/// name: a field may be added or removed when it is optional (an `Option` or
/// `#[serde(default)]`), and anything else that an old build could not read breaks: a new or
/// removed required field, a changed type, a variant added to or removed from a nested enum,
/// changed tagging. `docs/PROTOCOL.md` has the full table.
///
/// ```
/// use omni::schema::{compare, schema};
///
/// mod v1 {
///     #[omni::protocol]
///     pub enum Msg {
///         #[client]
///         FetchAll,
///         #[server]
///         Count(u32),
///     }
/// }
/// mod v2 {
///     #[omni::protocol]
///     pub enum Msg {
///         #[server]
///         Count(u32),
///         #[server]
///         Reset,
///     }
/// }
///
/// let report = compare(&schema::<v1::Msg>(), &schema::<v2::Msg>());
/// let breaking: Vec<String> = report.breaking().map(|c| c.what.clone()).collect();
/// assert_eq!(breaking, ["removed #[client] variant FetchAll"]);
/// assert!(!report.is_compatible());
/// ```
pub fn compare(old: &Schema, new: &Schema) -> Report {
    let old_id = old.id();
    let mut walk = Walk {
        old,
        new,
        since: format!("{}…", &old_id[..old_id.len().min(8)]),
        visited: BTreeSet::new(),
        depth: 0,
        report: Report::default(),
    };
    walk.variants(Side::Client, &old.client, &new.client);
    walk.variants(Side::Server, &old.server, &new.server);
    walk.report
}

#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

impl Side {
    fn attr(self) -> &'static str {
        match self {
            Side::Client => "#[client]",
            Side::Server => "#[server]",
        }
    }
}

struct Walk<'a> {
    old: &'a Schema,
    new: &'a Schema,
    /// The old build's id, shortened, for messages.
    since: String,
    /// Pairs of named types (old, new) already compared: each once, and recursion ends.
    visited: BTreeSet<(String, String)>,
    /// How deep `shape` is: a type that reaches itself through an unnamed shape (a newtype of
    /// `Option<Self>`, a tuple struct holding itself) is only seen again under another
    /// name pair, so recursion is also bounded by depth.
    depth: usize,
    report: Report,
}

/// Nesting `shape` goes no deeper than: far beyond any message a person writes.
const MAX_DEPTH: usize = 128;

/// A shape with named types looked up: what the wire holds.
enum Resolved<'a> {
    Shape(&'a Shape),
    Tuple(&'a [Shape]),
    Struct(&'a str, &'a StructDef),
    Enum(&'a str, &'a EnumDef),
    UnitStruct(&'a str),
    /// A reference to a name the schema does not define.
    Missing(&'a str),
}

impl Walk<'_> {
    fn push(&mut self, path: &str, severity: Severity, what: String, effect: String) {
        self.report.changes.push(Change {
            path: path.to_owned(),
            severity,
            what,
            effect,
        });
    }

    fn variants(
        &mut self,
        side: Side,
        old: &BTreeMap<String, Payload>,
        new: &BTreeMap<String, Payload>,
    ) {
        let attr = side.attr();
        for (name, before) in old {
            let path = format!("{attr} {name}");
            match new.get(name) {
                Some(after) => self.payload(&format!("{path}.data"), before, after),
                None => {
                    let (severity, effect) = match side {
                        Side::Client => (
                            Severity::Breaking,
                            format!("clients built with {} would be refused", self.since),
                        ),
                        Side::Server => (
                            Severity::Compatible,
                            format!("clients built with {} no longer receive it", self.since),
                        ),
                    };
                    self.push(
                        &path,
                        severity,
                        format!("removed {attr} variant {name}"),
                        effect,
                    );
                }
            }
        }
        for name in new.keys().filter(|name| !old.contains_key(*name)) {
            let effect = match side {
                Side::Client => format!(
                    "servers built with {} answer it with an error and keep the connection",
                    self.since
                ),
                Side::Server => format!("clients built with {} report it as unknown", self.since),
            };
            self.push(
                &format!("{attr} {name}"),
                Severity::Compatible,
                format!("added {attr} variant {name}"),
                effect,
            );
        }
    }

    fn payload(&mut self, path: &str, old: &Payload, new: &Payload) {
        match (old, new) {
            (Payload::Unit, Payload::Unit) => {}
            (Payload::Fields(before), Payload::Fields(after)) => {
                self.fields(path, "", before, after, false, false);
            }
            (Payload::One(before), Payload::One(after)) => self.shape(path, before, after),
            (Payload::Tuple(before), Payload::Tuple(after)) => self.tuple(path, before, after),
            _ => self.push(
                path,
                Severity::Breaking,
                format!(
                    "changed the payload at {path} from {} to {}",
                    describe_payload(old),
                    describe_payload(new)
                ),
                format!("builds at {} cannot read it", self.since),
            ),
        }
    }

    fn tuple(&mut self, path: &str, old: &[Shape], new: &[Shape]) {
        if old.len() != new.len() {
            let what = format!(
                "changed the number of values at {path} from {} to {}",
                old.len(),
                new.len()
            );
            let effect = format!("builds at {} cannot read it", self.since);
            self.push(path, Severity::Breaking, what, effect);
            return;
        }
        for (i, (before, after)) in old.iter().zip(new).enumerate() {
            self.shape(&format!("{path}.{i}"), before, after);
        }
    }

    /// Follows references and newtypes (which serde writes as the value they hold) down to
    /// what the wire carries.
    fn resolve<'s>(schema: &'s Schema, mut shape: &'s Shape) -> Resolved<'s> {
        let mut seen = BTreeSet::new();
        loop {
            let Shape::Ref(name) = shape else {
                return Resolved::Shape(shape);
            };
            // A newtype that holds itself has no wire form; stop rather than loop.
            if !seen.insert(name) {
                return Resolved::Missing(name);
            }
            match schema.types.get(name) {
                None => return Resolved::Missing(name),
                Some(TypeDef::Newtype(inner)) => shape = inner,
                Some(TypeDef::TupleStruct(items)) => return Resolved::Tuple(items),
                Some(TypeDef::Struct(def)) => return Resolved::Struct(name, def),
                Some(TypeDef::Enum(def)) => return Resolved::Enum(name, def),
                Some(TypeDef::UnitStruct) => return Resolved::UnitStruct(name),
            }
        }
    }

    fn shape(&mut self, path: &str, old: &Shape, new: &Shape) {
        if self.depth >= MAX_DEPTH {
            return;
        }
        self.depth += 1;
        self.shape_within(path, old, new);
        self.depth -= 1;
    }

    fn shape_within(&mut self, path: &str, old: &Shape, new: &Shape) {
        let before = Self::resolve(self.old, old);
        let after = Self::resolve(self.new, new);
        let named = |r: &Resolved| match r {
            Resolved::Struct(name, _)
            | Resolved::Enum(name, _)
            | Resolved::UnitStruct(name)
            | Resolved::Missing(name) => Some(name.to_string()),
            _ => None,
        };
        if let (Some(a), Some(b)) = (named(&before), named(&after))
            && !self.visited.insert((a, b))
        {
            return;
        }
        match (before, after) {
            (Resolved::Struct(_, a), Resolved::Struct(name, b)) => {
                self.fields(
                    path,
                    name,
                    &a.fields,
                    &b.fields,
                    a.deny_unknown_fields,
                    b.deny_unknown_fields,
                );
            }
            (Resolved::Enum(_, a), Resolved::Enum(name, b)) => self.enums(path, name, a, b),
            (Resolved::UnitStruct(_), Resolved::UnitStruct(_)) => {}
            (Resolved::Missing(a), Resolved::Missing(b)) if a == b => {
                self.report.unchecked.insert(a.to_owned());
            }
            (Resolved::Tuple(a), Resolved::Tuple(b)) => self.tuple(path, a, b),
            (Resolved::Tuple(a), Resolved::Shape(Shape::Tuple(b))) => self.tuple(path, a, b),
            (Resolved::Shape(Shape::Tuple(a)), Resolved::Tuple(b)) => self.tuple(path, a, b),
            (Resolved::Shape(a), Resolved::Shape(b)) => self.structural(path, old, new, a, b),
            _ => self.retyped(path, old, new),
        }
    }

    /// Two shapes that are not named types.
    fn structural(&mut self, path: &str, old: &Shape, new: &Shape, a: &Shape, b: &Shape) {
        match (a, b) {
            (Shape::Option(a), Shape::Option(b)) => self.shape(path, a, b),
            (Shape::Seq(a), Shape::Seq(b)) => self.shape(&format!("{path}[]"), a, b),
            (Shape::Array { of: a, len: m }, Shape::Array { of: b, len: n }) if m == n => {
                self.shape(&format!("{path}[]"), a, b);
            }
            (Shape::Map { key: ka, value: va }, Shape::Map { key: kb, value: vb }) => {
                self.shape(&format!("{path}[key]"), ka, kb);
                self.shape(&format!("{path}[value]"), va, vb);
            }
            (Shape::Tuple(a), Shape::Tuple(b)) => self.tuple(path, a, b),
            (Shape::Opaque(a), Shape::Opaque(b)) if a == b => {
                self.report.unchecked.insert(a.clone());
            }
            (a, b) if a == b && !matches!(a, Shape::Ref(_) | Shape::Opaque(_)) => {}
            _ => self.retyped(path, old, new),
        }
    }

    fn retyped(&mut self, path: &str, old: &Shape, new: &Shape) {
        let what = format!("changed the type at {path} from {old} to {new}");
        let effect = format!("builds at {} cannot read it", self.since);
        self.push(path, Severity::Breaking, what, effect);
    }

    /// The fields of a struct (`owner` names it) or of a struct variant (`owner` empty).
    fn fields(
        &mut self,
        path: &str,
        owner: &str,
        old: &BTreeMap<String, Field>,
        new: &BTreeMap<String, Field>,
        old_denies: bool,
        new_denies: bool,
    ) {
        let since = self.since.clone();
        let of = if owner.is_empty() {
            String::new()
        } else {
            format!(" of {owner}")
        };
        for (name, before) in old {
            let here = format!("{path}.{name}");
            let Some(after) = new.get(name) else {
                let (severity, effect) = if before.required {
                    (
                        Severity::Breaking,
                        format!("builds at {since} require it and would refuse the message"),
                    )
                } else if new_denies {
                    (
                        Severity::Breaking,
                        format!(
                            "builds at {since} still write it, and this build refuses unknown \
                             fields"
                        ),
                    )
                } else {
                    (
                        Severity::Compatible,
                        format!("builds at {since} read it as absent"),
                    )
                };
                let required = if before.required {
                    "required"
                } else {
                    "optional"
                };
                self.push(
                    &here,
                    severity,
                    format!("removed {required} field {here}{of}"),
                    effect,
                );
                continue;
            };
            if after.required && !before.required {
                self.push(
                    &here,
                    Severity::Breaking,
                    format!("made field {here}{of} required"),
                    format!("builds at {since} may leave it out"),
                );
            } else if before.required && after.may_omit && !before.may_omit {
                self.push(
                    &here,
                    Severity::Breaking,
                    format!("field {here}{of} may now be left out"),
                    format!("builds at {since} require it"),
                );
            } else if !after.required && before.required {
                self.push(
                    &here,
                    Severity::Compatible,
                    format!("made field {here}{of} optional"),
                    format!("builds at {since} still write it"),
                );
            }
            self.shape(&here, &before.shape, &after.shape);
        }
        for (name, after) in new.iter().filter(|(name, _)| !old.contains_key(*name)) {
            let here = format!("{path}.{name}");
            let (severity, effect) = if after.required {
                (
                    Severity::Breaking,
                    format!("builds at {since} do not write it, and this build requires it"),
                )
            } else if old_denies {
                (
                    Severity::Breaking,
                    format!("builds at {since} refuse unknown fields"),
                )
            } else {
                (
                    Severity::Compatible,
                    format!("builds at {since} ignore it, and their messages read it as absent"),
                )
            };
            let required = if after.required {
                "required"
            } else {
                "optional"
            };
            self.push(
                &here,
                severity,
                format!("added {required} field {here}{of}"),
                effect,
            );
        }
    }

    fn enums(&mut self, path: &str, owner: &str, old: &EnumDef, new: &EnumDef) {
        let since = self.since.clone();
        if old.tagging != new.tagging {
            self.push(
                path,
                Severity::Breaking,
                format!("changed how enum {owner} at {path} is tagged"),
                format!("builds at {since} cannot tell its variants apart"),
            );
            return;
        }
        for (name, before) in &old.variants {
            let here = format!("{path}::{name}");
            match new.variants.get(name) {
                Some(after) => self.payload(&here, before, after),
                None => self.push(
                    &here,
                    Severity::Breaking,
                    format!("removed variant {name} of enum {owner} at {path}"),
                    format!("builds at {since} still write it, and this build cannot read it"),
                ),
            }
        }
        for name in new
            .variants
            .keys()
            .filter(|n| !old.variants.contains_key(*n))
        {
            self.push(
                &format!("{path}::{name}"),
                Severity::Breaking,
                format!("added variant {name} to enum {owner} at {path}"),
                format!("builds at {since} cannot read a message that holds it"),
            );
        }
    }
}

fn describe_payload(payload: &Payload) -> String {
    match payload {
        Payload::Unit => "nothing".to_owned(),
        Payload::One(shape) => format!("one value ({shape})"),
        Payload::Tuple(items) => format!("{} values", items.len()),
        Payload::Fields(fields) => format!(
            "fields {{{}}}",
            fields.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::schema::Tagging;

    fn field(shape: Shape) -> Field {
        Field::new(shape)
    }

    fn fields(entries: &[(&str, Field)]) -> BTreeMap<String, Field> {
        entries
            .iter()
            .map(|(name, f)| ((*name).to_owned(), f.clone()))
            .collect()
    }

    fn item(def: StructDef) -> Schema {
        let mut schema = Schema::new("Msg");
        schema
            .client
            .insert("Send".into(), Payload::One(Shape::Ref("Item".into())));
        schema.types.insert("Item".into(), TypeDef::Struct(def));
        schema
    }

    fn item_fields(entries: &[(&str, Field)]) -> Schema {
        item(StructDef::new(fields(entries)))
    }

    fn kind(entries: &[(&str, Payload)], tagging: Tagging) -> Schema {
        let mut schema = Schema::new("Msg");
        schema
            .server
            .insert("Changed".into(), Payload::One(Shape::Ref("Kind".into())));
        let variants = entries
            .iter()
            .map(|(name, p)| ((*name).to_owned(), p.clone()))
            .collect();
        schema.types.insert(
            "Kind".into(),
            TypeDef::Enum(EnumDef::new(tagging, variants)),
        );
        schema
    }

    fn variants(client: &[&str], server: &[&str]) -> Schema {
        let mut schema = Schema::new("Msg");
        for name in client {
            schema.client.insert((*name).into(), Payload::Unit);
        }
        for name in server {
            schema.server.insert((*name).into(), Payload::Unit);
        }
        schema
    }

    /// Each rule: old, new, and the one change expected (its `what`, and whether it breaks).
    #[test]
    fn each_rule_of_the_table() {
        let id = || field(Shape::String);
        let optional = || field(Shape::Option(Shape::String.boxed()));
        let defaulted = || field(Shape::U32).with_required(false);
        let unit = || Payload::Unit;
        let cases: Vec<(&str, Schema, Schema, &str, Severity)> = vec![
            (
                "new #[server] variant",
                variants(&["A"], &["B"]),
                variants(&["A"], &["B", "C"]),
                "added #[server] variant C",
                Severity::Compatible,
            ),
            (
                "new #[client] variant",
                variants(&["A"], &[]),
                variants(&["A", "Z"], &[]),
                "added #[client] variant Z",
                Severity::Compatible,
            ),
            (
                "removed #[server] variant",
                variants(&[], &["B", "C"]),
                variants(&[], &["B"]),
                "removed #[server] variant C",
                Severity::Compatible,
            ),
            (
                "removed #[client] variant",
                variants(&["A", "Z"], &[]),
                variants(&["A"], &[]),
                "removed #[client] variant Z",
                Severity::Breaking,
            ),
            (
                "new optional field",
                item_fields(&[("id", id())]),
                item_fields(&[("id", id()), ("note", optional())]),
                "added optional field #[client] Send.data.note of Item",
                Severity::Compatible,
            ),
            (
                "new defaulted field",
                item_fields(&[("id", id())]),
                item_fields(&[("id", id()), ("count", defaulted())]),
                "added optional field #[client] Send.data.count of Item",
                Severity::Compatible,
            ),
            (
                "new required field",
                item_fields(&[("id", id())]),
                item_fields(&[("id", id()), ("author", id())]),
                "added required field #[client] Send.data.author of Item",
                Severity::Breaking,
            ),
            (
                "removed optional field",
                item_fields(&[("id", id()), ("note", optional())]),
                item_fields(&[("id", id())]),
                "removed optional field #[client] Send.data.note of Item",
                Severity::Compatible,
            ),
            (
                "removed required field",
                item_fields(&[("id", id()), ("author", id())]),
                item_fields(&[("id", id())]),
                "removed required field #[client] Send.data.author of Item",
                Severity::Breaking,
            ),
            (
                "field becomes required",
                item_fields(&[("count", defaulted())]),
                item_fields(&[("count", field(Shape::U32))]),
                "made field #[client] Send.data.count of Item required",
                Severity::Breaking,
            ),
            (
                "field becomes optional",
                item_fields(&[("count", field(Shape::U32))]),
                item_fields(&[("count", defaulted())]),
                "made field #[client] Send.data.count of Item optional",
                Severity::Compatible,
            ),
            (
                "field may now be left out",
                item_fields(&[("count", field(Shape::U32))]),
                item_fields(&[("count", defaulted().omittable())]),
                "field #[client] Send.data.count of Item may now be left out",
                Severity::Breaking,
            ),
            (
                "integer width",
                item_fields(&[("count", field(Shape::U32))]),
                item_fields(&[("count", field(Shape::U64))]),
                "changed the type at #[client] Send.data.count from u32 to u64",
                Severity::Breaking,
            ),
            (
                "new field where unknown fields are refused",
                item(StructDef::new(fields(&[("id", id())])).deny_unknown_fields(true)),
                item(
                    StructDef::new(fields(&[("id", id()), ("note", optional())]))
                        .deny_unknown_fields(true),
                ),
                "added optional field #[client] Send.data.note of Item",
                Severity::Breaking,
            ),
            (
                "removed optional field where unknown fields are refused",
                item(
                    StructDef::new(fields(&[("id", id()), ("note", optional())]))
                        .deny_unknown_fields(true),
                ),
                item(StructDef::new(fields(&[("id", id())])).deny_unknown_fields(true)),
                "removed optional field #[client] Send.data.note of Item",
                Severity::Breaking,
            ),
            (
                "new variant of a nested enum",
                kind(&[("A", unit())], Tagging::External),
                kind(&[("A", unit()), ("B", unit())], Tagging::External),
                "added variant B to enum Kind at #[server] Changed.data",
                Severity::Breaking,
            ),
            (
                "removed variant of a nested enum",
                kind(&[("A", unit()), ("B", unit())], Tagging::External),
                kind(&[("A", unit())], Tagging::External),
                "removed variant B of enum Kind at #[server] Changed.data",
                Severity::Breaking,
            ),
            (
                "changed tagging",
                kind(&[("A", unit())], Tagging::External),
                kind(&[("A", unit())], Tagging::Internal { tag: "t".into() }),
                "changed how enum Kind at #[server] Changed.data is tagged",
                Severity::Breaking,
            ),
            (
                "changed payload of a nested variant",
                kind(&[("A", unit())], Tagging::Untagged),
                kind(&[("A", Payload::One(Shape::Bool))], Tagging::Untagged),
                "changed the payload at #[server] Changed.data::A from nothing to one value (bool)",
                Severity::Breaking,
            ),
            (
                "changed payload of a message",
                variants(&["A"], &[]),
                {
                    let mut s = variants(&[], &[]);
                    s.client
                        .insert("A".into(), Payload::Tuple(vec![Shape::U8, Shape::U8]));
                    s
                },
                "changed the payload at #[client] A.data from nothing to 2 values",
                Severity::Breaking,
            ),
            (
                "opaque type renamed",
                item_fields(&[("at", field(Shape::Opaque("DateTime".into())))]),
                item_fields(&[("at", field(Shape::Opaque("Timestamp".into())))]),
                "changed the type at #[client] Send.data.at from opaque<DateTime> to \
                 opaque<Timestamp>",
                Severity::Breaking,
            ),
        ];
        for (rule, old, new, what, severity) in cases {
            let report = compare(&old, &new);
            let first = report
                .changes
                .first()
                .unwrap_or_else(|| panic!("{rule}: no change found"));
            assert_eq!(first.what, what, "{rule}");
            assert_eq!(first.severity, severity, "{rule}: {first}");
            assert!(
                first.to_string().starts_with(&format!("{what}: ")),
                "{rule}"
            );
        }
    }

    #[test]
    fn option_of_t_is_another_type() {
        let old = item_fields(&[("id", field(Shape::String))]);
        let new = item_fields(&[("id", field(Shape::Option(Shape::String.boxed())))]);
        let report = compare(&old, &new);
        let breaking: Vec<_> = report.breaking().map(|c| c.what.clone()).collect();
        assert_eq!(
            breaking,
            ["changed the type at #[client] Send.data.id from string to option<string>"]
        );
    }

    #[test]
    fn opaque_types_are_noted_unchecked() {
        let schema = item_fields(&[("at", field(Shape::Opaque("DateTime".into())))]);
        let report = compare(&schema, &schema);
        assert!(report.changes.is_empty());
        assert_eq!(report.unchecked.iter().collect::<Vec<_>>(), ["DateTime"]);
    }

    #[test]
    fn a_type_that_holds_itself_through_an_unnamed_shape_ends() {
        // `struct Loop(Option<Box<Loop>>)` and `struct Pair(Box<Pair>, u8)`: no name is met
        // twice in a row on both sides, so only the depth bound ends the walk.
        let mut schema = Schema::new("Msg");
        let looped = Shape::Option(Shape::Ref("Loop".into()).boxed());
        schema.types.insert("Loop".into(), TypeDef::Newtype(looped));
        let pair = vec![Shape::Ref("Pair".into()), Shape::U8];
        schema
            .types
            .insert("Pair".into(), TypeDef::TupleStruct(pair));
        for name in ["Loop", "Pair"] {
            schema
                .client
                .insert(name.into(), Payload::One(Shape::Ref(name.into())));
        }
        assert!(compare(&schema, &schema).changes.is_empty());
    }

    #[test]
    fn a_recursive_type_ends_and_reports_once() {
        let tree = |extra: bool| {
            let mut entries = vec![(
                "children",
                field(Shape::Seq(Shape::Ref("Tree".into()).boxed())),
            )];
            if extra {
                entries.push(("label", field(Shape::String)));
            }
            let mut schema = Schema::new("Msg");
            schema
                .server
                .insert("Tree".into(), Payload::One(Shape::Ref("Tree".into())));
            schema
                .client
                .insert("Plant".into(), Payload::One(Shape::Ref("Tree".into())));
            schema.types.insert(
                "Tree".into(),
                TypeDef::Struct(StructDef::new(fields(&entries))),
            );
            schema
        };
        let report = compare(&tree(false), &tree(true));
        assert_eq!(report.changes.len(), 1, "{:#?}", report.changes);
        assert_eq!(report.changes[0].path, "#[client] Plant.data.label");
    }

    fn shape() -> impl Strategy<Value = Shape> {
        let leaf = prop_oneof![
            Just(Shape::Bool),
            Just(Shape::U8),
            Just(Shape::I64),
            Just(Shape::F64),
            Just(Shape::String),
            Just(Shape::Bytes),
            Just(Shape::Unit),
            Just(Shape::Any),
            "[A-C]".prop_map(Shape::Ref),
            "[a-z]{1,6}".prop_map(Shape::Opaque),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|s| Shape::Option(s.boxed())),
                inner.clone().prop_map(|s| Shape::Seq(s.boxed())),
                (inner.clone(), inner.clone()).prop_map(|(k, v)| Shape::Map {
                    key: k.boxed(),
                    value: v.boxed()
                }),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Shape::Tuple),
                (inner, 0usize..4).prop_map(|(of, len)| Shape::Array {
                    of: of.boxed(),
                    len
                }),
            ]
        })
    }

    fn field_strategy() -> impl Strategy<Value = Field> {
        (shape(), any::<bool>(), any::<bool>()).prop_map(|(shape, required, omit)| {
            let field = Field::new(shape).with_required(required);
            if omit { field.omittable() } else { field }
        })
    }

    fn payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            Just(Payload::Unit),
            shape().prop_map(Payload::One),
            prop::collection::vec(shape(), 0..3).prop_map(Payload::Tuple),
            prop::collection::btree_map("[a-z_]{1,8}", field_strategy(), 0..4)
                .prop_map(Payload::Fields),
        ]
    }

    fn tagging() -> impl Strategy<Value = Tagging> {
        prop_oneof![
            Just(Tagging::External),
            Just(Tagging::Untagged),
            "[a-z]{1,4}".prop_map(|tag| Tagging::Internal { tag }),
            ("[a-z]{1,4}", "[a-z]{1,4}")
                .prop_map(|(tag, content)| Tagging::Adjacent { tag, content }),
        ]
    }

    fn type_def() -> impl Strategy<Value = TypeDef> {
        prop_oneof![
            (
                prop::collection::btree_map("[a-z_]{1,8}", field_strategy(), 0..4),
                any::<bool>()
            )
                .prop_map(|(f, deny)| TypeDef::Struct(StructDef::new(f).deny_unknown_fields(deny))),
            shape().prop_map(TypeDef::Newtype),
            prop::collection::vec(shape(), 0..3).prop_map(TypeDef::TupleStruct),
            Just(TypeDef::UnitStruct),
            (
                tagging(),
                prop::collection::btree_map("[A-Z][a-z]{0,5}", payload(), 0..4)
            )
                .prop_map(|(t, v)| TypeDef::Enum(EnumDef::new(t, v))),
        ]
    }

    prop_compose! {
        fn schemas()(
            name in "[A-Za-z]{1,8}",
            client in prop::collection::btree_map("[A-Za-z]{1,8}", payload(), 0..4),
            server in prop::collection::btree_map("[A-Za-z]{1,8}", payload(), 0..4),
            types in prop::collection::btree_map("[A-C]", type_def(), 0..3),
        ) -> Schema {
            let mut schema = Schema::new(name);
            schema.client = client;
            schema.server = server;
            schema.types = types;
            schema
        }
    }

    proptest! {
        #[test]
        fn a_schema_has_no_changes_against_itself(schema in schemas()) {
            let report = compare(&schema, &schema);
            prop_assert!(report.changes.is_empty(), "{:#?}", report.changes);
        }

        #[test]
        fn the_document_round_trips(schema in schemas()) {
            let text = schema.to_json();
            prop_assert_eq!(Schema::from_json(&text).unwrap(), schema.clone());
            prop_assert_eq!(schema.to_json(), text);
        }
    }
}
