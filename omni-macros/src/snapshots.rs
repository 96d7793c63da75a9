//! Expansion snapshots of representative protocols, so every change to the generated code
//! shows up in review as a diff of `src/snapshots/*.snap`.

use proc_macro2::TokenStream;
use quote::quote;

fn expand(args: TokenStream, item: TokenStream) -> String {
    let out = crate::expand::protocol(args, item);
    let file: syn::File = syn::parse2(out).expect("the expansion parses as a file");
    prettyplease::unparse(&file)
}

#[test]
fn chat() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            /// Everything that can happen in the chat.
            #[derive(Debug, Clone, PartialEq)]
            pub enum Msg {
                /// The draft changed; local only.
                DraftChanged(String),
                /// Send a message.
                #[client]
                Send(ChatMessage),
                #[client]
                FetchAll,
                #[server]
                Upsert(BTreeMap<String, ChatMessage>),
                #[server]
                Presence { online: u32 },
            }
        }
    ));
}

#[test]
fn every_option() {
    insta::assert_snapshot!(expand(
        quote!(
            client = Up,
            server = Down,
            handler = Counter,
            transport = Net,
            name = "counter",
            rename_all = "snake_case"
        ),
        quote! {
            #[derive(Clone)]
            pub(crate) enum Count {
                #[client]
                Increment,
                #[client]
                #[omni(rename = "add")]
                AddMany(u32, u32),
                #[cfg(feature = "reset")]
                #[client]
                ResetAll,
                #[server]
                Value { value: i64 },
            }
        }
    ));
}

#[test]
fn errors_keep_the_enum() {
    insta::assert_snapshot!(expand(
        quote!(clinet = Up),
        quote! {
            enum Msg {
                #[client]
                #[server]
                Ping,
                #[client]
                Transport,
            }
        }
    ));
}

/// How long a 100-variant protocol takes to expand. A measurement, not an assertion:
/// `cargo test -p omni-macros expansion_time -- --ignored --nocapture`.
#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn expansion_time_of_100_variants() {
    let variants = (0..100).map(|i| {
        let name = quote::format_ident!("Variant{i}");
        if i % 2 == 0 {
            quote!(#[client] #name(u32, String))
        } else {
            quote!(#[server] #name { value: u64, note: Option<String> })
        }
    });
    let item = quote!(pub enum Big { #(#variants,)* });
    let runs = 50;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(crate::expand::protocol(TokenStream::new(), item.clone()));
    }
    println!(
        "100-variant expansion: {:?} per run ({runs} runs)",
        start.elapsed() / runs
    );
}
