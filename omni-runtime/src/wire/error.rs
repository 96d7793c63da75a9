//! What goes wrong reading or writing a frame, in either codec.

use super::frame::{ErrorCode, Ref, ServerFrame};

/// A frame that could not be decoded.
///
/// Carries the `ref` and component `id` when the envelope was readable, so the `error` frame
/// sent back can name the message it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub(super) code: ErrorCode,
    pub(super) message: String,
    pub(super) reference: Option<Ref>,
    pub(super) id: Option<String>,
    /// A `bad_payload`'s `kind`, when the payload was an object naming one.
    pub(super) kind: Option<String>,
}

impl DecodeError {
    pub(crate) fn bad_frame(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::BadFrame,
            message: message.into(),
            reference: None,
            id: None,
            kind: None,
        }
    }

    /// A `bad_payload` naming `reference` and `id`, whose payload named `kind`.
    pub(super) fn bad_payload(
        message: String,
        reference: Option<Ref>,
        id: Option<String>,
        kind: Option<String>,
    ) -> Self {
        Self {
            code: ErrorCode::BadPayload,
            message,
            reference,
            id,
            kind,
        }
    }

    /// `bad_frame` (the frame itself is malformed) or `bad_payload` (the frame is well formed
    /// but its payload is not a message of the protocol).
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The `ref` of the offending frame, when it could be read.
    pub fn reference(&self) -> Option<Ref> {
        self.reference
    }

    /// The component `id` of the offending frame, when it could be read.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `kind` a payload that did not decode names (`{"kind": "…", …}`): a peer's side of
    /// the protocol tells from it whether the message is one its build does not know (a newer
    /// build's) rather than a malformed one.
    pub fn payload_kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }
}

impl<S> From<&DecodeError> for ServerFrame<S> {
    fn from(err: &DecodeError) -> Self {
        ServerFrame::Error {
            code: err.code,
            message: err.message.clone(),
            reference: err.reference,
            id: err.id.clone(),
        }
    }
}

/// A frame that could not be encoded: a payload whose `Serialize` impl failed, or a map with
/// keys JSON cannot hold.
#[derive(Debug, thiserror::Error)]
#[error("could not encode frame: {0}")]
pub struct EncodeError(Box<dyn std::error::Error + Send + Sync>);

impl From<serde_json::Error> for EncodeError {
    fn from(err: serde_json::Error) -> Self {
        Self(Box::new(err))
    }
}

impl From<rmp_serde::encode::Error> for EncodeError {
    fn from(err: rmp_serde::encode::Error) -> Self {
        Self(Box::new(err))
    }
}

/// serde_json's message without its " at line L column C" suffix, which for a payload would
/// point into the payload's own text rather than the frame.
pub(super) fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match message.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => message,
    }
}
