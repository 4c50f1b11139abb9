//! `faultline check`: validate, compile and run every example.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use faultline_matcher::{Matcher, Scratch};
use faultline_signatures::{Example, Library, Location, NearMiss, Problem, Signature};

/// Runs the check and prints its report: a summary on success, every
/// problem (as `FILE:LINE: FIELD: message`) on failure, then exit 1.
pub fn run(dirs: &[PathBuf]) -> Result<ExitCode> {
    let library = match Library::load(dirs) {
        Ok(library) => library,
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!("faultline check: {} problem(s)", problems.0.len());
            return Ok(ExitCode::from(1));
        }
    };
    let report = check_library(&library)?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if !report.problems.is_empty() {
        for problem in &report.problems {
            eprintln!("{problem}");
        }
        eprintln!("faultline check: {} problem(s)", report.problems.len());
        return Ok(ExitCode::from(1));
    }
    let files: BTreeSet<&str> = library
        .signatures()
        .iter()
        .map(|s| s.location.file.as_str())
        .collect();
    println!(
        "ok: {} signatures in {} files; {} example lines match, {} near-misses rejected; {} literals in the prefilter",
        library.signatures().len(),
        files.len(),
        report.examples,
        report.near_misses,
        report.literals,
    );
    Ok(ExitCode::SUCCESS)
}

/// What checking a library found.
pub struct CheckReport {
    /// Examples that failed, near-misses that matched.
    pub problems: Vec<Problem>,
    /// Things that work but cost speed.
    pub warnings: Vec<String>,
    /// Example lines checked.
    pub examples: usize,
    /// Near-miss lines checked.
    pub near_misses: usize,
    /// Distinct literals the prefilter searches for.
    pub literals: usize,
}

/// Compiles `library` and runs every example through the same path a log
/// line takes (prefilter, set, captures, `unless`).
pub fn check_library(library: &Library) -> Result<CheckReport> {
    let matcher = Matcher::new(library.signatures())?;
    let mut scratch = matcher.scratch();
    let mut report = CheckReport {
        problems: Vec::new(),
        warnings: Vec::new(),
        examples: 0,
        near_misses: 0,
        literals: matcher.literal_count(),
    };
    for &index in matcher.signatures_without_literal() {
        let sig = &matcher.signatures()[index];
        report.warnings.push(format!(
            "{}: signature {} has no literal of 3+ plain characters that every match contains, so every line is checked against it (slow)",
            sig.location, sig.id
        ));
    }
    for (index, sig) in matcher.signatures().iter().enumerate() {
        for example in &sig.examples {
            report.examples += 1;
            if let Some(message) = check_example(&matcher, &mut scratch, index, example) {
                report
                    .problems
                    .push(problem(&example.location, "examples.match", message));
            }
        }
        for near in &sig.near_misses {
            report.near_misses += 1;
            if let Some(message) = check_near_miss(&matcher, &mut scratch, index, sig, near) {
                report
                    .problems
                    .push(problem(&near.location, "examples.no_match", message));
            }
        }
    }
    Ok(report)
}

fn problem(at: &Location, field: &str, message: String) -> Problem {
    Problem {
        file: at.file.clone(),
        line: Some(at.line),
        field: Some(field.to_string()),
        message,
    }
}

/// The captures of signature `index` on `line` through the full path, or
/// `None` when it is not a hit.
fn captures_of(
    matcher: &Matcher,
    scratch: &mut Scratch,
    index: usize,
    line: &str,
) -> Option<Vec<(String, String)>> {
    let mut found = None;
    matcher.scan(
        line.as_bytes(),
        |_| None,
        scratch,
        |hit| {
            if hit.signature_index() == index && found.is_none() {
                found = Some(
                    hit.captures()
                        .map(|(name, value)| {
                            (
                                name.to_string(),
                                String::from_utf8_lossy(value).into_owned(),
                            )
                        })
                        .collect(),
                );
            }
        },
    );
    found
}

/// Whether a specific (not `fallback`) signature reports `line`.
fn taken_by_specific(matcher: &Matcher, scratch: &mut Scratch, line: &str) -> bool {
    let mut taken = false;
    matcher.scan(
        line.as_bytes(),
        |_| None,
        scratch,
        |hit| {
            taken |= !hit.signature().fallback;
        },
    );
    taken
}

fn check_example(
    matcher: &Matcher,
    scratch: &mut Scratch,
    index: usize,
    example: &Example,
) -> Option<String> {
    let sig = &matcher.signatures()[index];
    let Some(captures) = captures_of(matcher, scratch, index, &example.line) else {
        // A safety-net example that a specific signature now reports is
        // covered, and reported once, by that one.
        if sig.fallback && taken_by_specific(matcher, scratch, &example.line) {
            return None;
        }
        return Some(explain_miss(matcher, scratch, sig, &example.line));
    };
    let mut wrong = Vec::new();
    for (name, want) in &example.captures {
        match captures.iter().find(|(n, _)| n == name) {
            Some((_, got)) if got == want => {}
            Some((_, got)) => wrong.push(format!("capture {name}: expected {want:?}, got {got:?}")),
            None => wrong.push(format!(
                "capture {name}: expected {want:?}, but it did not take part in the match"
            )),
        }
    }
    (!wrong.is_empty()).then(|| format!("signature {}: {}", sig.id, wrong.join("; ")))
}

/// Why a line that should match did not: the regex, the `unless`, or the
/// prefilter (the line holds none of the literals searched for).
fn explain_miss(matcher: &Matcher, scratch: &mut Scratch, sig: &Signature, line: &str) -> String {
    let mut view = Vec::new();
    let mut tmp = Vec::new();
    let texts: Vec<&[u8]> =
        if faultline_matcher::unescape::unescape_into(line.as_bytes(), &mut view, &mut tmp) {
            vec![line.as_bytes(), &view]
        } else {
            vec![line.as_bytes()]
        };
    let matched = texts.iter().find(|t| sig.regex.get().is_match(t));
    let reason = match matched {
        None => "`match` does not match it (nor its unescaped view)".to_string(),
        Some(text) if sig.unless.as_ref().is_some_and(|u| u.get().is_match(text)) => {
            "`unless` rejects it".to_string()
        }
        Some(_) => {
            let mut seen = false;
            matcher.match_line(line.as_bytes(), None, scratch, |hit| {
                seen |= hit.signature().id == sig.id
            });
            if seen {
                "the prefilter skips it: the line holds none of the literals searched for (check quoting and escapes)".to_string()
            } else {
                "it matches alone but not in the compiled set (please report this)".to_string()
            }
        }
    };
    format!("signature {} does not match this line: {reason}", sig.id)
}

fn check_near_miss(
    matcher: &Matcher,
    scratch: &mut Scratch,
    index: usize,
    sig: &Signature,
    near: &NearMiss,
) -> Option<String> {
    captures_of(matcher, scratch, index, &near.line).map(|_| {
        format!(
            "signature {} matches this near-miss, which it must not",
            sig.id
        )
    })
}
