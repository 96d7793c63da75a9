//! Build 3 of the `evo` protocol as a process (see `evolution/node.rs`), for the protocol
//! evolution tests: `tests/evolution.rs` and `browser/tests/evolution.test.mjs`.

#[path = "evolution/node.rs"]
mod node;
#[path = "evolution/v3.rs"]
mod protocol;

fn main() {
    node::main::<protocol::Evo>();
}
