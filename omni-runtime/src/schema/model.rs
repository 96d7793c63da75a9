//! The schema document: what travels, described by structure.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::json;

/// The version of the document format itself, written in every document so that a future
/// omni can read the files a team keeps today.
pub const FORMAT: u32 = 1;

/// The wire form of one protocol: its messages both ways and every named type they reach.
///
/// Made by `#[omni::protocol]` ([`Protocol::schema`](crate::Protocol::schema), or
/// [`schema`](super::schema)); kept as JSON with [`to_json`](Schema::to_json); compared with
/// [`compare`](super::compare).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Schema {
    /// The document format, [`FORMAT`].
    pub format: u32,
    /// The protocol's name on the wire.
    pub name: String,
    /// The `#[client]` variants, by wire name.
    pub client: BTreeMap<String, Payload>,
    /// The `#[server]` variants, by wire name.
    pub server: BTreeMap<String, Payload>,
    /// Every named type the variants reach, by name.
    pub types: BTreeMap<String, TypeDef>,
}

/// What a variant carries in `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Payload {
    /// Nothing: `Ping`.
    Unit,
    /// One value: `Send(ChatMessage)`.
    One(Shape),
    /// Several values, in order: `Move(u32, u32)`.
    Tuple(Vec<Shape>),
    /// Named fields, by wire name: `Presence { online: u32 }`.
    Fields(BTreeMap<String, Field>),
}

/// One field of a struct or of a struct variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Field {
    /// Its value's shape.
    pub shape: Shape,
    /// Whether a reader needs it: not an `Option`, no `#[serde(default)]`.
    pub required: bool,
    /// Whether a writer may leave it out (`skip_serializing_if`, `skip_serializing`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub may_omit: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Field {
    /// A field a reader needs unless it is an `Option`, which reads as `None` when absent.
    pub fn new(shape: Shape) -> Self {
        let required = !matches!(shape, Shape::Option(_));
        Field {
            shape,
            required,
            may_omit: false,
        }
    }

    /// A field that is required exactly when `required` says.
    pub fn with_required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// A field a writer may leave out.
    pub fn omittable(mut self) -> Self {
        self.may_omit = true;
        self
    }
}

/// The shape of a value on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Shape {
    /// `bool`
    Bool,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`, and `usize`, which serde writes as one
    U64,
    /// `u128`
    U128,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`, and `isize`
    I64,
    /// `i128`
    I128,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `char`
    Char,
    /// `String`
    String,
    /// [`Bytes`](crate::wire::Bytes): `bin` in MessagePack, base64 in JSON
    Bytes,
    /// `()`
    Unit,
    /// `Option<T>`
    Option(Box<Shape>),
    /// `Vec<T>`, `VecDeque<T>`, a set
    Seq(Box<Shape>),
    /// A map: `BTreeMap<K, V>`, `HashMap<K, V>`
    Map {
        /// The keys' shape.
        key: Box<Shape>,
        /// The values' shape.
        value: Box<Shape>,
    },
    /// `(A, B, ...)`
    Tuple(Vec<Shape>),
    /// `[T; N]`
    Array {
        /// The elements' shape.
        of: Box<Shape>,
        /// How many.
        len: usize,
    },
    /// A named type, defined in [`Schema::types`].
    Ref(String),
    /// Any JSON value (`serde_json::Value`).
    Any,
    /// A type whose structure is not described (it has no [`Describe`](super::Describe)
    /// impl, or serde writes it with custom code): known by name only.
    Opaque(String),
}

impl Shape {
    pub(crate) fn boxed(self) -> Box<Shape> {
        Box::new(self)
    }
}

/// Shapes read as a person writes types: `option<string>`, `map<string, ChatMessage>`.
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &[Shape]| -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        };
        match self {
            Shape::Bool => f.write_str("bool"),
            Shape::U8 => f.write_str("u8"),
            Shape::U16 => f.write_str("u16"),
            Shape::U32 => f.write_str("u32"),
            Shape::U64 => f.write_str("u64"),
            Shape::U128 => f.write_str("u128"),
            Shape::I8 => f.write_str("i8"),
            Shape::I16 => f.write_str("i16"),
            Shape::I32 => f.write_str("i32"),
            Shape::I64 => f.write_str("i64"),
            Shape::I128 => f.write_str("i128"),
            Shape::F32 => f.write_str("f32"),
            Shape::F64 => f.write_str("f64"),
            Shape::Char => f.write_str("char"),
            Shape::String => f.write_str("string"),
            Shape::Bytes => f.write_str("bytes"),
            Shape::Unit => f.write_str("()"),
            Shape::Option(inner) => write!(f, "option<{inner}>"),
            Shape::Seq(inner) => write!(f, "seq<{inner}>"),
            Shape::Map { key, value } => write!(f, "map<{key}, {value}>"),
            Shape::Tuple(items) => {
                f.write_str("(")?;
                list(f, items)?;
                f.write_str(")")
            }
            Shape::Array { of, len } => write!(f, "[{of}; {len}]"),
            Shape::Ref(name) => f.write_str(name),
            Shape::Any => f.write_str("any"),
            Shape::Opaque(name) => write!(f, "opaque<{name}>"),
        }
    }
}

