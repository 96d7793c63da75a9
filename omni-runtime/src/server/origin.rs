//! Which browser origins may connect, and which host names a request may use.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

/// Which `Origin`s a WebSocket, SSE or HTTP request may come from. A request without an
/// `Origin` header (a non-browser client) is always allowed; a refused one gets 403.
///
/// ```
/// use omni::server::Origins;
///
/// let origins = Origins::list(["https://app.example.com"]);
/// # let _ = origins;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
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

/// Which `Host` a request may name. The default takes any: the same-host origin rule then
/// trusts whatever `Host` the request says, so a page on `evil.example` whose name an
/// attacker points at your server (DNS rebinding) passes as same-host. A server reached
/// under known names lists them, and every other `Host` (or none) gets 403.
///
/// ```
/// use omni::server::Hosts;
///
/// let hosts = Hosts::list(["chat.example.com", "localhost:3000"]);
/// # let _ = hosts;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Hosts {
    /// The default: any `Host`.
    #[default]
    Any,
    /// Exactly these `host[:port]`s, compared without regard to case.
    List(Vec<String>),
}

impl Hosts {
    /// Allows exactly these `host[:port]`s.
    pub fn list<I: IntoIterator<Item = S>, S: Into<String>>(hosts: I) -> Self {
        Self::List(hosts.into_iter().map(Into::into).collect())
    }

    fn allows(&self, headers: &HeaderMap) -> bool {
        match self {
            Hosts::Any => true,
            Hosts::List(list) => headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|host| list.iter().any(|h| h.eq_ignore_ascii_case(host))),
        }
    }
}

/// Who may connect: the host names and the origins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admission {
    pub(crate) origins: Origins,
    pub(crate) hosts: Hosts,
}

impl Admission {
    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        self.hosts.allows(headers) && self.origins.allows(headers)
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
    fn a_host_list_refuses_every_other_name_even_same_host() {
        let admission = Admission {
            origins: Origins::SameHost,
            hosts: Hosts::list(["chat.test:3000"]),
        };
        assert!(admission.allows(&headers(Some("http://chat.test:3000"), "Chat.test:3000")));
        // A rebound name passes the same-host rule, not the list.
        assert!(!admission.allows(&headers(Some("http://evil.test"), "evil.test")));
        assert!(!admission.allows(&headers(None, "evil.test")));
        assert!(!admission.allows(&HeaderMap::new()));
        assert!(Admission::default().allows(&headers(Some("http://evil.test"), "evil.test")));
    }

    #[test]
    fn list_and_any() {
        let p = Origins::list(["https://app.test"]);
        assert!(p.allows(&headers(Some("https://app.test"), "api.test")));
        assert!(!p.allows(&headers(Some("https://other.test"), "api.test")));
        assert!(Origins::Any.allows(&headers(Some("https://other.test"), "api.test")));
    }
}
