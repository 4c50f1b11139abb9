//! Shows how the prefilter sees a pattern file: the literals chosen for
//! each pattern and, given a corpus, how many candidate lines they select.
//!
//! `cargo run --release -p faultline-matcher --example literals -- PATTERNS [CORPUS]`
use faultline_matcher::literals::{Alphabet, Preference, required};
use faultline_matcher::prefilter::Prefilter;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: literals PATTERNS_FILE|--builtin [CORPUS]");
    // `--builtin`: the built-in signature library, with escape-safe literals.
    let (text, alphabet) = if path == "--builtin" {
        let library = faultline_signatures::Library::builtin().expect("built-in library loads");
        let patterns: Vec<String> = library
            .signatures()
            .iter()
            .map(|s| s.pattern.clone())
            .collect();
        (patterns.join("\n"), Alphabet::EscapeSafe)
    } else {
        (
            std::fs::read_to_string(&path).expect("readable patterns file"),
            Alphabet::Raw,
        )
    };
    let hirs: Vec<_> = text
        .lines()
        .map(|line| {
            regex_syntax::ParserBuilder::new()
                .utf8(false)
                .build()
                .parse(line)
                .expect("valid pattern")
        })
        .collect();
    for (line, hir) in text.lines().zip(&hirs) {
        let set = required(hir, alphabet, Preference::Selective).unwrap_or_default();
        let shown: Vec<String> = set
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        println!("{line}\n    {shown:?}");
    }
    let (prefilter, _) = Prefilter::new(&hirs, alphabet);
    let needles: Vec<String> = prefilter
        .needles()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let literals: Vec<String> = prefilter
        .literals()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    println!("literals: {literals:?}");
    println!(
        "{} literals, searched for as {} needles: {needles:?}",
        prefilter.literal_count(),
        needles.len()
    );
    if let Some(corpus) = args.next() {
        let buf = std::fs::read(&corpus).expect("readable corpus");
        if path == "--builtin" {
            let library = faultline_signatures::Library::builtin().expect("built-in library loads");
            let started = std::time::Instant::now();
            let matcher = faultline_matcher::Matcher::new(library.signatures()).expect("compiles");
            println!("matcher built in {:.3} s", started.elapsed().as_secs_f64());
            let mut scratch = matcher.scratch();
            let started = std::time::Instant::now();
            let mut hits = 0u64;
            matcher.scan(&buf, |_| None, &mut scratch, |_| hits += 1);
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "matcher: {hits} hits in {seconds:.3} s ({:.0} MB/s)",
                buf.len() as f64 / seconds / 1e6
            );
        }
        let started = std::time::Instant::now();
        let mut lines = 0u64;
        prefilter.for_each_candidate(&buf, |_, _| {
            lines += 1;
            true
        });
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "prefilter alone: {lines} candidate lines in {seconds:.3} s ({:.0} MB/s)",
            buf.len() as f64 / seconds / 1e6
        );
        let mut per_literal = vec![0u64; prefilter.needles().len()];
        let mut candidates = 0u64;
        prefilter.for_each_candidate(&buf, |start, end| {
            candidates += 1;
            for (i, lit) in prefilter.needles().iter().enumerate() {
                if memchr::memmem::find(&buf[start..end], lit).is_some() {
                    per_literal[i] += 1;
                }
            }
            true
        });
        println!("{candidates} candidate lines");
        if path == "--builtin" {
            per_signature(&buf, &prefilter);
        }
        let mut top: Vec<_> = prefilter
            .needles()
            .iter()
            .zip(per_literal)
            .filter(|(_, n)| *n > 0)
            .collect();
        top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        for (lit, n) in top.iter().take(10) {
            println!("  {n:>8}  {:?}", String::from_utf8_lossy(lit));
        }
    }
}

/// Prints, for the signatures whose literals select the most lines of
/// `buf`, how many lines hold one of its literals: the signatures whose
/// literals are worth making rarer.
fn per_signature(buf: &[u8], prefilter: &Prefilter) {
    let library = faultline_signatures::Library::builtin().expect("built-in library loads");
    let mut rows: Vec<(u64, String, Vec<String>)> = Vec::new();
    for (signature, chosen) in library.signatures().iter().zip(prefilter.chosen()) {
        let Some(set) = chosen else {
            rows.push((u64::MAX, signature.id.clone(), vec!["(every line)".into()]));
            continue;
        };
        let searcher = aho_corasick::AhoCorasick::new(set).expect("literals build");
        let lines = buf
            .split(|&b| b == b'\n')
            .filter(|line| searcher.is_match(line))
            .count() as u64;
        let shown = set
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        rows.push((lines, signature.id.clone(), shown));
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    println!("candidate lines per signature (most first):");
    for (lines, id, set) in rows.iter().take(25) {
        println!("  {lines:>8}  {id}  {set:?}");
    }
}
