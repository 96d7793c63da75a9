//! Build 2 of the `evo` protocol, compatible with build 1: a new `#[server]` variant
//! (`Cheered`, which build 1's clients do not know), a new `#[client]` variant (`Cheer`, which
//! build 1's servers do not know) and a new optional field in a nested struct (`Note::mood`).

use omni::{Context, HandlerResult, TransportState};

use super::node::Build;

#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mood: Option<String>,
}

#[omni::protocol(name = "evo", schemas = "examples/evolution/kept/v2")]
#[derive(Debug, Clone, PartialEq)]
pub enum Evo {
    #[client]
    Post(Note),
    #[client]
    Ping,
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
        let cheer = format!("nice: {}", note.text);
        cx.publish("room", EvoFromServer::Posted(note));
        // A message build 1's clients do not know: they count it and go on.
        cx.send(EvoFromServer::Cheered(cheer));
        Ok(())
    }

    async fn ping(&mut self, cx: &mut Context<Evo>) -> HandlerResult {
        cx.send(EvoFromServer::Pong);
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
        vec![
            EvoFromClient::Post(Note {
                text: "v2".into(),
                mood: Some("glad".into()),
            }),
            EvoFromClient::Cheer("hooray".into()),
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
