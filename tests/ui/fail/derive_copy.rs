#[omni::protocol]
#[derive(Clone, Copy)]
pub enum Msg {
    #[client]
    Ping,
}

fn main() {}
