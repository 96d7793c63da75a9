//! The HTTP transport: every exchange is one `POST /http` carrying `hello{after}` (so frames
//! whose response was lost are replayed) and every unanswered message.

use std::time::Duration;

use super::connect::{self, Config, url_for};
use super::dialer::{self, Ended, fatal_init};
use super::link::{Link, Step};
use super::wire;
use crate::wire::connect::{Connect, LEAVE_HEADER, SESSION_HEADER};
use crate::wire::{Codec, TRACEPARENT};
use crate::{Protocol, TransportError};

/// Exchanges with the server until a request fails or the client closes.
pub(crate) async fn connection<P: Protocol>(link: &mut Link<P>, config: &Config) -> Ended {
    // The codec is the body's `Content-Type`, not a query parameter.
    let url = match url_for(&config.url, "http", false, &Connect::new(Codec::Json)) {
        Ok(url) => url,
        Err(message) => return fatal_init(message),
    };
    let headers = match config
        .credentials
        .headers(config.settings.connect_timeout)
        .await
    {
        Ok(headers) => headers,
        Err(ended) => return ended,
    };
    let mut connected = false;
    let mut closed = link.shared.closed.subscribe();
    let closed = dialer::closed(&mut closed);
    tokio::pin!(closed);
    loop {
        let waiting = link.shared.outbox.len();
        // A gap is filled by the next exchange's `hello{after}`, at once.
        let mut gap = false;
        match exchange(link, config, &url, &headers, connected).await {
            Ok(Step::Gap) => gap = true,
            Ok(Step::Fatal(error)) => {
                return Ended::fatal(error, connected);
            }
            Ok(step) => {
                if !connected {
                    connected = true;
                    if let (Step::Continue, Some(session)) = (step, link.session) {
                        // A resumed session sends no `welcome`; the exchange itself says we
                        // are through.
                        link.state(crate::TransportState::Connected { session })
                            .await;
                        link.greet(session, true).await;
                    }
                    if link.hook.is_some() {
                        // The hook's messages, then the queue the first exchange held back.
                        continue;
                    }
                }
            }
            Err(ended) => return ended.connected_if(connected),
        }
        let left = link.shared.outbox.len();
        if gap || (left > 0 && left < waiting) {
            // More was waiting than one request carries: go on at once while it drains.
            continue;
        }
        let poll = config.poll_interval;
        tokio::select! {
            _ = link.shared.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = &mut closed => {
                goodbye(config, &url, &headers, link.session).await;
                return Ended::closed(connected);
            }
        }
    }
}

/// Tells the server the client is leaving (closed on purpose): its session ends after the
/// server's short linger rather than its grace, and presence shows it gone at once. Best
/// effort, bounded: a server that does not answer soon, or one from before the goodbye,
/// keeps the session for its grace as it would have.
pub(crate) async fn goodbye(
    config: &Config,
    url: &reqwest::Url,
    headers: &reqwest::header::HeaderMap,
    session: Option<crate::SessionId>,
) {
    let Some(session) = session else {
        return;
    };
    let request = config
        .http
        .post(url.clone())
        .headers(headers.clone())
        .header("content-type", Codec::Json.content_type())
        .header(SESSION_HEADER, session.to_string())
        .header(LEAVE_HEADER, "1")
        .timeout(Duration::from_secs(2))
        .body("[]");
    if let Err(err) = request.send().await {
        tracing::debug!(%err, "the goodbye did not reach the server");
    }
}

/// One POST: the resume point and the unanswered messages up, the frames they produced down.
async fn exchange<P: Protocol>(
    link: &mut Link<P>,
    config: &Config,
    url: &reqwest::Url,
    headers: &reqwest::header::HeaderMap,
    connected: bool,
) -> Result<Step, Ended> {
    // The cursors go with every exchange: between requests no connection receives the
    // topics' messages, so each exchange replays what followed them.
    let after = link.session.map(|_| link.last_seq);
    let codec = link.shared.codec;
    let mut frames = vec![connect::hello::<P>(
        codec,
        after,
        Some(&link.topics),
        link.shared.traceparent,
    )];
    frames.extend(link.take_greeting());
    // With a connect hook, the first exchange of a connection only learns the session, so
    // that the hook's messages go before the queued ones.
    if connected || link.hook.is_none() {
        frames.extend(link.shared.outbox.oldest(config.batch()));
    }
    let mut request = config
        .http
        .post(url.clone())
        .headers(headers.clone())
        .header("content-type", codec.content_type())
        .timeout(config.settings.heartbeat.interval + config.settings.heartbeat.timeout)
        .body(wire::body(codec, &frames));
    if let Some(session) = link.session {
        request = request.header(SESSION_HEADER, session.to_string());
    }
    if let Some(parent) = link.shared.traceparent {
        request = request.header(TRACEPARENT, parent.to_string());
    }
    let response = request.send().await.map_err(|e| Ended::failed(&e))?;
    let status = response.status().as_u16();
    if !matches!(status, 200 | 202 | 413 | 422) {
        return Err(Ended::refused(status, format!("HTTP {status}"), false));
    }
    let media = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response
        .bytes()
        .await
        .map_err(|e| Ended::dropped(e.to_string(), false))?;
    if !body.is_empty() && Codec::from_content_type(&media) != codec {
        // A server from before MessagePack reads the body as JSON, fails, and says so in
        // JSON: every later exchange would too.
        let answered = format!("`{media}` bodies (HTTP {status})");
        let message = wire::refused(codec, &answered);
        return Err(Ended::fatal(TransportError::Init { message }, false));
    }
    apply_frames(link, &body).await
}

/// Applies a response body's array of server frames, in the client's codec.
pub(crate) async fn apply_frames<P: Protocol>(
    link: &mut Link<P>,
    body: &[u8],
) -> Result<Step, Ended> {
    if body.is_empty() {
        return Ok(Step::Continue);
    }
    let frames = wire::split(link.shared.codec, body)
        .map_err(|e| Ended::dropped(format!("bad response body: {e}"), false))?;
    let mut last = Step::Continue;
    for frame in frames {
        match link.receive(frame).await {
            step @ (Step::Fatal(_) | Step::Gap) => return Ok(step),
            step @ Step::Welcomed => last = step,
            Step::Continue => {}
        }
    }
    Ok(last)
}

/// How long the HTTP transport waits between exchanges when the application sends nothing.
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(1);
