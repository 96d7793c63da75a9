//! Reads `#[omni::protocol(...)]` options and the variant attributes `#[client]`,
//! `#[server]` and `#[omni(...)]`.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Attribute, Ident, LitStr, Meta, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;

const CONTAINER_OPTIONS: &str = "`client`, `server`, `handler`, `transport`, `name`, `rename_all`";
const VARIANT_OPTIONS: &str = "`rename`";

/// Options given to `#[omni::protocol(...)]`.
#[derive(Default)]
pub(crate) struct Container {
    /// Name of the client -> server wire enum.
    pub client: Option<Ident>,
    /// Name of the server -> client wire enum.
    pub server: Option<Ident>,
    /// Name of the handler trait.
    pub handler: Option<Ident>,
    /// Name of the transport-state variant added to the enum.
    pub transport: Option<Ident>,
    /// The protocol's name on the wire.
    pub name: Option<LitStr>,
    /// How wire names are derived from variant names.
    pub rename_all: Option<RenameRule>,
}

impl Container {
    pub(crate) fn parse(args: TokenStream, cx: &mut Ctxt) -> Self {
        let mut out = Container::default();
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("client") {
                set_once(cx, &mut out.client, &meta, value(&meta, "client")?)
            } else if meta.path.is_ident("server") {
                set_once(cx, &mut out.server, &meta, value(&meta, "server")?)
            } else if meta.path.is_ident("handler") {
                set_once(cx, &mut out.handler, &meta, value(&meta, "handler")?)
            } else if meta.path.is_ident("transport") {
                set_once(cx, &mut out.transport, &meta, value(&meta, "transport")?)
            } else if meta.path.is_ident("name") {
                set_once(cx, &mut out.name, &meta, value(&meta, "name")?)
            } else if meta.path.is_ident("rename_all") {
                let lit: LitStr = value(&meta, "rename_all")?;
                match RenameRule::from_str(&lit.value()) {
                    Some(rule) => set_once(cx, &mut out.rename_all, &meta, rule),
                    None => {
                        let valid: Vec<_> = RenameRule::ALL.iter().map(|(n, _)| *n).collect();
                        cx.error_spanned_by(
                            &lit,
                            format_args!(
                                "unknown `rename_all` rule; expected one of: {}",
                                valid.join(", ")
                            ),
                        );
                        Ok(())
                    }
                }
            } else {
                cx.syn_error(meta.error(format_args!(
                    "unknown `#[omni::protocol]` option `{}`; expected one of: {CONTAINER_OPTIONS}",
                    path_str(&meta.path)
                )));
                skip_value(&meta)
            }
        });
        if let Err(err) = parser.parse2(args) {
            cx.syn_error(err);
        }
        out
    }
}

/// Which way a variant travels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Direction {
    /// `#[client]`: sent by the client to the server.
    Client,
    /// `#[server]`: sent by the server to the client.
    Server,
}

impl Direction {
    pub(crate) fn attr_name(self) -> &'static str {
        match self {
            Direction::Client => "client",
            Direction::Server => "server",
        }
    }
}

/// The omni attributes of one variant.
#[derive(Default)]
pub(crate) struct Variant {
    pub direction: Option<Direction>,
    pub rename: Option<LitStr>,
}

impl Variant {
    pub(crate) fn parse(attrs: &[Attribute], cx: &mut Ctxt) -> Self {
        let mut out = Variant::default();
        for attr in attrs {
            let direction = if attr.path().is_ident("client") {
                Direction::Client
            } else if attr.path().is_ident("server") {
                Direction::Server
            } else if attr.path().is_ident("omni") {
                out.parse_options(attr, cx);
                continue;
            } else {
                continue;
            };
            if !matches!(attr.meta, Meta::Path(_)) {
                cx.error_spanned_by(
                    attr,
                    format_args!(
                        "`#[{0}]` takes no arguments; write `#[{0}]`",
                        direction.attr_name()
                    ),
                );
            }
            match out.direction {
                None => out.direction = Some(direction),
                Some(first) if first == direction => cx.error_spanned_by(
                    attr,
                    format_args!(
                        "`#[{}]` is already set on this variant; remove this one",
                        direction.attr_name()
                    ),
                ),
                Some(first) => cx.error_spanned_by(
                    attr,
                    format_args!(
                        "a variant travels one way: it is already `#[{}]`, so it cannot also be \
                         `#[{}]`; split it into two variants, one each way",
                        first.attr_name(),
                        direction.attr_name()
                    ),
                ),
            }
        }
        out
    }

    fn parse_options(&mut self, attr: &Attribute, cx: &mut Ctxt) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let lit: LitStr = value(&meta, "rename")?;
                set_once(cx, &mut self.rename, &meta, lit)
            } else {
                cx.syn_error(meta.error(format_args!(
                    "unknown variant option `{}`; expected {VARIANT_OPTIONS}",
                    path_str(&meta.path)
                )));
                skip_value(&meta)
            }
        });
        if let Err(err) = result {
            cx.syn_error(err);
        }
    }
}

/// Whether `attr` is one of ours, to be removed from the enum the user gets back.
pub(crate) fn is_helper(attr: &Attribute) -> bool {
    let path = attr.path();
    path.is_ident("client") || path.is_ident("server") || path.is_ident("omni")
}

/// Whether a variant or field attribute should be carried onto generated items.
pub(crate) fn is_carried(attr: &Attribute) -> bool {
    let path = attr.path();
    path.is_ident("doc") || path.is_ident("cfg") || path.is_ident("cfg_attr")
}

/// Reads `= value` after an option's name, or says how the option is written.
fn value<T: syn::parse::Parse>(meta: &ParseNestedMeta, option: &str) -> syn::Result<T> {
    if !meta.input.peek(Token![=]) {
        let example = match option {
            "name" | "rename" => format!("{option} = \"...\""),
            "rename_all" => format!("{option} = \"snake_case\""),
            _ => format!("{option} = Name"),
        };
        return Err(meta.error(format_args!("`{option}` takes a value: write `{example}`")));
    }
    meta.value()?.parse()
}

/// Steps over an unknown option's value so the options after it are still checked.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|nested| skip_value(&nested))?;
    }
    Ok(())
}

fn set_once<T>(
    cx: &mut Ctxt,
    slot: &mut Option<T>,
    meta: &ParseNestedMeta,
    value: T,
) -> syn::Result<()> {
    if slot.is_some() {
        cx.error_spanned_by(
            &meta.path,
            format_args!("`{}` is given twice; keep one", path_str(&meta.path)),
        );
    } else {
        *slot = Some(value);
    }
    Ok(())
}

fn path_str(path: &syn::Path) -> String {
    quote::quote!(#path).to_string().replace(' ', "")
}
