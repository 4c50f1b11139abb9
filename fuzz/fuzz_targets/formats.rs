//! Format detection and decoding of arbitrary lines: detection over a
//! buffer's first lines, then each line's format, time and labels, as
//! replay and watch do it. Nothing may panic.
#![no_main]

use faultline_formats::{Decoder, Format, line_labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let (format, node_prefixed) = Format::detect_prefixed(lines.iter().take(20).copied());
    let decoder = Decoder {
        format,
        year: 2026,
        boot_ns: Some(1_700_000_000_000_000_000),
        node_prefixed,
    };
    for line in lines {
        let _ = Format::of_line(line);
        let _ = decoder.timestamp(line);
        let _ = line_labels(format, line);
        let _ = faultline_formats::strip_node_prefix(line);
    }
});
