#[omni::protocol(client = Msg)]
pub enum Msg {
    #[client]
    Ping,
}

fn main() {}
