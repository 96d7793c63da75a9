//! TypeScript declarations for a protocol's wire types, made with `ts-rs`.
//!
//! [`declarations`] returns one self-contained `.ts` module text declaring the protocol's two
//! wire enums, every type their fields name, and the generic frame types, so a browser client
//! can be typed from the same enum the server is built from. Large integers (`u64`, `i64`) are
//! declared as `number`, as JSON carries them.
//!
//! A field type is declared by its own [`TS`] impl (derive it with `#[omni::wire]` or
//! `#[derive(omni::TS)]`). A field type without one still travels, since the wire needs only
//! serde, but is declared as `unknown`: the browser must check such a value before using it.
//! The whole field type as written falls back, so `Vec<Item>` becomes `unknown`, not
//! `unknown[]`. [`generate`] lists those types, and the module says so in its header;
//! `cargo xtask ts --check` warns about them (`--strict` fails).
//!
//! ```
//! #[omni::protocol]
//! #[derive(Debug, Clone, PartialEq)]
//! enum Echo {
//!     #[client]
//!     Say(String),
//!     #[server]
//!     Heard(String),
//! }
//!
//! let ts = omni::typescript::declarations::<Echo>();
//! assert!(ts.contains(r#"export type EchoFromClient = { "kind": "Say", "data": string };"#));
//! assert!(ts.contains("export type ClientFrame<C> ="));
//! ```

use std::any::TypeId;
use std::collections::BTreeMap;

use ts_rs::{Config, TS, TypeVisitor};

use crate::wire::Codec;
use crate::{ClientFrame, ErrorCode, Protocol, ServerFrame, SessionId};

/// The start of the header line that lists the field types declared as `unknown`, so a tool
/// reading a generated module (such as `cargo xtask ts --check`) can find it.
pub const UNKNOWN_HEADER: &str = "// Declared as `unknown` (no `TS` impl):";

/// The TypeScript module for protocol `P`: its wire enums, their dependencies and the frame
/// types, each declared once, in a stable order.
pub fn declarations<P: Protocol>() -> String {
    generate::<P>().module
}

/// What [`generate`] made for one protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Declarations {
    /// The TypeScript module, as [`declarations`] returns it.
    pub module: String,
    /// The field types, as written in the protocol enum, declared as `unknown` because they
    /// have no [`TS`] impl; sorted, each once.
    pub unknown: Vec<&'static str>,
}

/// The TypeScript module for protocol `P`, and which of its field types fell back to `unknown`.
///
/// ```
/// use omni_runtime::protocol::tests_support::Echo;
///
/// let generated = omni_runtime::typescript::generate::<Echo>();
/// assert!(generated.unknown.is_empty());
/// assert_eq!(generated.module, omni_runtime::typescript::declarations::<Echo>());
/// ```
pub fn generate<P: Protocol>() -> Declarations {
    generate_for::<P>(Codec::Json)
}

/// The TypeScript module for protocol `P` as a client speaking `codec` receives it: the same as
/// [`generate`] but for [`Bytes`](crate::wire::Bytes) fields, which are `Uint8Array` over
/// MessagePack and base64 `string` over JSON.
///
/// ```
/// #[omni::protocol]
/// #[derive(Debug, Clone, PartialEq)]
/// enum Files {
///     #[client]
///     Upload(omni::wire::Bytes),
///     #[server]
///     Stored(u32),
/// }
///
/// use omni::wire::Codec;
/// use omni::typescript::generate_for;
///
/// let packed = generate_for::<Files>(Codec::MsgPack).module;
/// assert!(packed.contains(r#"{ "kind": "Upload", "data": Uint8Array }"#));
/// let json = generate_for::<Files>(Codec::Json).module;
/// assert!(json.contains(r#"{ "kind": "Upload", "data": string }"#));
/// ```
pub fn generate_for<P: Protocol>(codec: Codec) -> Declarations {
    let previous = BYTES.with(|cell| {
        cell.replace(match codec {
            Codec::MsgPack => "Uint8Array",
            _ => "string",
        })
    });
    let generated = generate_with::<P>();
    BYTES.with(|cell| cell.set(previous));
    generated
}

