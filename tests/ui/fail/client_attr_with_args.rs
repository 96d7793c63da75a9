#[omni::protocol]
pub enum Msg {
    #[client(x)]
    Ping,
}

fn main() {}
