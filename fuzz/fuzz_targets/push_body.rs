//! The Loki push receiver's body decoding: snappy protobuf, JSON and
//! gzip JSON — streams or the reason for a 400, never a panic, and never
//! more memory than the decoded limit.
#![no_main]

use faultline_sources::push::{decode_json, decode_protobuf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_protobuf(data);
    let _ = decode_json(data, false);
    let _ = decode_json(data, true);
});
