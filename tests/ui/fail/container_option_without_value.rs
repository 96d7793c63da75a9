#[omni::protocol(client)]
pub enum Msg {
    #[client]
    Ping,
}

fn main() {}
