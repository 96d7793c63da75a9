//! The one protocol every omni server here speaks, and its handler: the round trips send
//! `Echo(text)` and are answered `Echoed(text)`; the fan-out sends its subscribers `News`.

use omni::{Context, HandlerResult};

/// The topic every fan-out subscriber is on.
pub const TOPIC: &str = "all";

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Bench {
    #[client]
    Echo(String),
    #[server]
    Echoed(String),
    #[server]
    News(String),
}

/// Answers every `Echo`. A fan-out server's sessions also subscribe to [`TOPIC`] as they
/// connect; a round-trip server's subscribe to nothing, so its round trips cost what they
/// cost without a subscription.
#[derive(Default)]
pub struct Echoer {
    subscribes: bool,
}

impl Echoer {
    /// For the fan-out servers; the round-trip servers' is the default.
    pub fn subscriber() -> Echoer {
        Echoer { subscribes: true }
    }
}

impl BenchHandler for Echoer {
    async fn echo(&mut self, cx: &mut Context<Bench>, text: String) -> HandlerResult {
        cx.send(BenchFromServer::Echoed(text));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Bench>) -> HandlerResult {
        if self.subscribes {
            cx.subscribe(TOPIC);
        }
        Ok(())
    }
}
