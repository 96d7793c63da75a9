#[omni::protocol(client = Up, client = Down)]
pub enum Msg {
    #[client]
    Ping,
}

fn main() {}
