//! The structural schema of real protocols: what `#[omni::protocol]` and `#[omni::wire]`
//! describe, the id derived from it, and the check over kept versions.

use std::collections::BTreeMap;
use std::path::PathBuf;

use omni::Protocol;
use omni::schema::{
    CheckError, Field, Payload, Schema, Shape, StructDef, Tagging, TypeDef, check_schema, compare,
    schema,
};

/// The same chat protocol, before and after its nested payload struct gained a field.
mod v1 {
    #[omni::wire]
    #[derive(Debug, Clone, PartialEq)]
    pub struct ChatMessage {
        pub id: String,
        pub text: String,
    }

    #[omni::protocol]
    #[derive(Debug, Clone, PartialEq)]
    pub enum Msg {
        #[client]
        Send(ChatMessage),
        #[client]
        FetchAll,
        #[server]
        Upsert(std::collections::BTreeMap<String, ChatMessage>),
    }
}

mod v2_required {
    #[omni::wire]
    #[derive(Debug, Clone, PartialEq)]
    pub struct ChatMessage {
        pub id: String,
        pub text: String,
        pub author: String,
    }

    #[omni::protocol]
    #[derive(Debug, Clone, PartialEq)]
    pub enum Msg {
        #[client]
        Send(ChatMessage),
        #[client]
        FetchAll,
        #[server]
        Upsert(std::collections::BTreeMap<String, ChatMessage>),
    }
}

mod v2_optional {
    #[omni::wire]
    #[derive(Debug, Clone, PartialEq)]
    pub struct ChatMessage {
        pub id: String,
        pub text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub author: Option<String>,
    }

    /// A `#[server]` variant and a `#[client]` one added, the Rust type renamed.
    #[omni::wire]
    #[derive(Debug, Clone, PartialEq)]
    pub struct Typing {
        pub who: String,
    }

    #[omni::protocol(schemas = "tests/schema_kept")]
    #[derive(Debug, Clone, PartialEq)]
    pub enum Msg {
        #[client]
        Send(ChatMessage),
        #[client]
        FetchAll,
        #[client]
        StartTyping,
        #[server]
        Upsert(std::collections::BTreeMap<String, ChatMessage>),
        #[server]
        Typing(Typing),
    }
}

mod v3_removed {
    pub use super::v1::ChatMessage;

    #[omni::protocol(schemas = "tests/schema_kept")]
    #[derive(Debug, Clone, PartialEq)]
    pub enum Msg {
        #[client]
        Send(ChatMessage),
        #[server]
        Upsert(std::collections::BTreeMap<String, ChatMessage>),
    }
}

#[test]
fn a_nested_required_field_changes_the_id() {
    let before = v1::Msg::version();
    let after = v2_required::Msg::version();
    assert_eq!(before.len(), 16);
    assert!(
        before
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_ne!(before, after);
    // The id is the document's, computed once.
    assert_eq!(before, schema::<v1::Msg>().id());
    assert!(std::ptr::eq(before, v1::Msg::version()));
}

#[test]
fn a_nested_required_field_breaks_and_an_optional_one_does_not() {
    let old = schema::<v1::Msg>();
    let report = compare(&old, &schema::<v2_required::Msg>());
    let breaking: Vec<String> = report.breaking().map(|c| c.to_string()).collect();
    let since = &old.id()[..8];
    assert_eq!(
        breaking,
        [format!(
            "added required field #[client] Send.data.author of ChatMessage: builds at {since}… \
             do not write it, and this build requires it"
        )]
    );
    assert_eq!(report.changes[0].path, "#[client] Send.data.author");

    let report = compare(&old, &schema::<v2_optional::Msg>());
    assert!(report.is_compatible(), "{:#?}", report.changes);
    let compatible: Vec<&str> = report.changes.iter().map(|c| c.what.as_str()).collect();
    assert_eq!(
        compatible,
        [
            "added optional field #[client] Send.data.author of ChatMessage",
            "added #[client] variant StartTyping",
            "added #[server] variant Typing",
        ]
    );
}

#[test]
fn a_removed_client_variant_is_named() {
    let old = schema::<v1::Msg>();
    let report = compare(&old, &schema::<v3_removed::Msg>());
    let breaking: Vec<String> = report.breaking().map(|c| c.to_string()).collect();
    assert_eq!(
        breaking,
        [format!(
            "removed #[client] variant FetchAll: clients built with {}… would be refused",
            &old.id()[..8]
        )]
    );
}

mod serde_forms {
    use std::collections::BTreeMap;

    #[omni::wire]
    #[derive(Debug, Clone, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Profile {
        pub display_name: String,
        #[serde(rename = "avatar")]
        pub avatar_url: Option<String>,
        #[serde(default)]
        pub follower_count: u32,
        #[serde(skip)]
        pub cached: bool,
        #[serde(flatten)]
        pub place: Place,
        pub tags: Vec<Tag>,
    }

    #[omni::wire]
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct Place {
        pub city: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub zip: Option<String>,
    }

    #[omni::wire]
    #[derive(Debug, Clone, PartialEq)]
    #[serde(transparent)]
    pub struct Tag {
        pub label: String,
    }

    #[omni::wire]
    #[derive(Debug, Clone, PartialEq)]
    #[serde(tag = "t", content = "c", rename_all = "snake_case")]
    pub enum Event {
        Joined(Profile),
        LeftRoom {
            #[serde(rename = "who")]
            name: String,
        },
        Moved(u8, u8),
        Idle,
    }

    #[omni::wire]
    #[derive(Debug, Clone, PartialEq)]
    #[serde(untagged)]
    pub enum Loose {
        Number(i64),
        Text(String),
    }

    /// A generic page of items, named with its arguments.
    #[omni::wire]
    #[derive(Debug, Clone, PartialEq)]
    pub struct Page<T> {
        pub items: Vec<T>,
        pub next: Option<Box<Page<T>>>,
    }

    #[omni::protocol(rename_all = "snake_case")]
    #[derive(Debug, Clone, PartialEq)]
    pub enum Msg {
        #[client]
        #[omni(rename = "hello")]
        SayHello(Profile),
        #[server]
        Happened { event: Event, at: Option<u64> },
        #[server]
        Listed(Page<Tag>, BTreeMap<String, Loose>),
    }
}