/// The protocol's schema as an ES module for a page (`export const SCHEMA`), to hand omni.js as
/// its `schema` option: the schema id and the older ids this build still talks to, sent in
/// `hello`, and the message kinds of both directions. A page built with it enters the
/// `incompatible` state when a server no longer serves its build, and hands server messages
/// of kinds it does not know to `unknown` listeners.
///
/// ```
/// #[omni::protocol]
/// #[derive(Debug, Clone, PartialEq)]
/// enum Echo {
///     #[client]
///     Say(String),
///     #[server]
///     Heard(String),
/// }
///
/// let module = omni::typescript::schema_module::<Echo>();
/// assert!(module.contains("export const SCHEMA"));
/// assert!(module.contains(r#"server: ["Heard"]"#));
/// ```
pub fn schema_module<P: Protocol>() -> String {
    let schema = P::schema();
    let list = |items: Vec<String>| {
        let quoted: Vec<String> = items
            .iter()
            .map(|item| serde_json::to_string(item).unwrap_or_default())
            .collect();
        format!("[{}]", quoted.join(", "))
    };
    let id = serde_json::to_string(P::version()).unwrap_or_default();
    format!(
        "// Generated by omni for protocol `{name}` (version {version}). Do not edit.\n\
         export const SCHEMA = Object.freeze({{\n  \
         id: {id},\n  \
         compatible: {compatible},\n  \
         client: {client},\n  \
         server: {server},\n}});\n",
        name = P::NAME,
        version = P::version(),
        compatible = list(crate::schema::compatible::<P>()),
        client = list(schema.client.into_keys().collect()),
        server = list(schema.server.into_keys().collect()),
    )
}

thread_local! {
    /// How [`Bytes`](crate::wire::Bytes) is declared while a module is generated on this
    /// thread: `TS` methods are static, so the codec reaches them this way.
    static BYTES: std::cell::Cell<&'static str> = const { std::cell::Cell::new("string") };
}

/// How a [`Bytes`](crate::wire::Bytes) field is declared in the module being generated.
pub(crate) fn bytes_type() -> &'static str {
    BYTES.with(std::cell::Cell::get)
}

fn generate_with<P: Protocol>() -> Declarations {
    let cfg = Config::new().with_large_int("number");
    let mut collect = Collect {
        cfg: &cfg,
        seen: Vec::new(),
        decls: BTreeMap::new(),
    };
    let unknown = build::recording_unknown(|| {
        collect.visit::<P::Client>();
        collect.visit::<P::Server>();
        collect.visit::<ClientFrame<ts_rs::Dummy>>();
        collect.visit::<ServerFrame<ts_rs::Dummy>>();
        collect.visit::<ErrorCode>();
        collect.visit::<SessionId>();
    });

    let mut module = format!(
        "// Generated by omni for protocol `{}` (version {}). Do not edit.\n",
        P::NAME,
        P::version()
    );
    if !unknown.is_empty() {
        let listed: Vec<String> = unknown.iter().map(|ty| format!("`{ty}`")).collect();
        module.push_str(&format!("{UNKNOWN_HEADER} {}.\n", listed.join(", ")));
    }
    for decl in collect.decls.values() {
        module.push('\n');
        module.push_str(decl);
        module.push('\n');
    }
    Declarations { module, unknown }
}

/// Walks a type and everything it names, keeping one declaration per declarable type.
struct Collect<'a> {
    cfg: &'a Config,
    seen: Vec<TypeId>,
    decls: BTreeMap<String, String>,
}

impl TypeVisitor for Collect<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        let id = TypeId::of::<T>();
        // Only types with an output path are declarable; built-ins inline.
        if self.seen.contains(&id) || T::output_path().is_none() {
            return;
        }
        self.seen.push(id);
        let mut decl = String::new();
        if let Some(docs) = T::docs() {
            decl.push_str(&docs);
        }
        decl.push_str("export ");
        decl.push_str(&T::decl(self.cfg));
        self.decls.insert(T::ident(self.cfg), decl);
        T::visit_dependencies(self);
        T::visit_generics(self);
    }
}

/// Pieces of the declarations `#[omni::protocol]` writes for its wire enums, which are always
/// adjacently tagged as `{ "kind": …, "data": … }`. Not public API.
#[doc(hidden)]
pub mod build {
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    use std::marker::PhantomData;

