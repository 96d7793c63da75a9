//! The protocol the client tests speak, and readers of a client's message stream.

use omni::TransportState;
use omni::client::Messages;

use super::PATIENCE;

/// A number sent, and the same number answered.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Relay {
    /// Answered with a sequenced `Echoed` of the same number.
    #[client]
    Echo(u32),
    #[server]
    Echoed(u32),
}

/// The next message, or a panic after [`PATIENCE`].
pub async fn next(messages: &mut Messages<Relay>) -> Relay {
    tokio::time::timeout(PATIENCE, messages.recv())
        .await
        .expect("a message in time")
        .expect("the client is running")
}

/// The next transport state, skipping server messages.
pub async fn next_state(messages: &mut Messages<Relay>) -> TransportState {
    loop {
        if let Relay::Transport(state) = next(messages).await {
            return state;
        }
    }
}

/// The next `Echoed`, skipping transport states.
pub async fn next_echo(messages: &mut Messages<Relay>) -> u32 {
    loop {
        if let Relay::Echoed(n) = next(messages).await {
            return n;
        }
    }
}
