//! Live equals replay: `faultline watch` reading the bundled incident's
//! plain pod, kubelet and kernel logs — there already, or written as the
//! test goes — finds the same incidents as `faultline replay` of the same
//! files with the same inventory and mount table: the same keys, states,
//! severities, summaries and remediations, on the time in the logs.
//!
//! Excepted: incidents that never fired (`pending`), which `watch` does
//! not announce; `replay` runs `--until` the end of the watch, so that
//! time has run as far in both.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Watch, faultline, json_lines};
use serde_json::Value;

const NODE: &str = "talos-519-vmy";

/// One test at a time: the written one keeps a schedule, which a busy
/// machine would make it miss.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Every field of an incident: all follow from the logs alone.
const ALL: &[&str] = &[
    "state",
    "severity",
    "summary",
    "remediation",
    "first_seen",
    "fired_at",
    "last_fired_at",
    "fired_count",
    "last_seen",
    "resolved_at",
    "signatures",
    "hits",
    "related",
    "evidence",
];

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/incident-2026-02-28")
}

/// The plain `*.log` files under `root`, in name order.
fn log_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `replay --format json` of `files` with the fixture's inventory and
/// mount table, time running on to `until`: the incidents that fired, by
/// key, and the number of hits.
fn replay(files: &[PathBuf], until: &str) -> (BTreeMap<String, Value>, usize) {
    let inventory = fixture().join("inventory.json");
    let mounts = fixture().join("node").join(NODE).join("mounts");
    let mut args = vec![
        "replay".to_string(),
        "--format".into(),
        "json".into(),
        "--until".into(),
        until.into(),
        "--inventory".into(),
        inventory.display().to_string(),
    ];
    // The mount table is an input, known by its place: node/<name>/.
    args.push(mounts.display().to_string());
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = faultline(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = json_lines(&out.stdout);
    let hits = records.iter().filter(|r| r["type"] == "hit").count();
    let incidents = records
        .into_iter()
        .filter(|r| r["type"] == "incident" && r["state"] != "pending")
        .map(|r| (r["key"].as_str().unwrap().to_string(), r))
        .collect();
    (incidents, hits)
}

/// `watch` over `files` (with the fixture's inventory, node and mount
/// table) while `feed` runs, until it has said nothing for three seconds
/// (three ticks of its clock): every record, and when it stopped (RFC
/// 3339).
fn watch(files: &[PathBuf], feed: impl FnOnce()) -> (Vec<Value>, String) {
    let inventory = fixture().join("inventory.json");
    let mounts = fixture().join("node").join(NODE).join("mounts");
    let mut args = vec![
        "--read-existing".to_string(),
        "--inventory".into(),
        inventory.display().to_string(),
        "--node".into(),
        NODE.into(),
        "--mounts".into(),
        mounts.display().to_string(),
    ];
    for file in files {
        args.push("--files".into());
        args.push(file.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let watch = Watch::start(&args);
    feed();
    let mut records = Vec::new();
    watch.next_within(Duration::from_secs(60), &mut records, |r| {
        r["type"] == "hit"
    });
    while watch
        .try_next_within(Duration::from_secs(3), &mut records, |_| true)
        .is_some()
    {}
    let (status, rest) = watch.stop();
    assert!(status.success());
    records.extend(rest);
    let stopped = format!("{:.0}", jiff::Timestamp::now());
    (records, stopped)
}

/// Each incident as `watch` last printed it, by key.
fn last_states(records: &[Value]) -> BTreeMap<String, Value> {
    records
        .iter()
        .filter(|r| r["type"] == "incident")
        .map(|r| (r["key"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

/// Replays `files` on to `stopped` and checks that `watch` (its
/// `records`) reported every hit and the same incidents, field by field:
/// the incidents, by key.
fn assert_watch_is_replay(
    files: &[PathBuf],
    records: &[Value],
    stopped: &str,
    at_least: usize,
) -> BTreeMap<String, Value> {
    let (replayed, hits) = replay(files, stopped);
    assert_eq!(
        records.iter().filter(|r| r["type"] == "hit").count(),
        hits,
        "every hit"
    );
    assert!(replayed.len() >= at_least, "{replayed:?}");
    let watched = last_states(records);
    assert_same(&replayed, &watched);
    watched
}

fn assert_same(replayed: &BTreeMap<String, Value>, watched: &BTreeMap<String, Value>) {
    assert_eq!(
        replayed.keys().collect::<Vec<_>>(),
        watched.keys().collect::<Vec<_>>(),
        "the same incidents"
    );
    let mut differences = Vec::new();
    for (key, r) in replayed {
        let w = &watched[key];
        for field in ALL {
            if r[field] != w[field] {
                differences.push(format!(
                    "{key} {field}:\n  replay {}\n  watch  {}",
                    r[field], w[field]
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn watching_the_logs_there_gives_the_incidents_replay_gives() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let files = log_files(&fixture());
    assert!(files.len() > 40, "the fixture's logs: {files:?}");
    let (records, stopped) = watch(&files, || {});
    let watched = assert_watch_is_replay(&files, &records, &stopped, 15);
    // Replayed to its end only, the CloudNativePG clusters still burn;
    // run on as watch did, they are over: time is the logs' in both.
    assert!(
        watched
            .values()
            .all(|i| i["state"] == "resolved" && i["resolved_at"].as_str() < Some("2026-03-01")),
        "{watched:?}"
    );
}

/// The lines of the fixture's pod logs (`files`, CRI), re-timed: the
/// twelve days of the incident pressed into `span` from `start` on, so
/// that they can be written as they happen. (time, file, line).
fn pressed_lines(files: &[PathBuf], start: i64, span: Duration) -> Vec<(i64, usize, String)> {
    let mut all = Vec::new();
    for (index, file) in files.iter().enumerate() {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let (time, rest) = line.split_once(' ').unwrap();
            let ts: jiff::Timestamp = time.parse().unwrap();
            let ts = i64::try_from(ts.as_nanosecond()).unwrap();
            all.push((ts, index, rest.to_string()));
        }
    }
    let first = all.iter().map(|(ts, _, _)| *ts).min().unwrap();
    let last = all.iter().map(|(ts, _, _)| *ts).max().unwrap();
    let scale = span.as_nanos() as f64 / (last - first) as f64;
    let mut pressed: Vec<(i64, usize, String)> = all
        .into_iter()
        .map(|(ts, file, rest)| {
            let at = start + ((ts - first) as f64 * scale) as i64;
            let time = jiff::Timestamp::from_nanosecond(i128::from(at)).unwrap();
            (at, file, format!("{time:.9} {rest}"))
        })
        .collect();
    // In time order; a file's own lines keep their order.
    pressed.sort_by_key(|(ts, file, _)| (*ts, *file));
    pressed
}

#[test]
fn watching_the_logs_as_they_are_written_gives_the_incidents_replay_gives() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pods = fixture().join("var/log/pods");
    let sources = log_files(&pods);
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = sources
        .iter()
        .map(|f| dir.path().join(f.strip_prefix(fixture()).unwrap()))
        .collect();
    for file in &files {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    }
    let now = || i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap();
    // The pod logs' lines, written as they happen over ten seconds.
    let start = now() + 2_000_000_000;
    let lines = pressed_lines(&sources, start, Duration::from_secs(10));
    let (records, stopped) = watch(&files, || {
        for chunk in
            lines.chunk_by(|a, b| (a.0 - start) / 100_000_000 == (b.0 - start) / 100_000_000)
        {
            // Written once its last line's time has come: no line is
            // from the future when it is read.
            let due = chunk[chunk.len() - 1].0;
            if let Ok(wait) = u64::try_from(due - now()) {
                std::thread::sleep(Duration::from_nanos(wait));
            }
            let mut by_file: BTreeMap<usize, String> = BTreeMap::new();
            for (_, file, line) in chunk {
                let text = by_file.entry(*file).or_default();
                text.push_str(line);
                text.push('\n');
            }
            for (file, text) in by_file {
                let mut out = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&files[file])
                    .unwrap();
                out.write_all(text.as_bytes()).unwrap();
            }
        }
    });
    assert_watch_is_replay(&files, &records, &stopped, 10);
}
