//! The names a topic uses in Redis. A topic's counter, stream and channel share one hash tag
//! (`{prefix+topic}`), so Redis Cluster keeps them on one slot and the publish script, which
//! touches all three, stays atomic there.

use super::servers::Mode;

/// One topic's names in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TopicKeys {
    /// The last number given (a string key).
    pub(super) counter: String,
    /// The last messages, for replay (a capped stream).
    pub(super) stream: String,
    /// Where its broadcasts and numbered messages are published.
    pub(super) channel: String,
}

impl TopicKeys {
    pub(super) fn new(prefix: &str, topic: &str) -> Self {
        let mut tag = String::with_capacity(prefix.len() + topic.len() + 2);
        tag.push('{');
        escape_into(&mut tag, prefix);
        escape_into(&mut tag, topic);
        tag.push('}');
        Self {
            counter: format!("{tag}:seq"),
            stream: format!("{tag}:log"),
            channel: tag,
        }
    }
}

/// One session's names in Redis, for the session store: tagged by the session, so a cluster
/// keeps them on one slot. The suffixes are none of a topic's, so no session key is ever a
/// topic's, whatever the topic is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SessionKeys {
    /// Its claim, sequence number, client id and props (a hash).
    pub(super) state: String,
    /// The frames its log keeps (a list, oldest first).
    pub(super) frames: String,
    /// The client messages it handled (a list, newest first).
    pub(super) refs: String,
}

impl SessionKeys {
    pub(super) fn new(prefix: &str, session: crate::SessionId) -> Self {
        let mut tag = String::with_capacity(prefix.len() + 44);
        tag.push('{');
        escape_into(&mut tag, prefix);
        tag.push_str(&format!("session/{session}}}"));
        Self {
            state: format!("{tag}:session"),
            frames: format!("{tag}:frames"),
            refs: format!("{tag}:refs"),
        }
    }
}

/// The channel of what concerns every process (presence announcements, heartbeats). On a
/// single Redis, the prefix itself: a topic's channel starts with `{` and an escaped prefix,
/// so it can never be this one. On a cluster, sharded channels need a slot, so it is
/// `{prefix}:nodes`: tagged like a topic's keys, but no topic's channel has a suffix.
pub(super) fn node_channel(prefix: &str, mode: Mode) -> String {
    match mode {
        Mode::Single => prefix.to_owned(),
        Mode::Cluster => {
            let mut channel = String::with_capacity(prefix.len() + 8);
            channel.push('{');
            escape_into(&mut channel, prefix);
            channel.push_str("}:nodes");
            channel
        }
    }
}

/// Percent-escapes the characters that would end or split a hash tag (`{`, `}`) and the
/// escape itself: the tag is then the whole name, and two names never escape alike.
fn escape_into(out: &mut String, name: &str) {
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Redis Cluster hashes of a key: the text between the first `{` and the first `}`
    /// after it, if not empty; otherwise the whole key.
    fn hashed(key: &str) -> &str {
        if let Some(open) = key.find('{')
            && let Some(len) = key[open + 1..].find('}')
            && len > 0
        {
            return &key[open + 1..open + 1 + len];
        }
        key
    }

    #[test]
    fn a_topics_names_share_one_tag_that_is_the_whole_topic() {
        for topic in ["room", "a}b", "{x}", "}", "{", "", "50%", "%7D", "ü{}}{"] {
            let keys = TopicKeys::new("omni:", topic);
            let tag = hashed(&keys.counter);
            assert_eq!(tag, hashed(&keys.stream), "{topic:?}");
            assert_eq!(tag, hashed(&keys.channel), "{topic:?}");
            assert!(!tag.contains(['{', '}']), "{topic:?}");
            // The tag names the topic whole: no two topics share it.
            let unescaped = tag
                .replace("%7B", "{")
                .replace("%7D", "}")
                .replace("%25", "%");
            assert_eq!(unescaped, format!("omni:{topic}"));
        }
        assert_ne!(
            TopicKeys::new("omni:", "%7D").channel,
            TopicKeys::new("omni:", "}").channel
        );
        assert_eq!(TopicKeys::new("omni:", "room").counter, "{omni:room}:seq");
    }

    #[test]
    fn a_sessions_keys_share_a_tag_and_are_never_a_topics() {
        let id = crate::SessionId::from_u128(7);
        let keys = SessionKeys::new("omni:", id);
        assert_eq!(hashed(&keys.state), hashed(&keys.frames));
        assert_eq!(hashed(&keys.state), hashed(&keys.refs));
        let topic = TopicKeys::new("omni:", &format!("session/{id}"));
        let topic = [topic.counter, topic.stream, topic.channel];
        for key in [&keys.state, &keys.frames, &keys.refs] {
            assert!(!topic.contains(key), "{key}");
        }
    }

    #[test]
    fn the_node_channel_is_no_topics_channel() {
        for mode in [Mode::Single, Mode::Cluster] {
            for prefix in ["omni:", "{omni}:", ""] {
                let node = node_channel(prefix, mode);
                for topic in ["", "room", "}", "}:nodes", ":nodes"] {
                    assert_ne!(TopicKeys::new(prefix, topic).channel, node);
                }
            }
        }
        assert_eq!(node_channel("omni:", Mode::Single), "omni:");
        assert_eq!(node_channel("omni:", Mode::Cluster), "{omni:}:nodes");
    }

    #[test]
    fn the_cluster_node_channel_has_a_slot_of_its_own_tag() {
        // Tagged, so a cluster hashes the prefix alone: one slot, whatever follows.
        assert_eq!(hashed(&node_channel("a}b{", Mode::Cluster)), "a%7Db%7B");
    }
}
