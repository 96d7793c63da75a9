// Nothing close to a known option: the error lists them.
#[omni::protocol(version = "2")]
pub enum Msg {
    #[client]
    Ping,
}

fn main() {}
