//! Latency of `faultline watch --files`: from a line appended to a followed
//! file to its hit printed. Starts the release binary on a temporary pod
//! log tree, appends a failure line every 50 ms (among healthy lines) for
//! ten seconds, and reports the 50th, 99th and 100th percentiles.
//!
//! `cargo bench -p faultline --bench watch_latency` (builds the binary
//! with the bench profile first).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAILURES: usize = 200;
const POLL: &str = "250ms";

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pod = dir.path().join("var/log/pods/app_db-1_0b7c/postgres");
    std::fs::create_dir_all(&pod).expect("the pod log directory");
    let log = pod.join("0.log");
    std::fs::write(&log, "").expect("the log file");
    let glob = format!("{}/var/log/pods/*/*/*.log", dir.path().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "watch",
            "--format",
            "json",
            "--poll",
            POLL,
            "--files",
            &glob,
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("faultline runs");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Instant)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if record["type"] != "hit" {
                continue;
            }
            // The failure's number is in the PostgreSQL backend pid.
            let text = record["line"].as_str().unwrap_or_default();
            if let Some(n) = text
                .split('[')
                .nth(1)
                .and_then(|r| r.split(']').next())
                .and_then(|n| n.parse().ok())
            {
                let _ = tx.send((n, Instant::now()));
            }
        }
    });
    // Let faultline see the file before writing.
    std::thread::sleep(Duration::from_secs(1));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("the log opens");
    let mut written = Vec::with_capacity(FAILURES);
    for n in 0..FAILURES {
        for _ in 0..20 {
            writeln!(
                file,
                "2026-02-19T03:04:07.000000000Z stdout F LOG:  checkpoint complete: wrote 3 buffers"
            )
            .expect("writing");
        }
        writeln!(
            file,
            "2026-02-19T03:04:07.000000000Z stderr F 2026-02-19 03:04:07.123 UTC [{n}] FATAL:  could not open file \"global/pg_control\": Read-only file system"
        )
        .expect("writing");
        written.push(Instant::now());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut latencies = Vec::with_capacity(FAILURES);
    while latencies.len() < FAILURES {
        let (n, at) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("every failure is reported");
        latencies.push(at.duration_since(written[n]));
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "watch --files latency over {FAILURES} failures (poll {POLL}): p50 {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(99),
        latencies[latencies.len() - 1]
    );
}
