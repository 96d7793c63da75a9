//! Signed join tokens for the mux endpoint.
//!
//! A page that renders a live component also hands the browser a token naming the component's
//! module and its initial props. The browser sends it back in `join`, and the server can trust
//! the props because only a holder of the key could have signed them. A token is
//!
//! ```text
//! base64url({"m":module,"p":props,"e":expires_at}) "." base64url(HMAC-SHA256(key, first part))
//! ```
//!
//! with both parts unpadded and `expires_at` in seconds since the Unix epoch. The algorithm is
//! fixed rather than named in the token, so a token cannot talk the server into a weaker one.
//! The MAC is compared in constant time, and before the claims are parsed, so unauthenticated
//! JSON never reaches the parser. Tokens expire, and one signed for a module is refused by
//! every other.
//!
//! ```
//! use std::time::Duration;
//!
//! use omni::ErrorCode;
//! use omni::token::{Keys, TokenError};
//!
//! // In production: 32 or more random bytes from the application's secret store.
//! let keys = Keys::new(b"an example key, 32 bytes or more")?;
//! let props = serde_json::json!({ "room": "lobby" });
//! let token = keys.sign("chat", &props, Duration::from_secs(600));
//!
//! let claims = keys.verify("chat", &token)?;
//! assert_eq!(claims.props, props);
//!
//! // The same token does not open another module.
//! let err = keys.verify("counter", &token).unwrap_err();
//! assert!(matches!(err, TokenError::WrongModule { .. }));
//! assert_eq!(err.code(), ErrorCode::BadToken);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::ErrorCode;

/// The shortest key accepted, in bytes: the size of an HMAC-SHA256 tag, below which the key
/// and not the hash would bound the token's strength (RFC 2104, section 3).
pub const MIN_KEY_LEN: usize = 32;

/// The length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The secret keys tokens are signed and verified with.
///
/// Signing uses the first key; verification accepts a token signed with any of them. To rotate
/// a key, put the new one first and keep the old one until the tokens it signed have expired.
///
/// ```
/// use std::time::Duration;
///
/// use omni::token::Keys;
///
/// let old = Keys::new([1; 32])?;
/// let token = old.sign("counter", &serde_json::Value::Null, Duration::from_secs(60));
///
/// let rotated = Keys::rotating([[2; 32], [1; 32]])?;
/// assert!(rotated.verify("counter", &token).is_ok());
/// # Ok::<(), omni::token::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Keys {
    // Keyed MAC states rather than key bytes: each token clones one instead of rehashing the key.
    macs: Vec<HmacSha256>,
}

