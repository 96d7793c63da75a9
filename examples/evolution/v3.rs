//! Build 3 of the `evo` protocol, which breaks it: `Ping` is gone, so clients of builds 1
//! and 2, which may still send it, are refused, with that as the reason.

use omni::{Context, HandlerResult, TransportState};

use super::node::Build;

#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mood: Option<String>,
}

#[omni::protocol(name = "evo", schemas = "examples/evolution/kept/v3")]
#[derive(Debug, Clone, PartialEq)]
pub enum Evo {
    #[client]
    Post(Note),
    #[client]
    Cheer(String),
    #[server]
    Posted(Note),
    #[server]
    Pong,
    #[server]
    Cheered(String),
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

    async fn cheer(&mut self, cx: &mut Context<Evo>, text: String) -> HandlerResult {
        cx.send(EvoFromServer::Cheered(text));
        Ok(())
    }
}

impl Build for Evo {
    type Handler = Room;

    fn script() -> Vec<EvoFromClient> {
        vec![EvoFromClient::Post(Note {
            text: "v3".into(),
            mood: None,
        })]
    }

    fn state(self) -> Option<TransportState> {
        match self {
            Evo::Transport(state) => Some(state),
            _ => None,
        }
    }
}
