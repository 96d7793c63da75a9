//! Checks a protocol model and records every mistake, each spanned on the user's tokens and
//! saying how to fix it.

use std::collections::HashMap;

use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{Path, Token, Type};

use crate::ast::Protocol;
use crate::attr::Direction;
use crate::ctxt::Ctxt;

/// Handler methods the trait always has, which a variant's method must not shadow.
const HOOKS: [&str; 3] = ["connected", "disconnected", "snapshot"];

pub(crate) fn check(protocol: &Protocol, cx: &mut Ctxt) {
    generics(protocol, cx);
    borrowed_fields(protocol, cx);
    shape(protocol, cx);
    stray_attributes(protocol, cx);
    not_empty(protocol, cx);
    local_options(protocol, cx);
    wire_names(protocol, cx);
    generated_names(protocol, cx);
    method_names(protocol, cx);
}

fn generics(protocol: &Protocol, cx: &mut Ctxt) {
    let generics = &protocol.item.generics;
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        cx.error_spanned_by(
            generics,
            "a protocol enum cannot be generic: both ends must agree on one concrete wire \
             type; use concrete field types, or one protocol enum per instantiation",
        );
    }
}

/// A field that borrows (`&str`, `&[u8]`): a message is decoded into values it owns, and the
/// enum has no lifetime to borrow for. One error on the type, naming the owned one; the enum
/// emitted with the error owns its fields, so no lifetime errors follow.
fn borrowed_fields(protocol: &Protocol, cx: &mut Ctxt) {
    for variant in &protocol.variants {
        for field in &variant.original.fields {
            let mut found = Vec::new();
            references(&field.ty, &mut found);
            for reference in found {
                let owned = owned(&reference.elem);
                cx.error_spanned_by(
                    reference,
                    format!(
                        "a message owns its data, so a field cannot borrow: use `{}` instead \
                         of `{}`",
                        written(&owned),
                        written(reference)
                    ),
                );
            }
        }
    }
}

/// A type as a person writes it (`Vec<u8>`, not `Vec < u8 >`).
fn written(ty: &impl quote::ToTokens) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (spaced, tight) in [
        ("& ", "&"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" ::", "::"),
        (":: ", "::"),
        ("[ ", "["),
        (" ]", "]"),
        ("( ", "("),
        (" )", ")"),
        (" ;", ";"),
    ] {
        text = text.replace(spaced, tight);
    }
    text
}

/// The reference types in `ty`, outermost first.
fn references<'t>(ty: &'t Type, found: &mut Vec<&'t syn::TypeReference>) {
    match ty {
        Type::Reference(reference) => found.push(reference),
        Type::Path(path) => {
            for segment in &path.path.segments {
                if let syn::PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        if let syn::GenericArgument::Type(ty) = arg {
                            references(ty, found);
                        }
                    }
                }
            }
        }
        Type::Tuple(tuple) => tuple.elems.iter().for_each(|ty| references(ty, found)),
        Type::Array(array) => references(&array.elem, found),
        Type::Paren(paren) => references(&paren.elem, found),
        Type::Group(group) => references(&group.elem, found),
        _ => {}
    }
}

/// The owned form of what a reference points at: `String` for `str`, `Vec<T>` for `[T]`, the
/// type itself otherwise (with its own references made owned).
pub(crate) fn owned(elem: &Type) -> Type {
    match elem {
        Type::Path(path) if path.path.is_ident("str") => syn::parse_quote!(String),
        Type::Slice(slice) => {
            let inner = owned_type(&slice.elem);
            syn::parse_quote!(Vec<#inner>)
        }
        other => owned_type(other),
    }
}

/// `ty` with every reference in it replaced by its owned form.
pub(crate) fn owned_type(ty: &Type) -> Type {
    match ty {
        Type::Reference(reference) => owned(&reference.elem),
        Type::Path(path) => {
            let mut path = path.clone();
            for segment in &mut path.path.segments {
                if let syn::PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    for arg in &mut args.args {
                        if let syn::GenericArgument::Type(ty) = arg {
                            *ty = owned_type(ty);
                        }
                    }
                }
            }
            Type::Path(path)
        }
        Type::Tuple(tuple) => {
            let mut tuple = tuple.clone();
            tuple.elems.iter_mut().for_each(|ty| *ty = owned_type(ty));
            Type::Tuple(tuple)
        }
        Type::Array(array) => {
            let mut array = array.clone();
            *array.elem = owned_type(&array.elem);
            Type::Array(array)
        }
        Type::Paren(paren) => owned_type(&paren.elem),
        Type::Group(group) => owned_type(&group.elem),
        other => other.clone(),
    }
}