impl Keys {
    /// One key, used both to sign and to verify.
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] if the key has fewer than [`MIN_KEY_LEN`] bytes.
    pub fn new(key: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        Self::rotating([key])
    }

    /// Several keys, newest first: the first signs, any of them verifies.
    ///
    /// # Errors
    ///
    /// [`KeyError::Empty`] if there is no key, [`KeyError::TooShort`] if one has fewer than
    /// [`MIN_KEY_LEN`] bytes.
    pub fn rotating<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> Result<Self, KeyError> {
        let macs = keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| {
                let key = key.as_ref();
                if key.len() < MIN_KEY_LEN {
                    return Err(KeyError::TooShort {
                        index,
                        len: key.len(),
                    });
                }
                Ok(HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if macs.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self { macs })
    }

    /// Signs a token for `module` carrying `props`, accepted for `ttl` from now.
    ///
    /// Typed props go through [`serde_json::to_value`] first; [`Claims::props_as`] reads them
    /// back.
    #[must_use]
    pub fn sign(&self, module: &str, props: &Value, ttl: Duration) -> String {
        self.sign_at(module, props, ttl, SystemTime::now())
    }

    /// [`sign`](Self::sign) as if the time were `now`.
    #[must_use]
    pub fn sign_at(&self, module: &str, props: &Value, ttl: Duration, now: SystemTime) -> String {
        // A ttl past the end of `SystemTime` means "never": saturate instead of wrapping into
        // a token that is already expired.
        let expires_at = now.checked_add(ttl).map_or(u64::MAX, unix_seconds);
        let claims = serde_json::to_vec(&ClaimsRef {
            m: module,
            p: props,
            e: expires_at,
        })
        .expect("a string, a JSON value and an integer always serialize");
        let claims = URL_SAFE_NO_PAD.encode(claims);
        let tag = self.macs[0]
            .clone()
            .chain_update(claims.as_bytes())
            .finalize()
            .into_bytes();
        format!("{claims}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks that `token` was signed with one of the keys, for `expected_module`, and has not
    /// expired; returns what it carries.
    ///
    /// # Errors
    ///
    /// A [`TokenError`]; every variant is answered with [`ErrorCode::BadToken`].
    pub fn verify(&self, expected_module: &str, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(expected_module, token, SystemTime::now())
    }

    /// [`verify`](Self::verify) as if the time were `now`.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub fn verify_at(
        &self,
        expected_module: &str,
        token: &str,
        now: SystemTime,
    ) -> Result<Claims, TokenError> {
        let (claims, tag) = token
            .split_once('.')
            .filter(|(_, tag)| !tag.contains('.'))
            .ok_or(TokenError::Malformed {
                reason: "not two dot-separated parts",
            })?;
        let not_base64 = |_| TokenError::Malformed {
            reason: "a part is not unpadded base64url",
        };
        let claims_json = URL_SAFE_NO_PAD.decode(claims).map_err(not_base64)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(not_base64)?;
        if tag.len() != TAG_LEN {
            return Err(TokenError::Malformed {
                reason: "the signature is not 32 bytes",
            });
        }

        // The MAC covers the encoded text as sent, so no re-encoding of the claims passes.
        // `verify_slice` compares in constant time; stopping at the first matching key tells
        // a timing observer only which key signed, never anything about a tag.
        let signed = self.macs.iter().any(|mac| {
            mac.clone()
                .chain_update(claims.as_bytes())
                .verify_slice(&tag)
                .is_ok()
        });
        if !signed {
            return Err(TokenError::BadSignature);
        }

        let ClaimsOwned { m, p, e } =
            serde_json::from_slice(&claims_json).map_err(|_| TokenError::Malformed {
                reason: "the claims are not the expected JSON object",
            })?;
        // The module first: a token used on the wrong module is a bug worth naming even once
        // the token has also expired.
        if m != expected_module {
            return Err(TokenError::WrongModule {
                token_module: m,
                expected: expected_module.to_owned(),
            });
        }
        if unix_seconds(now) >= e {
            return Err(TokenError::Expired { at: e });
        }
        Ok(Claims {
            module: m,
            props: p,
            expires_at: e,
        })
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keyed MAC states are as good as the keys for forging tokens, so logs see only a count.
        f.debug_struct("Keys")
            .field("count", &self.macs.len())
            .finish_non_exhaustive()
    }
}

/// Keys that cannot sign tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No key was given.
    #[error("no token key was given")]
    Empty,
    /// A key is shorter than [`MIN_KEY_LEN`].
    #[error("token key {index} is {len} bytes; at least {MIN_KEY_LEN} are needed")]
    TooShort {
        /// The key's position in the list, 0 for the signing key.
        index: usize,
        /// The key's length in bytes.
        len: usize,
    },
}

/// What a verified token carries.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Claims {
    /// The module the token was signed for, which is the one it was verified for.
    pub module: String,
    /// The props signed into it; [`Claims::props_as`] gives a typed view.
    pub props: Value,
    /// When the token stops being accepted, in seconds since the Unix epoch.
    pub expires_at: u64,
}

impl Claims {
    /// The props as the type the application signed them from.
    ///
    /// # Errors
    ///
    /// The props do not deserialize as `T`.
    pub fn props_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.props)
    }
}

/// Why a token was refused.
///
/// The variants are kept apart for the server's logs; the client is answered
/// [`ErrorCode::BadToken`] whatever the reason. No message includes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not `claims.signature` in unpadded base64url, or the claims are not the expected JSON.
    #[error("malformed token: {reason}")]
    Malformed {
        /// Which part of the format is broken.
        reason: &'static str,
    },
    /// Signed with none of the keys: tampered with, or signed with another key.
    #[error("the token's signature matches none of the keys")]
    BadSignature,
    /// The token's lifetime is over.
    #[error("the token expired at {at} (unix seconds)")]
    Expired {
        /// When it expired, in seconds since the Unix epoch.
        at: u64,
    },
    /// The token was signed for another module.
    #[error("the token is for module `{token_module}`, not `{expected}`")]
    WrongModule {
        /// The module named in the token.
        token_module: String,
        /// The module it was presented to.
        expected: String,
    },
}

impl TokenError {
    /// The code of the `error` frame the mux answers with: [`ErrorCode::BadToken`] for all.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::BadToken
    }
}

/// The claims as signed; short names keep tokens small enough for an HTML attribute.
#[derive(Serialize)]
struct ClaimsRef<'a> {
    m: &'a str,
    p: &'a Value,
    e: u64,
}

/// The claims as read back.
#[derive(Deserialize)]
// A field this version does not know, such as a future "not before", could be a condition it
// would silently skip; refusing the token is the safe reading.
#[serde(deny_unknown_fields)]
struct ClaimsOwned {
    m: String,
    p: Value,
    e: u64,
}

