use omni::__private::serde::{Serialize, Serializer};

/// Serialize and TS, but no Deserialize: the client could not read it back.
#[derive(omni::TS)]
#[ts(crate = "omni::ts_rs")]
pub struct Stamp(pub u64);

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

#[omni::protocol]
pub enum Msg {
    #[client]
    Ask,
    #[server]
    Answer { at: Stamp },
}

fn main() {}
