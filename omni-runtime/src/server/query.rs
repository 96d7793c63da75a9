//! The server's side of the connect URL: the codec it asks for, and the answer to one it
//! cannot serve.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::wire::{Codec, connect};

/// The codec a connect URL asks for (JSON unless it says otherwise).
pub(crate) fn codec_from_uri(uri: &axum::http::Uri) -> Result<Codec, connect::CodecError> {
    connect::codec(uri.query().unwrap_or_default())
}

/// The `400` a connect URL naming an unknown codec (or naming one twice) gets, saying why.
pub(crate) fn unknown_codec(err: &connect::CodecError) -> Response {
    (StatusCode::BAD_REQUEST, err.to_string()).into_response()
}
