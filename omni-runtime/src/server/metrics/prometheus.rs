//! [`Prometheus`]: the counters of endpoints and muxes, in the Prometheus text format.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::source::Source;
use super::{
    ByKind, ByTransport, CODECS, FRAMES_IN, FRAMES_OUT, Histogram, Metrics, Read, Transport,
};
use crate::pubsub::{PubSub, Report};
use crate::server::Endpoint;
use crate::server::mux::Mux;
use crate::server::session::Sessions;
use crate::{Dispatch, Protocol};

impl<P, H> Source for Arc<Sessions<P, H>>
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn sessions(&self) -> Option<usize> {
        Some(self.session_count())
    }

    fn pubsub(&self) -> Option<Arc<dyn PubSub>> {
        Some(self.shared.pubsub.clone())
    }
}

impl Source for Mux {
    fn metrics(&self) -> &Metrics {
        Mux::metrics(self)
    }

    fn sessions(&self) -> Option<usize> {
        None
    }

    fn pubsub(&self) -> Option<Arc<dyn PubSub>> {
        None
    }

    fn transports(&self) -> &'static [Transport] {
        &[Transport::Mux]
    }
}

/// The metrics of endpoints and muxes, for Prometheus: [`router`](Self::router) serves them
/// on `GET /metrics` in the Prometheus text format, for a router the application mounts where
/// it wants (behind its own middleware, or on a port of its own, if they must not be
/// public); or, as a prometheus-client [`Collector`], they join the application's own
/// [`Registry`].
///
/// Every series is labelled with bounded sets only: `protocol` (the protocol's name, `mux`
/// for a mux's own sockets), `transport` (`ws`, `http`, `sse`, `mux`), `codec` (`json`,
/// `msgpack`) and a frame's `type`; never a topic, a session or anything a client sends.
/// The README lists the metrics.
///
/// The counters are atomics that every endpoint keeps whether or not they are exported;
/// reading them takes no lock on the path of a message, so a scrape never slows a client.
///
/// ```
/// use omni::axum::Router;
/// use omni::server::{Endpoint, Prometheus};
/// # #[omni::protocol]
/// # #[derive(Debug, Clone, PartialEq)]
/// # enum Echo { #[client] Say(String), #[server] Heard(String) }
/// # struct Parrot;
/// # impl EchoHandler for Parrot {
/// #     async fn say(&mut self, _: &mut omni::Context<Echo>, _: String) -> omni::HandlerResult {
/// #         Ok(())
/// #     }
/// # }
///
/// let endpoint = Endpoint::<Echo, _>::new(|| Parrot);
/// let metrics = Prometheus::new().endpoint(&endpoint);
/// let app: Router = Router::new()
///     .nest("/omni", endpoint.router())
///     .merge(metrics.router());
/// assert!(metrics.render().contains("omni_sessions_live{protocol=\"Echo\"} 0"));
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Prometheus {
    sources: Vec<Arc<dyn Source>>,
}

impl fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocols: Vec<_> = self.sources.iter().map(|s| s.metrics().protocol).collect();
        f.debug_struct("Prometheus")
            .field("protocols", &protocols)
            .finish()
    }
}

impl Prometheus {
    /// Nothing to export yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Exports `endpoint`'s metrics, and its pub/sub backend's.
    pub fn endpoint<P, H>(mut self, endpoint: &Endpoint<P, H>) -> Self
    where
        P: Protocol + Dispatch<H>,
        H: Send + 'static,
    {
        self.sources.push(Arc::new(endpoint.registry().clone()));
        self
    }

    /// Exports the metrics of `mux`'s sockets and of the endpoints it serves as modules. An
    /// endpoint also given to [`endpoint`](Self::endpoint) is counted once.
    pub fn mux(mut self, mux: &Mux) -> Self {
        self.sources.push(Arc::new(mux.clone()));
        self.sources.extend(mux.modules());
        self
    }

    /// `GET /metrics`, in the Prometheus text format (version 0.0.4).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let this = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let text = this.render();
                async move {
                    (
                        [(
                            CONTENT_TYPE,
                            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                        )],
                        text,
                    )
                }
            }),
        )
    }

    /// The metrics now, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut text = String::new();
        // Writing to a String cannot fail, and every value here is encodable.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }

    /// Each source once, even when it was given twice (as an endpoint and as a mux module).
    fn distinct(&self) -> Vec<&dyn Source> {
        let mut seen: Vec<*const Metrics> = Vec::new();
        let mut sources = Vec::new();
        for source in &self.sources {
            let at: *const Metrics = source.metrics();
            if !seen.contains(&at) {
                seen.push(at);
                sources.push(source.as_ref());
            }
        }
        sources
    }

    /// What the distinct pub/sub backends of the endpoints report, added up.
    fn pubsub(&self, sources: &[&dyn Source]) -> PubSubTotals {
        let mut seen: Vec<*const ()> = Vec::new();
        let mut totals = PubSubTotals::default();
        for pubsub in sources.iter().filter_map(|s| s.pubsub()) {
            let at = Arc::as_ptr(&pubsub).cast::<()>();
            if seen.contains(&at) {
                continue;
            }
            seen.push(at);
            totals.add(pubsub.report());
        }
        totals
    }
}

