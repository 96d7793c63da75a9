//! The spans a client's messages run in, as any tracing subscriber sees them: each message's
//! span is a child of its session's and connection's spans and names its kind, and a
//! client's `traceparent` (in `hello`, or the header of its request) is recorded on them;
//! a malformed one is ignored.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use common::echo::{Echo, EchoFromClient, EchoFromServer, Parrot};
use common::{Client, serve};
use omni::ServerFrame;
use omni::server::Endpoint;
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, field};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A span as the subscriber saw it.
#[derive(Debug, Clone)]
struct Seen {
    id: u64,
    name: &'static str,
    /// Its ancestors' ids, nearest first, when it was made.
    ancestors: Vec<u64>,
    fields: BTreeMap<String, String>,
}

/// Every span made in this test binary, kept by a layer over the registry.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        let ancestors = cx
            .span(id)
            .map(|span| span.scope().skip(1).map(|s| s.id().into_u64()).collect())
            .unwrap_or_default();
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        spans.push(Seen {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            ancestors,
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ids are reused once a span closes: the latest span with this id is the live one.
        if let Some(seen) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
}

fn spans() -> &'static Spans {
    static SPANS: OnceLock<Spans> = OnceLock::new();
    SPANS.get_or_init(|| {
        let spans = Spans::default();
        let subscriber = tracing_subscriber::registry().with(spans.clone());
        tracing::subscriber::set_global_default(subscriber).unwrap();
        spans
    })
}

impl Spans {
    /// The `omni.msg` span of the message with `reference` (unique per test) and `kind`, and
    /// its ancestors, nearest first, as they are now.
    fn message(&self, reference: u64, kind: &str) -> Vec<Seen> {
        // A test that failed holding the lock must not hide what the others saw.
        let spans = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let msg = spans
            .iter()
            .rev()
            .find(|s| {
                s.name == "omni.msg"
                    && s.fields.get("reference").map(String::as_str) == Some(&reference.to_string())
                    && s.fields.get("kind").map(String::as_str) == Some(kind)
            })
            .unwrap_or_else(|| panic!("no omni.msg span for ref {reference}: {spans:#?}"))
            .clone();
        let mut chain = vec![msg.clone()];
        for ancestor in &msg.ancestors {
            let seen = spans.iter().rev().find(|s| s.id == *ancestor).unwrap();
            chain.push(seen.clone());
        }
        chain
    }
}

fn names(chain: &[Seen]) -> Vec<&'static str> {
    chain.iter().map(|s| s.name).collect()
}

async fn heard(client: &mut Client) -> String {
    loop {
        if let ServerFrame::Msg {
            payload: EchoFromServer::Heard(text),
            ..
        } = client.next::<EchoFromServer>().await
        {
            return text;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_span_is_a_child_of_its_session_and_connection_and_joins_the_hello_s_trace() {
    let spans = spans();
    let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    let mut client = Client::connect(addr, "/omni/ws").await;
    client
        .send_text(format!(r#"{{"type":"hello","traceparent":"{PARENT}"}}"#))
        .await;
    client.msg(EchoFromClient::Say("traced".into()), 101).await;
    assert_eq!(heard(&mut client).await, "traced");

    let chain = spans.message(101, "Say");
    assert_eq!(names(&chain), ["omni.msg", "omni.session", "omni.ws"]);
    for span in &chain[1..] {
        assert_eq!(span.fields["traceparent"], PARENT, "{span:?}");
        assert_eq!(span.fields["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traceparent_header_of_a_post_is_recorded_on_the_request_s_span() {
    let spans = spans();
    let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    let body = r#"{"type":"msg","ref":202,"payload":{"kind":"Say","data":"posted"}}"#;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/omni/http"))
        .header("traceparent", PARENT)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");

    let chain = spans.message(202, "Say");
    assert_eq!(names(&chain), ["omni.msg", "omni.session", "omni.http"]);
    assert_eq!(chain[2].fields["traceparent"], PARENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_traceparent_is_ignored() {
    let spans = spans();
    let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    let mut client = Client::connect(addr, "/omni/ws").await;
    let malformed = PARENT.to_uppercase();
    client
        .send_text(format!(r#"{{"type":"hello","traceparent":"{malformed}"}}"#))
        .await;
    client
        .send_text(r#"{"type":"hello","traceparent":42}"#)
        .await;
    client
        .msg(EchoFromClient::Say("untraced".into()), 303)
        .await;
    // No error frame came first: the message was answered.
    assert_eq!(heard(&mut client).await, "untraced");

    let chain = spans.message(303, "Say");
    assert_eq!(names(&chain), ["omni.msg", "omni.session", "omni.ws"]);
    for span in &chain {
        assert!(!span.fields.contains_key("traceparent"), "{span:?}");
    }
}
