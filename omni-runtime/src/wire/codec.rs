//! The codecs a connection may speak, and their names on the wire.

/// The encoding of a connection's frames, chosen by the client when it connects.
///
/// JSON (text frames) is the default; MessagePack (binary frames: the same frames as maps with
/// the same keys) is asked for with `?codec=msgpack` on `/ws` and `/mux`, and with
/// `Content-Type: application/msgpack` on `POST /http`. Server-Sent Events carry text, so an SSE
/// stream is always JSON. The `welcome` frame names the codec in force.
///
/// ```
/// use omni::wire::Codec;
///
/// assert_eq!("msgpack".parse::<Codec>(), Ok(Codec::MsgPack));
/// assert_eq!(Codec::MsgPack.content_type(), "application/msgpack");
/// assert_eq!(Codec::default(), Codec::Json);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Codec {
    /// JSON text.
    #[default]
    Json,
    /// MessagePack, binary.
    MsgPack,
}

impl Codec {
    /// Its name in a URL's `codec` parameter and in `welcome`: `json` or `msgpack`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::MsgPack => "msgpack",
        }
    }

    /// The media type of an HTTP body in this codec.
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Json => "application/json",
            Codec::MsgPack => "application/msgpack",
        }
    }

    /// The codec of an HTTP body with media type `content_type` (parameters ignored): JSON
    /// unless it names MessagePack.
    pub fn from_content_type(content_type: &str) -> Self {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if [
            "application/msgpack",
            "application/x-msgpack",
            "application/vnd.msgpack",
        ]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t))
        {
            Codec::MsgPack
        } else {
            Codec::Json
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A codec name that is neither `json` nor `msgpack`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec `{0}`: the codecs are `json` and `msgpack`")]
pub struct UnknownCodec(String);

impl std::str::FromStr for Codec {
    type Err = UnknownCodec;

    fn from_str(name: &str) -> Result<Self, UnknownCodec> {
        match name {
            "json" => Ok(Codec::Json),
            "msgpack" => Ok(Codec::MsgPack),
            other => Err(UnknownCodec(other.to_owned())),
        }
    }
}

impl ts_rs::TS for Codec {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(_: &ts_rs::Config) -> String {
        r#""json" | "msgpack""#.to_owned()
    }

    fn inline(cfg: &ts_rs::Config) -> String {
        <Self as ts_rs::TS>::name(cfg)
    }
}
