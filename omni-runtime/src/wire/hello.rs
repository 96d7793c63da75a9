//! The rules a `hello` frame is checked by: the protocol it names, and the schema version.
//!
//! ```
//! use omni::wire::hello;
//!
//! assert!(hello::check("chat", "00ff", Some("chat"), None).is_ok());
//! let refused = hello::check("chat", "00ff", None, Some("1234")).unwrap_err();
//! assert!(refused.contains("1234"));
//! ```

/// Whether a server of protocol `name` at schema `version` serves a client whose `hello`
/// names `protocol` and `client_version` (either may be absent: not checked). `Err` holds the
/// reason the `version_mismatch` error gives.
pub fn check(
    name: &str,
    version: &str,
    protocol: Option<&str>,
    client_version: Option<&str>,
) -> Result<(), String> {
    match (protocol, client_version) {
        (Some(asked), _) if asked != name => Err(format!(
            "this endpoint serves protocol `{name}`, not `{asked}`"
        )),
        (_, Some(theirs)) if theirs != version => Err(format!(
            "client schema {theirs} differs from the server's {version}; rebuild the client \
             from the same protocol enum"
        )),
        _ => Ok(()),
    }
}
