//! The SSE transport: an event stream down, `POST /http` up, one request at a time so that
//! messages reach the server in order.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::{Future, StreamExt};

use super::connect::{self, Config, url_for};
use super::dialer::{self, Ended, fatal_init};
use super::http::{self, apply_frames};
use super::link::{Link, Step};
use super::wire;
use crate::Protocol;
use crate::wire::Codec;
use crate::wire::connect::{Connect, SESSION_HEADER};

type Uplink = Pin<Box<dyn Future<Output = Result<(u16, Vec<u8>), String>> + Send>>;

/// One event stream, from connect to its end. Its frames are JSON both ways: events are text,
/// and the builder refuses MessagePack for SSE.
pub(crate) async fn connection<P: Protocol>(link: &mut Link<P>, config: &Config) -> Ended {
    let (down, up) = match (
        url_for(&config.url, "sse", false, &link.connect_params(Codec::Json)),
        url_for(&config.url, "http", false, &Connect::new(Codec::Json)),
    ) {
        (Ok(down), Ok(up)) => (down, up),
        (Err(message), _) | (_, Err(message)) => return fatal_init(message),
    };
    let headers = match config
        .credentials
        .headers(config.settings.connect_timeout)
        .await
    {
        Ok(headers) => headers,
        Err(ended) => return ended,
    };
    tracing::debug!(resume = ?link.resume_point(), "opening event stream");
    let request = config
        .http
        .get(down)
        .headers(headers.clone())
        .header("accept", "text/event-stream")
        .send();
    let response = match tokio::time::timeout(config.settings.connect_timeout, request).await {
        Err(_) => return Ended::dropped("connect timed out", false),
        Ok(Err(err)) => return Ended::failed(&err),
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    if status != 200 {
        return Ended::refused(status, format!("HTTP {status}"), false);
    }

    // Keep-alive comments never surface as events, so liveness is measured on raw bytes.
    let started = Instant::now();
    let heard = Arc::new(AtomicU64::new(0));
    let touch = heard.clone();
    let mut events = response
        .bytes_stream()
        .inspect(move |_| touch.store(started.elapsed().as_millis() as u64, Ordering::Relaxed))
        .eventsource();

    let heartbeat = config.settings.heartbeat;
    let mut ticks = tokio::time::interval(heartbeat.interval.min(Duration::from_secs(1)));
    let mut connected = false;
    let mut uplink: Option<Uplink> = None;
    let mut closed = link.shared.closed.subscribe();
    let closed = dialer::closed(&mut closed);
    tokio::pin!(closed);
    loop {
        if uplink.is_none() && connected {
            uplink = start_uplink(link, config, &up, &headers);
        }
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => match link.receive(event.data.as_bytes()).await {
                    Step::Continue => {}
                    Step::Welcomed => {
                        connected = true;
                        link.shared.outbox.reconnected();
                    }
                    Step::Fatal(error) => return Ended::fatal(error, connected),
                    Step::Gap => return Ended::dropped("missed frames; resuming", connected),
                },
                Some(Err(err)) => return Ended::dropped(err.to_string(), connected),
                None => return Ended::dropped("event stream ended", connected),
            },
            result = async { uplink.as_mut().expect("guarded").await }, if uplink.is_some() => {
                uplink = None;
                match result {
                    Ok((200 | 202 | 413 | 422, body)) => {
                        // 200: the session had no live stream at that moment; its frames came back here.
                        match apply_frames(link, &body).await {
                            Ok(Step::Fatal(error)) => return Ended::fatal(error, connected),
                            Ok(Step::Gap) => return Ended::dropped("missed frames; resuming", connected),
                            _ => {}
                        }
                    }
                    Ok((status, _)) => return Ended::refused(status, format!("uplink HTTP {status}"), connected),
                    Err(reason) => return Ended::dropped(reason, connected),
                }
            }
            _ = link.shared.wake.notified(), if uplink.is_none() => {}
            _ = ticks.tick() => {
                let silent = started.elapsed().saturating_sub(Duration::from_millis(heard.load(Ordering::Relaxed)));
                if silent > heartbeat.interval + heartbeat.timeout {
                    return Ended::dropped("heartbeat timed out", connected);
                }
            }
            _ = &mut closed => {
                http::goodbye(config, &up, &headers, link.session).await;
                return Ended::closed(connected);
            }
        }
    }
}

/// Starts a POST of the connect hook's and the unsent messages, if there are any.
fn start_uplink<P: Protocol>(
    link: &mut Link<P>,
    config: &Config,
    url: &reqwest::Url,
    headers: &reqwest::header::HeaderMap,
) -> Option<Uplink> {
    // The server refuses a client built from another version of the protocol enum; the
    // connect hook's messages go before the queued ones.
    let mut frames = vec![connect::hello::<P>(
        Codec::Json,
        None,
        None,
        link.shared.traceparent,
    )];
    frames.extend(link.take_greeting());
    frames.extend(link.shared.outbox.take_unsent(config.batch()));
    if frames.len() == 1 {
        return None;
    }
    let session = link.session?;
    let request = config
        .http
        .post(url.clone())
        .headers(headers.clone())
        .header("content-type", Codec::Json.content_type())
        .header(SESSION_HEADER, session.to_string())
        .timeout(config.settings.heartbeat.interval + config.settings.heartbeat.timeout)
        .body(wire::body(Codec::Json, &frames));
    Some(Box::pin(async move {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, body.to_vec()))
    }))
}
