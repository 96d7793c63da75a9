#![allow(dead_code)] // Shared by the demo and the tests; each uses a part.

//! The demo's second module on the mux: one counter shared by every page (of every server,
//! when they share a Redis).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use omni::server::Endpoint;
use omni::{BoxError, Context, HandlerResult};

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

/// The value every session of one endpoint shares: in memory, or in Redis (a key every
/// server of the room increments, its changes broadcast through the room's pub/sub).
#[derive(Clone, Default)]
pub struct Shared {
    local: Arc<AtomicI64>,
    #[cfg(feature = "redis")]
    redis: Option<(crate::store::Store, String, Arc<omni::pubsub::RedisPubSub>)>,
}

impl Shared {
    /// A counter kept under `key` in the Redis the room uses, broadcast through its pub/sub.
    #[cfg(feature = "redis")]
    pub fn with_redis(
        redis: crate::store::Store,
        key: String,
        pubsub: Arc<omni::pubsub::RedisPubSub>,
    ) -> Self {
        Self {
            redis: Some((redis, key, pubsub)),
            ..Self::default()
        }
    }

    /// The counter endpoint, to serve as a mux module.
    pub fn endpoint(&self) -> Endpoint<Counter, Component> {
        let shared = self.clone();
        let builder = Endpoint::with_props(move |_props| Component {
            shared: shared.clone(),
        });
        #[cfg(feature = "redis")]
        let builder = match &self.redis {
            Some((_, _, pubsub)) => builder.pubsub(pubsub.clone()),
            None => builder,
        };
        builder.build()
    }

    /// Adds `delta`; returns the new value.
    async fn add(&self, delta: i64) -> Result<i64, BoxError> {
        #[cfg(feature = "redis")]
        if let Some((redis, key, _)) = &self.redis {
            let mut redis = redis.clone();
            return Ok(redis::cmd("INCRBY")
                .arg(key)
                .arg(delta)
                .query_async(&mut redis)
                .await?);
        }
        Ok(self.local.fetch_add(delta, Ordering::SeqCst) + delta)
    }
}

/// One component's handler.
pub struct Component {
    shared: Shared,
}

impl CounterHandler for Component {
    async fn increment(&mut self, cx: &mut Context<Counter>) -> HandlerResult {
        let value = self.shared.add(1).await?;
        cx.send(CounterFromServer::Value(value));
        cx.broadcast_from(TOPIC, CounterFromServer::Value(value));
        Ok(())
    }

    async fn connected(&mut self, cx: &mut Context<Counter>) -> HandlerResult {
        cx.subscribe(TOPIC);
        cx.send(CounterFromServer::Value(self.shared.add(0).await?));
        Ok(())
    }
}
