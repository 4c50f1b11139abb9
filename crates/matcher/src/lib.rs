//! faultline's matcher: every signature compiled once into one searcher.
//!
//! Almost no log line is a failure. So the matcher never asks "which
//! signature matches this line?" line by line; it asks the buffer "where is
//! any literal some signature needs?" and looks only at those lines:
//!
//! 1. **Prefilter** ([`prefilter::Prefilter`]): the required literals of all
//!    signatures (found by [`literals::required`]) go into one
//!    Aho-Corasick automaton that scans whole buffers of many lines, on raw
//!    bytes, with no per-line work for lines it skips.
//! 2. **Which signatures**: the literals a candidate line holds name the
//!    signatures that can match it; only those are tried. The prefilter
//!    reports where each of its needles starts in the line, and the
//!    literals holding that needle are compared in place, so the line is
//!    not read again. A combined multi-pattern regex does not scale to hundreds of
//!    signatures (its lazy DFA thrashes), this does: the work per line is
//!    the handful of signatures that share its literals.
//! 3. **Confirm and capture**: each of them runs its own regex, with
//!    reusable capture slots, on the line's [unescaped
//!    view](unescape::unescape_into) (when it has string escapes) and on
//!    the raw line, then its `unless` veto.
//!
//! Everything a scan needs per line lives in a [`Scratch`] that each worker
//! thread owns (its regex caches, the view buffers, capture slots), so the
//! per-line path allocates nothing and threads share nothing mutable.
//!
//! [`GrepSet`] is the same machinery with grep semantics (a line matches if
//! any pattern matches its raw bytes), used by `faultline count`.
//!
//! ```
//! use faultline_matcher::Matcher;
//! use faultline_signatures::Library;
//!
//! let library = Library::builtin().unwrap();
//! let matcher = Matcher::new(library.signatures()).unwrap();
//! let mut scratch = matcher.scratch();
//! let buf = b"healthy line\nEXT4-fs (sdb): Remounting filesystem read-only\n";
//! let mut hits = Vec::new();
//! matcher.scan(buf, |_| None, &mut scratch, |hit| hits.push(hit.signature().id.clone()));
//! assert!(!hits.is_empty());
//! ```

pub mod anchors;
pub mod literals;
pub mod prefilter;
pub mod rarity;
pub mod reference;
pub mod unescape;

use faultline_core::SourceKind;
use faultline_signatures::Signature;
use regex::bytes::CaptureLocations;
use regex_automata::Input;
use regex_automata::meta;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_syntax::hir::Hir;

use crate::literals::Alphabet;
use crate::prefilter::{NeedleAt, Prefilter};

/// A pattern that could not be compiled into the set.
#[derive(Debug)]
pub struct BuildError {
    /// Index of the pattern (or signature) in the input.
    pub index: usize,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pattern {}: {}", self.index + 1, self.message)
    }
}

impl std::error::Error for BuildError {}

fn syntax_config() -> syntax::Config {
    // Same dialect as `regex::bytes::Regex` (and ripgrep): Unicode-aware,
    // but able to match arbitrary bytes where a pattern asks for them.
    syntax::Config::new().utf8(false)
}

fn parse_all<S: AsRef<str>>(patterns: &[S]) -> Result<Vec<Hir>, BuildError> {
    patterns
        .iter()
        .enumerate()
        .map(|(index, p)| {
            regex_syntax::ParserBuilder::new()
                .utf8(false)
                .build()
                .parse(p.as_ref())
                .map_err(|err| BuildError {
                    index,
                    message: err.to_string(),
                })
        })
        .collect()
}

/// The compiled signature set.
#[derive(Clone, Debug)]
pub struct Matcher {
    signatures: Vec<Signature>,
    prefilter: Prefilter,
    dispatch: Dispatch,
    without_literal: Vec<usize>,
}