#[test]
fn serde_renames_defaults_and_tagging_appear_in_the_schema() {
    use serde_forms::Msg;
    let schema = schema::<Msg>();
    assert_eq!(schema.name, "Msg");
    assert_eq!(
        schema.client.keys().collect::<Vec<_>>(),
        ["hello"],
        "`#[omni(rename)]` names the variant"
    );

    let TypeDef::Struct(profile) = &schema.types["Profile"] else {
        panic!("{:?}", schema.types["Profile"])
    };
    assert!(profile.deny_unknown_fields);
    let field = |name: &str| profile.fields.get(name).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(
        profile.fields.keys().collect::<Vec<_>>(),
        [
            "avatar",
            "city",
            "displayName",
            "followerCount",
            "tags",
            "zip"
        ],
        "renamed, camelCase, flattened, skipped"
    );
    assert!(field("displayName").required);
    assert!(
        !field("avatar").required,
        "an Option reads as None when absent"
    );
    assert!(!field("followerCount").required, "#[serde(default)]");
    assert!(field("city").required && !field("city").may_omit);
    assert!(field("zip").may_omit, "skip_serializing_if");
    assert_eq!(
        field("tags").shape,
        Shape::Seq(Box::new(Shape::Ref("Tag".into())))
    );
    assert_eq!(schema.types["Tag"], TypeDef::Newtype(Shape::String));

    let TypeDef::Enum(event) = &schema.types["Event"] else {
        panic!()
    };
    assert_eq!(
        event.tagging,
        Tagging::Adjacent {
            tag: "t".into(),
            content: "c".into()
        }
    );
    assert_eq!(
        event.variants.keys().collect::<Vec<_>>(),
        ["idle", "joined", "left_room", "moved"]
    );
    assert_eq!(
        event.variants["moved"],
        Payload::Tuple(vec![Shape::U8, Shape::U8])
    );
    let Payload::Fields(left) = &event.variants["left_room"] else {
        panic!()
    };
    assert!(left.contains_key("who"));
    let TypeDef::Enum(loose) = &schema.types["Loose"] else {
        panic!()
    };
    assert_eq!(loose.tagging, Tagging::Untagged);

    let page = "Page<Tag>";
    let TypeDef::Struct(def) = &schema.types[page] else {
        panic!("{:?}", schema.types.keys())
    };
    assert_eq!(
        def.fields["next"].shape,
        Shape::Option(Box::new(Shape::Ref(page.into()))),
        "a recursive generic type refers to itself"
    );
}

