//! Required literals: for a regular expression, a small set of strings at
//! least one of which occurs in every match.
//!
//! This is what lets faultline search a whole buffer for a few short
//! strings (with one multi-literal searcher) instead of running every
//! regular expression on every line. The analysis is conservative: it may
//! find no set (then the pattern is checked on every line), but a set it
//! returns is never wrong, whatever the pattern.
//!
//! The walk keeps, for each sub-expression, the *exact* set of strings it
//! can match when that set is small, and the best *required* set found
//! inside it. Concatenations multiply exact sets into longer literals
//! (`[Rr]ead-only file ?system` yields `Read-only file system`,
//! `read-only filesystem`, …) and alternations unite required sets.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Largest number of alternatives a literal set may have.
const MAX_SET: usize = 64;
/// Largest character class expanded into its members.
const MAX_CLASS: usize = 16;
/// Shortest literal worth searching for; shorter ones find too many lines.
const MIN_LITERAL: usize = 3;

/// Which bytes a literal may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alphabet {
    /// Any byte but `\n`: the haystack is matched exactly as stored (grep).
    Raw,
    /// Printable ASCII without `"`, `\`, `<`, `>`, `&`, `'`: bytes that JSON,
    /// logfmt and HTML escaping never rewrite, so the literal is found in
    /// the raw bytes of an encoded line whose decoded text matches.
    EscapeSafe,
}

impl Alphabet {
    fn allows(self, byte: u8) -> bool {
        match self {
            Alphabet::Raw => byte != b'\n',
            Alphabet::EscapeSafe => {
                (0x20..0x7f).contains(&byte)
                    && !matches!(byte, b'"' | b'\\' | b'<' | b'>' | b'&' | b'\'')
            }
        }
    }
}

/// What to optimise a pattern's literal set for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// Fewest false candidates: longer, more specific literals, even if
    /// there are a few more of them.
    Selective,
    /// Fewest literals: what matters once the searcher's fast path (up to
    /// 64 literals) would otherwise overflow.
    Few,
}

#[derive(Clone, Copy, Debug)]
struct Goal {
    alphabet: Alphabet,
    preference: Preference,
}

type Set = Vec<Vec<u8>>;

#[derive(Clone, Debug)]
struct Info {
    /// Every string the expression can match, when few and all allowed.
    exact: Option<Set>,
    /// A set of strings one of which every match contains.
    must: Option<Set>,
    /// Every match starts with one of these (`{""}` when nothing is known).
    prefix: Set,
    /// Every match ends with one of these (`{""}` when nothing is known).
    suffix: Set,
    /// Every required set found on the way to `must`, each sound alone:
    /// the alternatives a prefilter may choose from to share literals
    /// with other patterns.
    options: Vec<Set>,
}

fn unknown() -> Set {
    vec![Vec::new()]
}

/// `a × b` when it stays within [`MAX_SET`].
fn bounded_product(a: &Set, b: &Set) -> Option<Set> {
    (a.len() * b.len() <= MAX_SET).then(|| product(a, b))
}

/// The union of `sets`, when it stays within [`MAX_SET`].
fn bounded_union(sets: impl Iterator<Item = Set>) -> Option<Set> {
    let mut all: Set = sets.flatten().collect();
    dedup(&mut all);
    (all.len() <= MAX_SET).then_some(all)
}

impl Info {
    /// The better of the required set and the exact set (when usable).
    fn best(self, preference: Preference) -> Option<Set> {
        better(self.must, self.exact.filter(usable), preference)
    }
}

/// The best required-literal set of `hir`, or `None` when every match need
/// not contain any usable literal (then the pattern must be tried on every
/// line). An empty set means the pattern can never match.
pub fn required(hir: &Hir, alphabet: Alphabet, preference: Preference) -> Option<Set> {
    let goal = Goal {
        alphabet,
        preference,
    };
    let info = analyze(hir, goal);
    let best = info.best(preference)?;
    (min_len(&best) >= MIN_LITERAL).then_some(best)
}

