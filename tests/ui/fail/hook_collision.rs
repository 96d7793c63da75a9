#[omni::protocol]
pub enum Msg {
    #[client]
    Connected,
    #[server]
    Welcome,
}

fn main() {}
