#[omni::wire(rename_all = "camelCase")]
pub struct ChatMessage {
    pub text: String,
}

fn main() {}
