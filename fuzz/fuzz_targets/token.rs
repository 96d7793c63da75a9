//! Join tokens against a fixed key: `Keys::verify` must never panic and never accept a token
//! the key did not sign.
//!
//! The first input byte picks a mode:
//!
//! - even: the rest is `module \n token` (or just a token, for module `chat`), verified as
//!   is. If it is accepted, signing its claims again must give back exactly the same token:
//!   the key holder writes one spelling of each claim set, so any other accepted spelling is
//!   a forgery or a malleable encoding. Keys rotated onto a second key must agree.
//! - odd: one of a few tokens signed here is edited by the rest of the input (bit flips,
//!   inserted and deleted bytes, truncation) and verified. Only the untouched token may pass;
//!   an edited one must be refused as malformed or as badly signed, never later (a wrong
//!   module or an expiry is only reported for a token whose signature held).
//!
//! The clock is fixed so a crash replays the same way any day.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use omni_runtime::ErrorCode;
use omni_runtime::token::{Keys, TokenError};
use serde_json::{Value, json};

/// The fuzzing key. `cargo xtask fuzz-seeds` signs the seed tokens with the same bytes.
const KEY: &[u8; 32] = b"omni fuzz key: not a secret, 32B";
const OTHER_KEY: &[u8; 32] = b"another key that signs nothing.!";
/// The fixed "now", which the seed tokens are also signed at.
const NOW: u64 = 1_700_000_000;
const TTL: Duration = Duration::from_secs(3600);

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys::new(KEY).expect("32 bytes"));
static ROTATED: LazyLock<Keys> =
    LazyLock::new(|| Keys::rotating([OTHER_KEY, KEY]).expect("32 bytes each"));

/// What the edited tokens start from: (module, props, token).
static SIGNED: LazyLock<Vec<(&'static str, Value, String)>> = LazyLock::new(|| {
    [
        ("chat", json!({"room": "lobby", "user": 7})),
        ("counter", Value::Null),
        (
            "zoë",
            json!({"text": "say \"hi\"\n", "list": [1, -2, true, null, {}]}),
        ),
    ]
    .into_iter()
    .map(|(module, props)| {
        let token = KEYS.sign_at(module, &props, TTL, at(NOW));
        (module, props, token)
    })
    .collect()
});

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        as_given(rest);
    } else {
        edited(usize::from(mode >> 1), rest);
    }
});

fn as_given(rest: &[u8]) {
    let (module, token) = match rest.iter().position(|&b| b == b'\n') {
        Some(newline) => (
            String::from_utf8_lossy(&rest[..newline]),
            String::from_utf8_lossy(&rest[newline + 1..]),
        ),
        None => ("chat".into(), String::from_utf8_lossy(rest)),
    };
    let result = KEYS.verify_at(&module, &token, at(NOW));
    assert_eq!(
        ROTATED.verify_at(&module, &token, at(NOW)),
        result,
        "adding a second key changed the verdict"
    );
    match result {
        Ok(claims) => {
            assert_eq!(claims.module, module);
            assert!(claims.expires_at > NOW, "accepted an expired token");
            // Signing at the epoch with a ttl of `expires_at` seconds writes that expiry.
            let resigned = KEYS.sign_at(
                &claims.module,
                &claims.props,
                Duration::from_secs(claims.expires_at),
                UNIX_EPOCH,
            );
            assert_eq!(resigned, token, "accepted a token the key did not write");
        }
        Err(err) => assert_eq!(err.code(), ErrorCode::BadToken),
    }
}

fn edited(pick: usize, rest: &[u8]) {
    let (module, props, original) = &SIGNED[pick % SIGNED.len()];
    // Every other pick presents the token to a module it was not signed for.
    let expected_module = if (pick / SIGNED.len()).is_multiple_of(2) {
        module
    } else {
        "elsewhere"
    };
    let mut bytes = original.clone().into_bytes();
    let mut u = Unstructured::new(rest);
    while !u.is_empty() {
        edit(&mut bytes, &mut u);
    }
    // An edit may leave UTF-8; the lossy text is still an edited token.
    let token = String::from_utf8_lossy(&bytes);
    let result = KEYS.verify_at(expected_module, &token, at(NOW));

    if token != *original {
        assert!(
            matches!(
                result,
                Err(TokenError::Malformed { .. } | TokenError::BadSignature)
            ),
            "an edited token got past the signature check: {token:?} -> {result:?}"
        );
    } else if expected_module == *module {
        let claims = result.expect("the untouched token verifies");
        assert_eq!(
            (&claims.module, &claims.props),
            (&module.to_string(), props)
        );
        assert_eq!(claims.expires_at, NOW + TTL.as_secs());
    } else {
        assert_eq!(
            result,
            Err(TokenError::WrongModule {
                token_module: module.to_string(),
                expected: expected_module.to_owned(),
            })
        );
    }
}

/// One edit of `token`, chosen by the fuzzer. Reads at least one byte while any are left.
fn edit(token: &mut Vec<u8>, u: &mut Unstructured<'_>) {
    let Ok(op) = u.int_in_range(0..=3u8) else {
        return;
    };
    let len = token.len();
    let Ok(at) = u.int_in_range(0..=len) else {
        return;
    };
    match op {
        0 if at < len => token[at] ^= u.int_in_range(1..=u8::MAX).unwrap_or(1),
        1 => token.insert(at, u.arbitrary().unwrap_or(b'A')),
        2 if at < len => {
            token.remove(at);
        }
        3 => token.truncate(at),
        _ => {}
    }
}