/// Whole seconds since the Unix epoch; a clock set before 1970 reads as 0.
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const OTHER_KEY: [u8; 32] = [9; 32];
    const NOW: u64 = 1_700_000_000;
    const TTL: Duration = Duration::from_secs(600);

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn keys() -> Keys {
        Keys::new(KEY).unwrap()
    }

    fn props() -> Value {
        json!({ "room": "lobby", "user": 7 })
    }

    /// A token for `chat` signed with [`KEY`] at [`NOW`].
    fn token() -> String {
        keys().sign_at("chat", &props(), TTL, at(NOW))
    }

    fn verify(keys: &Keys, module: &str, token: &str) -> Result<Claims, TokenError> {
        keys.verify_at(module, token, at(NOW + 1))
    }

    /// `token` with its claims edited and re-encoded, keeping the old signature.
    fn reclaim(token: &str, edit: impl FnOnce(&mut Value)) -> String {
        let (claims, tag) = token.split_once('.').unwrap();
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        edit(&mut claims);
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        format!("{claims}.{tag}")
    }

    fn is_malformed(result: Result<Claims, TokenError>) -> bool {
        matches!(result, Err(TokenError::Malformed { .. }))
    }

    #[test]
    fn round_trip() {
        let claims = verify(&keys(), "chat", &token()).unwrap();
        assert_eq!(claims.module, "chat");
        assert_eq!(claims.props, props());
        assert_eq!(claims.expires_at, NOW + 600);

        #[derive(Debug, PartialEq, Deserialize)]
        struct ChatProps {
            room: String,
            user: u32,
        }
        assert_eq!(
            claims.props_as::<ChatProps>().unwrap(),
            ChatProps {
                room: "lobby".into(),
                user: 7
            }
        );
        assert!(claims.props_as::<Vec<u8>>().is_err());
    }

    #[test]
    fn wire_format_is_base64url_claims_dot_hmac() {
        let token = token();
        assert!(!token.contains('='), "no padding: {token}");
        let (claims, tag) = token.split_once('.').unwrap();
        let json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(json, json!({ "m": "chat", "p": props(), "e": NOW + 600 }));

        let mut mac = HmacSha256::new_from_slice(&KEY).unwrap();
        mac.update(claims.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(tag).unwrap(),
            mac.finalize().into_bytes().to_vec()
        );
    }

    #[test]
    fn tampered_props_are_refused() {
        let forged = reclaim(&token(), |claims| claims["p"]["user"] = json!(1));
        assert_eq!(
            verify(&keys(), "chat", &forged),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_module_is_refused() {
        let forged = reclaim(&token(), |claims| claims["m"] = json!("admin"));
        assert_eq!(
            verify(&keys(), "admin", &forged),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_expiry_is_refused() {
        let forged = reclaim(&token(), |claims| claims["e"] = json!(u64::MAX));
        assert_eq!(
            verify(&keys(), "chat", &forged),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn wrong_key_is_refused() {
        let other = Keys::new(OTHER_KEY).unwrap();
        assert_eq!(
            verify(&other, "chat", &token()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn rotation_verifies_with_any_key_and_signs_with_the_first() {
        let rotated = Keys::rotating([OTHER_KEY, KEY]).unwrap();
        assert_eq!(verify(&rotated, "chat", &token()).unwrap().props, props());

        let fresh = rotated.sign_at("chat", &props(), TTL, at(NOW));
        assert!(verify(&rotated, "chat", &fresh).is_ok());
        assert!(verify(&Keys::new(OTHER_KEY).unwrap(), "chat", &fresh).is_ok());
        assert_eq!(
            verify(&keys(), "chat", &fresh),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let token = token();
        assert!(keys().verify_at("chat", &token, at(NOW + 599)).is_ok());
        assert_eq!(
            keys().verify_at("chat", &token, at(NOW + 600)),
            Err(TokenError::Expired { at: NOW + 600 })
        );

        let instant = keys().sign_at("chat", &props(), Duration::ZERO, at(NOW));
        assert_eq!(
            keys().verify_at("chat", &instant, at(NOW)),
            Err(TokenError::Expired { at: NOW })
        );
    }

    #[test]
    fn an_endless_ttl_saturates_instead_of_wrapping() {
        let token = keys().sign_at("chat", &props(), Duration::MAX, at(NOW));
        assert_eq!(
            verify(&keys(), "chat", &token).unwrap().expires_at,
            u64::MAX
        );
    }

    #[test]
    fn a_token_for_one_module_is_refused_by_another() {
        assert_eq!(
            verify(&keys(), "counter", &token()),
            Err(TokenError::WrongModule {
                token_module: "chat".into(),
                expected: "counter".into(),
            })
        );
    }

    #[test]
    fn truncated_tokens_are_refused() {
        let token = token();
        let dot = token.find('.').unwrap();
        for len in 0..token.len() {
            let result = verify(&keys(), "chat", &token[..len]);
            assert!(result.is_err(), "a prefix of {len} bytes verified");
            if len <= dot {
                assert!(is_malformed(result), "a prefix of {len} bytes");
            }
        }
    }

    #[test]
    fn non_base64_garbage_is_malformed() {
        let tag = token().split_once('.').unwrap().1.to_owned();
        for garbage in [
            "not a token",
            "%%%.%%%",
            "eyJ+.abc/",
            &format!("eyJt!.{tag}"),
            &format!("{}=.{tag}", token().split_once('.').unwrap().0),
            "\u{0}.\u{ff}",
        ] {
            assert!(
                is_malformed(verify(&keys(), "chat", garbage)),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn empty_string_is_malformed() {
        assert!(is_malformed(verify(&keys(), "chat", "")));
        assert!(is_malformed(verify(&keys(), "chat", ".")));
    }

    #[test]
    fn extra_dots_are_malformed() {
        let token = token();
        for dotted in [
            format!("{token}."),
            format!(".{token}"),
            token.replacen('.', "..", 1),
            format!("{token}.{}", token.split_once('.').unwrap().1),
        ] {
            assert!(is_malformed(verify(&keys(), "chat", &dotted)), "{dotted}");
        }
    }

    #[test]
    fn signed_claims_of_the_wrong_shape_are_malformed() {
        // Only a key holder can produce these, but a verifier must still not trust their shape.
        let sign_raw = |json: &str| {
            let claims = URL_SAFE_NO_PAD.encode(json);
            let mut mac = HmacSha256::new_from_slice(&KEY).unwrap();
            mac.update(claims.as_bytes());
            format!(
                "{claims}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        };
        for json in [
            "not json",
            "[]",
            r#"{"m":"chat","p":null}"#,
            r#"{"m":"chat","p":null,"e":-1}"#,
            r#"{"m":"chat","p":null,"e":9999999999,"nbf":0}"#,
        ] {
            assert!(
                is_malformed(verify(&keys(), "chat", &sign_raw(json))),
                "{json}"
            );
        }
        assert!(
            verify(
                &keys(),
                "chat",
                &sign_raw(r#"{"m":"chat","p":null,"e":9999999999}"#)
            )
            .is_ok()
        );
    }

    #[test]
    fn keys_are_refused_when_missing_or_short() {
        assert_eq!(
            Keys::rotating(Vec::<[u8; 32]>::new()).unwrap_err(),
            KeyError::Empty
        );
        assert_eq!(
            Keys::new([0; 31]).unwrap_err(),
            KeyError::TooShort { index: 0, len: 31 }
        );
        assert_eq!(
            Keys::rotating([&KEY[..], &[0; 8][..]]).unwrap_err(),
            KeyError::TooShort { index: 1, len: 8 }
        );
    }

    #[test]
    fn debug_and_errors_show_no_key_material() {
        let keys = Keys::rotating([KEY, OTHER_KEY]).unwrap();
        assert_eq!(format!("{keys:?}"), "Keys { count: 2, .. }");
        assert_eq!(
            verify(&keys, "chat", "e30.AAAA").unwrap_err().to_string(),
            "malformed token: the signature is not 32 bytes"
        );
        assert_eq!(
            TokenError::BadSignature.to_string(),
            "the token's signature matches none of the keys"
        );
    }

    #[test]
    fn every_refusal_is_answered_bad_token() {
        for error in [
            TokenError::Malformed { reason: "x" },
            TokenError::BadSignature,
            TokenError::Expired { at: NOW },
            TokenError::WrongModule {
                token_module: "a".into(),
                expected: "b".into(),
            },
        ] {
            assert_eq!(error.code(), ErrorCode::BadToken);
            assert_eq!(error.code().as_str(), "bad_token");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(input in any::<String>()) {
            let _ = verify(&keys(), "chat", &input);
        }

        #[test]
        fn token_shaped_strings_never_verify(input in "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_.-]{0,60}") {
            prop_assert!(verify(&keys(), "chat", &input).is_err());
        }

        #[test]
        fn byte_flips_never_verify(index in any::<prop::sample::Index>(), mask in 1..=u8::MAX) {
            let mut bytes = token().into_bytes();
            let at = index.index(bytes.len());
            bytes[at] ^= mask;
            // A flip may leave UTF-8; the lossy text is still a changed token.
            let flipped = String::from_utf8_lossy(&bytes);
            prop_assert!(verify(&keys(), "chat", &flipped).is_err());
        }

        #[test]
        fn any_module_and_props_round_trip(module in ".{0,20}", room in ".{0,20}", user in any::<i64>()) {
            let props = json!({ "room": room, "user": user });
            let token = keys().sign_at(&module, &props, TTL, at(NOW));
            let claims = verify(&keys(), &module, &token).unwrap();
            prop_assert_eq!(claims.module, module);
            prop_assert_eq!(claims.props, props);
        }
    }
}
