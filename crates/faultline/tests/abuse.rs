//! Abuse: inputs built to break a log tool. A directory of 100,000 files,
//! a symbolic link loop, a directory faultline may not read, a 1 GiB line,
//! a million distinct pods: each gets a clear message (once), memory stays
//! bounded, and the run goes on to find the failures that follow.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Watch, append_line, free_port, http_get, metrics_show, missing, post};
use serde_json::Value;

const FAILURE: &str = r#"2026-02-19 03:04:07.123 UTC [25] FATAL:  could not open file "global/pg_control": Read-only file system"#;

/// Files in the crowded directory.
const MANY: usize = 100_000;

/// A tree with every hostile thing in it, under `root`:
/// `many/` (100,000 quiet files and a link back to `root`), `locked/`
/// (unreadable to faultline), `big.log` (a first line, a 1 GiB line of
/// NUL bytes, then [`FAILURE`]) and an empty `pods/db.log`, written last.
fn hostile_tree(root: &Path) {
    let many = root.join("many");
    std::fs::create_dir(&many).unwrap();
    for n in 0..MANY {
        std::fs::write(many.join(format!("{n}.log")), "quiet\n").unwrap();
    }
    std::os::unix::fs::symlink("..", many.join("loop")).unwrap();
    let locked = root.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("hidden.log"), format!("{FAILURE}\n")).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    // Sparse: a gigabyte of zeros costs no disk.
    let big = root.join("big.log");
    std::fs::write(&big, "2026-02-19T03:04:05Z first line\n").unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
    file.set_len(1 << 30).unwrap();
    drop(file);
    append_line(&big, "");
    append_line(&big, FAILURE);
    std::fs::create_dir(root.join("pods")).unwrap();
    std::fs::write(root.join("pods/db.log"), "").unwrap();
}

/// What runs faultline so that file permissions hold for it: as root,
/// `setpriv` without the capabilities that pass over them; otherwise
/// nothing. None when that is not possible here (the test is skipped).
fn unprivileged() -> Option<Vec<&'static str>> {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some(Vec::new());
    }
    let available = Command::new("setpriv").arg("--version").output().is_ok();
    if missing(
        available,
        "setpriv (util-linux), to drop root's file capabilities",
    ) {
        return None;
    }
    Some(vec![
        "setpriv",
        "--inh-caps=-dac_override,-dac_read_search",
        "--bounding-set=-dac_override,-dac_read_search",
    ])
}

/// The peak resident memory of process `pid`, in bytes.
fn peak_memory(pid: u32) -> u64 {
    proc_status_bytes(pid, "VmHWM:")
}

/// A size in `/proc/PID/status` (`field` with its colon), in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    kib * 1024
}

