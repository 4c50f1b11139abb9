//! Finding candidate lines in a buffer without looking at most of them.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind, packed};
use regex_syntax::hir::Hir;

use crate::anchors;
use crate::literals::{self, Alphabet, Preference};

/// Most literals searched for with Teddy (SIMD), in groups of
/// [`TEDDY_GROUP`]. Beyond it the literal choice first trades selectivity
/// for fewer literals, then falls back to anchors. Measured in
/// BENCHMARKS.md: two Teddy groups over the built-in library's 127
/// literals beat both 4-byte anchors and the automaton.
const FAST_LITERALS: usize = 192;

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
    /// For each pattern, the literal set it is searched by (`None`: every
    /// line is a candidate for it).
    chosen: Vec<Option<Vec<Vec<u8>>>>,
}

/// The literal searcher: SIMD (Teddy) when the needles allow it, else an
/// Aho-Corasick automaton.
#[derive(Clone, Debug)]
enum Searcher {
    /// Teddy searchers over groups of at most [`TEDDY_GROUP`] needles, and
    /// how many needles each group holds (a group's pattern `p` is needle
    /// `group * size + p`).
    Packed(Vec<packed::Searcher>, usize),
    Automaton(AhoCorasick),
}

/// Most needles given to one Teddy searcher. Teddy keeps 16 buckets; past
/// about 64 needles each bucket holds so many that its false-positive rate
/// rises sharply (measured on the built-in library: 127 needles in one
/// searcher scan at a quarter of the speed of 64), so a larger set is split
/// into groups searched one after the other.
const TEDDY_GROUP: usize = 64;

/// Most Teddy groups: enough for [`FAST_LITERALS`] needles.
const TEDDY_GROUPS: usize = FAST_LITERALS.div_ceil(TEDDY_GROUP);

/// Where each Teddy group's next needle is, as far as known (its start
/// and its index among all needles): `None` before the group has been
/// searched, a start of `usize::MAX` once it has no more.
type GroupCursor = [Option<(usize, usize)>; TEDDY_GROUPS];

/// One needle found in a candidate line: where it starts in the buffer,
/// and which of [`Prefilter::needles`] it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeedleAt {
    pub at: usize,
    pub needle: usize,
}

/// Most needles gathered for one line. A line holding more (a hostile or
/// pathological one) is handed over without them, and its reader looks
/// for literals in it on its own: the gathering never grows without bound.
pub const MAX_NEEDLES_PER_LINE: usize = 256;

