use std::rc::Rc;

#[omni::protocol]
pub enum Msg {
    #[client]
    Ping,
}

struct Room;

async fn tick() {}

impl MsgHandler for Room {
    async fn ping(&mut self, _cx: &mut omni::Context<Msg>) -> omni::HandlerResult {
        let local = Rc::new(1);
        tick().await;
        drop(local);
        Ok(())
    }
}

fn main() {}