/// Every searchable required set of `hir` (each alone is sound: every
/// match contains one of its members), the selective best first. A
/// prefilter with many patterns picks among them the sets it can share.
pub fn options(hir: &Hir, alphabet: Alphabet) -> Vec<Set> {
    let goal = Goal {
        alphabet,
        preference: Preference::Selective,
    };
    let info = analyze(hir, goal);
    let mut all: Vec<Set> = info.options.clone();
    if let Some(best) = info.best(Preference::Selective) {
        all.insert(0, best);
    }
    let mut seen = Vec::new();
    all.retain(|set| {
        let mut sorted = set.clone();
        dedup(&mut sorted);
        let fresh = min_len(set) >= MIN_LITERAL && !seen.contains(&sorted);
        seen.push(sorted);
        fresh
    });
    all
}

fn analyze(hir: &Hir, goal: Goal) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info {
            exact: Some(unknown()),
            must: None,
            prefix: unknown(),
            suffix: unknown(),
            options: Vec::new(),
        },
        HirKind::Literal(_) => concat(std::slice::from_ref(hir), goal),
        HirKind::Class(class) => {
            let exact = class_members(class, goal.alphabet);
            let edge = exact.clone().unwrap_or_else(unknown);
            Info {
                must: exact.clone().filter(usable),
                exact,
                prefix: edge.clone(),
                suffix: edge,
                options: Vec::new(),
            }
        }
        HirKind::Capture(capture) => analyze(&capture.sub, goal),
        HirKind::Repetition(rep) => {
            let sub = analyze(&rep.sub, goal);
            if rep.min == 0 {
                let exact = match (rep.max, sub.exact) {
                    (Some(1), Some(mut e)) => {
                        e.push(Vec::new());
                        dedup(&mut e);
                        Some(e)
                    }
                    _ => None,
                };
                Info {
                    exact,
                    must: None,
                    prefix: unknown(),
                    suffix: unknown(),
                    options: Vec::new(),
                }
            } else {
                let exact = if rep.min == 1 && rep.max == Some(1) {
                    sub.exact.clone()
                } else {
                    None
                };
                let (prefix, suffix) = (sub.prefix.clone(), sub.suffix.clone());
                let options = sub.options.clone();
                Info {
                    exact,
                    must: sub.best(goal.preference),
                    prefix,
                    suffix,
                    options,
                }
            }
        }
        HirKind::Concat(children) => concat(children, goal),
        HirKind::Alternation(children) => {
            let infos: Vec<Info> = children.iter().map(|c| analyze(c, goal)).collect();
            let exact = infos
                .iter()
                .map(|i| i.exact.clone())
                .collect::<Option<Vec<Set>>>()
                .map(|sets| sets.concat())
                .filter(|s| s.len() <= MAX_SET)
                .map(|mut s| {
                    dedup(&mut s);
                    s
                });
            let prefix =
                bounded_union(infos.iter().map(|i| i.prefix.clone())).unwrap_or_else(unknown);
            let suffix =
                bounded_union(infos.iter().map(|i| i.suffix.clone())).unwrap_or_else(unknown);
            let must = infos
                .into_iter()
                .map(|i| i.best(goal.preference))
                .collect::<Option<Vec<Set>>>()
                .and_then(|sets| bounded_union(sets.into_iter()))
                .map(|mut set| {
                    minimize(&mut set);
                    set
                });
            Info {
                exact,
                must,
                prefix,
                suffix,
                options: Vec::new(),
            }
        }
    }
}

