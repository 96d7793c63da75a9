//! Which browser origins may connect, and which host names a request may use.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// Which `Origin`s a WebSocket, SSE or HTTP request may come from. A request without an
/// `Origin` header (a non-browser client) is always allowed; a refused one gets 403 with a
/// [`Refused::Origin`] body.
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

    fn check(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let Some(origin) = headers.get(ORIGIN) else {
            return Ok(());
        };
        let refused = || Refused::Origin(String::from_utf8_lossy(origin.as_bytes()).into_owned());
        let Ok(origin) = origin.to_str() else {
            return Err(refused());
        };
        let allowed = match self {
            Origins::Any => true,
            Origins::SameHost => same_host(origin, headers),
            Origins::List(list) => {
                list.iter().any(|o| o.eq_ignore_ascii_case(origin)) || same_host(origin, headers)
            }
        };
        if allowed { Ok(()) } else { Err(refused()) }
    }

    #[cfg(test)]
    fn allows(&self, headers: &HeaderMap) -> bool {
        self.check(headers).is_ok()
    }
}

/// Which `Host` a request may name. The default takes any: the same-host origin rule then
/// trusts whatever `Host` the request says, so a page on `evil.example` whose name an
/// attacker points at your server (DNS rebinding) passes as same-host. A server reached
/// under known names lists them, and every other `Host` (or none) gets 403 with a
/// [`Refused::Host`] body.
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
    /// The machine's own loopback names on any port (`localhost`, `127.0.0.0/8`, `[::1]`),
    /// and exactly these `host[:port]`s.
    LoopbackAnd(Vec<String>),
}

impl Hosts {
    /// Allows exactly these `host[:port]`s.
    pub fn list<I: IntoIterator<Item = S>, S: Into<String>>(hosts: I) -> Self {
        Self::List(hosts.into_iter().map(Into::into).collect())
    }

    /// Allows `localhost`, `127.x.y.z` and `[::1]` on any port, and exactly these
    /// `host[:port]`s. A DNS-rebinding page never carries a loopback name (its `Host` is
    /// the attacker's own name), so they are safe to take on every port: a server reached
    /// through a proxy on the same machine (a dev server's, a TLS terminator's) is then
    /// served under the proxy's port too. A proxy that forwards under a loopback name a page
    /// served on a public one also needs that page's origin in [`Origins::list`]: its
    /// `Origin` no longer matches the `Host` the server sees.
    ///
    /// ```
    /// use omni::server::{Endpoint, Hosts};
    /// # #[omni::protocol]
    /// # #[derive(Debug, Clone, PartialEq)]
    /// # enum Echo { #[client] Say(String), #[server] Heard(String) }
    /// # struct Parrot;
    /// # impl EchoHandler for Parrot {
    /// #     async fn say(&mut self, _: &mut omni::Context<Echo>, _: String) -> omni::HandlerResult { Ok(()) }
    /// # }
    ///
    /// // Pages on http://localhost:5173/ (a dev proxy) and on https://chat.example.com/
    /// // (through a proxy that forwards that `Host`) connect.
    /// let endpoint = Endpoint::<Echo, _>::builder(|| Parrot)
    ///     .hosts(Hosts::loopback_and(["chat.example.com"]))
    ///     .build();
    /// # let _ = endpoint;
    /// ```
    pub fn loopback_and<I: IntoIterator<Item = S>, S: Into<String>>(hosts: I) -> Self {
        Self::LoopbackAnd(hosts.into_iter().map(Into::into).collect())
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        let listed = |list: &[String]| {
            host.is_some_and(|host| list.iter().any(|h| h.eq_ignore_ascii_case(host)))
        };
        let allowed = match self {
            Hosts::Any => true,
            Hosts::List(list) => listed(list),
            Hosts::LoopbackAnd(list) => host.is_some_and(is_loopback) || listed(list),
        };
        if allowed {
            Ok(())
        } else {
            Err(Refused::Host(host.map(str::to_owned)))
        }
    }
}

