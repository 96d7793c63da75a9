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
mod serde_attr;
mod validate;
mod wire;

#[cfg(test)]
mod snapshots;

/// Turns a `Msg` enum into a typed client/server protocol.
///
/// ```text
/// #[omni::protocol]                        // or #[omni::protocol(option = "...", ...)]
/// #[derive(Debug, Clone, PartialEq)]
/// pub enum Msg {
///     DraftChanged(String),                // no attribute: local, never leaves the client
///     #[client] Send(ChatMessage),         // client -> server
///     #[client] FetchAll,
///     #[server] Upsert(BTreeMap<String, ChatMessage>),   // server -> client
///     #[server] #[omni(rename = "online")] Presence { online: u32 },
/// }
/// ```
///
/// The `omni` crate's root page has this example compiling, with its handler and server.
///
/// # Options
///
/// | on | option | what it does |
/// |---|---|---|
/// | the enum | `client = "ChatUp"` | the client wire enum's name (default `MsgFromClient`) |
/// | the enum | `server = "ChatDown"` | the server wire enum's name (default `MsgFromServer`) |
/// | the enum | `handler = "ChatHandler"` | the handler trait's name (default `MsgHandler`) |
/// | the enum | `transport = "Link"` | the added transport variant's name (default `Transport`) |
/// | the enum | `name = "chat"` | the protocol's name on the wire, checked by `hello` (default: the enum's name) |
/// | the enum | `schemas = "protocol"` | embeds every `*.json` kept schema in that directory (relative to the crate's manifest) as `Protocol::kept()`; see `omni::schema::check` |
/// | the enum | `rename_all = "snake_case"` | wire names from variant names: `lowercase`, `UPPERCASE`, `PascalCase`, `camelCase`, `snake_case`, `SCREAMING_SNAKE_CASE`, `kebab-case`, `SCREAMING-KEBAB-CASE` |
/// | a variant | `#[client]` | sent by clients: a client wire variant and a handler method |
/// | a variant | `#[server]` | sent by the server: a server wire variant |
/// | a variant | `#[omni(rename = "...")]` | its name in the payload's `kind` |
///
/// `#[cfg]` and doc comments on variants are carried onto the generated ones; `#[client]`,
/// `#[server]` and `#[omni]` are removed from the emitted enum.
///
/// # What it generates
///
/// - The enum itself, with a transport variant added: `Transport(omni::TransportState)`.
/// - `MsgFromClient` and `MsgFromServer`: the wire enums, adjacently tagged
///   (`{"kind":"Send","data":{…}}`), with serde and TypeScript (`ts-rs`) impls.
/// - Conversions: `From<MsgFromServer> for Msg` and `From<MsgFromClient> for Msg`.
/// - `MsgHandler`: one `async fn` per `#[client]` variant (its fields as arguments, after a
///   `&mut omni::Context<Msg>`), and the hooks `connected`, `disconnected` and
///   `snapshot(topic)`, which do nothing unless written. Native `async fn` in traits: no
///   `async_trait`.
/// - `impl omni::Protocol for Msg`: the name, both wire types, the structural schema
///   (`schema()`, every wire variant and the types its fields reach) and its id
///   (`version()`, computed once), and the
///   conversions the runtime uses (`into_client()` is what a client sends: local variants stay
///   local; `transport(state)`); and
///   `impl<H: MsgHandler> omni::Dispatch<H> for Msg` (matches a client message onto its method).
///
/// # Errors
///
/// Every mistake is reported at once, on the tokens at fault, and the enum is still emitted so
/// no "cannot find type" errors follow: a struct or union, generics, a variant marked both ways
/// or twice, an unknown or repeated option, duplicate wire names, names that collide with a
/// generated item, a field that borrows (`&str`: use `String`), or one that is not
/// `Serialize + DeserializeOwned`, and an enum with no `#[client]` or `#[server]` variant.
///
/// A field type that travels but has no `omni::schema::Describe` impl (a type with only serde
/// derives, or from another crate) is a warning on that type: the schema knows it by name
/// only, so a change inside it goes unchecked. Put `#[omni::wire]` on it.
#[proc_macro_attribute]
pub fn protocol(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::protocol(args.into(), input.into()).into()
}

/// Derives `Serialize`, `Deserialize` and `TS` for a type that travels inside protocol
/// messages, through `omni`'s re-exports, so the app needs neither serde nor ts-rs in its own
/// manifest, and `omni::schema::Describe`, which describes the type's wire form for the
/// protocol's schema as its `#[serde(...)]` attributes shape it:
///
/// ```text
/// #[omni::wire]
/// #[derive(Debug, Clone, PartialEq)]
/// pub struct ChatMessage {
///     pub id: String,
///     pub text: String,
/// }
/// ```
#[proc_macro_attribute]
pub fn wire(args: TokenStream, input: TokenStream) -> TokenStream {
    wire::expand(args.into(), input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
