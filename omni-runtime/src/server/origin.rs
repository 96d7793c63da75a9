//! Which browser origins may connect.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

/// Which `Origin`s a WebSocket, SSE or HTTP request may come from. A request without an
/// `Origin` header (a non-browser client) is always allowed; a refused one gets 403.
///
/// ```
/// use omni_runtime::server::Origins;
///
/// let origins = Origins::list(["https://app.example.com"]);
/// # let _ = origins;
/// ```
#[derive(Debug, Clone, Default)]
pub enum Origins {
    /// The default: the origin's host and port must equal the request's `Host`.
    #[default]
    SameHost,
    /// Exactly these origins (`scheme://host[:port]`), plus the same host.
    List(Vec<String>),
    /// Every origin. Only for endpoints that carry nothing a session cookie protects.
    Any,
}

impl Origins {
    /// Allows these origins besides the same host.
    pub fn list<I: IntoIterator<Item = S>, S: Into<String>>(origins: I) -> Self {
        Self::List(origins.into_iter().map(Into::into).collect())
    }

    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        match self {
            Origins::Any => true,
            Origins::SameHost => same_host(origin, headers),
            Origins::List(list) => {
                list.iter().any(|o| o.eq_ignore_ascii_case(origin)) || same_host(origin, headers)
            }
        }
    }
}

/// Whether `scheme://authority` names the request's `Host`.
fn same_host(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    if authority.eq_ignore_ascii_case(host) {
        return true;
    }
    // `Host` may omit a default port that the origin spells out, or the reverse.
    let default_port = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return false,
    };
    let strip = |s: &str| s.strip_suffix(default_port).map(str::to_owned);
    let origin_bare = strip(authority).unwrap_or_else(|| authority.to_owned());
    let host_bare = strip(host).unwrap_or_else(|| host.to_owned());
    origin_bare.eq_ignore_ascii_case(&host_bare)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn same_host_compares_host_and_port() {
        let p = Origins::SameHost;
        assert!(p.allows(&headers(None, "a:1")));
        assert!(p.allows(&headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000")));
        assert!(p.allows(&headers(Some("https://Example.com"), "example.com:443")));
        assert!(!p.allows(&headers(Some("http://127.0.0.1:3001"), "127.0.0.1:3000")));
        assert!(!p.allows(&headers(Some("http://evil.test"), "example.com")));
        assert!(!p.allows(&headers(Some("null"), "example.com")));
    }

    #[test]
    fn list_and_any() {
        let p = Origins::list(["https://app.test"]);
        assert!(p.allows(&headers(Some("https://app.test"), "api.test")));
        assert!(!p.allows(&headers(Some("https://other.test"), "api.test")));
        assert!(Origins::Any.allows(&headers(Some("https://other.test"), "api.test")));
    }
}
