pub struct Note {
    pub text: String,
}

#[omni::protocol]
pub enum Msg {
    #[client]
    Post(Note),
}

fn main() {}
