#[omni::protocol]
pub enum Msg {
    #[client]
    Ask,
    #[server]
    #[omni(rename = "answer")]
    Answer,
    #[server]
    #[omni(rename = "answer")]
    Reply,
}

fn main() {}
