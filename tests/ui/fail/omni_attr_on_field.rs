#[omni::protocol]
pub enum Msg {
    #[client]
    Presence {
        #[omni(rename = "n")]
        online: u32,
    },
}

fn main() {}
