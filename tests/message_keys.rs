//! A message's key survives a new session: a Rust client whose server goes away before it
//! acknowledges a message sends the message again to the server that takes over, in a new
//! session, and the handler there sees the key the first one saw. An application keeps the
//! keys it applied to tell such a message from a new one.

mod common;

use std::sync::{Arc, Mutex};

use common::proxy::Proxy;
use common::{PATIENCE, serve};
use omni::client::Client;
use omni::server::Endpoint;
use omni::{Context, HandlerResult, MessageKey, SessionId};
use tokio::sync::Notify;

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Ledger {
    #[client]
    Pay(u32),
    #[server]
    Paid(u32),
}

type Seen = Arc<Mutex<Vec<(SessionId, Option<MessageKey>)>>>;

/// Notes each payment's session and key; while `hold` is set, it never gets to answer.
struct Clerk {
    seen: Seen,
    hold: Option<Arc<Notify>>,
}

impl LedgerHandler for Clerk {
    async fn pay(&mut self, cx: &mut Context<Ledger>, amount: u32) -> HandlerResult {
        self.seen
            .lock()
            .unwrap()
            .push((cx.session(), cx.message_key()));
        if let Some(hold) = &self.hold {
            hold.notified().await;
        }
        cx.send(LedgerFromServer::Paid(amount));
        Ok(())
    }
}

async fn server(seen: &Seen, hold: Option<Arc<Notify>>) -> std::net::SocketAddr {
    let seen = seen.clone();
    let endpoint = Endpoint::<Ledger, _>::builder(move || Clerk {
        seen: seen.clone(),
        hold: hold.clone(),
    })
    .build();
    serve(endpoint.router()).await
}

async fn until_seen(seen: &Seen, n: usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while seen.lock().unwrap().len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_message_sent_again_to_a_new_session_keeps_its_key() {
    let seen = Seen::default();
    let first = server(&seen, Some(Arc::new(Notify::new()))).await;
    let second = server(&seen, None).await;
    let proxy = Proxy::start(first).await;

    let (client, _messages) = Client::<Ledger>::builder(format!("http://{}", proxy.addr)).connect();
    let paid = client.send(LedgerFromClient::Pay(7)).unwrap();
    until_seen(&seen, 1).await;
    // The first server handles the payment and goes away before it answers; the second
    // knows nothing of its session.
    proxy.set_upstream(second);
    proxy.cut();
    tokio::time::timeout(PATIENCE, client.acked(paid))
        .await
        .expect("acknowledged by the second server")
        .unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (first_session, first_key) = &seen[0];
    let (second_session, second_key) = &seen[1];
    assert_ne!(
        first_session, second_session,
        "the second server made a new session"
    );
    let key = first_key.as_ref().expect("the Rust client gives its id");
    assert_eq!(
        Some(key),
        second_key.as_ref(),
        "the same key in both sessions"
    );
    assert_eq!(key.reference, paid);
    assert_eq!(key.to_string(), format!("{}.{paid}", key.client));
}
