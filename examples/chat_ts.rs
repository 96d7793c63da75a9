//! Prints the TypeScript declarations of the chat demo's protocols: the chat's, or with the
//! argument `counter` the counter module's. `cargo xtask ts` writes them to
//! `examples/chat/static/protocol.d.ts` and `counter.d.ts` (and `cargo xtask ts --check` fails
//! when they are stale).

#[path = "chat/app.rs"]
mod app;
#[path = "chat/counter.rs"]
mod counter;
#[cfg(feature = "redis")]
#[path = "chat/store.rs"]
mod store;

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("counter") => print!("{}", omni::typescript::declarations::<counter::Counter>()),
        _ => print!("{}", omni::typescript::declarations::<app::Msg>()),
    }
}
