//! The protocol model: the user's enum, read once, with every name the expansion needs
//! resolved. Each part keeps a reference to the syn node it came from, for spans.

use std::path::PathBuf;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Attribute, Field, Ident, ItemEnum, LitStr};

use crate::attr::{self, Direction};
use crate::case::snake_case;
use crate::ctxt::Ctxt;

/// One `#[omni::protocol]` enum.
pub(crate) struct Protocol<'a> {
    pub item: &'a ItemEnum,
    pub variants: Vec<Variant<'a>>,
    /// The protocol's name on the wire.
    pub name: String,
    pub client: Ident,
    pub server: Ident,
    pub handler: Ident,
    pub transport: Ident,
    /// The kept schema documents to embed (`schemas = "dir"`): absolute paths, sorted.
    pub kept: Vec<String>,
}

/// One variant of the user's enum.
pub(crate) struct Variant<'a> {
    pub original: &'a syn::Variant,
    pub direction: Option<Direction>,
    pub attrs: attr::Variant,
    /// The name in the payload's `kind`.
    pub wire_name: String,
    /// The handler method for a `#[client]` variant.
    pub method: Ident,
}

impl<'a> Protocol<'a> {
    pub(crate) fn from_syn(item: &'a ItemEnum, options: attr::Container, cx: &mut Ctxt) -> Self {
        let base = item.ident.unraw().to_string();
        let named = |given: &Option<Ident>, suffix: &str| {
            given
                .clone()
                .unwrap_or_else(|| Ident::new(&format!("{base}{suffix}"), item.ident.span()))
        };
        let variants = item
            .variants
            .iter()
            .map(|variant| Variant::from_syn(variant, &options, cx))
            .collect();
        let kept = options
            .schemas
            .as_ref()
            .map(|dir| kept_files(dir, cx))
            .unwrap_or_default();
        Protocol {
            item,
            kept,
            variants,
            name: options
                .name
                .as_ref()
                .map_or_else(|| base.clone(), |lit| lit.value()),
            client: named(&options.client, "FromClient"),
            server: named(&options.server, "FromServer"),
            handler: named(&options.handler, "Handler"),
            transport: options
                .transport
                .clone()
                .unwrap_or_else(|| Ident::new("Transport", Span::call_site())),
        }
    }

    /// The variants that travel `direction`.
    pub(crate) fn wire_variants(
        &self,
        direction: Direction,
    ) -> impl Iterator<Item = &Variant<'a>> + '_ {
        self.variants
            .iter()
            .filter(move |v| v.direction == Some(direction))
    }
}

impl<'a> Variant<'a> {
    fn from_syn(original: &'a syn::Variant, options: &attr::Container, cx: &mut Ctxt) -> Self {
        let attrs = attr::Variant::parse(&original.attrs, cx);
        let rust_name = original.ident.unraw().to_string();
        let wire_name = match (&attrs.rename, options.rename_all) {
            (Some(lit), _) => lit.value(),
            (None, Some(rule)) => rule.apply(&rust_name),
            (None, None) => rust_name.clone(),
        };
        Variant {
            original,
            direction: attrs.direction,
            wire_name,
            method: method_ident(&rust_name, original.ident.span()),
            attrs,
        }
    }

    pub(crate) fn ident(&self) -> &'a Ident {
        &self.original.ident
    }

    pub(crate) fn fields(&self) -> Vec<&'a Field> {
        self.original.fields.iter().collect()
    }

    /// The attributes carried onto generated items (docs and `#[cfg]`).
    pub(crate) fn carried_attrs(&self) -> impl Iterator<Item = &'a Attribute> {
        self.original.attrs.iter().filter(|a| attr::is_carried(a))
    }

    /// Only the `#[cfg]`/`#[cfg_attr]` attributes, for match arms and trait methods.
    pub(crate) fn cfg_attrs(&self) -> impl Iterator<Item = &'a Attribute> {
        self.original
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
    }
}

/// The `*.json` files in the directory `dir` names, read now: `include_str!` of each makes
/// cargo rebuild when one changes. `dir` is relative to the crate's manifest, or, when it is
/// not there, to the nearest directory above it that has it: a crate that includes a
/// protocol's source from another package of the repository (a benchmark harness, say)
/// finds the same kept versions.
fn kept_files(dir: &LitStr, cx: &mut Ctxt) -> Vec<String> {
    let root = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(PathBuf::new, PathBuf::from);
    let path = root
        .ancestors()
        .map(|base| base.join(dir.value()))
        .find(|path| path.is_dir())
        .unwrap_or_else(|| root.join(dir.value()));
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(err) => {
            cx.error_spanned_by(
                dir,
                format_args!(
                    "cannot read the kept schemas in `{}`: {err}; create the directory (`omni::\
                     schema::check` with `OMNI_SCHEMA=record` fills it)",
                    path.display()
                ),
            );
            return Vec::new();
        }
    };
    let mut files: Vec<String> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|file| file.extension().is_some_and(|ext| ext == "json"))
        .filter_map(|file| file.to_str().map(str::to_owned))
        .collect();
    files.sort();
    files
}

/// `FetchAll` -> `fetch_all`; a keyword becomes a raw identifier (`Move` -> `r#move`), and the
/// three keywords that cannot be raw get a trailing underscore.
fn method_ident(variant: &str, span: Span) -> Ident {
    let name = snake_case(variant);
    match name.as_str() {
        "self" | "super" | "crate" => Ident::new(&format!("{name}_"), span),
        _ if syn::parse_str::<Ident>(&name).is_err() => Ident::new_raw(&name, span),
        _ => Ident::new(&name, span),
    }
}
