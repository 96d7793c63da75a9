//! How a client names what it wants when it connects: the connect URL's query parameters and
//! the `omni-session` header. The client writes them from [`Connect`]; the server reads them
//! back with the same names.
//!
//! ```
//! use omni::wire::Codec;
//! use omni::wire::connect::Connect;
//!
//! let connect = Connect::new(Codec::MsgPack);
//! assert_eq!(connect.pairs(), [("codec", "msgpack".to_owned())]);
//! ```

use serde::Deserialize;

use super::{Codec, Cursors, Seq, UnknownCodec};
use crate::SessionId;
use crate::presence::Modes;

/// The header that ties an HTTP request (a `POST /http`, the uplink of an event stream) to
/// its session.
pub const SESSION_HEADER: &str = "omni-session";

/// The header of a goodbye: a `POST /http` with it (and the session in [`SESSION_HEADER`])
/// says the page is going away, so its session ends after the server's short linger rather
/// than its grace period.
pub const LEAVE_HEADER: &str = "omni-leave";

/// The parameter naming the codec: `json` (the default) or `msgpack`.
pub const CODEC: &str = "codec";
/// The parameter naming the session to resume.
pub const SESSION: &str = "session";
/// The parameter with the last sequence number the resuming client holds.
pub const AFTER: &str = "after";
/// The parameter with the topic cursors, a JSON object (`{"room":17}`); present, even empty,
/// it says the client follows sequenced topics.
pub const TOPICS: &str = "topics";
/// The parameter naming the client: an id it chooses once and keeps with its queue of
/// unacknowledged messages, so that a message it sends again to another session (after its
/// server restarted, say) has the same key there ([`client_id`] says which ids are read).
pub const CLIENT: &str = "client";
/// The parameter with the presence modes, a JSON object (`{"lobby":"count","*":"none"}`, see
/// [`Modes`]); absent, every topic's whole list.
pub const PRESENCE: &str = "presence";

/// What a connect URL asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Connect {
    /// The codec of every frame, both ways.
    pub codec: Codec,
    /// The session to resume, and the last sequence number the client holds of it.
    pub resume: Option<(SessionId, Seq)>,
    /// The topic cursors of a client that follows sequenced topics.
    pub topics: Option<Cursors>,
    /// What the client is shown of each topic's presence.
    pub presence: Modes,
    /// The client's own id, kept with its queue (see [`CLIENT`]).
    pub client: Option<String>,
}

impl Connect {
    /// A fresh connection in `codec`.
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            ..Self::default()
        }
    }

    /// Resumes `session` after `after`, the last sequence number the client holds.
    #[must_use]
    pub fn resume(mut self, session: SessionId, after: Seq) -> Self {
        self.resume = Some((session, after));
        self
    }

    /// Follows sequenced topics from these cursors.
    #[must_use]
    pub fn topics(mut self, topics: Cursors) -> Self {
        self.topics = Some(topics);
        self
    }

    /// Shows each topic's presence as `presence` says.
    #[must_use]
    pub fn presence(mut self, presence: Modes) -> Self {
        self.presence = presence;
        self
    }

    /// The query parameters, in order: none for a fresh JSON connection.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if self.codec != Codec::Json {
            pairs.push((CODEC, self.codec.name().to_owned()));
        }
        if let Some((session, after)) = self.resume {
            pairs.push((SESSION, session.to_string()));
            pairs.push((AFTER, after.to_string()));
        }
        if let Some(topics) = &self.topics {
            // A map of strings to numbers always serialises.
            pairs.push((TOPICS, serde_json::to_string(topics).unwrap_or_default()));
        }
        if let Some(client) = &self.client {
            pairs.push((CLIENT, client.clone()));
        }
        if !self.presence.is_default() {
            // A map of strings to modes always serialises.
            let modes = serde_json::to_string(&self.presence).unwrap_or_default();
            pairs.push((PRESENCE, modes));
        }
        pairs
    }
}

