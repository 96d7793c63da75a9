#[omni::protocol(rename_all = "lower_case")]
pub enum Msg {
    #[client]
    Ping,
}

fn main() {}
