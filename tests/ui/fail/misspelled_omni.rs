#[omni::protocol]
pub enum Msg {
    #[client]
    #[omin(rename = "ping")]
    Ping,
}

fn main() {}
