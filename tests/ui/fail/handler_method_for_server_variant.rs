#[omni::protocol]
pub enum Msg {
    #[client]
    Ping,
    #[server]
    Pong,
}

struct Room;

impl MsgHandler for Room {
    async fn ping(&mut self, _cx: &mut omni::Context<Msg>) -> omni::HandlerResult {
        Ok(())
    }
    async fn pong(&mut self, _cx: &mut omni::Context<Msg>) -> omni::HandlerResult {
        Ok(())
    }
}

fn main() {}
