// A field type with serde derives but no `#[omni::wire]` travels, and the schema knows it by
// name only: that is a warning on the type, not an error. The error at the end only makes
// trybuild keep the compiler's output, so the warning is checked too.

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plain {
    pub id: u32,
}

#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    #[client]
    Send(Plain),
    #[server]
    Echo { value: u32, list: Vec<Plain> },
}

fn main() {
    let id = <Msg as omni::Protocol>::version();
    let _: () = id;
}
