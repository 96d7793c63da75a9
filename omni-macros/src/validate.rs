//! Checks a protocol model and records every mistake, each spanned on the user's tokens and
//! saying how to fix it.

use std::collections::HashMap;

use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{Path, Token};

use crate::ast::Protocol;
use crate::attr::Direction;
use crate::ctxt::Ctxt;

/// Handler methods the trait always has, which a variant's method must not shadow.
const HOOKS: [&str; 3] = ["connected", "disconnected", "snapshot"];

pub(crate) fn check(protocol: &Protocol, cx: &mut Ctxt) {
    generics(protocol, cx);
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
