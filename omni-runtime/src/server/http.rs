//! `POST /http`: client frames in the request body, the server frames they produced in the
//! response; and the uplink of an SSE stream.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;

use super::conn::Item;
use super::hub::{Attached, Hub};
use crate::{ClientFrame, DecodeError, Dispatch, ErrorCode, Protocol, ServerFrame, SessionId};

/// The header that ties an HTTP request to a session.
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("omni-session");

/// Handles one POST. The body is one client frame or an array of them.
pub(crate) async fn post<P, H>(
    hub: Arc<Hub<P, H>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let limit = hub.shared.limits.max_frame_bytes;
    if body.len() > limit {
        return too_large(limit);
    }
    let frames = decode_body::<P>(&body);
    if frames.iter().all(Result::is_err) {
        let errors = frames
            .iter()
            .filter_map(|f| f.as_ref().err())
            .map(|err| ServerFrame::<()>::from(err).encode().unwrap_or_default())
            .collect();
        return frames_response(StatusCode::UNPROCESSABLE_ENTITY, None, errors);
    }

    let named = headers
        .get(&SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<SessionId>().ok());
    let (session, fresh) = match named.and_then(|id| hub.get(id)) {
        Some(session) => (session, false),
        None => (
            hub.create(extensions.clone(), serde_json::Value::Null),
            true,
        ),
    };

    if session.core.has_live_connection() {
        // The session streams over SSE (or a WebSocket): what these frames produce goes there.
        let mut uplink = Attached::new(hub, session, 0);
        for frame in frames {
            uplink.handle(frame).await;
        }
        let id = uplink.session().id();
        return (StatusCode::ACCEPTED, [(SESSION_HEADER, session_value(id))]).into_response();
    }

    // Otherwise the response carries them: a connection that lives for this request.
    if !fresh {
        // This request is the connection now: its credentials are the ones that hold.
        session.set_extensions(extensions).await;
    }
    let (conn, mut rx) = hub.shared.connection(false);
    let conn_id = conn.id;
    session.core.attach(conn, None, fresh);
    if fresh && named.is_some() {
        session.core.reset();
    }
    let mut attached = Attached::new(hub, session, conn_id);
    for frame in frames {
        attached.handle(frame).await;
    }
    let session = attached.session().clone();
    attached.closed().await;
    let mut out = Vec::new();
    while let Some(item) = rx.frames.try_recv() {
        match item.ready() {
            Item::Frame(frame, _) => out.push(frame.text().to_owned()),
            Item::Replay(frames, _) => out.extend(frames.iter().map(|f| f.text().to_owned())),
            // A plain endpoint's connections are never mux components.
            Item::Close(_) | Item::Left(_) => break,
            // Made ready above.
            Item::Refresh(..) => {}
        }
    }
    frames_response(StatusCode::OK, Some(session.id()), out)
}

/// 413, with the `too_large` error, for a body over `limit` bytes.
pub(crate) fn too_large(limit: usize) -> Response {
    let message = format!("a request body may be at most {limit} bytes");
    frames_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
        vec![error_text(ErrorCode::TooLarge, message)],
    )
}

/// 408 for a body that did not arrive within `timeout`.
pub(crate) fn body_timeout(timeout: std::time::Duration) -> Response {
    let message = format!("the request body did not arrive within {timeout:?}");
    frames_response(
        StatusCode::REQUEST_TIMEOUT,
        None,
        vec![error_text(ErrorCode::BadFrame, message)],
    )
}

/// One frame, or each element of an array, decoded on its own so one bad frame does not
/// hide the others.
fn decode_body<P: Protocol>(body: &[u8]) -> Vec<Result<ClientFrame<P::Client>, DecodeError>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        match serde_json::from_slice::<Vec<&RawValue>>(body) {
            Ok(items) => items
                .into_iter()
                .map(|raw| ClientFrame::decode(raw.get().as_bytes()))
                .collect(),
            Err(err) => vec![Err(DecodeError::bad_frame(err.to_string()))],
        }
    } else {
        vec![ClientFrame::decode(body)]
    }
}

fn error_text(code: ErrorCode, message: String) -> String {
    ServerFrame::<()>::error(code, message)
        .encode()
        .unwrap_or_default()
}

fn session_value(id: SessionId) -> HeaderValue {
    HeaderValue::from_str(&id.to_string()).expect("hex is a valid header value")
}

/// A JSON array of already-encoded frames.
fn frames_response(
    status: StatusCode,
    session: Option<SessionId>,
    frames: Vec<String>,
) -> Response {
    let body = format!("[{}]", frames.join(","));
    let mut response = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Some(id) = session {
        response
            .headers_mut()
            .insert(SESSION_HEADER, session_value(id));
    }
    response
}
