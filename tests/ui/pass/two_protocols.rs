//! Two protocols in one module, with their generated names chosen so they do not clash.
use omni::Protocol;

#[omni::protocol(client = ChatUp, server = ChatDown, handler = ChatHandler, name = "chat")]
#[derive(Debug, Clone, PartialEq)]
pub enum Chat {
    #[client]
    Send(String),
    #[server]
    Posted(String),
}

#[omni::protocol(client = CounterUp, server = CounterDown, handler = CounterHandler, transport = Net)]
#[derive(Debug, Clone, PartialEq)]
pub enum Counter {
    #[client]
    Increment,
    #[server]
    Value(i64),
}

struct Both;

impl ChatHandler for Both {
    async fn send(&mut self, cx: &mut omni::Context<Chat>, text: String) -> omni::HandlerResult {
        cx.broadcast("room", ChatDown::Posted(text));
        Ok(())
    }
}

impl CounterHandler for Both {
    async fn increment(&mut self, cx: &mut omni::Context<Counter>) -> omni::HandlerResult {
        cx.send(CounterDown::Value(1));
        Ok(())
    }
}

fn main() {
    assert_eq!(Chat::NAME, "chat");
    assert_eq!(Counter::NAME, "Counter");
    assert_ne!(Chat::version(), Counter::version());
    let _ = Counter::Net(omni::TransportState::Connecting);
    let _ = Chat::Transport(omni::TransportState::Connecting);
    let _ = Both;
}
