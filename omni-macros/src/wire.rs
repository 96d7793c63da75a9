//! `#[omni::wire]`: serde and ts-rs derives for a type carried inside protocol messages,
//! through `omni`'s re-exports so the user's crate needs neither as a dependency.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

pub(crate) fn expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(syn::Error::new_spanned(
            args,
            "`#[omni::wire]` takes no arguments; put serde options in `#[serde(...)]` below it",
        ));
    }
    let item: DeriveInput = syn::parse2(input)?;
    Ok(quote! {
        #[derive(
            ::omni::__private::serde::Serialize,
            ::omni::__private::serde::Deserialize,
            ::omni::__private::ts_rs::TS,
        )]
        #[serde(crate = "::omni::__private::serde")]
        #[ts(crate = "::omni::__private::ts_rs")]
        #item
    })
}
