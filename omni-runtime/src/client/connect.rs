//! What opens a connection to the endpoint: its URLs, checked once and then one per
//! transport, the `hello` that names the protocol, and the connect hook that runs once the
//! server has welcomed the client.

use std::sync::Arc;
use std::time::Duration;

use super::config::Transport;
use super::credentials::Credentials;
use super::options::Settings;
use super::outbox;
use super::tls;
use super::wire::{self, Frame};
use crate::wire::connect::Connect;
use crate::wire::{Codec, TraceParent};
use crate::{ClientFrame, Cursors, Protocol, Seq, SessionId};

/// Most messages one HTTP request carries.
const BATCH: usize = 64;

/// Everything the transports of a single-protocol client need to know.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) url: reqwest::Url,
    pub(crate) transport: Transport,
    pub(crate) settings: Settings,
    pub(crate) poll_interval: Duration,
    pub(crate) http: reqwest::Client,
    pub(crate) tls: tls::Connector,
    pub(crate) credentials: Credentials,
}

impl Config {
    /// What one HTTP request may carry: a body under the server's frame limit, with room for
    /// the `hello` and the brackets.
    pub(crate) fn batch(&self) -> outbox::Batch {
        outbox::Batch {
            frames: BATCH,
            bytes: self.settings.max_message_bytes.saturating_sub(512),
        }
    }
}

/// What every connection of a client needs and no retry can change: the endpoint's URL,
/// checked, and how its connections are secured.
pub(crate) fn setup(
    url: &str,
    roots: &[Vec<u8>],
) -> Result<(reqwest::Url, tls::Connector, reqwest::Client), String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|err| format!("bad endpoint URL `{url}`: {err}"))?;
    tls::check_scheme(parsed.scheme()).map_err(|err| format!("bad endpoint URL `{url}`: {err}"))?;
    let tls = tls::Connector::new(roots)?;
    let http = tls.http_client()?;
    Ok((parsed, tls, http))
}

/// `{base}/{path}`, in the WebSocket scheme if asked (otherwise in the HTTP one), with what
/// `connect` asks for in the query (nothing for a fresh JSON connection).
pub(crate) fn url_for(
    base: &reqwest::Url,
    path: &str,
    websocket: bool,
    connect: &Connect,
) -> Result<reqwest::Url, String> {
    let mut url = base.clone();
    let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
    url.set_path(&joined);
    tls::check_scheme(url.scheme())?;
    let secure = matches!(url.scheme(), "https" | "wss");
    let scheme = match (websocket, secure) {
        (true, false) => "ws",
        (true, true) => "wss",
        (false, false) => "http",
        (false, true) => "https",
    };
    url.set_scheme(scheme)
        .map_err(|()| format!("cannot use `{scheme}` with {base}"))?;
    let pairs = connect.pairs();
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(url)
}

/// `hello` in `codec` with this build's protocol name and schema hash, and `after` and topic
/// cursors if given.
pub(crate) fn hello<P: Protocol>(
    codec: Codec,
    after: Option<Seq>,
    topics: Option<&Cursors>,
    traceparent: Option<TraceParent>,
) -> Frame {
    let hello = ClientFrame::<()>::Hello {
        protocol: Some(P::NAME.to_owned()),
        version: Some(P::version().to_owned()),
        compatible: compatible::<P>(),
        session: None,
        after,
        topics: topics.cloned(),
        traceparent,
    };
    // Strings, numbers and a map of them: nothing in it can fail to encode.
    wire::encode(codec, &hello).unwrap_or(Frame::Text(String::new()))
}

/// What a connect hook (see
/// [`ClientBuilder::on_connect`](crate::client::ClientBuilder::on_connect)) is told about the
/// session the server just welcomed the client into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// The session.
    pub session: SessionId,
    /// Whether it is the session the client had, resumed with nothing lost; `false` for the
    /// first connect and for a new session after the old one was lost (a server restart):
    /// then the server knows nothing of this client any more.
    pub resumed: bool,
}

/// A connect hook: the messages to send first on a connection.
pub(crate) type Hook<C> = Arc<dyn Fn(ConnectInfo) -> Vec<C> + Send + Sync>;

/// The older schema ids this build declares it still talks to, for `hello` and `join`: none
/// (and no key on the wire) when it keeps no compatible version.
pub(crate) fn compatible<P: Protocol>() -> Option<Vec<String>> {
    let ids = crate::schema::compatible::<P>();
    (!ids.is_empty()).then_some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_prefix() {
        let base = reqwest::Url::parse("http://127.0.0.1:3000/omni/").unwrap();
        let id = SessionId::from_u128(1);
        assert_eq!(
            url_for(&base, "ws", true, &Connect::new(Codec::Json).resume(id, 4))
                .unwrap()
                .as_str(),
            format!("ws://127.0.0.1:3000/omni/ws?session={id}&after=4")
        );
        assert_eq!(
            url_for(&base, "http", false, &Connect::new(Codec::Json))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:3000/omni/http"
        );
        let tls = reqwest::Url::parse("https://example.com").unwrap();
        let secure = url_for(&tls, "ws", true, &Connect::new(Codec::Json));
        if cfg!(feature = "tls") {
            assert_eq!(secure.unwrap().as_str(), "wss://example.com/ws");
        } else {
            assert!(secure.unwrap_err().contains("`tls` feature"));
        }
        // Any scheme of the two pairs serves every transport; no other does.
        let ws = reqwest::Url::parse("ws://127.0.0.1:3000/omni").unwrap();
        assert_eq!(
            url_for(&ws, "http", false, &Connect::new(Codec::Json))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:3000/omni/http"
        );
        let ftp = reqwest::Url::parse("ftp://127.0.0.1/omni").unwrap();
        assert!(url_for(&ftp, "http", false, &Connect::new(Codec::Json)).is_err());
        let topics = Cursors::from([("room".to_owned(), 17)]);
        assert_eq!(
            url_for(&base, "ws", true, &Connect::new(Codec::Json).topics(topics))
                .unwrap()
                .as_str(),
            "ws://127.0.0.1:3000/omni/ws?topics=%7B%22room%22%3A17%7D"
        );
        assert_eq!(
            url_for(
                &base,
                "mux",
                true,
                &Connect::new(Codec::MsgPack).resume(id, 4)
            )
            .unwrap()
            .as_str(),
            format!("ws://127.0.0.1:3000/omni/mux?codec=msgpack&session={id}&after=4")
        );
    }
}
