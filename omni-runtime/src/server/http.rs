//! `POST /http`: client frames in the request body, the server frames they produced in the
//! response; and the uplink of an SSE stream.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::conn::Item;
use super::encoded::Outgoing;
use super::session::{Attached, Sessions};
use crate::wire::msgpack::{self, Transcode};
use crate::wire::{Codec, batch, connect};
use crate::{ClientFrame, DecodeError, Dispatch, ErrorCode, Protocol, ServerFrame, SessionId};

/// The header that ties an HTTP request to a session (see [`connect::SESSION_HEADER`]).
pub const SESSION_HEADER: HeaderName = HeaderName::from_static(connect::SESSION_HEADER);

/// The header of a client's goodbye: a `POST /http` that carries it (with the session in
/// [`SESSION_HEADER`]) says the client is leaving, and handles no frames. A server from before
/// it reads the body, `[]`, and answers 422 without touching any session.
const LEAVE_HEADER: HeaderName = HeaderName::from_static(connect::LEAVE_HEADER);

/// Handles one POST. The body is one client frame or an array of them.
pub(crate) async fn post<P, H>(
    hub: Arc<Sessions<P, H>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let span = tracing::info_span!(
        "omni.http",
        traceparent = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some(parent) = super::trace::from_headers(&headers) {
        super::trace::adopt(&span, parent);
    }
    handle(hub, headers, extensions, body)
        .instrument(span)
        .await
}

/// [`post`], in the request's span.
async fn handle<P, H>(
    hub: Arc<Sessions<P, H>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response
where
    P: Protocol + Dispatch<H>,
    H: Send + 'static,
{
    let named = headers
        .get(&SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<SessionId>().ok());
    if headers.contains_key(&LEAVE_HEADER) {
        // A page going away: its session ends the linger after its connection, whose end
        // may reach the server before or after this.
        if let Some(id) = named {
            hub.goodbye(id);
        }
        return StatusCode::NO_CONTENT.into_response();
    }
    let codec = codec_of(&headers);
    let limit = hub.shared.limits.max_frame_bytes;
    let response_bound = hub.shared.limits.outbound_queue_bytes;
    if body.len() > limit {
        return too_large(limit, codec);
    }
    let frames = decode_body::<P>(&body, codec);
    if frames.iter().all(Result::is_err) {
        let errors = frames
            .iter()
            .filter_map(|f| f.as_ref().err())
            .map(|err| encode_error(&ServerFrame::from(err), codec))
            .collect();
        return frames_response(StatusCode::UNPROCESSABLE_ENTITY, None, codec, errors);
    }

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
    let (mut conn, mut rx) = hub.shared.connection(false);
    conn.codec = codec;
    let conn_id = conn.id;
    session.core.attach(conn, None, fresh);
    if fresh && named.is_some() {
        session.core.reset();
    }
    let mut attached = Attached::new(hub, session, conn_id);
    let mut unhandled = 0;
    for frame in frames {
        // What one request may cause is bounded by the response's queue: once it is full,
        // the rest of the batch is left for the client to send again.
        if rx.stop.borrow().is_some() {
            unhandled += 1;
            continue;
        }
        attached.handle(frame).await;
    }
    let session = attached.session().clone();
    attached.closed().await;
    let mut out = Vec::new();
    let transcode: Transcode = msgpack::transcode::<P::Server>;
    let encoded = |frame: &Outgoing| match codec {
        Codec::MsgPack => Vec::from(frame.msgpack(transcode)),
        _ => frame.text().as_bytes().to_vec(),
    };
    while let Some(item) = rx.frames.try_recv() {
        match item.ready() {
            Item::Frame(frame, _) => out.push(encoded(&frame)),
            Item::Replay(frames, _) => out.extend(frames.iter().map(encoded)),
            // A plain endpoint's connections are never mux components.
            Item::Close(_) | Item::Left(_) => break,
            // Made ready above.
            Item::Refresh(..) => {}
        }
    }
    if rx.stop.borrow().is_some() {
        let message = format!(
            "the response reached its bound of {response_bound} bytes: {unhandled} frame(s) \
             of the request were not handled, and the frames that did not fit come on resume \
             (or as a reset)"
        );
        out.push(encode_error(
            &ServerFrame::error(ErrorCode::TooLarge, message),
            codec,
        ));
    }
    frames_response(StatusCode::OK, Some(session.id()), codec, out)
}

/// The codec of a request: its body's, answered in kind.
pub(crate) fn codec_of(headers: &HeaderMap) -> Codec {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or(Codec::Json, Codec::from_content_type)
}

/// 413, with the `too_large` error, for a body over `limit` bytes.
pub(crate) fn too_large(limit: usize, codec: Codec) -> Response {
    let message = format!("a request body may be at most {limit} bytes");
    frames_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
        codec,
        vec![encode_error(
            &ServerFrame::error(ErrorCode::TooLarge, message),
            codec,
        )],
    )
}

/// 408 for a body that did not arrive within `timeout`.
pub(crate) fn body_timeout(timeout: std::time::Duration, codec: Codec) -> Response {
    let message = format!("the request body did not arrive within {timeout:?}");
    frames_response(
        StatusCode::REQUEST_TIMEOUT,
        None,
        codec,
        vec![encode_error(
            &ServerFrame::error(ErrorCode::BadFrame, message),
            codec,
        )],
    )
}

/// One frame, or each element of an array, decoded on its own so one bad frame does not
/// hide the others.
fn decode_body<P: Protocol>(
    body: &[u8],
    codec: Codec,
) -> Vec<Result<ClientFrame<P::Client>, DecodeError>> {
    let frames = match batch::split(codec, body) {
        Ok(frames) => frames,
        Err(err) => return vec![Err(err)],
    };
    frames
        .into_iter()
        .map(|frame| match codec {
            Codec::MsgPack => ClientFrame::decode_msgpack(frame),
            _ => ClientFrame::decode(frame),
        })
        .collect()
}

fn encode_error(frame: &ServerFrame<()>, codec: Codec) -> Vec<u8> {
    let encoded = match codec {
        Codec::MsgPack => frame.encode_msgpack(),
        _ => frame.encode().map(String::into_bytes),
    };
    encoded.unwrap_or_default()
}

fn session_value(id: SessionId) -> HeaderValue {
    HeaderValue::from_str(&id.to_string()).expect("hex is a valid header value")
}

/// An array of already-encoded frames, in `codec`.
fn frames_response(
    status: StatusCode,
    session: Option<SessionId>,
    codec: Codec,
    frames: Vec<Vec<u8>>,
) -> Response {
    let body = batch::join(codec, &frames);
    let mut response = (
        status,
        [(axum::http::header::CONTENT_TYPE, codec.content_type())],
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
