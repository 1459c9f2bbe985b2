//! Arbitrary bytes into the datagram and stream decoders: never a panic, and anything that
//! decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swim_proto::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(dg) = wire::decode_datagram::<u32>(data, b"") {
        let again = wire::encode_datagram(b"", &dg.message, &dg.updates);
        let back = wire::decode_datagram::<u32>(&again, b"").expect("re-encoded datagram decodes");
        assert_eq!(back, dg);
    }
    if let Ok(sm) = wire::decode_stream::<u32>(data, b"") {
        let again = wire::encode_stream(b"", &sm.header, &sm.updates);
        let back = wire::decode_stream::<u32>(&again, b"").expect("re-encoded stream decodes");
        assert_eq!(back, sm);
    }
});
