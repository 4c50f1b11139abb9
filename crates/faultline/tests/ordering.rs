//! Event-time ordering does not depend on how the work was cut: a large
//! file split across workers, and hits written to temporary files when
//! they exceed their memory, give exactly the hits of one worker holding
//! everything.

use faultline::replay::{HitRecord, Options, replay};
use faultline_correlate::Correlator;
use faultline_matcher::Matcher;
use faultline_signatures::Library;

const FAILURE: &str = r#"FATAL:  could not open file "global/pg_control": Read-only file system"#;
const LINES: u64 = 1_000_000;
/// Undated lines (a stack trace) run from here to `UNDATED_END`, around
/// the middle of the file, where a two-way split cuts it.
const UNDATED_START: u64 = LINES * 2 / 5;
const UNDATED_END: u64 = LINES * 3 / 5;
const BASE: i64 = 1_772_236_800; // 2026-02-28T00:00:00Z

fn log() -> String {
    let mut text = String::with_capacity(LINES as usize * 100);
    for i in 0..LINES {
        let dated = !(UNDATED_START..UNDATED_END).contains(&i);
        let failure = if dated { i % 500 == 7 } else { i % 700 == 3 };
        let message = if failure {
            FAILURE.to_string()
        } else if dated {
            format!("level=info msg=\"checkpoint complete\" lsn=0/{i:08X} took=12ms")
        } else {
            format!("    at org.example.Store.flush(Store.java:{})", i % 997)
        };
        if dated {
            let ts = jiff::Timestamp::from_second(BASE + i as i64).unwrap();
            text.push_str(&format!("{ts:.9} {message}\n"));
        } else {
            text.push_str(&format!("{message}\n"));
        }
    }
    text
}

type Seen = (usize, Option<i64>, String, u64, String);

fn replay_file(path: &std::path::Path, threads: usize, hit_memory: usize) -> Vec<Seen> {
    let library = Library::builtin().unwrap();
    let matcher = Matcher::new(library.signatures()).unwrap();
    let options = Options {
        threads,
        hit_memory,
        ..Options::default()
    };
    let mut seen = Vec::new();
    let correlator = Correlator::new(Default::default(), library.rules());
    let replayed = replay(
        &matcher,
        &[path.to_path_buf()],
        &options,
        correlator,
        |hit: &HitRecord| {
            seen.push((
                hit.signature,
                hit.ts,
                hit.origin.to_string(),
                hit.line_no,
                hit.line.clone(),
            ));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(replayed.hits, seen.len() as u64);
    assert!(replayed.spill_error.is_none());
    seen
}

#[test]
fn split_files_and_spilled_hits_give_the_same_ordered_hits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.log");
    let text = log();
    assert!(text.len() > 64 << 20, "large enough to be split");
    std::fs::write(&path, text).unwrap();

    let one = replay_file(&path, 1, usize::MAX);
    let dated = (0..LINES)
        .filter(|i| !(UNDATED_START..UNDATED_END).contains(i) && i % 500 == 7)
        .count();
    let undated = (UNDATED_START..UNDATED_END)
        .filter(|i| i % 700 == 3)
        .count();
    assert_eq!(one.len(), dated + undated);
    // In event-time order, line numbers are 1-based and increasing here.
    for w in one.windows(2) {
        assert!(w[0].1 <= w[1].1 && w[0].3 < w[1].3, "{w:?}");
    }
    // Undated lines inherit the time of the last dated line before them.
    let inherited = Some((BASE + UNDATED_START as i64 - 1) * 1_000_000_000);
    for hit in &one {
        let line = hit.3 - 1;
        if (UNDATED_START..UNDATED_END).contains(&line) {
            assert_eq!(hit.1, inherited, "line {}", hit.3);
        } else {
            assert_eq!(hit.1, Some((BASE + line as i64) * 1_000_000_000));
        }
    }

    same(
        &replay_file(&path, 2, usize::MAX),
        &one,
        "split across two workers",
    );
    same(
        &replay_file(&path, 2, 1),
        &one,
        "every batch written to disk",
    );
    same(&replay_file(&path, 1, 4096), &one, "a few hits per run");
}

/// `got == want`, naming the first difference rather than printing both.
fn same(got: &[Seen], want: &[Seen], how: &str) {
    if let Some((i, (g, w))) = got.iter().zip(want).enumerate().find(|(_, (g, w))| g != w) {
        panic!("{how}: hit {i} differs:\n got {g:?}\nwant {w:?}");
    }
    assert_eq!(got.len(), want.len(), "{how}: number of hits");
}
