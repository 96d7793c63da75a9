#[omni::protocol(clinet = Up)]
pub enum Msg {
    #[client]
    Ping,
}

fn main() {}