/// One element of a concatenation: a sub-expression, or a point no literal
/// may span (a byte the alphabet does not allow).
enum Piece<'a> {
    Node(&'a Hir),
    Bytes(&'a [u8]),
    Break,
}

fn concat(children: &[Hir], goal: Goal) -> Info {
    let mut pieces = Vec::new();
    for child in children {
        if let HirKind::Literal(lit) = child.kind() {
            let bytes: &[u8] = &lit.0;
            for (i, part) in bytes.split(|&b| !goal.alphabet.allows(b)).enumerate() {
                if i > 0 {
                    pieces.push(Piece::Break);
                }
                if !part.is_empty() {
                    pieces.push(Piece::Bytes(part));
                }
            }
        } else {
            pieces.push(Piece::Node(child));
        }
    }

    // What each piece contributes: (exact set, prefixes, suffixes).
    let mut candidates: Vec<Set> = Vec::new();
    let mut inner_options: Vec<Set> = Vec::new();
    let parts: Vec<(Option<Set>, Set, Set)> = pieces
        .into_iter()
        .map(|piece| match piece {
            Piece::Bytes(bytes) => {
                candidates.push(vec![bytes.to_vec()]);
                let one = vec![bytes.to_vec()];
                (Some(one.clone()), one.clone(), one)
            }
            Piece::Break => (None, unknown(), unknown()),
            Piece::Node(node) => {
                let info = analyze(node, goal);
                if let Some(must) = info.must {
                    candidates.push(must);
                }
                inner_options.extend(info.options);
                (info.exact, info.prefix, info.suffix)
            }
        })
        .collect();

    let mut run: Set = unknown();
    let mut whole_is_exact = true;
    for (exact, prefix, suffix) in &parts {
        match exact {
            Some(exact) if run.len() * exact.len() <= MAX_SET => {
                // Keep the run before it branches: a few long literals may
                // select better than many longer ones.
                if exact.len() > 1 && usable(&run) && goal.preference == Preference::Selective {
                    candidates.push(run.clone());
                }
                run = product(&run, exact);
            }
            Some(exact) => {
                candidates.push(std::mem::replace(&mut run, exact.clone()));
                whole_is_exact = false;
            }
            None => {
                // The run goes on into what this piece always starts with,
                // and a new run starts with what it always ends with.
                let extended = bounded_product(&run, prefix).unwrap_or_else(|| run.clone());
                candidates.push(extended);
                run = suffix.clone();
                whole_is_exact = false;
            }
        }
    }
    let exact = whole_is_exact.then(|| run.clone());
    candidates.push(run);
    candidates.retain(usable);
    candidates.iter_mut().for_each(minimize);
    let mut options = candidates.clone();
    options.extend(inner_options);
    let must = candidates
        .into_iter()
        .reduce(|a, b| pick(a, b, goal.preference));
    Info {
        exact,
        must,
        prefix: edge(parts.iter().map(|(e, p, _)| (e, p)), false),
        suffix: edge(parts.iter().rev().map(|(e, _, s)| (e, s)), true),
        options,
    }
}

/// What a concatenation always starts with, given its pieces in order as
/// (exact set, prefixes) — or, with `backwards`, what it always ends with,
/// given its pieces in reverse order as (exact set, suffixes).
fn edge<'a>(pieces: impl Iterator<Item = (&'a Option<Set>, &'a Set)>, backwards: bool) -> Set {
    let mut acc = unknown();
    for (exact, edge) in pieces {
        let next = exact.as_ref().unwrap_or(edge);
        if next.len() > 1 && usable(&acc) {
            // Known already; branching would only multiply the literals.
            break;
        }
        let joined = if backwards {
            bounded_product(next, &acc)
        } else {
            bounded_product(&acc, next)
        };
        match joined {
            Some(product) => acc = product,
            None => break,
        }
        if exact.is_none() {
            break;
        }
    }
    acc
}

fn class_members(class: &Class, alphabet: Alphabet) -> Option<Set> {
    let mut out = Vec::new();
    match class {
        Class::Unicode(class) => {
            for range in class.iter() {
                for c in range.start()..=range.end() {
                    if out.len() == MAX_CLASS {
                        return None;
                    }
                    let mut buf = [0u8; 4];
                    let bytes = c.encode_utf8(&mut buf).as_bytes();
                    if !bytes.iter().all(|&b| alphabet.allows(b)) {
                        return None;
                    }
                    out.push(bytes.to_vec());
                }
            }
        }
        Class::Bytes(class) => {
            for range in class.iter() {
                for b in range.start()..=range.end() {
                    if out.len() == MAX_CLASS || !alphabet.allows(b) {
                        return None;
                    }
                    out.push(vec![b]);
                }
            }
        }
    }
    Some(out)
}

fn product(left: &Set, right: &Set) -> Set {
    let mut out = Vec::with_capacity(left.len() * right.len());
    for l in left {
        for r in right {
            let mut s = l.clone();
            s.extend_from_slice(r);
            out.push(s);
        }
    }
    dedup(&mut out);
    out
}

fn dedup(set: &mut Set) {
    set.sort();
    set.dedup();
}

/// Drops from a required set every member that contains another member: a
/// line holding it holds the shorter one too, so the set requires the same
/// and finds the same lines with fewer literals (`Out of memory: Kill
/// process ` goes, `Kill process ` stays). Never applied to an exact set,
/// whose members are whole strings to concatenate.
fn minimize(set: &mut Set) {
    set.sort_by_key(Vec::len);
    let mut kept: Set = Vec::with_capacity(set.len());
    for member in set.drain(..) {
        if !kept
            .iter()
            .any(|shorter| memchr::memmem::find(&member, shorter).is_some())
        {
            kept.push(member);
        }
    }
    kept.sort();
    *set = kept;
}

