#[omni::protocol]
pub enum Msg {
    #[client]
    Send(String),
    #[client]
    FetchAll,
    #[server]
    Sent,
}

struct Room;

impl MsgHandler for Room {
    async fn send(&mut self, _cx: &mut omni::Context<Msg>, _value: String) -> omni::HandlerResult {
        Ok(())
    }
}

fn main() {}
