//! The smallest protocol: a client says something, the server answers it back.

use omni::{Context, HandlerResult};

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Echo {
    #[client]
    Say(String),
    #[server]
    Heard(String),
}

/// Answers every `Say` with `Heard`.
pub struct Parrot;

impl EchoHandler for Parrot {
    async fn say(&mut self, cx: &mut Context<Echo>, text: String) -> HandlerResult {
        cx.send(EchoFromServer::Heard(text));
        Ok(())
    }
}
