//! `Client::request`: a message's reply, its refusal, or its lack of a reply, as the call's
//! outcome, on every transport, over real sockets.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{PATIENCE, serve};
use omni::axum::Router;
use omni::client::{AckError, Client, RequestError, Transport};
use omni::server::Endpoint;
use omni::{Context, ErrorCode, HandlerResult};

/// A todo the board made.
#[omni::wire]
#[derive(Debug, Clone, PartialEq)]
pub struct Todo {
    /// Given by the server.
    pub id: u64,
    /// Given by the client.
    pub title: String,
}

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Board {
    /// Answered with the todo it created.
    #[client]
    Add(String),
    /// Refused.
    #[client]
    Forbidden,
    /// Handled, answered with nothing.
    #[client]
    Quiet,
    #[server]
    Added(Todo),
}

struct Handler {
    ids: Arc<AtomicU64>,
}

impl BoardHandler for Handler {
    async fn add(&mut self, cx: &mut Context<Board>, title: String) -> HandlerResult {
        let id = self.ids.fetch_add(1, Ordering::SeqCst) + 1;
        cx.send(BoardFromServer::Added(Todo { id, title }));
        Ok(())
    }

    async fn forbidden(&mut self, _: &mut Context<Board>) -> HandlerResult {
        Err("not on this board".into())
    }

    async fn quiet(&mut self, _: &mut Context<Board>) -> HandlerResult {
        Ok(())
    }
}

#[tokio::test]
async fn a_request_gets_its_reply_its_refusal_or_no_reply() {
    let ids = Arc::new(AtomicU64::new(0));
    let made = ids.clone();
    let endpoint = Endpoint::<Board, _>::new(move || Handler { ids: made.clone() });
    let addr = serve(Router::new().nest("/omni", endpoint.router())).await;
    for transport in [Transport::Ws, Transport::Http, Transport::Sse] {
        let (client, mut messages) = Client::<Board>::builder(format!("http://{addr}/omni"))
            .transport(transport)
            .connect();
        let within = |f| async move { tokio::time::timeout(PATIENCE, f).await.unwrap() };

        let reply = within(client.request(BoardFromClient::Add("milk".into()))).await;
        let BoardFromServer::Added(todo) = reply.unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        assert_eq!(todo.title, "milk");
        assert_eq!(
            todo.id,
            ids.load(Ordering::SeqCst),
            "{transport:?}: its own reply"
        );

        match within(client.request(BoardFromClient::Forbidden)).await {
            Err(RequestError::Answer(AckError::Rejected { code, message })) => {
                assert_eq!(code, ErrorCode::Rejected);
                assert!(message.contains("not on this board"), "{message}");
            }
            other => panic!("{transport:?}: {other:?}"),
        }
        assert_eq!(
            within(client.request(BoardFromClient::Quiet)).await,
            Err(RequestError::NoReply),
            "{transport:?}"
        );

        // Several at once each get their own.
        let (a, b) = tokio::join!(
            client.request(BoardFromClient::Add("a".into())),
            client.request(BoardFromClient::Add("b".into())),
        );
        let (BoardFromServer::Added(a), BoardFromServer::Added(b)) = (a.unwrap(), b.unwrap());
        assert_eq!(
            (a.title.as_str(), b.title.as_str()),
            ("a", "b"),
            "{transport:?}"
        );

        // The reply also reached the stream, as every server message does.
        let mut heard = Vec::new();
        while heard.len() < 3 {
            let heard_msg = tokio::time::timeout(PATIENCE, messages.recv())
                .await
                .unwrap();
            if let Some(Board::Added(todo)) = heard_msg {
                heard.push(todo.title);
            }
        }
        assert_eq!(heard, ["milk", "a", "b"], "{transport:?}");
        client.close();
    }
}

#[tokio::test]
async fn a_request_nobody_answers_in_time_ends_with_timeout() {
    // No server listens there: the message waits in the queue, and the call gives up on time.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = nowhere.local_addr().unwrap();
    drop(nowhere);
    let timeout = std::time::Duration::from_millis(300);
    let (client, _messages) = Client::<Board>::builder(format!("http://{addr}/omni"))
        .request_timeout(timeout)
        .connect();
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(PATIENCE, client.request(BoardFromClient::Add("x".into())))
        .await
        .expect("the request gives up by itself");
    assert_eq!(outcome, Err(RequestError::Timeout(timeout)));
    assert!(started.elapsed() >= timeout);
    // The message itself is still queued, for when the server is back.
    assert_eq!(client.unacknowledged(), 1);
}
