#[omni::protocol]
pub enum Msg {
    #[client]
    Ping,
    Transport(String),
}

fn main() {}
