// A type the user does not own and that has no serde impls.
#[omni::protocol]
pub enum Msg {
    #[server]
    Started { at: std::time::Instant },
}

fn main() {}