/// From the literals a candidate line holds to the signatures that can
/// match it.
///
/// The prefilter tells where each needle of a candidate line starts; a
/// literal holds a needle at known offsets, so checking those literals in
/// place (a few byte comparisons) finds every literal of the line without
/// reading it again. A line whose needles are not known is searched with
/// an automaton of all literals.
#[derive(Clone, Debug)]
struct Dispatch {
    /// Every literal of the prefilter, overlapping (`None` when there are
    /// none).
    automaton: Option<aho_corasick::AhoCorasick>,
    /// The literals, as the prefilter numbers them.
    literals: Vec<Vec<u8>>,
    /// The prefilter's needles.
    needles: Vec<Vec<u8>>,
    /// For each needle, each literal holding it and where: (literal, offset
    /// of the needle in it).
    holders: Vec<Vec<(usize, usize)>>,
    /// For each needle, the other needles that may start where it does
    /// (one is a prefix of the other): the prefilter reports one per start.
    siblings: Vec<Vec<usize>>,
    /// For each literal, the signatures searched by it, ascending.
    signatures: Vec<Vec<usize>>,
    /// Signatures tried on every candidate line (no usable literal).
    always: Vec<usize>,
}

impl Dispatch {
    fn new(prefilter: &Prefilter) -> Dispatch {
        let literals = prefilter.literals();
        let mut signatures = vec![Vec::new(); literals.len()];
        let mut always = Vec::new();
        for (index, chosen) in prefilter.chosen().iter().enumerate() {
            match chosen {
                None => always.push(index),
                Some(set) => {
                    for literal in set {
                        if let Ok(at) = literals.binary_search(literal) {
                            signatures[at].push(index);
                        }
                    }
                }
            }
        }
        let automaton = (!literals.is_empty()).then(|| {
            aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::Standard)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(literals)
                .or_else(|_| {
                    aho_corasick::AhoCorasick::builder()
                        .match_kind(aho_corasick::MatchKind::Standard)
                        .build(literals)
                })
                .expect("an Aho-Corasick automaton builds for any set of fewer than 2^31 literals")
        });
        let needles = prefilter.needles().to_vec();
        let holders = needles
            .iter()
            .map(|needle| {
                let mut held = Vec::new();
                for (index, literal) in literals.iter().enumerate() {
                    let mut from = 0;
                    while let Some(at) = memchr::memmem::find(&literal[from..], needle) {
                        held.push((index, from + at));
                        from += at + 1;
                    }
                }
                held
            })
            .collect();
        let siblings = needles
            .iter()
            .enumerate()
            .map(|(index, needle)| {
                (0..needles.len())
                    .filter(|&other| {
                        other != index
                            && (needles[other].starts_with(needle)
                                || needle.starts_with(&needles[other]))
                    })
                    .collect()
            })
            .collect();
        Dispatch {
            automaton,
            literals: literals.to_vec(),
            needles,
            holders,
            siblings,
            signatures,
            always,
        }
    }

    /// The signatures that can match `line`, ascending, into `out`.
    fn candidates(&self, line: &[u8], out: &mut Vec<usize>) {
        out.clear();
        out.extend_from_slice(&self.always);
        if let Some(automaton) = &self.automaton {
            for found in automaton.find_overlapping_iter(line) {
                out.extend_from_slice(&self.signatures[found.pattern().as_usize()]);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// [`Dispatch::candidates`] for the line `buf[start..end]` whose
    /// needles the prefilter `found`.
    fn candidates_at(
        &self,
        buf: &[u8],
        (start, end): (usize, usize),
        found: &[NeedleAt],
        out: &mut Vec<usize>,
    ) {
        out.clear();
        out.extend_from_slice(&self.always);
        for &NeedleAt { at, needle } in found {
            let line_rest = &buf[at..end];
            let here = std::iter::once(needle).chain(
                self.siblings[needle]
                    .iter()
                    .copied()
                    .filter(|&other| line_rest.starts_with(&self.needles[other])),
            );
            for needle in here {
                for &(literal, offset) in &self.holders[needle] {
                    let bytes = &self.literals[literal];
                    let Some(from) = at.checked_sub(offset).filter(|&from| from >= start) else {
                        continue;
                    };
                    if buf[from..end].starts_with(bytes) {
                        out.extend_from_slice(&self.signatures[literal]);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// Per-thread working state for [`Matcher::scan`]: the needles of a line,
/// the candidate list, the unescaped-view buffers and capture slots,
/// reused across lines.
#[derive(Debug)]
pub struct Scratch {
    needles: Vec<NeedleAt>,
    which: Vec<usize>,
    view: Vec<u8>,
    tmp: Vec<u8>,
    /// Per signature, made when it is first tried.
    locations: Vec<Option<CaptureLocations>>,
}

/// One line that matched one signature.
pub struct Hit<'a> {
    signature: &'a Signature,
    index: usize,
    line: &'a [u8],
    line_start: usize,
    text: &'a [u8],
    locations: &'a CaptureLocations,
}

impl<'a> Hit<'a> {
    /// The signature that matched.
    pub fn signature(&self) -> &'a Signature {
        self.signature
    }

    /// Its index in the slice the matcher was built from.
    pub fn signature_index(&self) -> usize {
        self.index
    }

    /// The raw line, without its line terminator.
    pub fn line(&self) -> &'a [u8] {
        self.line
    }

    /// Byte offset of the line in the scanned buffer.
    pub fn line_start(&self) -> usize {
        self.line_start
    }

    /// The value of the named capture, if it took part in the match.
    pub fn capture(&self, name: &str) -> Option<&'a [u8]> {
        let index = self
            .signature
            .regex
            .get()
            .capture_names()
            .position(|n| n == Some(name))?;
        let (start, end) = self.locations.get(index)?;
        Some(&self.text[start..end])
    }

    /// Every named capture that took part in the match, in pattern order.
    pub fn captures(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.signature
            .regex
            .get()
            .capture_names()
            .enumerate()
            .filter_map(move |(i, name)| {
                let (start, end) = self.locations.get(i)?;
                Some((name?, &self.text[start..end]))
            })
    }
}

impl Matcher {
    /// Compiles `signatures` into one set. Signatures are kept in order;
    /// [`Hit::signature_index`] refers to it.
    pub fn new(signatures: &[Signature]) -> Result<Matcher, BuildError> {
        let patterns: Vec<&str> = signatures.iter().map(|s| s.pattern.as_str()).collect();
        let hirs = parse_all(&patterns)?;
        let (prefilter, has_literal) = Prefilter::new(&hirs, Alphabet::EscapeSafe);
        let without_literal = has_literal
            .iter()
            .enumerate()
            .filter(|(_, h)| !**h)
            .map(|(i, _)| i)
            .collect();
        Ok(Matcher {
            signatures: signatures.to_vec(),
            dispatch: Dispatch::new(&prefilter),
            prefilter,
            without_literal,
        })
    }

    /// The signatures, in the order hits refer to them.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Indexes of signatures with no literal to search for: each makes
    /// every line a candidate, which costs speed, not correctness.
    pub fn signatures_without_literal(&self) -> &[usize] {
        &self.without_literal
    }

    /// How many distinct literals the prefilter searches for.
    pub fn literal_count(&self) -> usize {
        self.prefilter.literal_count()
    }

    /// Fresh working state for one thread.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            needles: Vec::new(),
            which: Vec::new(),
            view: Vec::new(),
            tmp: Vec::new(),
            locations: vec![None; self.signatures.len()],
        }
    }

    /// Scans `buf`, a buffer of whole lines separated by `\n`, and calls
    /// `on_hit` for every (line, signature) that matches, in line order.
    /// `source` says where a line's record comes from, if known (asked
    /// only for candidate lines that a scoped signature matches): scoped
    /// signatures for other sources are skipped. A trailing `\r` is not
    /// part of a line.
    pub fn scan(
        &self,
        buf: &[u8],
        mut source: impl FnMut(&[u8]) -> Option<SourceKind>,
        scratch: &mut Scratch,
        mut on_hit: impl FnMut(Hit<'_>),
    ) {
        let mut needles = std::mem::take(&mut scratch.needles);
        self.prefilter
            .for_each_candidate_with_needles(buf, &mut needles, |start, end, found| {
                match found {
                    Some(found) => {
                        self.dispatch
                            .candidates_at(buf, (start, end), found, &mut scratch.which)
                    }
                    None => self
                        .dispatch
                        .candidates(strip_cr(&buf[start..end]), &mut scratch.which),
                }
                self.match_line_at(buf, start, end, &mut source, scratch, &mut on_hit);
                true
            });
        scratch.needles = needles;
    }

    /// Matches one line (without its `\n`), as [`Matcher::scan`] would.
    pub fn match_line(
        &self,
        line: &[u8],
        source: Option<SourceKind>,
        scratch: &mut Scratch,
        mut on_hit: impl FnMut(Hit<'_>),
    ) {
        self.dispatch.candidates(strip_cr(line), &mut scratch.which);
        self.match_line_at(line, 0, line.len(), &mut |_| source, scratch, &mut on_hit);
    }

    /// Tries the signatures in `scratch.which` (ascending) on the line
    /// `buf[start..end]`.
    fn match_line_at(
        &self,
        buf: &[u8],
        start: usize,
        end: usize,
        source: &mut impl FnMut(&[u8]) -> Option<SourceKind>,
        scratch: &mut Scratch,
        on_hit: &mut impl FnMut(Hit<'_>),
    ) {
        let line = strip_cr(&buf[start..end]);
        let Scratch {
            which,
            view,
            tmp,
            locations,
            ..
        } = scratch;
        if which.is_empty() {
            return;
        }
        let has_view = unescape::unescape_into(line, view, tmp);
        // Asked once, and only when a scoped signature needs it.
        let mut line_source = None;
        let mut source_of_line = || *line_source.get_or_insert_with(|| source(line));
        // Specific signatures first; the safety net only on a line none of
        // them took.
        let mut specific_hit = false;
        for fallback in [false, true] {
            if fallback && specific_hit {
                break;
            }
            for &index in which.iter() {
                let signature = &self.signatures[index];
                if signature.fallback != fallback {
                    continue;
                }
                if !signature.scope.is_empty()
                    && let Some(source) = source_of_line()
                    && !signature.scope.contains(&source)
                {
                    continue;
                }
                // The decoded view is what the component printed: prefer it.
                let both: [&[u8]; 2] = [&view[..], line];
                let texts = if has_view { &both[..] } else { &both[1..] };
                let regex = signature.regex.get();
                let slots = locations[index].get_or_insert_with(|| regex.capture_locations());
                let Some(&text) = texts
                    .iter()
                    .find(|t| regex.captures_read(slots, t).is_some())
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
                specific_hit = true;
                on_hit(Hit {
                    signature,
                    index,
                    line,
                    line_start: start,
                    text,
                    locations: slots,
                });
            }
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A set of regular expressions with grep semantics: a line matches when
/// any pattern matches somewhere in its raw bytes (ripgrep's `-f FILE`).
#[derive(Clone, Debug)]
pub struct GrepSet {
    prefilter: Prefilter,
    set: meta::Regex,
}

impl GrepSet {
    /// Compiles `patterns` (ripgrep / Rust `regex` syntax).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<GrepSet, BuildError> {
        let hirs = parse_all(patterns)?;
        let (prefilter, _) = Prefilter::new(&hirs, Alphabet::Raw);
        let set = meta::Builder::new()
            .configure(
                meta::Config::new()
                    .utf8_empty(false)
                    .which_captures(WhichCaptures::None),
            )
            .syntax(syntax_config())
            .build_many_from_hir(&hirs)
            .map_err(|err| BuildError {
                index: err.pattern().map_or(0, |p| p.as_usize()),
                message: err.to_string(),
            })?;
        Ok(GrepSet { prefilter, set })
    }

    /// How many distinct literals the prefilter searches for.
    pub fn literal_count(&self) -> usize {
        self.prefilter.literal_count()
    }

    /// Fresh regex cache for one thread.
    pub fn cache(&self) -> meta::Cache {
        self.set.create_cache()
    }

    /// How many lines of `buf` (whole lines separated by `\n`) match.
    pub fn count_lines(&self, buf: &[u8], cache: &mut meta::Cache) -> u64 {
        let mut count = 0;
        self.prefilter.for_each_candidate(buf, |start, end| {
            if self.set.is_match_with(cache, &Input::new(&buf[start..end])) {
                count += 1;
            }
            true
        });
        count
    }
}

#[cfg(test)]
mod tests;
