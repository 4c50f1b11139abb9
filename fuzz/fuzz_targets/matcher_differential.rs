//! Differential fuzzing of the matcher: signatures and a buffer built from
//! the input; the compiled matcher must report exactly the (line,
//! signature, captures) that each signature's regex reports line by line
//! (`faultline_matcher::reference`). A mismatch is a crash.
//!
//! Input: the first line holds up to eight patterns separated by `\t`
//! (the invalid ones and those over [`MAX_PATTERN`] bytes dropped); the
//! rest is the buffer, cut into whole lines. The seeds are each built-in
//! signature's pattern over its examples and near-misses.
//!
//! Compiling is far slower than scanning, so seven mutations in eight
//! change only the buffer, and compiled sets are kept per pattern line (up
//! to 4,096, then the cache starts over): the same matcher meets many
//! buffers, which is what makes tens of millions of inputs reachable.
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use faultline_matcher::Matcher;
use faultline_matcher::reference;
use faultline_signatures::Signature;
use libfuzzer_sys::{fuzz_mutator, fuzz_target};

/// A pattern line's signatures and their compiled matcher; `None` when no
/// pattern in the line is usable.
type Compiled = Option<Rc<(Vec<Signature>, Matcher)>>;

const CACHE_CAP: usize = 4096;

/// Longest pattern used: the built-in signatures' patterns go up to about
/// 460 bytes, and the seeds are those patterns.
const MAX_PATTERN: usize = 512;

thread_local! {
    static CACHE: RefCell<HashMap<Vec<u8>, Compiled>> = RefCell::new(HashMap::new());
}

fn compile(head: &str) -> Compiled {
    let signatures: Vec<Signature> = head
        .split('\t')
        .filter(|p| !p.is_empty() && p.len() <= MAX_PATTERN)
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
        return None;
    }
    let matcher = Matcher::new(&signatures).ok()?;
    Some(Rc::new((signatures, matcher)))
}

fn compiled(head: &[u8]) -> Compiled {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(found) = cache.get(head) {
            return found.clone();
        }
        let made = std::str::from_utf8(head).ok().and_then(compile);
        if cache.len() >= CACHE_CAP {
            cache.clear();
        }
        cache.insert(head.to_vec(), made.clone());
        made
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Some(set) = compiled(&data[..split]) else {
        return;
    };
    let (signatures, matcher) = &*set;
    let mut buf = data[split + 1..].to_vec();
    if !buf.ends_with(b"\n") {
        buf.push(b'\n');
    }
    let fast = reference::fast(matcher, &buf);
    let slow = reference::scan(signatures, &buf);
    assert_eq!(
        fast,
        slow,
        "patterns {:?}",
        String::from_utf8_lossy(&data[..split])
    );
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    // Mostly the buffer, so the compiled patterns are met again.
    if seed % 8 != 0
        && let Some(split) = data[..size].iter().position(|&b| b == b'\n')
    {
        let head = split + 1;
        let tail = libfuzzer_sys::fuzzer_mutate(&mut data[head..], size - head, max_size - head);
        return head + tail;
    }
    libfuzzer_sys::fuzzer_mutate(data, size, max_size)
});