/// The pub/sub reports of one scrape, added up.
struct PubSubTotals {
    topics: u64,
    presence_entries: u64,
    fanout: Read,
    redis_backends: u64,
    redis_up: u64,
    redis_reconnects: u64,
    redis_dropped: u64,
    redis_publish: Read,
}

impl Default for PubSubTotals {
    fn default() -> Self {
        Self {
            topics: 0,
            presence_entries: 0,
            fanout: Histogram::counts().read(1.0),
            redis_backends: 0,
            redis_up: 0,
            redis_reconnects: 0,
            redis_dropped: 0,
            redis_publish: Histogram::durations().read(1e-9),
        }
    }
}

impl PubSubTotals {
    fn add(&mut self, report: Report) {
        self.topics += report.topics as u64;
        self.presence_entries += report.presence_entries as u64;
        if let Some(fanout) = &report.fanout {
            self.fanout.add(fanout);
        }
        if let Some(redis) = &report.redis {
            self.redis_backends += 1;
            self.redis_up += u64::from(redis.up);
            self.redis_reconnects += redis.reconnects;
            self.redis_dropped += redis.dropped;
            self.redis_publish.add(&redis.publish);
        }
    }
}

/// One metric family being written.
struct Family<'e> {
    metric: MetricEncoder<'e>,
    kind: MetricType,
}

impl Family<'_> {
    fn value(&mut self, labels: &[(&str, &str)], value: u64) -> fmt::Result {
        let mut sample = self.metric.encode_family(&labels)?;
        match self.kind {
            MetricType::Counter => sample.encode_counter::<NoLabelSet, _, u64>(&value, None),
            _ => sample.encode_gauge(&value),
        }
    }

    fn seconds(&mut self, labels: &[(&str, &str)], seconds: f64) -> fmt::Result {
        self.metric.encode_family(&labels)?.encode_gauge(&seconds)
    }

    fn histogram(&mut self, labels: &[(&str, &str)], read: &Read) -> fmt::Result {
        self.metric
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(read.sum, read.count, &read.buckets, None)
    }
}

/// Writes one family: `name` (without `_total`, which counters get), its help and its samples.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl FnOnce(&mut Family) -> fmt::Result,
) -> fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, kind)?;
    samples(&mut Family { metric, kind })
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A counter or gauge per source, labelled with its protocol alone.
fn per_protocol(
    encoder: &mut DescriptorEncoder,
    sources: &[&dyn Source],
    name: &str,
    help: &str,
    kind: MetricType,
    value: impl Fn(&dyn Source) -> Option<u64>,
) -> fmt::Result {
    family(encoder, name, help, kind, |family| {
        for &source in sources {
            if let Some(v) = value(source) {
                family.value(&[("protocol", source.metrics().protocol)], v)?;
            }
        }
        Ok(())
    })
}

/// A value per source, transport and codec, for the transports that are connections.
fn per_connection(
    encoder: &mut DescriptorEncoder,
    sources: &[&dyn Source],
    name: &str,
    help: &str,
    kind: MetricType,
    value: impl Fn(&Metrics, usize, usize) -> u64,
) -> fmt::Result {
    family(encoder, name, help, kind, |family| {
        for &source in sources {
            let metrics = source.metrics();
            for &transport in source.transports() {
                for (codec, codec_name) in CODECS.iter().enumerate() {
                    // An HTTP request is no connection; an event stream is JSON only.
                    let none =
                        transport == Transport::Http || (transport == Transport::Sse && codec != 0);
                    if none {
                        continue;
                    }
                    let labels = [
                        ("protocol", metrics.protocol),
                        ("transport", transport.name()),
                        ("codec", *codec_name),
                    ];
                    family.value(&labels, value(metrics, transport as usize, codec))?;
                }
            }
        }
        Ok(())
    })
}

