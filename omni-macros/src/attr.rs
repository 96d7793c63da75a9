//! Reads `#[omni::protocol(...)]` options and the variant attributes `#[client]`,
//! `#[server]` and `#[omni(...)]`.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Attribute, Ident, LitStr, Meta, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;

const CONTAINER_OPTIONS: &str =
    "`client`, `server`, `handler`, `transport`, `name`, `rename_all`, `schemas`";
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
    /// The directory of kept schema documents to embed, relative to the crate's manifest.
    pub schemas: Option<LitStr>,
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
            } else if meta.path.is_ident("schemas") {
                set_once(cx, &mut out.schemas, &meta, value(&meta, "schemas")?)
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
                cx.syn_error(meta.error(unknown_option(
                    "`#[omni::protocol]` option",
                    &meta.path,
                    &[
                        "client",
                        "server",
                        "handler",
                        "transport",
                        "name",
                        "rename_all",
                        "schemas",
                    ],
                    &format!("one of: {CONTAINER_OPTIONS}"),
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
            let name = match misspelled(attr) {
                Some(meant) => {
                    // Read as what it was meant to be, so the typo is the only error and not
                    // also, say, "no messages travel".
                    cx.error_spanned_by(
                        attr.path(),
                        format_args!(
                            "unknown attribute `{}`; did you mean `{meant}`?",
                            path_str(attr.path())
                        ),
                    );
                    meant
                }
                None if attr.path().is_ident("client") => "client",
                None if attr.path().is_ident("server") => "server",
                None if attr.path().is_ident("omni") => "omni",
                None => continue,
            };
            let direction = match name {
                "client" => Direction::Client,
                "server" => Direction::Server,
                _ => {
                    out.parse_options(attr, cx);
                    continue;
                }
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
                cx.syn_error(meta.error(unknown_option(
                    "variant option",
                    &meta.path,
                    &["rename"],
                    VARIANT_OPTIONS,
                )));
                skip_value(&meta)
            }
        });
        if let Err(err) = result {
            cx.syn_error(err);
        }
    }
}

/// Whether `attr` is one of ours, to be removed from the enum the user gets back. A
/// misspelling of one counts: left on the enum, rustc would add "cannot find attribute" to
/// the macro's own "did you mean" error.
pub(crate) fn is_helper(attr: &Attribute) -> bool {
    let path = attr.path();
    path.is_ident("client")
        || path.is_ident("server")
        || path.is_ident("omni")
        || misspelled(attr).is_some()
}

/// The variant attribute `attr` is one edit away from (`#[clinet]`, `#[sever]`, `#[omin]`),
/// if it is not one of ours already. One edit, counting a swap of neighbours as one, keeps
/// other crates' attributes out: `serde` is two away from `server`.
pub(crate) fn misspelled(attr: &Attribute) -> Option<&'static str> {
    let ident = attr.path().get_ident()?.to_string();
    closest(&ident, &["client", "server", "omni"])
}

/// The candidate one edit away from `given`, when `given` is not a candidate itself.
fn closest(given: &str, candidates: &[&'static str]) -> Option<&'static str> {
    if candidates.contains(&given) {
        return None;
    }
    candidates
        .iter()
        .copied()
        .find(|candidate| edit_distance(&given.to_lowercase(), candidate) <= 1)
}

/// "unknown variant option `renam`; did you mean `rename`?", or the valid options when no
/// option is close.
fn unknown_option(
    what: &str,
    path: &syn::Path,
    options: &[&'static str],
    expected: &str,
) -> String {
    let given = path_str(path);
    match closest(&given, options) {
        Some(meant) => format!("unknown {what} `{given}`; did you mean `{meant}`?"),
        None => format!("unknown {what} `{given}`; expected {expected}"),
    }
}

/// Edits (insert, delete, replace, or swap two neighbours) between `a` and `b`: the optimal
/// string alignment distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: the distance between a[..i] and b[..j].
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let replace = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + replace);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
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
            "schemas" => format!("{option} = \"protocol\""),
            "rename_all" => format!("{option} = \"snake_case\""),
            _ => format!("{option} = Name"),
        };
        return Err(meta.error(format_args!("`{option}` takes a value: write `{example}`")));
    }
    meta.value()?.parse()
}

/// Steps over an unknown option's value so the options after it are still checked.
pub(crate) fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance};

    #[test]
    fn edit_distance_counts_a_swap_as_one() {
        assert_eq!(edit_distance("clinet", "client"), 1);
        assert_eq!(edit_distance("sever", "server"), 1);
        assert_eq!(edit_distance("renam", "rename"), 1);
        assert_eq!(edit_distance("serde", "server"), 2);
        assert_eq!(edit_distance("", "omni"), 4);
    }

    #[test]
    fn suggestions_are_one_edit_away_and_never_the_name_itself() {
        let ours = ["client", "server", "omni"];
        assert_eq!(closest("clinet", &ours), Some("client"));
        assert_eq!(closest("Server", &ours), Some("server"));
        assert_eq!(closest("omin", &ours), Some("omni"));
        assert_eq!(closest("client", &ours), None);
        assert_eq!(closest("serde", &ours), None);
        assert_eq!(closest("doc", &ours), None);
    }
}
