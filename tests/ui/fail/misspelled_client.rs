// The only direction marker is misspelled: one "did you mean", and no "no messages travel".
#[omni::protocol]
pub enum Msg {
    #[clinet]
    Ping,
}

fn main() {}