/// A set is usable as a requirement if none of its strings is empty (the
/// empty string occurs everywhere, so it requires nothing).
fn usable(set: &Set) -> bool {
    set.iter().all(|s| !s.is_empty())
}

fn min_len(set: &Set) -> usize {
    set.iter().map(Vec::len).min().unwrap_or(usize::MAX)
}

/// Ranks sets when few literals matter most: long shortest members first,
/// then few members.
fn rank(set: &Set) -> (usize, std::cmp::Reverse<usize>, usize) {
    let total = set.iter().map(Vec::len).sum();
    (min_len(set).min(8), std::cmp::Reverse(set.len()), total)
}

/// Largest set preferred over a shorter one it refines.
const MAX_REFINING: usize = 16;

/// Picks the set to search for. A set whose every member contains a member
/// of the other (it *refines* it: `could not open file ` over `could not `)
/// finds strictly fewer false candidates, so it wins while it stays small;
/// otherwise long shortest members, then few members, win.
fn pick(a: Set, b: Set, preference: Preference) -> Set {
    if preference == Preference::Few {
        return if rank(&b) > rank(&a) { b } else { a };
    }
    if worth_refining(&b, &a) {
        return b;
    }
    if worth_refining(&a, &b) {
        return a;
    }
    // A set with a member too short to search for loses to one without.
    let searchable = |s: &Set| min_len(s) >= MIN_LITERAL;
    match (searchable(&a), searchable(&b)) {
        (true, false) => a,
        (false, true) => b,
        // Equally rare by the estimate: the longer literals are the safer bet.
        _ if (crate::rarity::set_rarity(&b), min_len(&b))
            > (crate::rarity::set_rarity(&a), min_len(&a)) =>
        {
            b
        }
        _ => a,
    }
}

/// Whether searching for `fine` instead of `coarse` is worth it: it
/// refines it, and either costs no more literals or buys at least three
/// more bytes per literal for at most four times as many (so `could not
/// open file ` beats `could not `, but ten `5xx` variants do not beat `5`).
fn worth_refining(fine: &Set, coarse: &Set) -> bool {
    refines(fine, coarse)
        && (fine.len() <= coarse.len()
            || (fine.len() <= MAX_REFINING
                && fine.len() <= 4 * coarse.len()
                && min_len(fine) >= min_len(coarse) + 3))
}

/// Whether every member of `fine` contains some member of `coarse`.
fn refines(fine: &Set, coarse: &Set) -> bool {
    fine != coarse
        && fine
            .iter()
            .all(|f| coarse.iter().any(|c| memchr::memmem::find(f, c).is_some()))
}

