#[omni::protocol]
pub enum Msg {
    #[client]
    Send(String),
    #[server]
    Sent,
}

struct Room;

impl MsgHandler for Room {
    async fn send(&mut self, _cx: &mut omni::Context<Msg>, _value: u32) -> omni::HandlerResult {
        Ok(())
    }
}

fn main() {}
