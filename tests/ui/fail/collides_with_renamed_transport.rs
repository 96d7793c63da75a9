#[omni::protocol(transport = Status)]
pub enum Msg {
    #[client]
    Ping,
    Status(String),
}

fn main() {}
