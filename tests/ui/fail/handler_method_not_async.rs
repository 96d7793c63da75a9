#[omni::protocol]
pub enum Msg {
    #[client]
    Ping,
}

struct Room;

impl MsgHandler for Room {
    fn ping(&mut self, _cx: &mut omni::Context<Msg>) -> omni::HandlerResult {
        Ok(())
    }
}

fn main() {}
