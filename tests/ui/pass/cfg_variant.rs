//! `#[cfg]` on a variant applies to every generated item made from it.

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    #[client]
    Kept,
    #[cfg(any())]
    #[client]
    Gone(NotAType),
    #[cfg(all())]
    #[server]
    Present(u8),
    #[cfg(any())]
    #[server]
    AlsoGone,
}

struct Handler;

// Only `kept` is required: `gone` was configured away.
impl MsgHandler for Handler {
    async fn kept(&mut self, _: &mut omni::Context<Msg>) -> omni::HandlerResult {
        Ok(())
    }
}

fn main() {
    let _ = Handler;
    match MsgFromServer::Present(1) {
        MsgFromServer::Present(_) => {}
    }
    match MsgFromClient::Kept {
        MsgFromClient::Kept => {}
    }
}
