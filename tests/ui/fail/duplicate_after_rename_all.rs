#[omni::protocol(rename_all = "lowercase")]
pub enum Msg {
    #[client]
    FooBar,
    #[client]
    Foobar,
}

fn main() {}
