//! Which named captures of a pattern take part in every match: the ones a
//! template may name without wording for a missing value.

use std::collections::BTreeSet;

use regex_syntax::hir::{Hir, HirKind};

/// The names of every named capture of `pattern` (none when it does not
/// parse: its error is reported elsewhere).
pub fn names(pattern: &str) -> BTreeSet<String> {
    fn walk(hir: &Hir, out: &mut BTreeSet<String>) {
        match hir.kind() {
            HirKind::Capture(capture) => {
                out.extend(capture.name.as_deref().map(str::to_string));
                walk(&capture.sub, out);
            }
            HirKind::Concat(parts) | HirKind::Alternation(parts) => {
                parts.iter().for_each(|part| walk(part, out));
            }
            HirKind::Repetition(repetition) => walk(&repetition.sub, out),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    if let Some(hir) = parse(pattern) {
        walk(&hir, &mut out);
    }
    out
}

/// `pattern` parsed as the regex crate parses a bytes pattern.
fn parse(pattern: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

/// The names of the captures of `pattern` that every match sets. An
/// unparsable pattern has none (its error is reported elsewhere).
pub fn always_taken(pattern: &str) -> BTreeSet<String> {
    parse(pattern).map(|hir| taken(&hir)).unwrap_or_default()
}

fn taken(hir: &Hir) -> BTreeSet<String> {
    match hir.kind() {
        HirKind::Capture(capture) => {
            let mut names = taken(&capture.sub);
            names.extend(capture.name.as_deref().map(str::to_string));
            names
        }
        HirKind::Concat(parts) => parts.iter().flat_map(taken).collect(),
        HirKind::Alternation(branches) => {
            let mut branches = branches.iter().map(taken);
            let first = branches.next().unwrap_or_default();
            branches.fold(first, |all, next| {
                all.intersection(&next).cloned().collect()
            })
        }
        HirKind::Repetition(repetition) if repetition.min > 0 => taken(&repetition.sub),
        _ => BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pattern: &str) -> Vec<String> {
        always_taken(pattern).into_iter().collect()
    }

    #[test]
    fn optional_and_alternative_captures_are_not_always_taken() {
        assert_eq!(names(r"(?P<a>x) (?P<b>y)?"), ["a"]);
        assert_eq!(names(r"(?:(?P<a>x)|(?P<b>y))"), Vec::<String>::new());
        assert_eq!(names(r"(?:(?P<a>x) )+(?P<b>\d*)"), ["a", "b"]);
        assert_eq!(names(r"(?P<outer>a(?P<inner>b)?)"), ["outer"]);
        assert_eq!(names(r"(unclosed"), Vec::<String>::new());
    }

    #[test]
    fn every_named_capture_is_listed() {
        let all: Vec<String> = super::names(r"(?P<a>x)(?:(?P<b>y)|z)*(q)(?P<c>(?P<d>w))?")
            .into_iter()
            .collect();
        assert_eq!(all, ["a", "b", "c", "d"]);
    }
}
