//! The rules a `hello` (and a mux `join`) is checked by: the protocol it names, and whether the
//! server serves the client's build of it.
//!
//! A build's schema has an id. A server serves a client whose id is its own, one of the older
//! ids it declares it still serves (the released versions its schema is compatible with), or
//! a newer client that declares the server's id compatible, so that old and new builds talk
//! both ways through a rolling deploy. Anything else is refused with `version_mismatch` and a
//! reason that names what changed when the server knows the client's schema.
//!
//! ```
//! use omni::wire::hello::Served;
//!
//! let served = Served::new("00ff")
//!     .serving("0a0a")
//!     .refusing("1234", "removed #[client] variant FetchAll");
//! assert!(served.check("chat", Some("chat"), None, &[]).is_ok());
//! assert!(served.check("chat", None, Some("0a0a"), &[]).is_ok());
//! // A newer client that declares this server's schema compatible.
//! assert!(served.check("chat", None, Some("beef"), &["00ff".into()]).is_ok());
//! let refused = served.check("chat", None, Some("1234"), &[]).unwrap_err();
//! assert!(refused.contains("removed #[client] variant FetchAll"));
//! ```

use std::collections::{BTreeMap, BTreeSet};

/// The builds of a protocol a server serves: its own schema id, the older ids it still
/// serves, and the older ids it knows it does not, each with the breaking changes that say why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    own: String,
    older: BTreeSet<String>,
    refused: BTreeMap<String, String>,
}

impl Served {
    /// A server of schema `own`, serving no other.
    pub fn new(own: impl Into<String>) -> Self {
        Self {
            own: own.into(),
            ..Self::default()
        }
    }

    /// Serves clients of the older schema `id` too.
    #[must_use]
    pub fn serving(mut self, id: impl Into<String>) -> Self {
        self.older.insert(id.into());
        self
    }

    /// Refuses clients of the older schema `id`, saying `why` (its breaking changes).
    #[must_use]
    pub fn refusing(mut self, id: impl Into<String>, why: impl Into<String>) -> Self {
        self.refused.insert(id.into(), why.into());
        self
    }

    /// The server's own schema id.
    pub fn own(&self) -> &str {
        &self.own
    }

    /// The older schema ids it serves too: the ids a client of this build declares
    /// `compatible` in its `hello`, so that a server of one of them serves it.
    pub fn older(&self) -> impl Iterator<Item = &str> {
        self.older.iter().map(String::as_str)
    }

    /// Whether a server of protocol `name` serves a client whose `hello` names `protocol`,
    /// schema `version` and the older schemas it declares `compatible` (an absent protocol or
    /// version is not checked). `Err` holds the reason the `version_mismatch` error gives.
    pub fn check(
        &self,
        name: &str,
        protocol: Option<&str>,
        version: Option<&str>,
        compatible: &[String],
    ) -> Result<(), String> {
        if let Some(asked) = protocol
            && asked != name
        {
            return Err(format!(
                "this endpoint serves protocol `{name}`, not `{asked}`"
            ));
        }
        let Some(theirs) = version else {
            return Ok(());
        };
        let own = &self.own;
        if theirs == own || self.older.contains(theirs) || compatible.contains(own) {
            return Ok(());
        }
        if let Some(why) = self.refused.get(theirs) {
            return Err(format!(
                "this server (schema {own}) no longer serves clients of schema {theirs}: {why}"
            ));
        }
        let mut served: Vec<&str> = vec![own];
        served.extend(self.older.iter().map(String::as_str));
        Err(format!(
            "this server (schema {own}) does not know client schema {theirs}, which declares no \
             schema it serves ({}) compatible; a client of a newer build lists the ids it still \
             talks to in `compatible`",
            served.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_serves_its_own_its_older_and_newer_clients_that_say_so() {
        let served = Served::new("b").serving("a").refusing("z", "removed Foo");
        let check = |v: Option<&str>, c: &[&str]| {
            let compatible: Vec<String> = c.iter().map(|s| (*s).to_owned()).collect();
            served.check("p", Some("p"), v, &compatible)
        };
        assert!(check(None, &[]).is_ok(), "no version: not checked");
        assert!(check(Some("b"), &[]).is_ok());
        assert!(check(Some("a"), &[]).is_ok());
        assert!(
            check(Some("c"), &["b"]).is_ok(),
            "a newer client that declares b"
        );
        assert!(
            check(Some("c"), &["a"]).is_err(),
            "declaring an id the server is not"
        );
        let refused = check(Some("z"), &[]).unwrap_err();
        assert!(
            refused.contains("removed Foo") && refused.contains("z"),
            "{refused}"
        );
        let unknown = check(Some("q"), &[]).unwrap_err();
        assert!(
            unknown.contains("q") && unknown.contains("b, a"),
            "{unknown}"
        );
        let other = served.check("p", Some("chat"), Some("b"), &[]).unwrap_err();
        assert!(other.contains("`chat`"), "{other}");
    }
}
