//! Prints the chat protocol's TypeScript declarations. `cargo xtask ts` writes them to
//! `examples/chat/static/protocol.d.ts` (and `cargo xtask ts --check` fails when that is stale).

#[path = "chat/app.rs"]
mod app;

fn main() {
    print!("{}", omni::typescript::declarations::<app::Msg>());
}
