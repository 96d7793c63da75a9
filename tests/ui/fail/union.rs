#[omni::protocol]
pub union Msg {
    pub id: u32,
    pub bits: f32,
}

fn main() {}
