#[omni::protocol]
pub enum Msg {
    #[client]
    #[server]
    Ping,
}

fn main() {}
