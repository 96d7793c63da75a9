//! What travels on the channels: broadcasts, numbered topic messages and presence
//! announcements, each behind a one-line header naming the process that published it.

use serde::{Deserialize, Serialize};

use crate::presence::registry::{Changes, NodeId, Tracked};
use crate::server::encoded::{Outgoing, TopicFrame};
use crate::{Seq, SessionId};

/// The message published for one broadcast: a header line naming the publishing process, the
/// excluded session and the frame's type, then the frame itself.
pub(super) fn encode(node: u128, except: Option<SessionId>, frame: &Outgoing) -> Vec<u8> {
    let except = except.map_or_else(|| "-".to_owned(), |id| id.to_string());
    let mut out = format!("{node:032x} {except} {}\n", frame.kind()).into_bytes();
    out.extend_from_slice(frame.text().as_bytes());
    out
}

/// A message that arrived through the subscription.
#[derive(Debug)]
pub(super) enum Received {
    /// A broadcast from another process, for every subscriber but `except`.
    Broadcast {
        except: Option<SessionId>,
        frame: Outgoing,
    },
    /// A numbered message of a sequenced topic, from any process (this one included).
    Topic(TopicFrame),
    /// Another process's presence announcement.
    Presence(NodeId, Announcement),
}

/// Reads a published message: a header line (publishing process, excluded session, kind and,
/// for a topic message, its number), then the frame (a topic message: its `msg` frame, a
/// newline, its `push` frame; JSON text has no raw newlines).
pub(super) fn decode(own_node: u128, payload: &[u8]) -> Option<Received> {
    let text = std::str::from_utf8(payload).ok()?;
    let (header, frame) = text.split_once('\n')?;
    let mut parts = header.split(' ');
    let node = u128::from_str_radix(parts.next()?, 16).ok()?;
    let except = parts.next()?;
    if parts.clone().next() == Some("presence") {
        if node == own_node {
            return None;
        }
        return Some(Received::Presence(node, serde_json::from_str(frame).ok()?));
    }
    if parts.clone().next() == Some("topic") {
        let seq: Seq = parts.nth(1)?.parse().ok()?;
        let (msg, push) = frame.split_once('\n')?;
        return Some(Received::Topic(TopicFrame::new(
            seq,
            Outgoing::new("msg", None, msg),
            Outgoing::push(push),
        )));
    }
    if node == own_node {
        // Already delivered locally when it was broadcast.
        return None;
    }
    let except = match except {
        "-" => None,
        id => Some(id.parse().ok()?),
    };
    let kind = match parts.next()? {
        "push" => "push",
        "msg" => "msg",
        _ => return None,
    };
    Some(Received::Broadcast {
        except,
        frame: Outgoing::new(kind, None, frame),
    })
}

/// One process's presence announcement to the others, as JSON on the prefix's own channel.
/// A plain struct (no tagged enum): entries' metadata is raw JSON, which serde can only read
/// straight from the text.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Announcement {
    pub(super) kind: AnnouncementKind,
    /// `changes`: its number; otherwise the number of the process's last changes.
    #[serde(default)]
    pub(super) seq: u64,
    /// Only for this process (its name as in the header); absent: for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) to: Option<String>,
    /// `changes`: the entries that joined; `state`: every entry of the process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) joins: Vec<Tracked>,
    /// `changes`: the refs of the entries that left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) leaves: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum AnnouncementKind {
    Changes,
    State,
    Beat,
    /// Asks for the whole state (of the process named in `to`, or of all).
    Sync,
}

impl Announcement {
    pub(super) fn changes(seq: u64, changes: Changes) -> Self {
        Self {
            kind: AnnouncementKind::Changes,
            seq,
            to: None,
            joins: changes.joins,
            leaves: changes.leaves,
        }
    }
}

pub(super) fn node_name(node: NodeId) -> String {
    format!("{node:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_messages_round_trip_and_own_ones_are_skipped() {
        let frame = Outgoing::push(r#"{"type":"push","payload":1}"#);
        let from = SessionId::from_u128(5);
        let payload = encode(7, Some(from), &frame);
        assert!(decode(7, &payload).is_none());
        let Some(Received::Broadcast {
            except,
            frame: decoded,
        }) = decode(8, &payload)
        else {
            panic!("not a broadcast");
        };
        assert_eq!(except, Some(from));
        assert_eq!(decoded.text(), frame.text());
        assert_eq!(decoded.kind(), "push");
        assert!(decode(8, b"garbage").is_none());

        // What the publish script sends: read by every process, the publisher's too.
        let topic = format!(
            "{:032x} - topic 12\n{{\"type\":\"msg\",\"seq\":12}}\n{{\"type\":\"push\"}}",
            7u128
        );
        let Some(Received::Topic(frame)) = decode(7, topic.as_bytes()) else {
            panic!("not a topic message");
        };
        assert_eq!(frame.seq(), 12);
        assert_eq!(frame.sequenced().text(), r#"{"type":"msg","seq":12}"#);
        assert_eq!(frame.push().text(), r#"{"type":"push"}"#);
    }
}
