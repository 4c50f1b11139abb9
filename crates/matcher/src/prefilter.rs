//! Finding candidate lines in a buffer without looking at most of them.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind, packed};
use regex_syntax::hir::Hir;

use crate::anchors;
use crate::literals::{self, Alphabet, Preference};

/// Most literals the fast (SIMD, Teddy) searcher takes (aho-corasick's
/// limit is 127 with its heuristics off). Beyond it the literal choice first
/// trades selectivity for fewer literals, then falls back to anchors.
/// Measured in BENCHMARKS.md: Teddy over up to 127 literals beat both
/// 4-byte anchors and the automaton on the built-in library.
const FAST_LITERALS: usize = 127;

/// Most literals put in a DFA.
const MAX_DFA_LITERALS: usize = 512;

/// Most literals an anchor cover is computed for; a larger set (thousands
/// of user patterns) goes straight into an automaton, whose build time
/// stays linear.
const MAX_ANCHORED: usize = 4096;

/// Finds the lines of a buffer that may match one of a set of patterns.
///
/// Built from the required literals of every pattern: a line that contains
/// none of them cannot match, so only lines holding a literal are handed to
/// the confirming regular expressions. When some pattern has no usable
/// literal, every line is a candidate (correct, and slow; `faultline check`
/// warns about such signatures).
#[derive(Clone, Debug)]
pub struct Prefilter {
    /// `None` when some pattern needs every line, or no pattern can match.
    searcher: Option<Searcher>,
    every_line: bool,
    literals: Vec<Vec<u8>>,
    /// What the searcher looks for: the literals, or anchors covering them.
    needles: Vec<Vec<u8>>,
}

/// The literal searcher: SIMD (Teddy) when the needles allow it, else an
/// Aho-Corasick automaton.
#[derive(Clone, Debug)]
enum Searcher {
    Packed(packed::Searcher),
    Automaton(AhoCorasick),
}

impl Searcher {
    fn new(needles: &[Vec<u8>]) -> Searcher {
        if needles.len() <= FAST_LITERALS
            && let Some(packed) = packed::Config::new()
                .heuristic_pattern_limits(false)
                .match_kind(packed::MatchKind::LeftmostFirst)
                .builder()
                .extend(needles)
                .build()
        {
            return Searcher::Packed(packed);
        }
        // A DFA is fastest, but its size grows with the literals: beyond a
        // few hundred, let aho-corasick pick (a contiguous NFA), which
        // builds in linear time.
        let kind = (needles.len() <= MAX_DFA_LITERALS).then_some(AhoCorasickKind::DFA);
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(kind)
            .build(needles)
            .or_else(|_| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(needles)
            })
            .expect("an Aho-Corasick automaton builds for any set of fewer than 2^31 literals");
        Searcher::Automaton(automaton)
    }

    /// Start of the leftmost needle at or after `at`.
    fn find(&self, buf: &[u8], at: usize) -> Option<usize> {
        match self {
            Searcher::Packed(s) => s
                .find_in(buf, aho_corasick::Span::from(at..buf.len()))
                .map(|m| m.start()),
            Searcher::Automaton(a) => a.find(Input::new(buf).range(at..)).map(|m| m.start()),
        }
    }
}

/// The distinct literals of all chosen sets, sorted.
fn distinct(sets: &[Option<Vec<Vec<u8>>>]) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = sets.iter().flatten().flatten().cloned().collect();
    all.sort();
    all.dedup();
    all
}

impl Prefilter {
    /// Builds the prefilter for `patterns`. Also returns, for each pattern,
    /// whether it had a usable literal.
    pub fn new(patterns: &[Hir], alphabet: Alphabet) -> (Prefilter, Vec<bool>) {
        let selective: Vec<Option<Vec<Vec<u8>>>> = patterns
            .iter()
            .map(|hir| literals::required(hir, alphabet, Preference::Selective))
            .collect();
        let has_literal: Vec<bool> = selective.iter().map(Option::is_some).collect();
        let mut chosen = selective.clone();
        // How many chosen sets hold each literal, to know the distinct
        // count as sets change without recounting everything.
        let mut uses: HashMap<Vec<u8>, usize> = HashMap::new();
        for literal in chosen.iter().flatten().flatten() {
            *uses.entry(literal.clone()).or_insert(0) += 1;
        }
        if uses.len() > FAST_LITERALS {
            // Give up selectivity where it costs the most literals first.
            let mut order: Vec<usize> = (0..patterns.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(selective[i].as_ref().map_or(0, Vec::len)));
            for i in order {
                if uses.len() <= FAST_LITERALS {
                    break;
                }
                for literal in chosen[i].iter().flatten() {
                    if let Some(n) = uses.get_mut(literal) {
                        *n -= 1;
                        if *n == 0 {
                            uses.remove(literal);
                        }
                    }
                }
                chosen[i] = literals::required(&patterns[i], alphabet, Preference::Few);
                for literal in chosen[i].iter().flatten() {
                    *uses.entry(literal.clone()).or_insert(0) += 1;
                }
            }
        }
        let literals = distinct(&chosen);
        let every_line = has_literal.iter().any(|&h| !h);
        let needles = if (FAST_LITERALS + 1..=MAX_ANCHORED).contains(&literals.len()) {
            anchors::cover(&literals, FAST_LITERALS).unwrap_or_else(|| literals.clone())
        } else {
            literals.clone()
        };
        let searcher = (!every_line && !needles.is_empty()).then(|| Searcher::new(&needles));
        let prefilter = Prefilter {
            searcher,
            every_line,
            literals,
            needles,
        };
        (prefilter, has_literal)
    }

    /// The distinct literals searched for.
    pub fn literals(&self) -> &[Vec<u8>] {
        &self.literals
    }

    /// What the buffer scan looks for: the literals themselves, or (with
    /// more than 64 literals) short anchors that cover them.
    pub fn needles(&self) -> &[Vec<u8>] {
        &self.needles
    }

    /// How many distinct literals are searched for.
    pub fn literal_count(&self) -> usize {
        self.literals.len()
    }

    /// Calls `on_line(start, end)` for every candidate line of `buf`, in
    /// order: `buf[start..end]` is the line without its `\n`. Stops early
    /// when `on_line` returns `false`. Never skips a line that contains a
    /// literal (or any line at all, when every line is a candidate).
    pub fn for_each_candidate(&self, buf: &[u8], mut on_line: impl FnMut(usize, usize) -> bool) {
        if self.every_line {
            let mut start = 0;
            while start < buf.len() {
                let end = memchr::memchr(b'\n', &buf[start..]).map_or(buf.len(), |i| start + i);
                if !on_line(start, end) {
                    return;
                }
                start = end + 1;
            }
            return;
        }
        let Some(searcher) = &self.searcher else {
            return;
        };
        let mut at = 0;
        while at < buf.len() {
            let Some(found) = searcher.find(buf, at) else {
                return;
            };
            let start = memchr::memrchr(b'\n', &buf[at..found]).map_or(at, |i| at + i + 1);
            let end = memchr::memchr(b'\n', &buf[found..]).map_or(buf.len(), |i| found + i);
            if !on_line(start, end) {
                return;
            }
            at = end + 1;
        }
    }
}
