//! Build 1 of the `evo` protocol: notes, and a ping.

use omni::{Context, HandlerResult, TransportState};

use super::node::Build;

#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub text: String,
}

#[omni::protocol(name = "evo", schemas = "examples/evolution/kept/v1")]
#[derive(Debug, Clone, PartialEq)]
pub enum Evo {
    #[client]
    Post(Note),
    #[client]
    Ping,
    #[server]
    Posted(Note),
    #[server]
    Pong,
}

#[derive(Default)]
pub struct Room;

impl EvoHandler for Room {
    async fn connected(&mut self, cx: &mut Context<Evo>) -> HandlerResult {
        cx.subscribe("room");
        Ok(())
    }

    async fn post(&mut self, cx: &mut Context<Evo>, note: Note) -> HandlerResult {
        // An HTTP client's connection is not live, so `connected` does not run for it.
        cx.subscribe("room");
        cx.publish("room", EvoFromServer::Posted(note));
        Ok(())
    }

    async fn ping(&mut self, cx: &mut Context<Evo>) -> HandlerResult {
        cx.send(EvoFromServer::Pong);
        Ok(())
    }
}

impl Build for Evo {
    type Handler = Room;

    fn script() -> Vec<EvoFromClient> {
        vec![
            EvoFromClient::Post(Note { text: "v1".into() }),
            EvoFromClient::Ping,
        ]
    }

    fn state(self) -> Option<TransportState> {
        match self {
            Evo::Transport(state) => Some(state),
            _ => None,
        }
    }
}
