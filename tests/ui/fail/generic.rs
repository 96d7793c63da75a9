#[omni::protocol]
pub enum Msg<T> {
    #[client]
    Send(T),
    #[server]
    Ack,
}

fn main() {}
