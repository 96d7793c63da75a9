#[omni::protocol]
pub enum Msg {
    DraftChanged(String),
    Cleared,
}

fn main() {}
