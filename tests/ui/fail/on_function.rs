#[omni::protocol]
fn msg() {}

fn main() {}
