//! `/healthz` and `/readyz` as a load balancer polls them: ready while serving, unready from
//! the moment a shutdown starts (while connections are still being closed), and unready while
//! Redis cannot be reached. Over real sockets.

mod common;

use common::echo::{EchoFromServer, Parrot};
use common::{Client, PATIENCE, serve};
use omni::ServerFrame;
use omni::axum::Router;
use omni::server::{Endpoint, Shutdown};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn readiness_turns_off_when_the_drain_starts() {
    let endpoint = Endpoint::<common::echo::Echo, _>::new(|| Parrot);
    let shutdown = Shutdown::new().endpoint(&endpoint);
    let app = Router::new()
        .nest("/omni", endpoint.router())
        .merge(shutdown.health());
    let addr = serve(app).await;
    let mut client = Client::connect(addr, "/omni/ws").await;
    assert!(matches!(
        client.next::<EchoFromServer>().await,
        ServerFrame::Welcome { .. }
    ));
    assert_eq!(get(addr, "/readyz").await, (200, "ready\n".to_owned()));
    assert_eq!(get(addr, "/healthz").await.0, 200);

    shutdown.now();
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("draining"), "{body}");
    assert_eq!(
        get(addr, "/healthz").await.0,
        200,
        "the process still serves"
    );
    assert_eq!(client.close_code().await, Some(1001));
    assert!(
        tokio::time::timeout(PATIENCE, shutdown.drained())
            .await
            .unwrap()
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn readiness_is_off_while_redis_is_unreachable() {
    // Nothing listens on port 1.
    let pubsub = omni::pubsub::RedisPubSub::connect("redis://127.0.0.1:1").unwrap();
    let endpoint = Endpoint::<common::echo::Echo, _>::builder(|| Parrot)
        .pubsub(std::sync::Arc::new(pubsub))
        .build();
    let shutdown = Shutdown::new().endpoint(&endpoint);
    let addr = serve(Router::new().merge(shutdown.health())).await;
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("Redis"), "{body}");
}
