//! With the `opentelemetry` feature, a client's `traceparent` is the OpenTelemetry parent of
//! the server's spans for its session: a real client sends one, and the spans exported (to
//! memory) for its message carry the client's trace id, their ancestors reaching the
//! client's span.

mod common;

use common::echo::{Echo, EchoFromClient, Parrot};
use common::{PATIENCE, serve};
use omni::client::Client;
use omni::server::Endpoint;
use omni::wire::TraceParent;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The ancestors of `span` among `spans`, nearest first, up to the first one not exported.
fn ancestry<'a>(span: &'a SpanData, spans: &'a [SpanData]) -> Vec<&'a SpanData> {
    let mut chain = vec![span];
    while let Some(parent) = spans
        .iter()
        .find(|s| s.span_context.span_id() == chain.last().unwrap().parent_span_id)
    {
        chain.push(parent);
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_s_traceparent_is_the_remote_parent_of_its_message_s_spans() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("omni-test"));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();

    let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
    let addr = serve(omni::axum::Router::new().nest("/omni", endpoint.router())).await;
    let parent = TraceParent::parse(PARENT).unwrap();
    let (client, messages) = Client::<Echo>::builder(format!("http://{addr}/omni"))
        .traceparent(parent)
        .connected()
        .await
        .unwrap();
    let reference = client.send(EchoFromClient::Say("traced".into())).unwrap();
    client.acked(reference).await.unwrap();
    // The session's span ends with the connection: close it, so it is exported too.
    client.close();
    drop(messages);

    let remote = SpanId::from_bytes(parent.parent_id());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (msg, chain) = loop {
        let spans = exporter.get_finished_spans().unwrap();
        let found = spans.iter().find(|s| s.name == "omni.msg").map(|msg| {
            let chain: Vec<_> = ancestry(msg, &spans).into_iter().cloned().collect();
            (msg.clone(), chain)
        });
        if let Some((msg, chain)) = found
            && chain.last().unwrap().parent_span_id == remote
        {
            break (msg, chain);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no omni.msg span whose ancestors reach the client's span: {spans:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let trace = TraceId::from_bytes(parent.trace_id());
    assert_eq!(msg.span_context.trace_id(), trace);
    let names: Vec<_> = chain.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["omni.msg", "omni.session"]);
    assert!(chain.iter().all(|s| s.span_context.trace_id() == trace));
    assert!(chain.last().unwrap().parent_span_is_remote);
}
