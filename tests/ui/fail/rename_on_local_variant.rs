#[omni::protocol]
pub enum Msg {
    #[omni(rename = "draft")]
    DraftChanged(String),
    #[client]
    Send(String),
}

fn main() {}