/// A counter per endpoint and message kind.
fn per_kind(
    encoder: &mut DescriptorEncoder,
    sources: &[&dyn Source],
    name: &str,
    help: &str,
    counters: impl Fn(&Metrics) -> &ByKind,
) -> fmt::Result {
    family(encoder, name, help, MetricType::Counter, |family| {
        for &source in sources.iter().filter(|s| s.sessions().is_some()) {
            let metrics = source.metrics();
            for (kind, count) in counters(metrics).each() {
                family.value(
                    &[("protocol", metrics.protocol), ("kind", kind)],
                    load(count),
                )?;
            }
        }
        Ok(())
    })
}

/// A counter per source, transport and frame type.
fn per_frame<const N: usize>(
    encoder: &mut DescriptorEncoder,
    sources: &[&dyn Source],
    name: &str,
    help: &str,
    types: &[&str; N],
    counters: impl Fn(&Metrics) -> &ByTransport<N>,
) -> fmt::Result {
    family(encoder, name, help, MetricType::Counter, |family| {
        for &source in sources {
            let metrics = source.metrics();
            for &transport in source.transports() {
                for (i, kind) in types.iter().enumerate() {
                    let labels = [
                        ("protocol", metrics.protocol),
                        ("transport", transport.name()),
                        ("type", *kind),
                    ];
                    let value = load(&counters(metrics)[transport as usize][i]);
                    family.value(&labels, value)?;
                }
            }
        }
        Ok(())
    })
}

