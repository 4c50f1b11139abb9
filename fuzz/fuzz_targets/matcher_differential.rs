//! Differential fuzzing of the matcher: signatures and a buffer built from
//! the input; the compiled matcher must report exactly the (line,
//! signature, captures) that each signature's regex reports line by line
//! (`faultline_matcher::reference`). A mismatch is a crash.
//!
//! Input: the first line holds up to eight patterns separated by `\t`
//! (the invalid ones dropped); the rest is the buffer, cut into whole
//! lines.
#![no_main]

use faultline_matcher::Matcher;
use faultline_matcher::reference;
use faultline_signatures::Signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(head) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let signatures: Vec<Signature> = head
        .split('\t')
        .filter(|p| !p.is_empty() && p.len() < 200)
        .take(8)
        .filter_map(|p| {
            regex::bytes::RegexBuilder::new(p)
                .size_limit(1 << 20)
                .build()
                .ok()
        })
        .enumerate()
        .map(|(i, r)| reference::signature(i, r, None))
        .collect();
    if signatures.is_empty() {
        return;
    }
    let Ok(matcher) = Matcher::new(&signatures) else {
        return;
    };
    let mut buf = data[split + 1..].to_vec();
    if !buf.ends_with(b"\n") {
        buf.push(b'\n');
    }
    let fast = reference::fast(&matcher, &buf);
    let slow = reference::scan(&signatures, &buf);
    assert_eq!(fast, slow, "patterns {head:?}");
});
