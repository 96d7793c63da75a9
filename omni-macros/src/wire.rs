//! `#[omni::wire]`: serde and ts-rs derives for a type carried inside protocol messages,
//! through `omni`'s re-exports so the user's crate needs neither as a dependency, and the
//! type's `omni::schema::Describe` impl, read from the same serde attributes.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, GenericParam, Ident};

use crate::case::RenameRule;
use crate::expand::describe_field;
use crate::serde_attr::{Container, Member};

pub(crate) fn expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(syn::Error::new_spanned(
            args,
            "`#[omni::wire]` takes no arguments; put serde options in `#[serde(...)]` below it",
        ));
    }
    let item: DeriveInput = syn::parse2(input)?;
    let describe = describe_impl(&item);
    Ok(quote! {
        #[derive(
            ::omni::__private::serde::Serialize,
            ::omni::__private::serde::Deserialize,
            ::omni::__private::ts_rs::TS,
        )]
        #[serde(crate = "::omni::__private::serde")]
        #[ts(crate = "::omni::__private::ts_rs")]
        #item

        #describe
    })
}

/// `impl Describe for T`: registers `T` under its Rust name (with its type arguments, when
/// generic) and describes its body as serde writes it.
fn describe_impl(item: &DeriveInput) -> TokenStream {
    let schema = quote!(::omni::__private::schema);
    let private = quote!(::omni::__private);
    let container = Container::parse(&item.attrs);
    let ident = &item.ident;

    let mut generics = item.generics.clone();
    let params: Vec<Ident> = generics
        .type_params()
        .map(|param| param.ident.clone())
        .collect();
    {
        let where_clause = generics.make_where_clause();
        for param in &params {
            where_clause
                .predicates
                .push(syn::parse_quote!(#param: #schema::Describe));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    let base = ident.unraw().to_string();
    let name = if params.is_empty() {
        quote!(#private::ToString::to_string(#base))
    } else {
        // Each argument is described first: its own name, or its shape for a std type.
        let args = item.generics.params.iter().filter_map(|param| match param {
            GenericParam::Type(param) => Some(&param.ident),
            _ => None,
        });
        let pushes = args.enumerate().map(|(i, ident)| {
            let comma = (i > 0).then(|| quote!(__omni_name.push_str(", ");));
            quote! {
                #comma
                let __omni_arg = <#ident as #schema::Describe>::describe(__omni_types);
                __omni_name.push_str(&#private::ToString::to_string(&__omni_arg));
            }
        });
        quote! {{
            let mut __omni_name = #private::ToString::to_string(#base);
            __omni_name.push('<');
            #(#pushes)*
            __omni_name.push('>');
            __omni_name
        }}
    };

    let body = if let Some(proxy) = &container.proxy {
        // The type travels as another one: its shape is that type's.
        let shape = describe_field(proxy);
        return quote! {
            #[automatically_derived]
            impl #impl_generics #schema::Describe for #ident #ty_generics #where_clause {
                fn describe(__omni_types: &mut #schema::Registry) -> #schema::Shape {
                    use #schema::probe::{Described as _, Stranded as _, Undescribed as _};
                    #shape
                }
            }
        };
    } else {
        match &item.data {
            Data::Struct(data) => struct_body(&container, &data.fields),
            Data::Enum(data) => enum_body(&container, data),
            Data::Union(_) => quote!(#schema::TypeDef::UnitStruct),
        }
    };
    quote! {
        #[automatically_derived]
        impl #impl_generics #schema::Describe for #ident #ty_generics #where_clause {
            fn describe(__omni_types: &mut #schema::Registry) -> #schema::Shape {
                use #schema::probe::{Described as _, Stranded as _, Undescribed as _};
                let __omni_name = #name;
                __omni_types.named::<Self>(__omni_name, |__omni_types| #body)
            }
        }
    }
}

fn struct_body(container: &Container, fields: &Fields) -> TokenStream {
    let schema = quote!(::omni::__private::schema);
    let private = quote!(::omni::__private);
    let kept: Vec<_> = fields
        .iter()
        .filter(|f| !Member::parse(&f.attrs).skip)
        .collect();
    match fields {
        Fields::Named(_) if !container.transparent => {
            let deny = container.deny_unknown_fields;
            let fields = named_fields(container.rename_all, container.default, fields);
            quote!({
                let __omni_fields = #fields;
                #schema::TypeDef::Struct(
                    #schema::StructDef::new(__omni_fields).deny_unknown_fields(#deny),
                )
            })
        }
        // Transparent, or one value: written as that value.
        _ if container.transparent || (kept.len() == 1 && matches!(fields, Fields::Unnamed(_))) => {
            match kept.first() {
                Some(field) => {
                    let shape = member_shape(field);
                    quote!(#schema::TypeDef::Newtype(#shape))
                }
                None => quote!(#schema::TypeDef::UnitStruct),
            }
        }
        Fields::Unnamed(_) => {
            let items = kept.iter().map(|field| {
                let cfgs = cfgs(&field.attrs);
                let shape = member_shape(field);
                quote!(#(#cfgs)* __omni_items.push(#shape);)
            });
            quote!({
                let mut __omni_items = #private::Vec::new();
                #(#items)*
                #schema::TypeDef::TupleStruct(__omni_items)
            })
        }
        _ => quote!(#schema::TypeDef::UnitStruct),
    }
}

fn enum_body(container: &Container, data: &syn::DataEnum) -> TokenStream {
    let schema = quote!(::omni::__private::schema);
    let private = quote!(::omni::__private);
    let tagging = match (&container.tag, &container.content, container.untagged) {
        (_, _, true) => quote!(#schema::Tagging::Untagged),
        (Some(tag), Some(content), false) => quote!(#schema::Tagging::Adjacent {
            tag: #private::ToString::to_string(#tag),
            content: #private::ToString::to_string(#content),
        }),
        (Some(tag), None, false) => quote!(#schema::Tagging::Internal {
            tag: #private::ToString::to_string(#tag),
        }),
        (None, _, false) => quote!(#schema::Tagging::External),
    };
    let variants = data.variants.iter().filter_map(|variant| {
        let attrs = Member::parse(&variant.attrs);
        if attrs.skip || attrs.skip_serializing || attrs.skip_deserializing {
            return None;
        }
        let variant_cfgs = cfgs(&variant.attrs);
        let rust_name = variant.ident.unraw().to_string();
        let wire_name = attrs
            .rename
            .clone()
            .unwrap_or_else(|| match container.rename_all {
                Some(rule) => rule.apply(&rust_name),
                None => rust_name,
            });
        let payload = if let Some(with) = &attrs.with {
            let opaque = format!("{} with {with}", variant.ident);
            quote!(#schema::Payload::One(#schema::Shape::Opaque(#private::ToString::to_string(#opaque))))
        } else {
            let kept: Vec<_> = variant
                .fields
                .iter()
                .filter(|f| !Member::parse(&f.attrs).skip)
                .collect();
            match &variant.fields {
                Fields::Unit => quote!(#schema::Payload::Unit),
                Fields::Named(_) => {
                    let rule = attrs.rename_all.or(container.rename_all_fields);
                    let fields = named_fields(rule, false, &variant.fields);
                    quote!(#schema::Payload::Fields(#fields))
                }
                Fields::Unnamed(_) if kept.len() == 1 => {
                    let shape = member_shape(kept[0]);
                    quote!(#schema::Payload::One(#shape))
                }
                Fields::Unnamed(_) => {
                    let items = kept.iter().map(|field| {
                        let cfgs = cfgs(&field.attrs);
                        let shape = member_shape(field);
                        quote!(#(#cfgs)* __omni_items.push(#shape);)
                    });
                    quote!(#schema::Payload::Tuple({
                        let mut __omni_items = #private::Vec::new();
                        #(#items)*
                        __omni_items
                    }))
                }
            }
        };
        Some(quote! {
            #(#variant_cfgs)*
            __omni_variants.insert(#private::ToString::to_string(#wire_name), #payload);
        })
    });
    quote!({
        let mut __omni_variants = #private::BTreeMap::new();
        #(#variants)*
        #schema::TypeDef::Enum(#schema::EnumDef::new(#tagging, __omni_variants))
    })
}

/// A block evaluating to the `BTreeMap<String, Field>` of named fields, by wire name.
fn named_fields(rule: Option<RenameRule>, all_default: bool, fields: &Fields) -> TokenStream {
    let schema = quote!(::omni::__private::schema);
    let private = quote!(::omni::__private);
    let inserts = fields.iter().filter_map(|field| {
        let attrs = Member::parse(&field.attrs);
        if attrs.skip {
            return None;
        }
        let cfgs = cfgs(&field.attrs);
        let rust_name = field.ident.as_ref()?.unraw().to_string();
        let wire_name = attrs.rename.clone().unwrap_or_else(|| match rule {
            Some(rule) => rule.apply_to_field(&rust_name),
            None => rust_name.clone(),
        });
        let shape = member_shape(field);
        if attrs.flatten && attrs.with.is_none() {
            return Some(quote! {
                #(#cfgs)*
                {
                    let __omni_shape = #shape;
                    #schema::probe::flatten(__omni_types, &mut __omni_fields, #rust_name, __omni_shape);
                }
            });
        }
        // A reader needs the field unless serde fills it in: a default, a skipped read, or an
        // `Option` read through serde's own path (which `Field::new` sees in the shape).
        let required = if all_default || attrs.default || attrs.skip_deserializing {
            quote!(.with_required(false))
        } else if attrs.with.is_some() {
            quote!(.with_required(true))
        } else {
            TokenStream::new()
        };
        let omit = if attrs.skip_serializing || attrs.skip_serializing_if {
            quote!(.omittable())
        } else {
            TokenStream::new()
        };
        Some(quote! {
            #(#cfgs)*
            __omni_fields.insert(
                #private::ToString::to_string(#wire_name),
                #schema::Field::new(#shape) #required #omit,
            );
        })
    });
    quote!({
        let mut __omni_fields = #private::BTreeMap::new();
        #(#inserts)*
        __omni_fields
    })
}

/// The shape of a field of a wire type: opaque when serde writes it with the user's code.
fn member_shape(field: &syn::Field) -> TokenStream {
    let attrs = Member::parse(&field.attrs);
    match attrs.with {
        Some(with) => {
            let ty = &field.ty;
            let opaque = format!("{} with {with}", quote!(#ty).to_string().replace(' ', ""));
            quote_spanned! {field.ty.span()=>
                ::omni::__private::schema::Shape::Opaque(::omni::__private::ToString::to_string(#opaque))
            }
        }
        None => describe_field(&field.ty),
    }
}

fn cfgs(attrs: &[syn::Attribute]) -> Vec<&syn::Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("cfg")).collect()
}
