#[omni::protocol]
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    #[client]
    Say(&str),
    #[client]
    Upload { name: String, data: &[u8] },
    #[server]
    Heard(Vec<&'static str>),
}

fn main() {}
