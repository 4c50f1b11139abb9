//! The archive readers replay uses: gzip and zstd detected by their magic
//! bytes, then a tar archive's members — read to the end, bounded, with
//! errors (truncated streams) and never a panic.
#![no_main]

use std::io::Read;

use faultline::replay::input::{decompressing, is_tar};
use libfuzzer_sys::fuzz_target;

/// Decompressed bytes read at most per input (a bomb stops here).
const LIMIT: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok((reader, _encoding)) = decompressing(Box::new(data)) else {
        return;
    };
    let mut bytes = Vec::new();
    if reader.take(LIMIT).read_to_end(&mut bytes).is_err() {
        return;
    }
    if is_tar(&bytes) {
        let mut archive = tar::Archive::new(&bytes[..]);
        if let Ok(entries) = archive.entries() {
            for entry in entries.take(1000) {
                let Ok(entry) = entry else { break };
                let mut member = Vec::new();
                let _ = entry.take(LIMIT).read_to_end(&mut member);
            }
        }
    }
});
