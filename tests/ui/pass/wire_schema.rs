//! `#[omni::wire]`'s `Describe` impls compile without warnings for the shapes serde writes:
//! generic, recursive, tagged, flattened, transparent, and with custom serde functions.
#![deny(warnings)]

use std::collections::BTreeMap;

#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, U> {
    pub items: Vec<T>,
    pub extra: Option<U>,
    pub next: Option<Box<Page<T, U>>>,
}

#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Shape {
    Circle { radius_mm: u32 },
    Empty,
    #[serde(skip)]
    Hidden,
}

#[omni::wire]
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Meta {
    pub tags: BTreeMap<String, String>,
}

#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Drawing {
    #[serde(flatten)]
    pub meta: Meta,
    #[serde(with = "as_text")]
    #[ts(type = "string")]
    pub scale: f64,
    pub shapes: Page<Shape, ()>,
}

#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
#[serde(transparent)]
pub struct Id(pub String);

#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
pub struct Empty;

mod as_text {
    pub fn serialize<S: serde::Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    #[client]
    Draw(Drawing, Id),
    #[server]
    Cleared(Empty),
}

fn main() {
    let schema = omni::schema::schema::<Msg>();
    assert!(schema.types.contains_key("Page<Shape, ()>"));
    assert!(schema.types.contains_key("Id"));
    assert_eq!(schema.id(), <Msg as omni::Protocol>::version());
}