impl Collector for Prometheus {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge, Histogram as Hist};
        let sources = self.distinct();
        let sources = &sources[..];
        let e = &mut encoder;

        per_connection(
            e,
            sources,
            "omni_connections_open",
            "Connections open now (WebSocket, event stream, mux socket)",
            Gauge,
            |m, t, c| {
                load(&m.connections_opened[t][c]).saturating_sub(load(&m.connections_closed[t][c]))
            },
        )?;
        per_connection(
            e,
            sources,
            "omni_connections_opened",
            "Connections accepted",
            Counter,
            |m, t, c| load(&m.connections_opened[t][c]),
        )?;
        per_connection(
            e,
            sources,
            "omni_connections_closed",
            "Connections that ended",
            Counter,
            |m, t, c| load(&m.connections_closed[t][c]),
        )?;
        per_protocol(
            e,
            sources,
            "omni_sessions_live",
            "Sessions held now, attached or waiting for their client within the grace period",
            Gauge,
            |s| s.sessions().map(|n| n as u64),
        )?;
        let endpoint = |s: &dyn Source| s.sessions().is_some();
        for (name, help, counter) in [
            (
                "omni_sessions_created",
                "Sessions started",
                (|m: &Metrics| load(&m.sessions_created)) as fn(&Metrics) -> u64,
            ),
            (
                "omni_sessions_resumed",
                "Resumes that found their session and replayed what the client missed",
                |m| load(&m.sessions_resumed),
            ),
            (
                "omni_sessions_moved",
                "Sessions resumed from the session store after another process served them",
                |m| load(&m.sessions_moved),
            ),
            (
                "omni_session_saves_failed",
                "Saves to the session store that failed or timed out (their frames went unsaved)",
                |m| load(&m.session_saves_failed),
            ),
            (
                "omni_sessions_reset",
                "Reset frames sent: a resume whose session or missed frames were gone, or a topic whose log no longer held them",
                |m| load(&m.sessions_reset),
            ),
            (
                "omni_sessions_expired",
                "Sessions ended after their client stayed away for the grace period",
                |m| load(&m.sessions_expired),
            ),
        ] {
            per_protocol(e, sources, name, help, Counter, |s| {
                endpoint(s).then(|| counter(s.metrics()))
            })?;
        }
        per_frame(
            e,
            sources,
            "omni_frames_received",
            "Client frames received, by frame type (invalid: could not be decoded)",
            &FRAMES_IN,
            |m| &m.frames_in,
        )?;
        per_frame(
            e,
            sources,
            "omni_frames_sent",
            "Server frames queued to connections, by frame type",
            &FRAMES_OUT,
            |m| &m.frames_out,
        )?;
        per_kind(
            e,
            sources,
            "omni_messages_received",
            "Client messages by kind: the protocol's variant name, or unknown for a kind this build lacks",
            |m| &m.messages_in,
        )?;
        per_kind(
            e,
            sources,
            "omni_messages_sent",
            "Server messages handlers sent, by kind (a broadcast or topic message counts once)",
            |m| &m.messages_out,
        )?;
        for (name, help, counter) in [
            (
                "omni_decode_errors",
                "Client frames answered with bad_frame or bad_payload",
                (|m: &Metrics| load(&m.decode_errors)) as fn(&Metrics) -> u64,
            ),
            (
                "omni_unknown_messages",
                "Client messages of a kind this build does not know (answered with unknown_message)",
                |m| load(&m.unknown_messages),
            ),
            (
                "omni_handler_rejections",
                "Messages a handler refused by returning Err (answered with rejected)",
                |m| load(&m.handler_rejections),
            ),
            (
                "omni_handler_panics",
                "Messages whose handler panicked (answered with handler_failed; the handler is replaced)",
                |m| load(&m.handler_panics),
            ),
            (
                "omni_hook_failures",
                "connected, disconnected or snapshot hooks that returned Err or panicked",
                |m| load(&m.hook_failures),
            ),
            (
                "omni_broadcasts",
                "Broadcasts and topic messages sent by handlers",
                |m| load(&m.broadcasts),
            ),
            (
                "omni_slow_consumers",
                "Connections closed because they could not keep up (queue full or write stuck)",
                |m| load(&m.slow_consumers),
            ),
            (
                "omni_write_timeouts",
                "Connections whose write made no progress for the write timeout",
                |m| load(&m.write_timeouts),
            ),
            (
                "omni_ephemeral_dropped",
                "Ephemeral frames (push, presence) dropped for a connection falling behind",
                |m| load(&m.ephemeral_dropped),
            ),
            (
                "omni_topic_catch_ups",
                "Connections that fell behind on a sequenced topic and were caught up from its log",
                |m| load(&m.topic_catch_ups),
            ),
            (
                "omni_replay_fallbacks",
                "Topic catch-ups that got a snapshot because the log no longer held what was missed",
                |m| load(&m.replay_fallbacks),
            ),
        ] {
            per_protocol(e, sources, name, help, Counter, |s| {
                Some(counter(s.metrics()))
            })?;
        }
        per_protocol(
            e,
            sources,
            "omni_outbound_queue_high_water",
            "The most frames any one connection's outbound queue has held",
            Gauge,
            |s| Some(load(&s.metrics().queue_high_water)),
        )?;
        family(
            e,
            "omni_handler_duration_seconds",
            "How long handler methods took per message",
            Hist,
            |family| {
                for &source in sources.iter().filter(|s| endpoint(**s)) {
                    let metrics = source.metrics();
                    let read = metrics.handler_duration.read(1e-9);
                    family.histogram(&[("protocol", metrics.protocol)], &read)?;
                }
                Ok(())
            },
        )?;
        family(
            e,
            "omni_shutdown_drain_seconds",
            "How long the last graceful shutdown took to close every connection (0 before one)",
            Gauge,
            |family| {
                for &source in sources {
                    let metrics = source.metrics();
                    let seconds = load(&metrics.drain) as f64 * 1e-9;
                    family.seconds(&[("protocol", metrics.protocol)], seconds)?;
                }
                Ok(())
            },
        )?;

        let pubsub = self.pubsub(sources);
        family(
            e,
            "omni_topics",
            "Topics with a subscriber in this process",
            Gauge,
            |f| f.value(&[], pubsub.topics),
        )?;
        family(
            e,
            "omni_presence_entries",
            "Presence entries this process knows (its own and, with Redis, other processes')",
            Gauge,
            |f| f.value(&[], pubsub.presence_entries),
        )?;
        family(
            e,
            "omni_broadcast_fanout",
            "Sessions in this process each broadcast reached",
            Hist,
            |f| f.histogram(&[], &pubsub.fanout),
        )?;
        // Redis's series exist only with a Redis backend: a 0 would read as an outage.
        let redis = pubsub.redis_backends > 0;
        family(
            e,
            "omni_redis_up",
            "1 while the Redis pub/sub connections are up (every Redis backend, with several)",
            Gauge,
            |f| {
                if redis {
                    let up = u64::from(pubsub.redis_up == pubsub.redis_backends);
                    f.value(&[], up)?;
                }
                Ok(())
            },
        )?;
        family(
            e,
            "omni_redis_reconnects",
            "Times the Redis subscriber connection was re-established after a loss",
            Counter,
            |f| {
                if redis {
                    f.value(&[], pubsub.redis_reconnects)
                } else {
                    Ok(())
                }
            },
        )?;
        family(
            e,
            "omni_redis_dropped",
            "Broadcasts not published to other processes (Redis unreachable, queue full)",
            Counter,
            |f| {
                if redis {
                    f.value(&[], pubsub.redis_dropped)
                } else {
                    Ok(())
                }
            },
        )?;
        family(
            e,
            "omni_redis_publish_duration_seconds",
            "How long a broadcast or topic message took to reach Redis",
            Hist,
            |f| {
                if redis {
                    f.histogram(&[], &pubsub.redis_publish)?;
                }
                Ok(())
            },
        )
    }
}
