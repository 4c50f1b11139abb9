//! The slow reference the fast path is checked against: every signature's
//! own regex run on every line separately — on the line's unescaped view
//! first, as [`Matcher::scan`](crate::Matcher::scan) prefers what the
//! component printed — with `unless` applied. The differential tests and
//! the differential fuzz target compare the two; nothing else uses it.

use faultline_core::{Class, Severity};
use faultline_signatures::{Location, Signature, Template};

use crate::unescape;

/// One hit: (line start in the buffer, signature index, named captures
/// that took part, in pattern order).
pub type Found = (usize, usize, Vec<(String, Vec<u8>)>);

/// The hits of `signatures` in `buf` (whole lines separated by `\n`, a
/// trailing `\r` not part of a line), line by line and, within a line, by
/// signature index, the specific signatures first and the safety net
/// (`fallback`) only on a line none of them took — the order
/// [`Matcher::scan`](crate::Matcher::scan) reports them in.
pub fn scan(signatures: &[Signature], buf: &[u8]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut start = 0;
    let (mut view, mut tmp) = (Vec::new(), Vec::new());
    for raw in buf.split_inclusive(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let has_view = unescape::unescape_into(line, &mut view, &mut tmp);
        let specific = found.len();
        let by_kind = signatures
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.fallback)
            .chain(signatures.iter().enumerate().filter(|(_, s)| s.fallback));
        for (index, signature) in by_kind {
            if signature.fallback && found.len() > specific {
                break;
            }
            let texts: &[&[u8]] = if has_view {
                &[&view[..], line]
            } else {
                &[line]
            };
            let Some((text, captures)) = texts
                .iter()
                .find_map(|t| signature.regex.get().captures(t).map(|c| (*t, c)))
            else {
                continue;
            };
            if signature
                .unless
                .as_ref()
                .is_some_and(|u| u.get().is_match(text))
            {
                continue;
            }
            let named = signature
                .regex
                .get()
                .capture_names()
                .enumerate()
                .filter_map(|(i, name)| {
                    Some((name?.to_string(), captures.get(i)?.as_bytes().to_vec()))
                })
                .collect();
            found.push((start, index, named));
        }
        start += raw.len();
    }
    found
}

/// The same hits from the fast path, in the same shape.
pub fn fast(matcher: &crate::Matcher, buf: &[u8]) -> Vec<Found> {
    let mut scratch = matcher.scratch();
    let mut found = Vec::new();
    matcher.scan(
        buf,
        |_| None,
        &mut scratch,
        |hit| {
            let captures = hit
                .captures()
                .map(|(name, value)| (name.to_string(), value.to_vec()))
                .collect();
            found.push((hit.line_start(), hit.signature_index(), captures));
        },
    );
    found
}

/// A bare signature for generated tests and fuzzing: `regex` (and its
/// `unless`), nothing else that matching reads; number `index` names it.
pub fn signature(
    index: usize,
    regex: regex::bytes::Regex,
    unless: Option<regex::bytes::Regex>,
) -> Signature {
    let text = Template::parse("generated").expect("a plain template parses");
    Signature {
        id: format!("sig-{index}"),
        class: Class::DiskIoError,
        severity: Severity::Warning,
        title: "generated".into(),
        pattern: regex.as_str().to_string(),
        regex: regex.into(),
        unless: unless.map(Into::into),
        scope: Vec::new(),
        fallback: false,
        summary: text.clone(),
        remediation: text,
        examples: Vec::new(),
        near_misses: Vec::new(),
        location: Location {
            file: "generated".into(),
            line: index + 1,
        },
    }
}
