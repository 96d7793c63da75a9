//! Build 2 of the `evo` protocol as a process (see `evolution/node.rs`), for the protocol
//! evolution tests: `tests/evolution.rs` and `browser/tests/evolution.test.mjs`.

#[path = "evolution/node.rs"]
mod node;
#[path = "evolution/v2.rs"]
mod protocol;

fn main() {
    node::main::<protocol::Evo>();
}
