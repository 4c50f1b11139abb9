//! Loki's answers: a `query_range` response and a tail frame.
#![no_main]

use faultline_sources::loki::{parse_query_range, parse_tail_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_query_range(data);
    let _ = parse_tail_frame(data);
});
