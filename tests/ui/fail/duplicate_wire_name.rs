#[omni::protocol]
pub enum Msg {
    #[client]
    Ping,
    #[client]
    #[omni(rename = "Ping")]
    Pong,
}

fn main() {}
