//! Client frames from arbitrary bytes, as a server reads them off a socket.
//!
//! Oracles, in JSON and in MessagePack: decoding never panics; a frame that decodes encodes
//! to text that decodes to the same frame and encodes to the same text again; and `decode_str`, the path for WebSocket
//! text the socket layer already checked, agrees exactly with `decode` (same frame, or the
//! same error with the same code, message, `ref` and `id`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use omni_runtime::ClientFrame;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The same bytes read as MessagePack: never a panic, and a frame round-trips.
    if let Ok(frame) = ClientFrame::<Value>::decode_msgpack(data) {
        let packed = frame.encode_msgpack().expect("a decoded frame encodes");
        let again = ClientFrame::<Value>::decode_msgpack(&packed)
            .unwrap_or_else(|err| panic!("the encoder's own MessagePack does not decode: {err}"));
        assert_eq!(
            again, frame,
            "MessagePack decode -> encode -> decode changed the frame"
        );
    }
    let decoded = ClientFrame::<Value>::decode(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(
            ClientFrame::<Value>::decode_str(text),
            decoded,
            "decode_str and decode disagree"
        );
    }
    let Ok(frame) = decoded else {
        return;
    };
    let text = frame.encode().expect("a decoded frame encodes");
    let again = ClientFrame::<Value>::decode(text.as_bytes())
        .unwrap_or_else(|err| panic!("the encoder's own text {text} does not decode: {err}"));
    assert_eq!(
        again, frame,
        "decode -> encode -> decode changed the frame: {text}"
    );
    // Value equality calls -0.0 and 0.0 equal; the text does not.
    assert_eq!(again.encode().expect("encodes"), text);
});