/// Why a request was refused before it reached the endpoint: its `Host` is not a name the
/// server answers to, or its `Origin` is not a page that may connect. As a response it is a
/// 403 whose body says which, the value, and how to allow it; the response also carries the
/// `Refused` in its extensions, for a layer of the app's to word it its own way (naming the
/// app's own setting, say).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// The request's `Host`; `None` when it has none, or one that is not text.
    Host(Option<String>),
    /// The request's `Origin`.
    Origin(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Host(Some(host)) => write!(
                f,
                "this server does not answer to the Host `{host}`: if it is reached under that \
                 name, add the name to the hosts it allows (`Hosts::list` or \
                 `Hosts::loopback_and` on its endpoint or mux)"
            ),
            Refused::Host(None) => f.write_str(
                "the request names no Host, and this server answers only to the hosts it \
                 allows (`Hosts` on its endpoint or mux)",
            ),
            Refused::Origin(origin) => write!(
                f,
                "a page from the Origin `{origin}` may not connect: pages from the server's own \
                 host may, and so may the origins it lists (`Origins::list` on its endpoint or \
                 mux)"
            ),
        }
    }
}

impl std::error::Error for Refused {}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = format!("{self}\n");
        let mut response = (
            StatusCode::FORBIDDEN,
            [
                (CONTENT_TYPE, "text/plain; charset=utf-8"),
                // The body repeats a header the client sent: never read as anything but text.
                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Who may connect: the host names and the origins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admission {
    pub(crate) origins: Origins,
    pub(crate) hosts: Hosts,
}

impl Admission {
    /// The host first: a page on a rebound name passes the same-host origin rule, and the
    /// refusal should name what is actually wrong.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), Refused> {
        self.hosts.check(headers)?;
        self.origins.check(headers)
    }

    #[cfg(test)]
    fn allows(&self, headers: &HeaderMap) -> bool {
        self.check(headers).is_ok()
    }
}

/// Whether a `Host` value names this machine's loopback interface: `localhost`, an address
/// in 127.0.0.0/8 or `[::1]`, with or without a port.
fn is_loopback(host: &str) -> bool {
    // An IPv6 name is bracketed, since it holds colons of its own.
    let (name, port, bracketed) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((name, port)) => (name, port, true),
            None => return false,
        },
        None => {
            let (name, port) = host.split_at(host.find(':').unwrap_or(host.len()));
            (name, port, false)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = if bracketed {
        name.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
    } else {
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    };
    port_ok && name_ok
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

    #[test]
    fn loopback_names_pass_on_any_port_and_nothing_else_does() {
        let hosts = Hosts::loopback_and(["chat.test"]);
        for host in [
            "localhost",
            "LocalHost:5173",
            "127.0.0.1:3000",
            "127.1.2.3:8080",
            "[::1]",
            "[::1]:443",
            "chat.test",
        ] {
            assert!(hosts.check(&headers(None, host)).is_ok(), "{host}");
        }
        for host in [
            "evil.test",
            "chat.test:8443",
            "localhost.evil.test",
            "evil.localhost",
            "127.0.0.1.evil.test",
            "128.0.0.1:3000",
            "0.0.0.0:3000",
            "localhost:",
            "localhost:3000x",
            "[::2]:3000",
            "[::1",
            "[localhost]:3000",
        ] {
            let refused = hosts.check(&headers(None, host));
            assert_eq!(refused, Err(Refused::Host(Some(host.into()))), "{host}");
        }
        assert_eq!(hosts.check(&HeaderMap::new()), Err(Refused::Host(None)));
        // A plain list keeps its exact names: loopback on another port is another name.
        let list = Hosts::list(["localhost:3000"]);
        assert!(list.check(&headers(None, "localhost:3001")).is_err());
    }

    #[test]
    fn a_refusal_names_the_header_its_value_and_the_setting() {
        let admission = Admission {
            origins: Origins::SameHost,
            hosts: Hosts::list(["chat.test"]),
        };
        let refused = admission.check(&headers(Some("http://evil.test"), "evil.test"));
        assert_eq!(refused, Err(Refused::Host(Some("evil.test".into()))));
        let text = refused.unwrap_err().to_string();
        assert!(
            text.contains("Host `evil.test`") && text.contains("Hosts::"),
            "{text}"
        );

        let refused = admission.check(&headers(Some("http://evil.test"), "chat.test"));
        assert_eq!(refused, Err(Refused::Origin("http://evil.test".into())));
        let text = refused.unwrap_err().to_string();
        assert!(
            text.contains("Origin `http://evil.test`") && text.contains("Origins::list"),
            "{text}"
        );
    }
}
