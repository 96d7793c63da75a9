#[omni::protocol]
pub struct Msg {
    pub text: String,
}

fn main() {}
