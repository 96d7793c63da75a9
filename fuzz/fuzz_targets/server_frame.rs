//! Server frames from arbitrary bytes, as a client reads them off a socket.
//!
//! Oracles, in JSON and in MessagePack: decoding never panics; a frame that decodes encodes
//! to text that decodes to the same frame and encodes to the same text again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omni_runtime::ServerFrame;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The same bytes read as MessagePack: never a panic, and a frame round-trips.
    if let Ok(frame) = ServerFrame::<Value>::decode_msgpack(data) {
        let packed = frame.encode_msgpack().expect("a decoded frame encodes");
        let again = ServerFrame::<Value>::decode_msgpack(&packed)
            .unwrap_or_else(|err| panic!("the encoder's own MessagePack does not decode: {err}"));
        assert_eq!(
            again, frame,
            "MessagePack decode -> encode -> decode changed the frame"
        );
    }
    let Ok(frame) = ServerFrame::<Value>::decode(data) else {
        return;
    };
    let text = frame.encode().expect("a decoded frame encodes");
    let again = ServerFrame::<Value>::decode(text.as_bytes())
        .unwrap_or_else(|err| panic!("the encoder's own text {text} does not decode: {err}"));
    assert_eq!(
        again, frame,
        "decode -> encode -> decode changed the frame: {text}"
    );
    // Value equality calls -0.0 and 0.0 equal; the text does not.
    assert_eq!(again.encode().expect("encodes"), text);
});
