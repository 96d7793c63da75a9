//! The `#[omni::protocol]` attribute macro. Use it through the `omni` crate, whose docs
//! describe what it generates.
//!
//! The macro runs in phases, one file each: `attr` reads the attributes, `ast` builds the
//! protocol model, `validate` checks it and collects every mistake, `expand` writes the
//! generated items.

use proc_macro::TokenStream;

mod ast;
mod attr;
mod case;
mod ctxt;
mod expand;
mod validate;
mod wire;

#[cfg(test)]
mod snapshots;

/// Turns a `Msg` enum into a typed client/server protocol. See the `omni` crate's docs.
#[proc_macro_attribute]
pub fn protocol(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::protocol(args.into(), input.into()).into()
}

/// Derives `Serialize`, `Deserialize` and `TS` for a type that travels inside protocol
/// messages, through `omni`'s re-exports. See the `omni` crate's docs.
#[proc_macro_attribute]
pub fn wire(args: TokenStream, input: TokenStream) -> TokenStream {
    wire::expand(args.into(), input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
