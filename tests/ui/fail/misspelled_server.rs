// The misspelled attribute is removed from the emitted enum, which the rest of the crate uses.
#[omni::protocol]
pub enum Msg {
    #[client]
    Ask,
    #[sever]
    Answer(String),
}

fn main() {
    let _ = Msg::Answer(String::new());
}
