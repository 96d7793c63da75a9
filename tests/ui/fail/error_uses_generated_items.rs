#[omni::protocol]
pub enum Msg {
    #[client]
    #[omni(renam = "ping")]
    Ping,
}

struct Room;

impl MsgHandler for Room {
    async fn ping(&mut self, _cx: &mut omni::Context<Msg>) -> omni::HandlerResult {
        Ok(())
    }
}

fn main() {
    let _ = MsgFromClient::Ping;
}