/// Why a connect URL's `codec` cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A codec this build does not speak.
    #[error(transparent)]
    Unknown(#[from] UnknownCodec),
    /// The query does not parse: a repeated `codec`, most likely. Read as JSON, a client that
    /// asked twice for MessagePack would be answered in a codec it did not ask for.
    #[error("the connect URL's query cannot be read: {0}")]
    Malformed(String),
}

/// The codec a connect URL's query asks for (JSON when it names none).
#[cfg(feature = "server")]
pub fn codec(query: &str) -> Result<Codec, CodecError> {
    #[derive(Deserialize)]
    struct Query {
        codec: Option<String>,
    }
    let query: Query =
        serde_urlencoded::from_str(query).map_err(|e| CodecError::Malformed(e.to_string()))?;
    match query.codec.as_deref() {
        None => Ok(Codec::Json),
        Some(name) => Ok(name.parse()?),
    }
}

/// The resume point and the topic cursors of a connect URL's query. Unreadable cursors are
/// none (resuming topics is an optimisation: without cursors the client gets snapshots, never
/// wrong state); an unreadable session or number is an error.
#[cfg(feature = "server")]
pub fn resume(query: &str) -> Result<Resume, String> {
    serde_urlencoded::from_str(query).map_err(|e| e.to_string())
}

/// The resume part of a connect URL, as read by [`resume`].
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Resume {
    /// The session to resume.
    pub session: Option<SessionId>,
    /// The last sequence number the client holds.
    pub after: Option<Seq>,
    topics: Option<String>,
    presence: Option<String>,
    client: Option<String>,
}

impl Resume {
    /// The topic cursors, when they were given and are readable.
    pub fn cursors(&self) -> Option<Cursors> {
        let topics = self.topics.as_deref()?;
        serde_json::from_str(topics).ok()
    }

    /// The client's id, when it gave a readable one (see [`client_id`]).
    pub fn client(&self) -> Option<&str> {
        self.client.as_deref().and_then(client_id)
    }

    /// The presence modes. Unreadable ones are the default, every topic's whole list: more
    /// than was asked for, never less.
    pub fn presence(&self) -> Modes {
        let modes = self.presence.as_deref().unwrap_or_default();
        serde_json::from_str(modes).unwrap_or_default()
    }
}

/// `id` if it can be a client's id: 1 to 64 characters from `A-Z a-z 0-9 - _ .`. Anything
/// else is no id at all (its messages then have no key), never an error.
pub fn client_id(id: &str) -> Option<&str> {
    let fits = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    fits.then_some(id)
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;
    use crate::presence::Mode;

    #[test]
    fn what_the_client_writes_the_server_reads() {
        let session: SessionId = "0123456789abcdef0123456789abcdef".parse().unwrap();
        let written = Connect {
            codec: Codec::MsgPack,
            resume: Some((session, 17)),
            topics: Some([("room".to_owned(), 4)].into_iter().collect()),
            presence: Modes::new().topic("lobby", Mode::Count),
            client: Some("c-1".to_owned()),
        };
        let query = serde_urlencoded::to_string(written.pairs()).unwrap();
        assert_eq!(codec(&query).unwrap(), Codec::MsgPack);
        let read = resume(&query).unwrap();
        assert_eq!((read.session, read.after), (Some(session), Some(17)));
        assert_eq!(read.cursors(), written.topics);
        assert_eq!(read.presence(), written.presence);
        assert_eq!(read.client(), Some("c-1"));
        assert_eq!(resume("client=a%20b").unwrap().client(), None);
        assert_eq!(client_id(&"x".repeat(65)), None);
        assert_eq!(resume("presence=%7Bnope").unwrap().presence(), Modes::new());
        assert!(Connect::default().pairs().is_empty());
    }

    #[test]
    fn a_codec_given_twice_or_unknown_is_refused() {
        assert!(matches!(
            codec("codec=msgpack&codec=msgpack"),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(codec("codec=xml"), Err(CodecError::Unknown(_))));
        assert_eq!(codec("session=x").unwrap(), Codec::Json);
    }
}
