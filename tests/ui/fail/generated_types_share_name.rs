#[omni::protocol(client = Wire, server = Wire)]
pub enum Msg {
    #[client]
    Ping,
    #[server]
    Pong,
}

fn main() {}
