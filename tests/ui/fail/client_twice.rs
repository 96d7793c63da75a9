#[omni::protocol]
pub enum Msg {
    #[client]
    #[client]
    Ping,
}

fn main() {}