#[test]
fn the_document_reads_back_and_is_golden() {
    let schema = schema::<v2_optional::Msg>();
    let text = schema.to_json();
    assert_eq!(Schema::from_json(&text).unwrap(), schema);
    // docs/PROTOCOL.md shows this protocol's document as it is.
    let documented = format!("```json\n{text}```");
    assert!(
        include_str!("../docs/PROTOCOL.md").contains(&documented),
        "update the document in docs/PROTOCOL.md's \"Schema and compatibility\":\n{text}"
    );
    insta::assert_snapshot!(text);
}

/// `tests/schema_kept/` keeps v1's schema; the protocols that name it embed it.
#[test]
fn kept_versions_are_embedded_and_sorted_by_compatibility() {
    let v1 = schema::<v1::Msg>();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schema_kept");
    assert!(
        check_schema(&v1, &dir, false).unwrap().kept,
        "the fixture is v1's"
    );

    assert_eq!(v1::Msg::kept(), &[] as &[&str], "kept nothing unless told");
    assert_eq!(
        omni::schema::kept::<v3_removed::Msg>().unwrap(),
        std::slice::from_ref(&v1)
    );
    assert_eq!(omni::schema::compatible::<v2_optional::Msg>(), [v1.id()]);
    assert!(omni::schema::compatible::<v3_removed::Msg>().is_empty());
}

/// A directory of its own under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("omni-schema-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_check_records_then_catches_a_breaking_change() {
    let dir = TempDir::new("check");
    let v1 = schema::<v1::Msg>();

    // Nothing kept yet: passes, and says it is not kept.
    let checked = check_schema(&v1, &dir.0, false).unwrap();
    assert!(!checked.kept && !checked.recorded);

    // Recorded: the file is the document, named by its id.
    let checked = check_schema(&v1, &dir.0, true).unwrap();
    assert!(checked.recorded);
    let file = dir.0.join(format!("{}.json", v1.id()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), v1.to_json());
    assert!(check_schema(&v1, &dir.0, false).unwrap().kept);

    // A compatible successor passes against it.
    let checked = check_schema(&schema::<v2_optional::Msg>(), &dir.0, false).unwrap();
    assert_eq!(checked.compared, [v1.id()]);

    // A breaking one fails, naming the change and the kept version.
    let err = check_schema(&schema::<v3_removed::Msg>(), &dir.0, false).unwrap_err();
    let CheckError::Breaking { against, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(against.len(), 1);
    assert_eq!(against[0].0, v1.id());
    let text = err.to_string();
    assert!(
        text.contains("removed #[client] variant FetchAll"),
        "{text}"
    );
    assert!(text.contains(&format!("against {}", v1.id())), "{text}");

    // Retiring v1 (deleting its file) lets it pass.
    std::fs::remove_file(&file).unwrap();
    assert!(check_schema(&schema::<v3_removed::Msg>(), &dir.0, false).is_ok());
}

#[test]
fn a_kept_file_edited_by_hand_is_refused() {
    let dir = TempDir::new("edited");
    let mut v1 = schema::<v1::Msg>();
    check_schema(&v1, &dir.0, true).unwrap();
    let file = dir.0.join(format!("{}.json", v1.id()));
    v1.name = "Renamed".into();
    std::fs::write(&file, v1.to_json()).unwrap();
    let err = check_schema(&schema::<v1::Msg>(), &dir.0, false).unwrap_err();
    assert!(matches!(err, CheckError::Misnamed { .. }), "{err}");
}

#[test]
fn a_schema_built_by_hand_compares_by_structure() {
    // `Label(String)` in one build and a plain `String` in the other travel alike.
    let mut old = Schema::new("Msg");
    old.client
        .insert("Tag".into(), Payload::One(Shape::Ref("Label".into())));
    old.types
        .insert("Label".into(), TypeDef::Newtype(Shape::String));
    let mut new = Schema::new("Msg");
    new.client.insert("Tag".into(), Payload::One(Shape::String));
    assert!(compare(&old, &new).changes.is_empty());

    // A struct renamed in Rust, its fields unchanged, is the same on the wire.
    let fields = BTreeMap::from([("x".to_owned(), Field::new(Shape::I32))]);
    let mut old = Schema::new("Msg");
    old.server
        .insert("At".into(), Payload::One(Shape::Ref("Point".into())));
    old.types.insert(
        "Point".into(),
        TypeDef::Struct(StructDef::new(fields.clone())),
    );
    let mut new = Schema::new("Msg");
    new.server
        .insert("At".into(), Payload::One(Shape::Ref("Position".into())));
    new.types
        .insert("Position".into(), TypeDef::Struct(StructDef::new(fields)));
    assert!(compare(&old, &new).changes.is_empty());
}
