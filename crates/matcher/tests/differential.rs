//! The proof that the fast path is correct: for random signature sets and
//! random buffers, [`Matcher::scan`] — literal prefilter, multi-pattern
//! set, escape-aware views — reports exactly the (line, signature,
//! captures) that the naive reference reports: every signature's own
//! `regex::bytes` run on every line separately (on its unescaped view
//! first, as the matcher prefers what the component printed), `unless`
//! applied.
//!
//! Lines of every length, `\r\n`, NUL bytes, invalid UTF-8 and JSON
//! string escapes are all generated; a line is never split across
//! buffers here because `scan` takes whole lines (the followers cut
//! buffers at line ends; that is tested with them).

use faultline_matcher::Matcher;
use faultline_matcher::reference::{self, fast, scan as naive};
use faultline_signatures::Signature;
use proptest::prelude::*;

/// Words lines and patterns are built from: failure words, near misses,
/// regex metacharacters, and non-ASCII text.
const WORDS: &[&str] = &[
    "EXT4-fs",
    "error",
    "Error",
    "read-only",
    "Read-only file system",
    "remounting",
    "sdb",
    "sdc1",
    "FATAL",
    "could not open file",
    "global/pg_control",
    "msg",
    "level=error",
    "500",
    "timeout",
    "a.b",
    "(x)",
    "é",
    "日本",
    "ok",
];

/// One piece of a pattern.
fn piece(capture: usize) -> impl Strategy<Value = String> {
    let word = prop::sample::select(WORDS).prop_map(regex::escape);
    prop_oneof![
        4 => word.clone(),
        1 => Just(".*".to_string()),
        1 => Just(r"\s+".to_string()),
        1 => Just(r"\d{1,3}".to_string()),
        2 => Just(format!(r"(?P<c{capture}>[a-z0-9]+)")),
        1 => (word.clone(), word.clone()).prop_map(|(a, b)| format!("(?:{a}|{b})")),
        1 => word.clone().prop_map(|w| format!("(?i:{w})")),
        1 => word.prop_map(|w| format!("(?:{w})?")),
    ]
}

/// A pattern: one to four pieces, sometimes anchored.
fn pattern() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        piece(0),
        prop::collection::vec(piece(1), 0..3),
        any::<bool>(),
    )
        .prop_map(|(anchor, first, rest, end)| {
            let mut pattern = if anchor {
                "^".to_string()
            } else {
                String::new()
            };
            pattern.push_str(&first);
            // Each capture name once: number the later ones apart.
            for (i, piece) in rest.iter().enumerate() {
                pattern.push_str(&piece.replace("(?P<c1>", &format!("(?P<c{}>", i + 1)));
            }
            if end {
                pattern.push('$');
            }
            pattern
        })
        .prop_filter("a valid regex", |p| regex::bytes::Regex::new(p).is_ok())
}

fn signature(index: usize, pattern: &str, unless: Option<&str>) -> Signature {
    reference::signature(
        index,
        regex::bytes::Regex::new(pattern).expect("filtered valid"),
        unless.map(|u| regex::bytes::Regex::new(&regex::escape(u)).expect("escaped")),
    )
}

fn signatures() -> impl Strategy<Value = Vec<Signature>> {
    prop::collection::vec(
        (
            pattern(),
            prop::option::weighted(0.2, prop::sample::select(WORDS)),
        ),
        1..12,
    )
    .prop_map(|specs| {
        specs
            .iter()
            .enumerate()
            .map(|(i, (pattern, unless))| signature(i, pattern, *unless))
            .collect()
    })
}