    use ts_rs::{Config, TS, TypeVisitor};

    thread_local! {
        /// The field types declared as `unknown` while [`recording_unknown`] runs on this
        /// thread. `TS` methods are static and return only strings, so this is the one way
        /// for a fallback deep inside `TS::decl` to be reported; `None` outside a recording so
        /// that `TS` used directly accumulates nothing.
        static UNKNOWN: RefCell<Option<BTreeSet<&'static str>>> = const { RefCell::new(None) };
    }

    /// Runs `f` and returns the field types declared as `unknown` meanwhile, sorted.
    pub(super) fn recording_unknown(f: impl FnOnce()) -> Vec<&'static str> {
        let outer = UNKNOWN.with(|cell| cell.replace(Some(BTreeSet::new())));
        f();
        let recorded = UNKNOWN.with(|cell| cell.replace(outer)).unwrap_or_default();
        recorded.into_iter().collect()
    }

    /// A field of a wire variant, as the macro sees it: its concrete type and how it is written.
    /// The macro calls `(&&Field::<T>::new("T")).ts_name(cfg)` with both [`Declared`] and
    /// [`Undeclared`] in scope: method resolution tries the `&Field<T>` impl first, which
    /// applies only when `T: TS`, and falls back to the `Field<T>` one otherwise. This works
    /// because the macro names concrete types; it would always fall back in generic code.
    pub struct Field<T: ?Sized> {
        written: &'static str,
        ty: PhantomData<fn() -> PhantomData<T>>,
    }

    impl<T: ?Sized> Field<T> {
        /// `written` is the field's type as the user wrote it, for the report.
        pub const fn new(written: &'static str) -> Self {
            Field {
                written,
                ty: PhantomData,
            }
        }
    }

    /// A field type with a `TS` impl: declared as itself.
    pub trait Declared {
        /// The type's name in TypeScript.
        fn ts_name(&self, cfg: &Config) -> String;
        /// Visits the type, for the declarations it depends on.
        fn visit(&self, visitor: &mut impl TypeVisitor);
    }

    impl<T: TS + ?Sized + 'static> Declared for &Field<T> {
        fn ts_name(&self, cfg: &Config) -> String {
            T::name(cfg)
        }
        fn visit(&self, visitor: &mut impl TypeVisitor) {
            visitor.visit::<T>();
            T::visit_generics(visitor);
        }
    }

    /// A field type without a `TS` impl: declared as `unknown`, and reported.
    pub trait Undeclared {
        /// `unknown`, recording the type for [`generate`](super::generate).
        fn ts_name(&self, cfg: &Config) -> String;
        /// Nothing to visit: `unknown` depends on no declaration.
        fn visit(&self, visitor: &mut impl TypeVisitor);
    }

    impl<T: ?Sized> Undeclared for Field<T> {
        fn ts_name(&self, _: &Config) -> String {
            UNKNOWN.with(|cell| {
                if let Some(unknown) = cell.borrow_mut().as_mut() {
                    unknown.insert(self.written);
                }
            });
            "unknown".to_owned()
        }
        fn visit(&self, _: &mut impl TypeVisitor) {}
    }

    /// One member of a wire enum's union: `{ "kind": "Send", "data": T }`.
    pub fn variant(kind: &str, data: Option<String>) -> String {
        let kind = serde_json::to_string(kind).unwrap_or_default();
        match data {
            Some(data) => format!("{{ \"kind\": {kind}, \"data\": {data} }}"),
            None => format!("{{ \"kind\": {kind} }}"),
        }
    }

    /// The data of a tuple variant: `[A, B]`.
    pub fn tuple(items: Vec<String>) -> String {
        format!("[{}]", items.join(", "))
    }

    /// The data of a struct variant: `{ a: A, b: B, }`.
    pub fn object(fields: Vec<(&str, String)>) -> String {
        let mut out = String::from("{ ");
        for (name, ty) in fields {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&ty);
            out.push_str(", ");
        }
        out.push('}');
        out
    }

    /// A union of members, or `never` for an enum without variants.
    pub fn union(members: Vec<String>) -> String {
        if members.is_empty() {
            "never".to_owned()
        } else {
            members.join(" | ")
        }
    }
}
