#[omni::protocol]
#[omni(rename_all = "camelCase")]
pub enum Msg {
    #[client]
    FetchAll,
}

fn main() {}