/// A named type's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TypeDef {
    /// `struct S { a: A }`: a map of fields on the wire.
    Struct(StructDef),
    /// `struct S(T)` (or `#[serde(transparent)]`): written as the value it holds.
    Newtype(Shape),
    /// `struct S(A, B)`: written as a sequence.
    TupleStruct(Vec<Shape>),
    /// `struct S;`
    UnitStruct,
    /// An enum.
    Enum(EnumDef),
}

/// The fields of a struct.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StructDef {
    /// Its fields, by wire name (their order does not matter: both codecs write a map).
    pub fields: BTreeMap<String, Field>,
    /// `#[serde(deny_unknown_fields)]`: a reader refuses a field it does not know.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deny_unknown_fields: bool,
}

impl StructDef {
    /// A struct with `fields`.
    pub fn new(fields: BTreeMap<String, Field>) -> Self {
        StructDef {
            fields,
            deny_unknown_fields: false,
        }
    }

    /// The same struct, refusing unknown fields.
    pub fn deny_unknown_fields(mut self, deny: bool) -> Self {
        self.deny_unknown_fields = deny;
        self
    }
}

/// The variants of an enum and how they are tagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EnumDef {
    /// How a variant is told apart on the wire.
    pub tagging: Tagging,
    /// The variants, by wire name.
    pub variants: BTreeMap<String, Payload>,
}

impl EnumDef {
    /// An enum tagged as `tagging`, with `variants`.
    pub fn new(tagging: Tagging, variants: BTreeMap<String, Payload>) -> Self {
        EnumDef { tagging, variants }
    }
}

/// How serde tells an enum's variants apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Tagging {
    /// `{"Variant": data}` (serde's default).
    External,
    /// `{"tag": "Variant", ...fields}`: `#[serde(tag = "...")]`.
    Internal {
        /// The tag's key.
        tag: String,
    },
    /// `{"tag": "Variant", "content": data}`: `#[serde(tag = "...", content = "...")]`.
    Adjacent {
        /// The tag's key.
        tag: String,
        /// The data's key.
        content: String,
    },
    /// The data alone, the first variant that reads it wins: `#[serde(untagged)]`.
    Untagged,
}

/// Why a schema document could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// Not a schema document.
    #[error("not an omni schema document: {0}")]
    Json(#[from] serde_json::Error),
    /// A document written by a newer omni.
    #[error("schema document format {found} is newer than this omni reads ({FORMAT})")]
    Format {
        /// The format the document says it has.
        found: u32,
    },
}

impl Schema {
    /// An empty schema of the protocol `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Schema {
            format: FORMAT,
            name: name.into(),
            client: BTreeMap::new(),
            server: BTreeMap::new(),
            types: BTreeMap::new(),
        }
    }

    /// The schema's id: 16 lowercase hex characters, the start of the SHA-256 of
    /// [`to_json`](Schema::to_json). Equal documents have equal ids; any change to the
    /// document (even one that keeps the wire compatible, such as a type's Rust name) makes
    /// another.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.to_json().as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The document as stable, diff-friendly JSON: keys sorted, one line per field or variant
    /// where it fits, a final newline.
    pub fn to_json(&self) -> String {
        // A schema holds only strings, integers, booleans, maps and lists: it always converts.
        let value = serde_json::to_value(self).unwrap_or_default();
        json::pretty(&value)
    }

    /// Reads a document written by [`to_json`](Schema::to_json) (or by hand).
    pub fn from_json(text: &str) -> Result<Self, SchemaError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        if let Some(found) = value.get("format").and_then(serde_json::Value::as_u64)
            && found > u64::from(FORMAT)
        {
            return Err(SchemaError::Format {
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        Ok(serde_json::from_value(value)?)
    }
}
