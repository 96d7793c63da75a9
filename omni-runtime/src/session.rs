//! Session identifiers.
//!
//! A session outlives a connection: a client that reconnects names its session in `hello` (or
//! the connect URL) to resume it. On the wire a [`SessionId`] is 32 lowercase hex characters.
//!
//! ```
//! use omni::SessionId;
//!
//! let id: SessionId = "0123456789abcdef0123456789abcdef".parse().unwrap();
//! assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef");
//! assert!("not-a-session".parse::<SessionId>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ts_rs::TS;

/// A session's identity: 128 bits, written as 32 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, TS)]
#[ts(type = "string")]
pub struct SessionId(u128);

impl SessionId {
    /// Wraps raw bits; a server makes them from a random source.
    pub const fn from_u128(bits: u128) -> Self {
        Self(bits)
    }

    /// The raw bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// A string that is not 32 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session id is 32 hex characters")]
pub struct ParseSessionIdError;

impl FromStr for SessionId {
    type Err = ParseSessionIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // `from_str_radix` alone would accept a sign, shorter strings and upper case; the wire
        // form is exactly one spelling, so a session id compares equal as text too.
        if s.len() != 32 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ParseSessionIdError);
        }
        u128::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| ParseSessionIdError)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let id = SessionId::from_u128(0xabc);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#""00000000000000000000000000000abc""#);
        assert_eq!(serde_json::from_str::<SessionId>(&json).unwrap(), id);
    }

    #[test]
    fn refuses_signs_and_short_strings() {
        assert!(
            "+0123456789abcdef0123456789abcde"
                .parse::<SessionId>()
                .is_err()
        );
        assert!("abc".parse::<SessionId>().is_err());
        assert!(
            "0123456789ABCDEF0123456789abcdef"
                .parse::<SessionId>()
                .is_err()
        );
        assert!(serde_json::from_str::<SessionId>("17").is_err());
    }
}
