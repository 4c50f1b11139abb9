//! The signature-file loader on arbitrary text: a library or a list of
//! problems, never a panic.
#![no_main]

use faultline_signatures::{Library, SourceFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = SourceFile {
        name: "fuzz.yaml".into(),
        text: text.into(),
    };
    if let Err(problems) = Library::from_sources(&[], &[file]) {
        // Problems render (file, line, field, message).
        let _ = problems.to_string();
    }
});
