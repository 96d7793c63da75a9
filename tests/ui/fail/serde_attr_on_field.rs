#[omni::protocol]
pub enum Msg {
    #[client]
    Presence {
        #[serde(rename = "n")]
        online: u32,
    },
}

fn main() {}