/// One line's bytes (no `\n`): words, separators, odd bytes, sometimes
/// inside a JSON string with escapes, sometimes very long.
fn line() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        6 => prop::sample::select(WORDS).prop_map(|w| w.as_bytes().to_vec()),
        2 => Just(b" ".to_vec()),
        1 => Just(b"\t".to_vec()),
        1 => Just(vec![0u8]),
        1 => Just(vec![0xff, 0xfe]),
        1 => Just(b"\\\"".to_vec()),
        1 => Just(b"\\n".to_vec()),
        1 => Just(b"\\u00e9".to_vec()),
        1 => (0u32..1000).prop_map(|n| n.to_string().into_bytes()),
    ];
    (prop::collection::vec(token, 0..24), 0u8..10, any::<bool>()).prop_map(|(tokens, shape, cr)| {
        let body: Vec<u8> = tokens.concat();
        let mut line = match shape {
            // A JSON record: the matcher also reads its unescaped view.
            0..=2 => {
                let mut json = b"{\"level\":\"error\",\"msg\":\"".to_vec();
                json.extend(body.iter().filter(|&&b| b != b'"'));
                json.extend_from_slice(b"\"}");
                json
            }
            // Very long: past the prefilter's buffer-sized steps.
            3 => body
                .iter()
                .cycle()
                .take(body.len() * 200)
                .copied()
                .collect(),
            _ => body,
        };
        if cr {
            line.push(b'\r');
        }
        line
    })
}

fn buffer() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(line(), 0..40).prop_map(joined)
}

/// `lines`, each ended by `\n`, as one buffer.
fn joined<L: AsRef<[u8]>>(lines: Vec<L>) -> Vec<u8> {
    let mut buf = Vec::new();
    for line in lines {
        buf.extend_from_slice(line.as_ref());
        buf.push(b'\n');
    }
    buf
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        .. ProptestConfig::default()
    })]

    #[test]
    fn the_matcher_reports_exactly_what_each_regex_reports_line_by_line(
        signatures in signatures(),
        buf in buffer(),
    ) {
        let matcher = Matcher::new(&signatures).expect("valid patterns compile");
        prop_assert_eq!(fast(&matcher, &buf), naive(&signatures, &buf));
    }
}

#[test]
fn the_builtin_library_agrees_with_the_naive_reference_on_its_own_examples() {
    let library = faultline_signatures::Library::builtin().expect("the built-in library");
    let signatures = library.signatures();
    let matcher = Matcher::new(signatures).expect("it compiles");
    let mut buf = Vec::new();
    for signature in signatures {
        for line in signature
            .examples
            .iter()
            .map(|e| &e.line)
            .chain(signature.near_misses.iter().map(|n| &n.line))
        {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
    }
    let found = fast(&matcher, &buf);
    assert!(
        found.len() > signatures.len(),
        "every example matches something"
    );
    assert_eq!(found, naive(signatures, &buf));
}

/// Three hundred signatures: more literals than the SIMD searcher takes,
/// so the prefilter searches for anchors that cover them and the matcher
/// finds each line's literals from where the anchors start.
fn many_signatures() -> Vec<Signature> {
    (0..300)
        .map(|i| {
            let word = regex::escape(WORDS[i % WORDS.len()]);
            let pattern = format!(r"{word} code{i:03} (?P<c0>[a-z0-9]+)");
            signature(i, &pattern, (i % 7 == 0).then_some("ok"))
        })
        .collect()
}

/// [`many_signatures`] and their matcher, built once for all cases.
static MANY: std::sync::LazyLock<(Vec<Signature>, Matcher)> = std::sync::LazyLock::new(|| {
    let signatures = many_signatures();
    let matcher = Matcher::new(&signatures).expect("valid patterns compile");
    (signatures, matcher)
});

/// Lines of words and `codeNNN` tokens, some holding hundreds of them.
fn coded_buffer() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(str::to_string),
        3 => (0u32..320).prop_map(|n| format!("code{n:03}")),
        1 => Just("x1".to_string()),
    ];
    let line = (prop::collection::vec(token, 0..16), 0u8..8).prop_map(|(tokens, shape)| {
        let line = tokens.join(" ");
        if shape == 0 {
            // More needles than the prefilter gathers for one line.
            std::iter::repeat_n(line.as_str(), 60)
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            line
        }
    });
    prop::collection::vec(line, 0..30).prop_map(joined)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        .. ProptestConfig::default()
    })]

    #[test]
    fn past_the_fast_literal_limit_the_matcher_still_reports_exactly_what_the_reference_does(
        buf in coded_buffer(),
    ) {
        let (signatures, matcher) = &*MANY;
        prop_assert_eq!(fast(matcher, &buf), naive(signatures, &buf));
    }
}
