//! The protocol model: the user's enum, read once, with every name the expansion needs
//! resolved. Each part keeps a reference to the syn node it came from, for spans.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Attribute, Field, Fields, Ident, ItemEnum, Type};

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
        Protocol {
            item,
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

    /// The schema hash `hello` carries: FNV-1a over every wire variant's direction, wire name,
    /// field names and field types as written, in a canonical order, so reordering variants
    /// does not change it but renaming or retyping anything that travels does.
    pub(crate) fn schema_hash(&self) -> String {
        let mut entries: Vec<String> = self
            .variants
            .iter()
            .filter_map(|v| {
                let direction = v.direction?;
                let fields: Vec<String> = v
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let name = f
                            .ident
                            .as_ref()
                            .map_or_else(|| i.to_string(), |id| id.unraw().to_string());
                        format!("{name}:{}", type_key(&f.ty))
                    })
                    .collect();
                let shape = match v.original.fields {
                    Fields::Named(_) => "{}",
                    Fields::Unnamed(_) => "()",
                    Fields::Unit => "",
                };
                Some(format!(
                    "{}:{}{shape}[{}]",
                    direction.attr_name(),
                    v.wire_name,
                    fields.join(",")
                ))
            })
            .collect();
        entries.sort();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in entries.join(";").bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
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

/// A field type as a whitespace-free string, for the schema hash.
fn type_key(ty: &Type) -> String {
    quote::quote!(#ty).to_string().replace(' ', "")
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
