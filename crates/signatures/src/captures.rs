//! A pattern's named captures, and which of them take part in every
//! match: the ones a template may name without wording for a missing value.

use std::collections::BTreeSet;

use regex_syntax::hir::{Hir, HirKind};

/// The names of every named capture of `pattern`, and those of them that
/// every match sets (the ones a template may name without wording for a
/// missing value). Both empty when it does not parse: its error is
/// reported elsewhere.
pub fn of(pattern: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .map(|hir| {
            let mut all = BTreeSet::new();
            named(&hir, &mut all);
            (all, taken(&hir))
        })
        .unwrap_or_default()
}

fn named(hir: &Hir, out: &mut BTreeSet<String>) {
    match hir.kind() {
        HirKind::Capture(capture) => {
            out.extend(capture.name.as_deref().map(str::to_string));
            named(&capture.sub, out);
        }
        HirKind::Concat(parts) | HirKind::Alternation(parts) => {
            parts.iter().for_each(|part| named(part, out));
        }
        HirKind::Repetition(repetition) => named(&repetition.sub, out),
        _ => {}
    }
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
        of(pattern).1.into_iter().collect()
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
        let all: Vec<String> = of(r"(?P<a>x)(?:(?P<b>y)|z)*(q)(?P<c>(?P<d>w))?")
            .0
            .into_iter()
            .collect();
        assert_eq!(all, ["a", "b", "c", "d"]);
    }
}
