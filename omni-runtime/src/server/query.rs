//! The server's side of the connect URL: the codec it asks for, the answer to one it cannot
//! serve, and what the connection follows.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::presence::Modes;
use crate::wire::{Codec, Cursors, connect};

/// The codec a connect URL asks for (JSON unless it says otherwise).
pub(crate) fn codec_from_uri(uri: &axum::http::Uri) -> Result<Codec, connect::CodecError> {
    connect::codec(uri.query().unwrap_or_default())
}

/// The `400` a connect URL naming an unknown codec (or naming one twice) gets, saying why.
pub(crate) fn unknown_codec(err: &connect::CodecError) -> Response {
    (StatusCode::BAD_REQUEST, err.to_string()).into_response()
}

/// What a connection follows, from its connect URL: the topic cursors of a client that
/// follows sequenced topics, and what it is shown of each topic's presence.
#[derive(Debug, Default)]
pub(crate) struct Follow {
    pub(crate) topics: Option<Cursors>,
    pub(crate) presence: Modes,
    pub(crate) client: Option<std::sync::Arc<str>>,
}

impl Follow {
    pub(crate) fn of(query: &connect::Resume) -> Self {
        Self {
            topics: query.cursors(),
            presence: query.presence(),
            client: query.client().map(Into::into),
        }
    }
}
