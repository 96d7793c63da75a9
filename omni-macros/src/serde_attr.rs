//! Reads the `#[serde(...)]` attributes that decide a type's wire form, for the schema
//! `#[omni::wire]` describes. serde's derive checks them itself, so anything malformed or not
//! about the wire form is passed over here.

use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitStr, Token};

use crate::attr::skip_value;
use crate::case::RenameRule;

/// A type's serde attributes.
#[derive(Default)]
pub(crate) struct Container {
    pub rename_all: Option<RenameRule>,
    pub rename_all_fields: Option<RenameRule>,
    /// `#[serde(default)]`: every field may be absent.
    pub default: bool,
    pub deny_unknown_fields: bool,
    pub tag: Option<String>,
    pub content: Option<String>,
    pub untagged: bool,
    pub transparent: bool,
    /// `into = "T"`, `from = "T"` or `try_from = "T"`: the type travels as `T`.
    pub proxy: Option<syn::Type>,
}

/// A variant's or a field's serde attributes.
#[derive(Default)]
pub(crate) struct Member {
    pub rename: Option<String>,
    /// A variant's own `rename_all`, for its fields.
    pub rename_all: Option<RenameRule>,
    pub default: bool,
    /// `skip` or `skip_serializing` and `skip_deserializing` both.
    pub skip: bool,
    pub skip_serializing: bool,
    pub skip_deserializing: bool,
    pub skip_serializing_if: bool,
    pub flatten: bool,
    /// `with`, `serialize_with` or `deserialize_with`: written by the user's code.
    pub with: Option<String>,
}

impl Container {
    pub(crate) fn parse(attrs: &[Attribute]) -> Self {
        let mut out = Container::default();
        for_each(attrs, |meta| {
            let path = &meta.path;
            if path.is_ident("rename_all") {
                out.rename_all = rule(&meta)?;
            } else if path.is_ident("rename_all_fields") {
                out.rename_all_fields = rule(&meta)?;
            } else if path.is_ident("default") {
                out.default = true;
                skip_value(&meta)?;
            } else if path.is_ident("deny_unknown_fields") {
                out.deny_unknown_fields = true;
            } else if path.is_ident("tag") {
                out.tag = Some(string(&meta)?);
            } else if path.is_ident("content") {
                out.content = Some(string(&meta)?);
            } else if path.is_ident("untagged") {
                out.untagged = true;
            } else if path.is_ident("transparent") {
                out.transparent = true;
            } else if path.is_ident("into") {
                out.proxy = Some(string_of(&meta)?.parse()?);
            } else if path.is_ident("from") || path.is_ident("try_from") {
                let ty = string_of(&meta)?.parse()?;
                out.proxy.get_or_insert(ty);
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
        out
    }
}

impl Member {
    pub(crate) fn parse(attrs: &[Attribute]) -> Self {
        let mut out = Member::default();
        for_each(attrs, |meta| {
            let path = &meta.path;
            if path.is_ident("rename") {
                out.rename = Some(split(&meta)?);
            } else if path.is_ident("rename_all") {
                out.rename_all = rule(&meta)?;
            } else if path.is_ident("default") {
                out.default = true;
                skip_value(&meta)?;
            } else if path.is_ident("skip") {
                out.skip = true;
            } else if path.is_ident("skip_serializing") {
                out.skip_serializing = true;
            } else if path.is_ident("skip_deserializing") {
                out.skip_deserializing = true;
            } else if path.is_ident("skip_serializing_if") {
                out.skip_serializing_if = true;
                skip_value(&meta)?;
            } else if path.is_ident("flatten") {
                out.flatten = true;
            } else if path.is_ident("with")
                || path.is_ident("serialize_with")
                || path.is_ident("deserialize_with")
            {
                out.with = Some(string(&meta)?);
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
        out.skip |= out.skip_serializing && out.skip_deserializing;
        out
    }
}

/// Calls `f` on every option of every `#[serde(...)]` attribute.
fn for_each(attrs: &[Attribute], mut f: impl FnMut(ParseNestedMeta) -> syn::Result<()>) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        // serde reports a malformed attribute itself.
        let _ = attr.parse_nested_meta(&mut f);
    }
}

fn string_of(meta: &ParseNestedMeta) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

fn string(meta: &ParseNestedMeta) -> syn::Result<String> {
    Ok(string_of(meta)?.value())
}

/// `rename = "x"`, or `rename(serialize = "x", deserialize = "y")`, of which the schema takes
/// the written name.
fn split(meta: &ParseNestedMeta) -> syn::Result<String> {
    if meta.input.peek(Token![=]) {
        return string(meta);
    }
    let mut serialize = None;
    let mut deserialize = None;
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("serialize") {
            serialize = Some(string(&inner)?);
        } else if inner.path.is_ident("deserialize") {
            deserialize = Some(string(&inner)?);
        } else {
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    serialize
        .or(deserialize)
        .ok_or_else(|| meta.error("no name given"))
}

fn rule(meta: &ParseNestedMeta) -> syn::Result<Option<RenameRule>> {
    Ok(RenameRule::from_str(&split(meta)?))
}
