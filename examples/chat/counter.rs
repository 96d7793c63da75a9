#![allow(dead_code)] // Shared by the demo and the tests; each uses a part.

//! The demo's second module on the mux: one counter shared by every page.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use omni::server::Endpoint;
use omni::{Context, HandlerResult};

/// The topic every counter component subscribes to.
pub const TOPIC: &str = "counter";

/// A shared counter.
#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Counter {
    /// Add one.
    #[client]
    Increment,
    /// The counter's current value: the answer to every join and every `Increment`, and
    /// pushed to every other component when it changes.
    #[server]
    Value(i64),
}

/// The value every session of one endpoint shares.
#[derive(Clone, Default)]
pub struct Shared(Arc<AtomicI64>);

impl Shared {
    /// The counter endpoint, to serve as a mux module.
    pub fn endpoint(&self) -> Endpoint<Counter, Component> {
        let shared = self.clone();
        Endpoint::with_props(move |_props| Component {
            shared: shared.clone(),
        })
        .build()
    }

    /// The current value.
    pub fn value(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One component's handler.
pub struct Component {
    shared: Shared,
}

impl CounterHandler for Component {
    async fn increment(&mut self, cx: &mut Context<Counter>) -> HandlerResult {
        let value = self.shared.0.fetch_add(1, Ordering::SeqCst) + 1;
        cx.send(CounterFromServer::Value(value));
        cx.broadcast_from(TOPIC, CounterFromServer::Value(value));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Counter>) -> HandlerResult {
        cx.subscribe(TOPIC);
        cx.send(CounterFromServer::Value(self.shared.value()));
        Ok(())
    }
}
