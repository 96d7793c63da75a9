#[omni::protocol]
pub enum Msg {
    DraftChanged(String),
    #[client]
    #[omni(renam = "ping")]
    Ping,
}

fn main() {
    let draft = Msg::DraftChanged(String::new());
    match draft {
        Msg::DraftChanged(_) | Msg::Ping => {}
    }
}
