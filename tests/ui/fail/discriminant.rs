#[omni::protocol]
pub enum Msg {
    #[client]
    Ping = 1,
}

fn main() {}
