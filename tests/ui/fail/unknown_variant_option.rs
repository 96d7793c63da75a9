#[omni::protocol]
pub enum Msg {
    #[client]
    #[omni(renam = "x")]
    Ping,
}

fn main() {}