impl Searcher {
    fn new(needles: &[Vec<u8>]) -> Searcher {
        if needles.len() <= FAST_LITERALS {
            let groups = needles.len().div_ceil(TEDDY_GROUP);
            let size = needles.len().div_ceil(groups.max(1));
            let packed: Option<Vec<packed::Searcher>> = needles
                .chunks(size.max(1))
                .map(|group| {
                    packed::Config::new()
                        .heuristic_pattern_limits(false)
                        .match_kind(packed::MatchKind::LeftmostFirst)
                        .builder()
                        .extend(group)
                        .build()
                })
                .collect();
            if let Some(packed) = packed {
                return Searcher::Packed(packed, size.max(1));
            }
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

    /// The leftmost needle at or after `at`: its start and index. `next`
    /// remembers each Teddy group's last answer, so a group is searched
    /// again only once `at` has passed it; it starts all `None` for each
    /// buffer, and `at` never decreases.
    fn find(&self, buf: &[u8], at: usize, next: &mut GroupCursor) -> Option<NeedleAt> {
        match self {
            Searcher::Packed(groups, size) => {
                let mut leftmost = (usize::MAX, 0);
                for (index, (group, cached)) in groups.iter().zip(next.iter_mut()).enumerate() {
                    let found = match *cached {
                        Some(found) if found.0 >= at => found,
                        _ => group
                            .find_in(buf, aho_corasick::Span::from(at..buf.len()))
                            .map_or((usize::MAX, 0), |m| {
                                (m.start(), index * size + m.pattern().as_usize())
                            }),
                    };
                    *cached = Some(found);
                    if found.0 < leftmost.0 {
                        leftmost = found;
                    }
                }
                (leftmost.0 != usize::MAX).then_some(NeedleAt {
                    at: leftmost.0,
                    needle: leftmost.1,
                })
            }
            Searcher::Automaton(a) => a.find(Input::new(buf).range(at..)).map(|m| NeedleAt {
                at: m.start(),
                needle: m.pattern().as_usize(),
            }),
        }
    }
}

/// Least [`rarity::set_rarity`](crate::rarity::set_rarity) of a literal
/// set chosen to be shared instead of a pattern's own best: about a
/// distinctive phrase (`EROFS`, `Read-only file system`, `No space left on
/// device`), never a common word.
const SHAREABLE_RARITY: i64 = 36;

/// Many patterns, many literals: where a pattern also requires a set of
/// literals that other patterns can search for too (program-specific
/// signatures that all end in `Read-only file system`), it searches for
/// that set instead of its own. Fewer literals keep the searcher on its
/// fast path (one Teddy group of [`TEDDY_GROUP`]); every set chosen is
/// still one the pattern requires, so no match is ever missed.
fn share(patterns: &[Hir], alphabet: Alphabet, chosen: &mut [Option<Vec<Vec<u8>>>]) {
    let options: Vec<Vec<Vec<Vec<u8>>>> = patterns
        .iter()
        .map(|hir| literals::options(hir, alphabet))
        .collect();
    // How many patterns could search for each literal.
    let mut reach: HashMap<&[u8], usize> = HashMap::new();
    for sets in &options {
        let mut mine: Vec<&[u8]> = sets.iter().flatten().map(Vec::as_slice).collect();
        mine.sort_unstable();
        mine.dedup();
        for literal in mine {
            *reach.entry(literal).or_insert(0) += 1;
        }
    }
    let shared = |set: &Vec<Vec<u8>>| {
        set.iter()
            .map(|l| reach.get(l.as_slice()).copied().unwrap_or(0))
            .min()
            .unwrap_or(0)
    };
    for (slot, sets) in chosen.iter_mut().zip(&options) {
        let Some(current) = slot.as_ref() else {
            continue;
        };
        // Shared by the most patterns, then the fewest members (a digit
        // class multiplies a literal tenfold), then the rarest.
        let key = |set: &Vec<Vec<u8>>| {
            (
                shared(set),
                std::cmp::Reverse(set.len()),
                crate::rarity::set_rarity(set),
            )
        };
        let best = sets
            .iter()
            .filter(|set| set.len() <= current.len().max(4))
            .filter(|set| crate::rarity::set_rarity(set) >= SHAREABLE_RARITY)
            .max_by_key(|set| key(set));
        if let Some(best) = best
            && key(best) > key(current)
            && (shared(best) > shared(current) || best.len() < current.len())
        {
            *slot = Some(best.clone());
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
        if distinct(&chosen).len() > TEDDY_GROUP {
            share(patterns, alphabet, &mut chosen);
        }
        // How many chosen sets hold each literal, to know the distinct
        // count as sets change without recounting everything.
        let mut uses: HashMap<Vec<u8>, usize> = HashMap::new();
        for literal in chosen.iter().flatten().flatten() {
            *uses.entry(literal.clone()).or_insert(0) += 1;
        }
        let shared = chosen.clone();
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
                // A pattern that has no smaller set keeps its own: losing
                // a set would make its matches invisible.
                if let Some(few) = literals::required(&patterns[i], alphabet, Preference::Few) {
                    chosen[i] = Some(few);
                }
                for literal in chosen[i].iter().flatten() {
                    *uses.entry(literal.clone()).or_insert(0) += 1;
                }
            }
            // Fewer but still too many for Teddy: the anchors cover them
            // either way, so keep the selective sets (fewer candidate lines).
            if uses.len() > FAST_LITERALS {
                chosen = shared;
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
            chosen,
        };
        (prefilter, has_literal)
    }

    /// The distinct literals searched for.
    pub fn literals(&self) -> &[Vec<u8>] {
        &self.literals
    }

    /// What the buffer scan looks for: the literals themselves, or (with
    /// more than 192 literals) short anchors that cover them.
    pub fn needles(&self) -> &[Vec<u8>] {
        &self.needles
    }

    /// How many distinct literals are searched for.
    pub fn literal_count(&self) -> usize {
        self.literals.len()
    }

    /// For each pattern, the literal set it is searched by: a line that
    /// holds none of them cannot match it. `None`: it has no usable
    /// literal, every line is a candidate.
    pub fn chosen(&self) -> &[Option<Vec<Vec<u8>>>] {
        &self.chosen
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
        if let Some(searcher) = &self.searcher {
            lines_with_needles(searcher, buf, |_, (start, end), _| on_line(start, end));
        }
    }

    /// [`Prefilter::for_each_candidate`], also telling `on_line` every
    /// needle the line holds (each start, one needle per start: others
    /// starting there are prefixes of it or it of them). `None` instead
    /// when every line is a candidate (nothing was searched) or the line
    /// holds more than [`MAX_NEEDLES_PER_LINE`]. `found` is the caller's
    /// buffer for them, reused from call to call.
    pub fn for_each_candidate_with_needles(
        &self,
        buf: &[u8],
        found: &mut Vec<NeedleAt>,
        mut on_line: impl FnMut(usize, usize, Option<&[NeedleAt]>) -> bool,
    ) {
        let Some(searcher) = self.searcher.as_ref().filter(|_| !self.every_line) else {
            self.for_each_candidate(buf, |start, end| on_line(start, end, None));
            return;
        };
        lines_with_needles(searcher, buf, |first, (start, end), next| {
            found.clear();
            found.push(first);
            let mut overflow = false;
            while let Some(more) = searcher
                .find(buf, found[found.len() - 1].at + 1, next)
                .filter(|more| more.at < end)
            {
                if found.len() == MAX_NEEDLES_PER_LINE {
                    overflow = true;
                    break;
                }
                found.push(more);
            }
            on_line(start, end, (!overflow).then_some(&found[..]))
        });
    }
}

/// Calls `on_line(first, (start, end), cursor)` for every line of `buf`
/// that holds a needle, in order: `first` is its leftmost needle, and
/// `cursor` lets `on_line` search on within the line (never past `end`
/// of a line it has not been given). Stops early when `on_line` returns
/// `false`.
fn lines_with_needles(
    searcher: &Searcher,
    buf: &[u8],
    mut on_line: impl FnMut(NeedleAt, (usize, usize), &mut GroupCursor) -> bool,
) {
    let mut at = 0;
    let mut next: GroupCursor = [None; TEDDY_GROUPS];
    while at < buf.len() {
        let Some(first) = searcher.find(buf, at, &mut next) else {
            return;
        };
        let (start, end) = line_around(buf, at, first.at);
        if !on_line(first, (start, end), &mut next) {
            return;
        }
        at = end + 1;
    }
}

/// The line of `buf` that holds byte `found`, searching back no further
/// than `from` (the start of a line): its start and end (at its `\n`, or
/// the end of `buf`).
fn line_around(buf: &[u8], from: usize, found: usize) -> (usize, usize) {
    let start = memchr::memrchr(b'\n', &buf[from..found]).map_or(from, |i| from + i + 1);
    let end = memchr::memchr(b'\n', &buf[found..]).map_or(buf.len(), |i| found + i);
    (start, end)
}
