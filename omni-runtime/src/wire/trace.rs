//! A W3C trace context parent ([`TraceParent`]): what a client sends, in `hello` or `join` or
//! as the `traceparent` HTTP header of its connect request, so that the server's spans for its
//! session join the client's trace.
//!
//! ```
//! use omni::wire::TraceParent;
//!
//! let parent = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! assert!(parent.sampled());
//! assert_eq!(parent.trace_id()[0], 0x4b);
//! assert_eq!(parent.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//!
//! // Anything else is no parent at all, never an error.
//! assert_eq!(TraceParent::parse("00-not-a-trace"), None);
//! ```

use std::fmt;

use serde::{Serialize, Serializer};

/// The HTTP header, and the `hello` and `join` field, that carries a [`TraceParent`].
pub const TRACEPARENT: &str = "traceparent";

/// A validated W3C `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`):
/// the caller's trace and the span that is the parent of the server's. Only a value that
/// passes [`parse`](Self::parse) exists, so one that is written to a log or a span is its own
/// fixed-length text, never what a client sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// The text form's length for version `00`.
    const LEN: usize = 55;

    /// A parent from its parts; `None` when either id is all zeros, which W3C calls invalid.
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8], flags: u8) -> Option<Self> {
        (trace_id != [0; 16] && parent_id != [0; 8]).then_some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Reads a `traceparent` as W3C Trace Context says: lowercase hex, version `00` exactly
    /// 55 characters long, a later version at least that long with a `-` after its first four
    /// fields (read as version `00`), version `ff` and all-zero ids invalid. Anything else is
    /// `None`: a malformed parent is ignored, never an error.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let head = bytes.get(..Self::LEN)?;
        let version = hex::<1>(&head[0..2])?[0];
        let fits = match version {
            0 => bytes.len() == Self::LEN,
            0xff => false,
            _ => bytes.len() == Self::LEN || bytes[Self::LEN] == b'-',
        };
        if !fits || head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
            return None;
        }
        Self::new(
            hex(&head[3..35])?,
            hex(&head[36..52])?,
            hex::<1>(&head[53..55])?[0],
        )
    }

    /// The trace's id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The id of the caller's span: the parent of the server's.
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// The trace flags.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller records this trace (flag `01`).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        lower_hex(&self.trace_id)
    }
}

/// `N` bytes from `2 * N` lowercase hex digits.
fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    fn nibble(d: u8) -> Option<u8> {
        match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        }
    }
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parent = lower_hex(&self.parent_id);
        write!(f, "00-{}-{parent}-{:02x}", self.trace_id_hex(), self.flags)
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl std::str::FromStr for TraceParent {
    type Err = InvalidTraceParent;

    fn from_str(text: &str) -> Result<Self, InvalidTraceParent> {
        Self::parse(text).ok_or(InvalidTraceParent)
    }
}

/// Text that is not a valid W3C `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")]
pub struct InvalidTraceParent;

impl Serialize for TraceParent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_parent_reads_and_writes_back_the_same() {
        let parent = TraceParent::parse(GOOD).unwrap();
        assert_eq!(parent.to_string(), GOOD);
        assert_eq!(
            parent.parent_id(),
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(parent.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            serde_json::to_string(&parent).unwrap(),
            format!("\"{GOOD}\"")
        );
        assert!(
            !TraceParent::parse(&GOOD.replace("-01", "-00"))
                .unwrap()
                .sampled()
        );
    }

    #[test]
    fn a_later_version_is_read_as_00_and_may_carry_more() {
        let later = GOOD.replacen("00", "01", 1);
        assert!(TraceParent::parse(&later).is_some());
        assert!(TraceParent::parse(&format!("{later}-whatever")).is_some());
        assert_eq!(TraceParent::parse(&format!("{later}x")), None);
    }

    #[test]
    fn anything_malformed_is_no_parent() {
        let cases = [
            String::new(),
            "00".into(),
            GOOD.to_uppercase(),
            format!("{GOOD}-00"),
            format!(" {GOOD}"),
            GOOD.replacen("00", "ff", 1),
            GOOD.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
            GOOD.replace("00f067aa0ba902b7", &"0".repeat(16)),
            GOOD.replace('-', "_"),
            GOOD.replace("01", "0g"),
            // Multi-byte text where the separators would be.
            "00-4bf92f3577b34da6a3ce929d0e0e473é00f067aa0ba902b7-01".into(),
            "é".repeat(60),
        ];
        for case in cases {
            assert_eq!(TraceParent::parse(&case), None, "{case:?}");
        }
    }
}
