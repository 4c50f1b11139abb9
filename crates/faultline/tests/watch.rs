//! End-to-end tests of `faultline watch`: the binary follows real files
//! and standard input and prints hits and incident changes as they happen.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::faultline_with_stdin;
use serde_json::Value;

const FAILURE: &str = r#"2026-02-19 03:04:07.123 UTC [25] FATAL:  could not open file "global/pg_control": Read-only file system"#;

/// A running `faultline watch` and the JSON records it printed so far.
struct Watch {
    child: Child,
    records: mpsc::Receiver<Value>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .arg("watch")
            .args(["--format", "json", "--poll", "20ms"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the faultline binary runs");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, records) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.expect("UTF-8 output");
                let record = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(record).is_err() {
                    return;
                }
            }
        });
        Watch { child, records }
    }

    /// The next record that `wanted` accepts, skipping others (20 s at
    /// most, which only a broken watch takes).
    fn next(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let record = self
                .records
                .recv_timeout(Duration::from_secs(20))
                .expect("faultline watch reports in time");
            if wanted(&record) {
                return record;
            }
        }
    }

    /// SIGTERM, then the exit status and every record printed after this
    /// call.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        (status, self.records.try_iter().collect())
    }
}

impl Drop for Watch {
    /// A failed test does not leave faultline running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append(path: &Path, line: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

fn cri(line: &str) -> String {
    format!("2026-02-19T03:04:07.000000000Z stderr F {line}")
}

fn is_hit(r: &Value) -> bool {
    r["type"] == "hit"
}

#[test]
fn standard_input_is_matched_and_the_incident_pages() {
    let input = format!("starting\n{FAILURE}\n");
    let out = faultline_with_stdin(&["watch", "--format", "json", "-"], input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["type"], "hit");
    assert_eq!(records[0]["origin"], "-:2");
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "incident" && r["state"] == "firing"),
        "{records:?}"
    );
}

#[test]
fn followed_pod_logs_page_and_a_restart_resumes_without_repeating() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let glob = format!("{}/var/log/pods/*/*/*.log", dir.path().display());
    let log = dir
        .path()
        .join("var/log/pods/vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres/0.log");
    let args = [
        "--files",
        glob.as_str(),
        "--state-dir",
        state.to_str().unwrap(),
    ];

    let watch = Watch::start(&args);
    // A pod log that appears after the start is read from its start.
    std::thread::sleep(Duration::from_millis(300));
    append(&log, &cri("healthy"));
    append(&log, &cri(FAILURE));
    let hit = watch.next(is_hit);
    assert_eq!(hit["signature"], "postgres-data-read-only");
    assert_eq!(hit["labels"]["namespace"], "vitals-prod");
    assert_eq!(hit["origin"], format!("{}:2", log.display()));
    let paged =
        watch.next(|r| r["type"] == "incident" && r["key"].as_str().unwrap().starts_with("pvc/"));
    assert_eq!(
        paged["key"],
        "pvc/vitals-prod/vitals-db-production-cnpg-v1-2"
    );
    assert_eq!(paged["state"], "firing");
    let (status, _) = watch.stop();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    assert!(state.join("checkpoints.json").exists());

    // Written while faultline was down: only this is reported after the
    // restart, not the line already seen.
    append(&log, &cri(&FAILURE.replace("[25]", "[26]")));
    let watch = Watch::start(&args);
    let hit = watch.next(is_hit);
    assert!(hit["line"].as_str().unwrap().contains("[26]"), "{hit}");
    std::thread::sleep(Duration::from_millis(300));
    let (status, rest) = watch.stop();
    assert!(status.success());
    assert!(!rest.iter().any(is_hit), "nothing read twice: {rest:?}");
}

#[test]
fn watch_needs_something_to_watch() {
    let out = faultline_with_stdin(&["watch"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to watch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
