//! A client the server refuses for good is told why, wherever it asks: `connected().await`,
//! `send` and `acked`. Over real sockets.

mod common;

use std::time::Duration;

use common::echo::{Echo, EchoFromClient, Parrot};
use common::{PATIENCE, serve};
use omni::TransportError;
use omni::axum::Router;
use omni::axum::http::StatusCode;
use omni::axum::routing::get;
use omni::client::{AckError, Client, SendError, Transport};
use omni::server::Endpoint;

const TRANSPORTS: [Transport; 3] = [Transport::Ws, Transport::Http, Transport::Sse];

#[tokio::test]
async fn connected_waits_for_the_welcome() {
    let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
    let addr = serve(Router::new().nest("/omni", endpoint.router())).await;
    for transport in TRANSPORTS {
        let connecting = Client::<Echo>::builder(format!("http://{addr}/omni"))
            .transport(transport)
            .connected();
        let (client, _messages) = tokio::time::timeout(PATIENCE, connecting)
            .await
            .unwrap()
            .unwrap_or_else(|err| panic!("{transport:?}: {err}"));
        assert!(client.session().is_some(), "{transport:?}: welcomed");
        client.close();
    }
}

#[tokio::test]
async fn a_refusal_is_the_error_of_connected_send_and_acked() {
    // Nothing is served under /nowhere: 404, which no retry can fix.
    let addr = serve(Router::new()).await;
    for transport in TRANSPORTS {
        let connecting = Client::<Echo>::builder(format!("http://{addr}/nowhere"))
            .transport(transport)
            .connected();
        match tokio::time::timeout(PATIENCE, connecting).await.unwrap() {
            Err(err) => assert!(err.to_string().contains("404"), "{transport:?}: {err}"),
            Ok(_) => panic!("{transport:?}: welcomed by a 404"),
        }

        let (client, mut messages) = Client::<Echo>::builder(format!("http://{addr}/nowhere"))
            .transport(transport)
            .connect();
        let queued = client.send(EchoFromClient::Say("hi".into())).unwrap();
        let acked = tokio::time::timeout(PATIENCE, client.acked(queued))
            .await
            .unwrap();
        assert!(
            matches!(acked, Err(AckError::Refused(_))),
            "{transport:?}: {acked:?}"
        );
        assert!(
            matches!(
                client.send(EchoFromClient::Say("again".into())),
                Err(SendError::Refused(_))
            ),
            "{transport:?}"
        );
        // The stream said it once and ended.
        while tokio::time::timeout(PATIENCE, messages.recv())
            .await
            .unwrap()
            .is_some()
        {}
    }
}

#[tokio::test]
async fn refused_credentials_are_the_error_of_connected() {
    let refusing = Router::new()
        .route("/omni/ws", get(|| async { StatusCode::UNAUTHORIZED }))
        .route("/omni/sse", get(|| async { StatusCode::UNAUTHORIZED }));
    let addr = serve(refusing).await;
    for transport in [Transport::Ws, Transport::Sse] {
        let connecting = Client::<Echo>::builder(format!("http://{addr}/omni"))
            .transport(transport)
            .connected();
        match tokio::time::timeout(PATIENCE, connecting).await.unwrap() {
            Err(TransportError::Unauthorized { .. }) => {}
            other => panic!("{transport:?}: {:?}", other.map(|_| ())),
        }
    }
    // A closed client, by contrast, is only closed.
    let (client, _messages) = Client::<Echo>::builder(format!("http://{addr}/omni")).connect();
    client.close();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(matches!(
        client.send(EchoFromClient::Say("x".into())),
        Err(SendError::Closed)
    ));
}