fn better(a: Option<Set>, b: Option<Set>, preference: Preference) -> Option<Set> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b, preference)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pattern: &str, alphabet: Alphabet) -> Option<Vec<String>> {
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(pattern)
            .unwrap();
        required(&hir, alphabet, Preference::Selective).map(|set| {
            set.into_iter()
                .map(|s| String::from_utf8(s).unwrap())
                .collect()
        })
    }

    fn raw(pattern: &str) -> Option<Vec<String>> {
        req(pattern, Alphabet::Raw)
    }

    #[test]
    fn plain_literals_are_required_whole() {
        assert_eq!(
            raw("Remounting filesystem read-only"),
            Some(vec!["Remounting filesystem read-only".into()])
        );
    }

    #[test]
    fn classes_and_optionals_multiply_into_longer_literals_or_the_best_piece() {
        // A single member beats four longer ones: fewer literals, same rank of length.
        assert_eq!(
            raw("[Rr]ead-only file ?system").unwrap().len(),
            4,
            "Read-only file system, read-only filesystem, …"
        );
        assert_eq!(
            raw("(Liveness|Readiness|Startup) probe failed"),
            Some(vec![
                "Liveness probe failed".into(),
                "Readiness probe failed".into(),
                "Startup probe failed".into()
            ])
        );
        assert_eq!(
            raw("(Liveness|Readiness) probe"),
            Some(vec!["Liveness probe".into(), "Readiness probe".into()])
        );
    }

    #[test]
    fn the_literal_is_found_inside_a_pattern_that_starts_with_a_wildcard() {
        assert_eq!(
            raw("INFO: task .*:[0-9]+ blocked for more than"),
            Some(vec![" blocked for more than".into()])
        );
        assert_eq!(
            raw(r"EXT4-fs error \(device [a-z0-9-]+\)"),
            Some(vec!["EXT4-fs error (device ".into()])
        );
    }

    #[test]
    fn escape_safe_literals_stop_at_quotes_and_backslashes() {
        let set = req(
            r#"could not open file "(?P<path>[^"]+)": Read-only file system"#,
            Alphabet::EscapeSafe,
        );
        assert_eq!(set, Some(vec![": Read-only file system".into()]));
        let set = req(r#""error_severity":"PANIC""#, Alphabet::EscapeSafe);
        assert_eq!(set, Some(vec!["PANIC".into()]), "the rarer piece");
    }

    #[test]
    fn the_few_preference_keeps_the_set_small() {
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse("(Liveness|Readiness|Startup) probe failed")
            .unwrap();
        assert_eq!(
            required(&hir, Alphabet::Raw, Preference::Few),
            Some(vec![b" probe failed".to_vec()])
        );
    }

    #[test]
    fn literals_extend_into_what_a_group_always_starts_and_ends_with() {
        assert_eq!(
            raw(r"push \((?P<status>5[0-9]{2})\)"),
            Some(vec!["push (5".into()])
        );
        assert_eq!(
            raw(r"(?:a+|b+)x(?P<v>[0-9]+QRS|[0-9]+XYZ) took long"),
            Some(vec!["QRS took long".into(), "XYZ took long".into()])
        );
        assert_eq!(raw(r"(?:ab[0-9]+cd)+ef"), Some(vec!["cdef".into()]));
    }

    #[test]
    fn specific_literals_beat_a_common_prefix() {
        assert_eq!(
            raw("could not (write to|fsync) file .{1,2}pg_wal/"),
            Some(vec![
                "could not fsync file ".into(),
                "could not write to file ".into()
            ])
        );
        assert_eq!(
            raw(r#"msg="(final error|error) sending batch" status=5[0-9][0-9]"#),
            Some(vec![
                r#"msg="error sending batch" status=5"#.into(),
                r#"msg="final error sending batch" status=5"#.into()
            ])
        );
    }

    #[test]
    fn case_insensitive_patterns_expand_within_the_cap() {
        let set = raw("(?i)erofs").unwrap();
        // Every case variant of some 3+ byte piece of the word.
        assert!(
            set.len() >= 8 && set.iter().all(|s| s.len() >= 3),
            "{set:?}"
        );
        let first = set[0].to_ascii_lowercase();
        assert!(
            set.iter().all(|s| s.to_ascii_lowercase() == first),
            "{set:?}"
        );
    }

    #[test]
    fn patterns_without_a_usable_literal_need_every_line() {
        assert_eq!(raw("[0-9]+"), None);
        assert_eq!(raw(".*"), None);
        assert_eq!(raw("ab|[a-z]+c"), None);
        assert_eq!(
            raw("x?yz"),
            None,
            "two-byte literals are too short to search for"
        );
    }

    #[test]
    fn alternation_needs_a_literal_in_every_branch() {
        assert_eq!(
            raw("(No space left|Input/output error)"),
            Some(vec!["Input/output error".into(), "No space left".into()])
        );
    }

    #[test]
    fn an_optional_prefix_does_not_multiply_the_requirement() {
        // "Out of memory: Kill process " holds "Kill process ": the
        // longer variants add nothing but literals.
        assert_eq!(
            raw("(?:(?:Out of memory|No available memory): )?[Kk]ill(?:ed)? process [0-9]+"),
            Some(vec![
                "Kill process ".into(),
                "Killed process ".into(),
                "kill process ".into(),
                "killed process ".into(),
            ])
        );
    }

    #[test]
    fn a_repeated_group_keeps_its_requirement() {
        assert_eq!(
            raw("(abcd[0-9])+"),
            Some(vec!["abcd".into()]),
            "one literal beats ten one byte longer"
        );
        assert_eq!(
            raw("(abc[0-9a-z])+"),
            Some(vec!["abc".into()]),
            "36 members of 4 bytes would be too many"
        );
        assert_eq!(raw("(abcd)?x"), None);
    }
}
