#[omni::protocol]
pub enum Msg {
    #[client]
    Connected,
    #[client]
    Snapshot(String),
    #[server]
    Welcome,
}

fn main() {}