/// Waits (60 s at most) until `watch` has written a line to stderr that
/// contains each of `wanted`.
fn wait_for_messages(watch: &Watch, wanted: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stderr = watch.stderr();
        let missing: Vec<_> = wanted
            .iter()
            .filter(|w| !stderr.iter().any(|line| line.contains(**w)))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no message with {missing:?} in {stderr:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn watch_goes_on_past_100000_files_a_link_loop_an_unreadable_directory_and_a_1_gib_line() {
    let Some(runner) = unprivileged() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    hostile_tree(root);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let glob = format!("{}/**/*.log", root.display());
    let watch = Watch::start_under(
        &runner,
        &[
            "--files",
            &glob,
            "--read-existing",
            "--poll",
            "1s",
            "--listen",
            &listen,
        ],
    );
    let messages = [
        "many/loop: a symbolic link loop (back to",
        "locked: cannot read: Permission denied",
        "more files match --files than are followed at once (--max-files 10000)",
    ];
    wait_for_messages(&watch, &messages);
    // The failure after the 1 GiB line is found (once the gigabyte has
    // been read past, which an unoptimised build takes its time over);
    // the line itself was cut.
    let hit = watch.next_within(Duration::from_secs(180), &mut Vec::new(), |r| {
        r["type"] == "hit"
    });
    assert!(
        hit["origin"]
            .as_str()
            .is_some_and(|o| o.ends_with("big.log:3")),
        "{hit}"
    );
    metrics_show(port, "faultline_lines_truncated_total 1");
    // The most recently written files are followed; the rest wait.
    metrics_show(
        port,
        &format!(
            "faultline_files_unfollowed {}",
            MANY + 2 - faultline_sources::files::DEFAULT_MAX_FILES
        ),
    );
    // And the run goes on: a new failure in a followed file is found.
    append_line(&root.join("pods/db.log"), FAILURE);
    let hit = watch.next(|r| r["type"] == "hit");
    assert!(
        hit["origin"]
            .as_str()
            .is_some_and(|o| o.ends_with("pods/db.log:1")),
        "{hit}"
    );
    // Memory stayed far below the gigabyte line.
    let peak = peak_memory(watch.child.id());
    assert!(peak < 512 << 20, "peak resident memory {peak} bytes");
    // Each problem was told once, though it stood at every poll.
    std::thread::sleep(Duration::from_secs(3));
    let stderr = watch.stderr();
    for message in messages {
        let told = stderr.iter().filter(|l| l.contains(message)).count();
        assert_eq!(told, 1, "{message:?} told {told} times: {stderr:#?}");
    }
    let (status, _) = watch.stop();
    assert!(status.success(), "{status:?}");
    // Let the temporary directory be removed.
    std::fs::set_permissions(
        root.join("locked"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
}

#[test]
fn an_unreadable_directory_costs_file_system_events_for_itself_only() {
    let Some(runner) = unprivileged() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let locked = root.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    std::fs::create_dir(root.join("pods")).unwrap();
    std::fs::write(root.join("pods/db.log"), "").unwrap();
    let glob = format!("{}/**/*.log", root.display());
    // Looking only once an hour: what is found is found through events.
    let watch = Watch::start_under(&runner, &["--files", &glob, "--poll", "1h"]);
    wait_for_messages(&watch, &["locked: cannot read: Permission denied"]);
    append_line(&root.join("pods/db.log"), FAILURE);
    let hit = watch.next(|r| r["type"] == "hit");
    assert!(
        hit["origin"]
            .as_str()
            .is_some_and(|o| o.ends_with("pods/db.log:1")),
        "{hit}"
    );
    // A directory made since is watched too, and a file in it found.
    std::fs::create_dir(root.join("new-pod")).unwrap();
    append_line(&root.join("new-pod/app.log"), FAILURE);
    let hit = watch.next(|r| r["type"] == "hit");
    assert!(
        hit["origin"]
            .as_str()
            .is_some_and(|o| o.ends_with("new-pod/app.log:1")),
        "{hit}"
    );
    let stderr = watch.stderr();
    assert!(
        !stderr.iter().any(|l| l.contains("no file system events")),
        "{stderr:#?}"
    );
    watch.stop();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
}

#[test]
fn a_line_written_through_a_linked_file_is_seen_through_events() {
    // As /var/log/containers/*.log links to /var/log/pods/…
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("pods/db")).unwrap();
    std::fs::create_dir(root.join("containers")).unwrap();
    std::fs::write(root.join("pods/db/0.log"), format!("{FAILURE}\n")).unwrap();
    std::os::unix::fs::symlink(root.join("pods/db/0.log"), root.join("containers/db.log")).unwrap();
    let glob = format!("{}/containers/*.log", root.display());
    // Looking only once an hour: after the first look (which reads the
    // file there), what is found is found through events.
    let watch = Watch::start(&["--files", &glob, "--read-existing", "--poll", "1h"]);
    for line in [1, 2] {
        if line == 2 {
            append_line(&root.join("pods/db/0.log"), FAILURE);
        }
        let hit = watch.next(|r| r["type"] == "hit");
        assert!(
            hit["origin"]
                .as_str()
                .is_some_and(|o| o.ends_with(&format!("containers/db.log:{line}"))),
            "{hit}"
        );
    }
    watch.stop();
}

#[test]
fn replay_goes_on_past_100000_files_a_link_loop_an_unreadable_directory_and_a_1_gib_line() {
    let Some(runner) = unprivileged() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    hostile_tree(root);
    append_line(&root.join("pods/db.log"), FAILURE);
    let (program, args) = match runner.split_first() {
        Some((program, args)) => (*program, args.to_vec()),
        None => (env!("CARGO_BIN_EXE_faultline"), Vec::new()),
    };
    let mut command = Command::new(program);
    command.args(args);
    if !runner.is_empty() {
        command.arg(env!("CARGO_BIN_EXE_faultline"));
    }
    let output = command
        .args(["replay", "--format", "json"])
        .arg(root)
        .output()
        .unwrap();
    std::fs::set_permissions(
        root.join("locked"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Some input could not be read: exit status 2, and the rest is
    // reported all the same.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let records: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = records
        .iter()
        .find(|r| r["type"] == "summary")
        .expect("a summary");
    assert_eq!(summary["files"], MANY + 2, "{summary}");
    assert_eq!(summary["lines_truncated"], 1, "{summary}");
    let errors = summary["errors"].to_string();
    assert!(
        errors.contains("locked") && errors.contains("Permission denied"),
        "{summary}"
    );
    // The loop is not an error (everything was read), but is told.
    assert!(
        summary["skipped"]
            .to_string()
            .contains("many/loop: a symbolic link loop (back to"),
        "{summary}"
    );
    let mut origins: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "hit")
        .filter_map(|r| r["origin"].as_str())
        .map(|o| o.rsplit('/').next().unwrap_or(o))
        .collect();
    origins.sort();
    assert_eq!(origins, ["big.log:3", "db.log:1"]);
}

/// Pods in the input, and how many of them report a failure.
const PODS: usize = 1_000_000;
const FAILING_EVERY: usize = 5;

/// One push of `pods` streams, each from its own pod (named as a
/// Deployment's pods are, and with a UID) with one line naming its UID;
/// every [`FAILING_EVERY`]th pod's line is a failure.
fn push_of_pods(first: usize, pods: usize) -> Vec<u8> {
    // Written now: incidents are correlated on the time in the log.
    let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap();
    let streams: Vec<Value> = (first..first + pods)
        .map(|n| {
            let uid = format!("3f6d2a1c-7b4e-4c1d-9a8f-{n:012x}");
            let line = if n % FAILING_EVERY == 0 {
                format!(
                    "{uid} FATAL:  could not write to file \"pg_wal/xlogtemp.{n}\": Read-only file system"
                )
            } else {
                format!("{uid} LOG:  checkpoint complete: wrote {n} buffers")
            };
            serde_json::json!({
                "stream": {
                    "namespace": "tenants",
                    "pod": format!("batch-{n:06x}-k7x2p"),
                    "container": "app",
                    "pod_uid": uid,
                },
                "values": [[format!("{}", now + n as i64), line]],
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap()
}

/// The value of the unlabelled metric `name` in `metrics` (text format).
fn metric_value(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_operator_sizes_the_stream_and_incident_tables() {
    let (port, push) = (free_port(), free_port());
    let (listen, listen_push) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{push}"));
    let watch = Watch::start(&[
        "--listen",
        &listen,
        "--listen-push",
        &listen_push,
        "--max-streams",
        "10",
        "--max-incidents",
        "5",
    ]);
    // 100 pods, one line each; every fifth (20) fails.
    let (status, body) = post(
        push,
        &[("Content-Type", "application/json")],
        &push_of_pods(0, 100),
    );
    assert_eq!(status, 204, "{body}");
    // Once all 20 incidents were seen (metrics are updated every tick).
    let incidents = |metrics: &str| {
        let evicted = metric_value(metrics, "faultline_incidents_evicted_total").unwrap_or(0);
        let firing: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("faultline_incidents_firing{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
            .sum();
        (firing, evicted)
    };
    let metrics = metrics_when(port, Duration::from_secs(20), |metrics| {
        let (firing, evicted) = incidents(metrics);
        firing + evicted >= 20
    });
    assert_eq!(
        metric_value(&metrics, "faultline_streams_evicted_total"),
        Some(90),
        "one stream in, the least recently active out, once ten are kept"
    );
    let (firing, evicted) = incidents(&metrics);
    assert!(
        firing <= 5,
        "{firing} incidents kept over --max-incidents 5"
    );
    assert_eq!(
        evicted + firing,
        20,
        "each of the 20 incidents is kept or counted as evicted: {metrics}"
    );
    watch.stop();
}

/// The metrics of the faultline listening on `port` once `wanted` holds
/// for them, waiting up to `patience`.
fn metrics_when(port: u16, patience: Duration, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + patience;
    loop {
        let metrics = http_get(port, "/metrics").unwrap().1;
        if wanted(&metrics) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "not yet after {patience:?}: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The resident memory of process `pid` now, in bytes.
fn memory(pid: u32) -> u64 {
    proc_status_bytes(pid, "VmRSS:")
}

#[test]
fn a_million_distinct_pods_keep_memory_bounded_and_evictions_counted() {
    let port = free_port();
    let push = free_port();
    let listen = format!("127.0.0.1:{port}");
    let listen_push = format!("127.0.0.1:{push}");
    let watch = Watch::start(&["--listen", &listen, "--listen-push", &listen_push]);
    const PER_PUSH: usize = 10_000;
    let mut halfway = 0;
    for first in (0..PODS).step_by(PER_PUSH) {
        let (status, body) = post(
            push,
            &[("Content-Type", "application/json")],
            &push_of_pods(first, PER_PUSH),
        );
        assert_eq!(status, 204, "{body}");
        if first + PER_PUSH == PODS / 2 {
            halfway = memory(watch.child.id());
        }
    }
    // Every line was read, and once the queue is worked off what was let
    // go was counted (processing may lag reading by the queue's length).
    metrics_show(
        port,
        &format!("faultline_lines_total{{source=\"push\"}} {PODS}"),
    );
    let max = 100_000;
    let floors = [
        ("faultline_streams_evicted_total", PODS - max),
        (
            "faultline_incidents_evicted_total",
            PODS / FAILING_EVERY - max,
        ),
    ];
    let metrics = metrics_when(port, Duration::from_secs(120), |metrics| {
        floors
            .iter()
            .all(|&(name, floor)| metric_value(metrics, name).is_some_and(|v| v >= floor as u64))
    });
    // Memory reached its plateau with the tables full, before half the
    // pods had come, and stayed there.
    let end = memory(watch.child.id());
    assert!(
        end < halfway + halfway / 4,
        "resident memory grew from {halfway} to {end} bytes"
    );
    let peak = peak_memory(watch.child.id());
    assert!(peak < 1 << 30, "peak resident memory {peak} bytes");
    // No label value carries a pod's UID or the text of a line.
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, labels)) = line.split_once('{') else {
            continue;
        };
        assert!(
            !labels.contains("3f6d2a1c")
                && !labels.contains("xlogtemp")
                && !labels.contains("batch-"),
            "a metric label carries input: {line}"
        );
    }
    watch.stop();
}
