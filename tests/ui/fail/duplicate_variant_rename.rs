#[omni::protocol]
pub enum Msg {
    #[client]
    #[omni(rename = "ping", rename = "pong")]
    Ping,
}

fn main() {}
