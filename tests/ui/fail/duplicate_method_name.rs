#[omni::protocol]
#[allow(non_camel_case_types)]
pub enum Msg {
    #[client]
    FetchAll,
    #[client]
    #[omni(rename = "fetch_all_v2")]
    Fetch_All,
}

fn main() {}
