#[omni::protocol]
pub enum Msg {
    #[client]
    #[omni(rename = ping)]
    Ping,
}

fn main() {}