/// What the added `Transport(TransportState)` variant rules out.
fn shape(protocol: &Protocol, cx: &mut Ctxt) {
    for variant in &protocol.variants {
        if let Some((_, discriminant)) = &variant.original.discriminant {
            cx.error_spanned_by(
                discriminant,
                "a protocol enum cannot have explicit discriminants: `#[omni::protocol]` adds a \
                 `Transport(..)` variant that holds data; remove `= ...`",
            );
        }
    }
    for attr in &protocol.item.attrs {
        if !attr.path().is_ident("derive") {
            continue;
        }
        let Ok(paths) = attr.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
        else {
            continue;
        };
        for path in paths.iter().filter(|p| p.is_ident("Copy")) {
            cx.error_spanned_by(
                path,
                "a protocol enum cannot be `Copy`: the `Transport` variant `#[omni::protocol]` \
                 adds holds a `TransportState`, which owns strings; remove `Copy`",
            );
        }
    }
}

/// `#[omni(...)]` and `#[serde(...)]` where they would be silently ignored.
fn stray_attributes(protocol: &Protocol, cx: &mut Ctxt) {
    for attr in protocol
        .item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("omni"))
    {
        cx.error_spanned_by(
            attr,
            "protocol options go in the macro's own arguments: write \
             `#[omni::protocol(rename_all = ...)]` instead of `#[omni(...)]` on the enum",
        );
    }
    for field in protocol
        .variants
        .iter()
        .flat_map(|v| v.original.fields.iter())
    {
        for attr in &field.attrs {
            if attr.path().is_ident("omni") {
                cx.error_spanned_by(attr, "`#[omni(...)]` goes on a variant, not on a field");
            } else if attr.path().is_ident("serde") {
                cx.error_spanned_by(
                    attr,
                    "serde field attributes are not carried into a protocol's wire enums; move \
                     these fields into a `#[omni::wire]` struct and put `#[serde(...)]` there",
                );
            }
        }
    }
}

fn not_empty(protocol: &Protocol, cx: &mut Ctxt) {
    if protocol.variants.iter().all(|v| v.direction.is_none()) {
        cx.error_spanned_by(
            &protocol.item.ident,
            "this protocol has no messages that travel: mark the variants the client sends \
             with `#[client]` and those the server sends with `#[server]`",
        );
    }
}

fn local_options(protocol: &Protocol, cx: &mut Ctxt) {
    for variant in &protocol.variants {
        if let (None, Some(rename)) = (variant.direction, &variant.attrs.rename) {
            cx.error_spanned_by(
                rename,
                "`rename` sets a wire name, but this variant never leaves the client; mark it \
                 `#[client]` or `#[server]`, or remove `rename`",
            );
        }
    }
}

fn wire_names(protocol: &Protocol, cx: &mut Ctxt) {
    for direction in [Direction::Client, Direction::Server] {
        let mut seen = HashMap::new();
        for variant in protocol.wire_variants(direction) {
            let Some(first) = seen.insert(variant.wire_name.as_str(), variant.ident()) else {
                continue;
            };
            let message = format!(
                "`{}` and `{first}` both travel as `{}`; give one of them another name with \
                 `#[omni(rename = \"...\")]`",
                variant.ident(),
                variant.wire_name,
            );
            match &variant.attrs.rename {
                Some(rename) => cx.error_spanned_by(rename, message),
                None => cx.error_spanned_by(variant.ident(), message),
            }
        }
    }
}

fn generated_names(protocol: &Protocol, cx: &mut Ctxt) {
    let item = &protocol.item.ident;
    let generated = [
        (&protocol.client, "client"),
        (&protocol.server, "server"),
        (&protocol.handler, "handler"),
    ];
    for (i, (ident, option)) in generated.iter().enumerate() {
        if *ident == item {
            cx.error_spanned_by(
                ident,
                format_args!(
                    "the generated {option} type would be named `{ident}` like the enum itself; \
                     choose another name with `#[omni::protocol({option} = ...)]`"
                ),
            );
        }
        for (other, other_option) in &generated[..i] {
            if ident == other {
                cx.error_spanned_by(
                    ident,
                    format_args!(
                        "the generated {option} and {other_option} types are both named \
                         `{ident}`; give them different names"
                    ),
                );
            }
        }
    }
    for variant in &protocol.variants {
        if variant.ident().unraw() == protocol.transport {
            cx.error_spanned_by(
                variant.ident(),
                format_args!(
                    "`{}` is the variant `#[omni::protocol]` adds for transport state; rename \
                     this variant, or name the added one with \
                     `#[omni::protocol(transport = ...)]`",
                    protocol.transport
                ),
            );
        }
    }
}

fn method_names(protocol: &Protocol, cx: &mut Ctxt) {
    let mut seen = HashMap::new();
    for variant in protocol.wire_variants(Direction::Client) {
        let method = variant.method.unraw().to_string();
        if HOOKS.contains(&method.as_str()) {
            cx.error_spanned_by(
                variant.ident(),
                format_args!(
                    "`{}` would become the handler method `{method}`, which is the handler's \
                     {method} hook; rename this variant",
                    variant.ident()
                ),
            );
        } else if let Some(first) = seen.insert(method.clone(), variant.ident()) {
            cx.error_spanned_by(
                variant.ident(),
                format_args!(
                    "`{}` and `{first}` would both become the handler method `{method}`; \
                     rename one of them",
                    variant.ident()
                ),
            );
        }
    }
}
