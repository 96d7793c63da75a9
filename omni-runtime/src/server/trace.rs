//! Joining a client's trace: the `traceparent` a client sends (the HTTP header of its connect
//! request, or a field of `hello` or `join`) is recorded on the connection's or session's span
//! as the fields `traceparent` and `trace_id`, which any subscriber sees; with the
//! `opentelemetry` feature it also becomes that span's OpenTelemetry parent, so a collector
//! shows the client's action through the handler to what it sent.

use axum::http::HeaderMap;
use tracing::Span;

use crate::wire::{TRACEPARENT, TraceParent};

/// The request's `traceparent` header, if it holds a valid one; a malformed one is ignored.
pub(crate) fn from_headers(headers: &HeaderMap) -> Option<TraceParent> {
    let value = headers.get(TRACEPARENT)?.to_str().ok()?;
    TraceParent::parse(value)
}

/// Records `parent` on `span` and makes it the span's OpenTelemetry parent. The parent can
/// only be set before the span is first entered or has children (OpenTelemetry fixes a span's
/// parent when it starts): call it right after making the span.
pub(crate) fn adopt(span: &Span, parent: TraceParent) {
    record(span, parent);
    #[cfg(feature = "opentelemetry")]
    otel::set_parent(span, parent);
}

/// Records `parent` on `span` as its fields only: for a span already started, which keeps
/// its OpenTelemetry parent.
pub(crate) fn record(span: &Span, parent: TraceParent) {
    if span.is_disabled() {
        return;
    }
    span.record("traceparent", tracing::field::display(parent));
    span.record("trace_id", parent.trace_id_hex());
}

#[cfg(feature = "opentelemetry")]
mod otel {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::wire::TraceParent;

    pub(super) fn set_parent(span: &Span, parent: TraceParent) {
        let remote = SpanContext::new(
            TraceId::from_bytes(parent.trace_id()),
            SpanId::from_bytes(parent.parent_id()),
            TraceFlags::new(parent.flags()),
            true,
            TraceState::default(),
        );
        let cx = opentelemetry::Context::new().with_remote_span_context(remote);
        // Without a tracing-opentelemetry layer there is nothing to parent: that is fine.
        let _ = span.set_parent(cx);
    }
}
