//! End-to-end tests of `faultline watch`: the binary follows real files
//! and standard input and prints hits and incident changes as they happen.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Watch, append_line, faultline_with_stdin, free_port, metrics_show, post};
use serde_json::Value;

const FAILURE: &str = r#"2026-02-19 03:04:07.123 UTC [25] FATAL:  could not open file "global/pg_control": Read-only file system"#;

impl Drop for Watch {
    /// A failed test does not leave faultline running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cri(line: &str) -> String {
    common::cri_now(line)
}

fn is_hit(r: &Value) -> bool {
    r["type"] == "hit"
}

#[test]
fn standard_input_is_matched_and_the_incident_pages() {
    let input = format!("starting\n{FAILURE}\n");
    let out = faultline_with_stdin(
        &["watch", "--format", "json", "--listen", "127.0.0.1:0", "-"],
        input.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = common::json_lines(&out.stdout);
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
    // A pod log that appears after the start is read from its start
    // (one there at the very first look would be history): wait for the
    // first look, which finds no directory yet.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !watch
        .stderr()
        .iter()
        .any(|l| l.contains("no such directory (yet)"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "faultline never looked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    append_line(&log, &cri("healthy"));
    append_line(&log, &cri(FAILURE));
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
    append_line(&log, &cri(&FAILURE.replace("[25]", "[26]")));
    let watch = Watch::start(&args);
    let hit = watch.next(is_hit);
    assert!(hit["line"].as_str().unwrap().contains("[26]"), "{hit}");
    std::thread::sleep(Duration::from_millis(300));
    let (status, rest) = watch.stop();
    assert!(status.success());
    assert!(!rest.iter().any(is_hit), "nothing read twice: {rest:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("checkpoints.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "state is its owner's only");
    }

    // A damaged state file (emptied, as on a full disk) does not keep
    // faultline from starting: it is moved aside with a warning, and the
    // files are followed afresh.
    std::fs::write(state.join("checkpoints.json"), "").unwrap();
    let watch = Watch::start(&args);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !watch.stderr().iter().any(|l| l.contains("moved to")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning: {:?}",
            watch.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        watch
            .stderr()
            .iter()
            .any(|l| l.contains("checkpoints.json is empty")),
        "{:?}",
        watch.stderr()
    );
    // Without checkpoints the log is followed from its end as the first
    // look finds it, which may come after a line written right now: write
    // until one is read.
    let mut kept = Vec::new();
    let hit = (0..20)
        .find_map(|_| {
            append_line(&log, &cri(&FAILURE.replace("[25]", "[27]")));
            watch.try_next_within(Duration::from_secs(3), &mut kept, is_hit)
        })
        .expect("a line written after the start is read");
    assert!(hit["line"].as_str().unwrap().contains("[27]"), "{hit}");
    let (status, _) = watch.stop();
    assert!(status.success());
}

#[test]
fn a_state_volume_that_cannot_be_written_does_not_stop_detection() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("pods/db/0.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "").unwrap();
    let glob = format!("{}/pods/*/*.log", dir.path().display());
    let watch = Watch::start(&[
        "--files",
        &glob,
        "--read-existing",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    append_line(&log, &cri(FAILURE));
    watch.next(is_hit);
    // The state directory is gone and a file stands in its way: saving
    // fails (as on a full or read-only volume).
    while !state.join("checkpoints.json").exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::write(&state, "in the way").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !watch
        .stderr()
        .iter()
        .any(|l| l.contains("saving checkpoints") && l.contains("watching goes on"))
    {
        assert!(std::time::Instant::now() < deadline, "{:?}", watch.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Detection goes on.
    append_line(&log, &cri(&FAILURE.replace("[25]", "[28]")));
    let hit = watch.next(is_hit);
    assert!(hit["line"].as_str().unwrap().contains("[28]"), "{hit}");
    // The volume is back: saved again, and a clean stop.
    std::fs::remove_file(&state).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !watch
        .stderr()
        .iter()
        .any(|l| l.contains("checkpoints are saved again"))
    {
        assert!(std::time::Instant::now() < deadline, "{:?}", watch.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = watch.stop();
    assert!(status.success());
    assert!(
        state.join("checkpoints.json").exists(),
        "the checkpoints are written again"
    );
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
    // A Loki user without a password, or a bad selector, is said at once.
    let out = faultline_with_stdin(
        &[
            "watch",
            "--loki",
            "http://127.0.0.1:9",
            "--loki-user",
            "faultline",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--loki-user needs a password"));
    let out = faultline_with_stdin(
        &[
            "watch",
            "--loki",
            "http://127.0.0.1:9",
            "--selector",
            "namespace=x",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--selector: \"namespace=x\": a stream selector is")
    );
}

#[test]
fn pushes_in_both_of_lokis_encodings_are_matched_with_their_labels() {
    use faultline_sources::push::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let metrics_port = free_port();
    let listen = format!("127.0.0.1:{metrics_port}");
    let watch = Watch::start(&["--listen-push", &addr, "--listen", &listen]);

    // promtail's encoding: snappy-compressed protobuf.
    let request = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{namespace="monitoring", pod="loki-0", container="loki", node_name="talos-519-vmy"}"#
                .into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp {
                    seconds: 1_771_470_247,
                    nanos: 0,
                }),
                line: r#"level=error ts=2026-02-19T03:04:07Z caller=wal.go:106 msg="error writing to WAL" err="open /var/loki/wal/00000042: read-only file system""#.into(),
                structured_metadata: Vec::new(),
                parsed: Vec::new(),
            }],
            hash: 0,
        }],
        format: String::new(),
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&request))
        .unwrap();
    let (status, _) = post(port, &[("Content-Type", "application/x-protobuf")], &body);
    assert_eq!(status, 204);
    let hit = watch.next(is_hit);
    assert_eq!(hit["labels"]["pod"], "loki-0");
    assert_eq!(hit["labels"]["node"], "talos-519-vmy");
    assert_eq!(hit["ts"], "2026-02-19T03:04:07.000000000Z");
    assert_eq!(hit["class"], "volume-read-only");

    // The JSON encoding.
    let json = r#"{"streams":[{"stream":{"namespace":"vitals-prod","pod":"vitals-db-production-cnpg-v1-2","container":"postgres"},"values":[["1771470248000000000","2026-02-19 03:04:08.000 UTC [25] FATAL:  could not open file \"global/pg_control\": Read-only file system"]]}]}"#;
    let (status, _) = post(
        port,
        &[("Content-Type", "application/json")],
        json.as_bytes(),
    );
    assert_eq!(status, 204);
    let hit = watch.next(is_hit);
    assert_eq!(hit["labels"]["namespace"], "vitals-prod");
    assert_eq!(
        hit["entity"],
        "pvc/vitals-prod/vitals-db-production-cnpg-v1-2"
    );

    // Malformed bodies get 400 with the reason, as from Loki.
    let (status, reason) = post(
        port,
        &[("Content-Type", "application/json")],
        br#"{"streams":[{"stream":{},"values":[[1771470248000000000,"x"]]}]}"#,
    );
    assert_eq!(status, 400);
    assert!(
        reason.contains("the timestamp must be a string"),
        "{reason}"
    );
    let (status, reason) = post(port, &[("Content-Type", "application/x-protobuf")], b"junk");
    assert_eq!(status, 400);
    assert!(reason.contains("snappy"), "{reason}");
    // Both are counted.
    metrics_show(
        metrics_port,
        "faultline_decode_errors_total{reason=\"malformed-push\",source=\"push\"} 2",
    );
    let (status, _) = watch.stop();
    assert!(status.success());
}

#[test]
fn a_push_over_the_limit_is_refused_with_413() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let watch = Watch::start(&["--listen-push", &addr, "--push-max-body", "1024"]);
    let (status, _) = post(
        port,
        &[("Content-Type", "application/json")],
        &vec![b' '; 4096],
    );
    assert_eq!(status, 413);
    watch.stop();
}

#[test]
fn a_push_client_that_stalls_gets_408_and_the_receiver_goes_on() {
    use std::io::Read;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let watch = Watch::start(&["--listen-push", &addr, "--push-timeout", "500ms"]);
    // Wait for the receiver, with a request that completes.
    let (status, _) = post(
        port,
        &[("Content-Type", "application/json")],
        br#"{"streams":[]}"#,
    );
    assert_eq!(status, 204);
    // Headers for 1000 bytes, 10 of them sent, then nothing.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled
        .write_all(b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"streams\"")
        .unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut response = String::new();
    let _ = stalled.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response:?}");
    assert!(
        response.contains("did not arrive within 0.5s"),
        "{response:?}"
    );
    // Others are still served.
    let (status, _) = post(
        port,
        &[("Content-Type", "application/json")],
        br#"{"streams":[]}"#,
    );
    assert_eq!(status, 204);
    watch.stop();
}

#[test]
fn a_push_client_that_sends_its_headers_slowly_is_cut_off_and_the_receiver_goes_on() {
    use std::io::Read;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let watch = Watch::start(&["--listen-push", &addr, "--push-timeout", "500ms"]);
    let (status, _) = post(
        port,
        &[("Content-Type", "application/json")],
        br#"{"streams":[]}"#,
    );
    assert_eq!(status, 204);
    // A request line and one header, then a header byte at a time, slower
    // than the timeout allows for the whole head (slowloris).
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut closed = false;
    for _ in 0..100 {
        if slow.write_all(b"X").is_err() {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        match slow.read(&mut byte) {
            // Closed without an answer: the head never came whole.
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => panic!("the server answered a request it never received"),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "a client dripping header bytes kept its connection for 20 s"
    );
    // Others are still served.
    let (status, _) = post(
        port,
        &[("Content-Type", "application/json")],
        br#"{"streams":[]}"#,
    );
    assert_eq!(status, 204);
    watch.stop();
}

/// A Python program using `python-logging-loki` (PyPI), a real Loki
/// client: it pushes one record as JSON and fails unless the answer is
/// Loki's 204.
const PYTHON_CLIENT: &str = r#"
import logging, sys
from logging_loki.emitter import LokiEmitterV1
emitter = LokiEmitterV1(sys.argv[1], tags={"namespace": "vitals-prod", "pod": "vitals-db-production-cnpg-v1-3", "container": "postgres"})
record = logging.LogRecord("postgres", logging.ERROR, "push.py", 1, sys.argv[2], None, None)
emitter(record, sys.argv[2])
"#;

#[test]
fn a_real_loki_client_library_pushes_to_faultline() {
    let available = Command::new("python3")
        .args(["-c", "import logging_loki"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var_os("FAULTLINE_REQUIRE_TOOLS").is_none(),
            "python3 with python-logging-loki is required here (FAULTLINE_REQUIRE_TOOLS is set)"
        );
        eprintln!(
            "skipped: python3 -c 'import logging_loki' failed (pip install python-logging-loki)"
        );
        return;
    }
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let watch = Watch::start(&["--listen-push", &addr]);
    // Wait for the receiver, as a shipper retries until Loki is up.
    let (status, _) = post(
        port,
        &[("Content-Type", "application/json")],
        br#"{"streams":[]}"#,
    );
    assert_eq!(status, 204);
    let pushed = Command::new("python3")
        .args([
            "-c",
            PYTHON_CLIENT,
            &format!("http://{addr}/loki/api/v1/push"),
            r#"FATAL:  could not write to file "pg_wal/xlogtemp.72": Read-only file system"#,
        ])
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let hit = watch.next(is_hit);
    assert_eq!(hit["labels"]["pod"], "vitals-db-production-cnpg-v1-3");
    assert_eq!(
        hit["entity"],
        "pvc/vitals-prod/vitals-db-production-cnpg-v1-3"
    );
    watch.stop();
}

#[test]
fn the_real_kernel_log_is_followed_with_the_nodes_name() {
    // Writing to /dev/kmsg (as root) adds a record to the kernel's own log,
    // which faultline then reads back from the device.
    let writable = std::fs::OpenOptions::new().write(true).open("/dev/kmsg");
    let Ok(mut kmsg) = writable else {
        eprintln!("skipped: /dev/kmsg is not writable here (needs root)");
        return;
    };
    let watch = Watch::start(&["--kmsg", "--node", "talos-519-vmy"]);
    let marker = format!("faultline-test-{}", std::process::id());
    // One write is one record. faultline skips what the device holds when
    // it opens it, and its start takes a while on a loaded machine: write
    // the record again until it is read.
    let record = format!("<3>{marker}: EXT4-fs (loop7): Remounting filesystem read-only\n");
    let read = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let read = read.clone();
        std::thread::spawn(move || {
            for _ in 0..100 {
                if read.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                kmsg.write_all(record.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let hit = watch.next(|r| is_hit(r) && r["line"].as_str().unwrap().contains(&marker));
    read.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(hit["signature"], "kernel-ext4-remount-read-only");
    assert_eq!(hit["labels"]["node"], "talos-519-vmy");
    assert_eq!(hit["captures"]["device"], "loop7");
    // Dated from the record's own time since boot, not left empty.
    assert!(hit["ts"].is_string(), "{hit}");
    watch.stop();
}

#[test]
fn a_config_file_gives_the_settings_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faultline.yaml");
    std::fs::write(
        &config,
        "# read standard input, print JSON\nstdin: true\nformat: json\nlisten: 127.0.0.1:0\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let input = format!("{FAILURE}\n");
    let out = faultline_with_stdin(&["watch", "--config", config], input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8(out.stdout).unwrap();
    let record: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(record["type"], "hit");
    // The command line's --format wins over the file's.
    let out = faultline_with_stdin(
        &["watch", "--config", config, "--format", "text"],
        input.as_bytes(),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CRITICAL"), "{text}");
    assert!(serde_json::from_str::<Value>(text.lines().next().unwrap()).is_err());
}

#[test]
fn config_check_reports_every_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faultline.yaml");
    std::fs::write(
        &config,
        "files:\n  - /var/log/pods/*/*/*.log\nlokki: http://loki:3100\njournald: maybe\nwebhook_secret: ${FAULTLINE_TEST_UNSET_VARIABLE}\npoll: fast\nlisten: nowhere\n",
    )
    .unwrap();
    let out = faultline_with_stdin(&["config", "check", config.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8(out.stdout).unwrap();
    let name = config.display().to_string();
    for expected in [
        format!("{name}:3: lokki: unknown setting"),
        format!("{name}:4: journald: must be true or false"),
        format!(
            "{name}:5: webhook_secret: the environment variable FAULTLINE_TEST_UNSET_VARIABLE is not set"
        ),
        format!(
            "{name}:6: poll: invalid value 'fast' for '--poll <DURATION>': \"fast\" is not a duration (examples: 250ms, 1s)"
        ),
        format!("{name}:7: listen: invalid value 'nowhere' for '--listen <ADDR>'"),
    ] {
        assert!(report.contains(&expected), "{expected} not in:\n{report}");
    }
    std::fs::write(&config, "files: [/var/log/pods/*/*/*.log]\npoll: 1s\n").unwrap();
    let out = faultline_with_stdin(&["config", "check", config.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/faultline.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["config", "check", example])
        .env("NODE_NAME", "node-1")
        .env("LOKI_TOKEN", "token")
        .env("FAULTLINE_WEBHOOK_SECRET", "secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The time now, in UTC ns.
fn now_ns() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap()
}

#[test]
fn when_loki_breaks_pod_logs_come_from_the_kubernetes_api_without_gap_or_repeat() {
    use faultline_testkit::kubernetes::{TestKubernetes, pod};
    use faultline_testkit::loki::{Mode, TestLoki};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (loki, loki_url) = runtime.block_on(TestLoki::start(None));
    let (kube, kube_url) = runtime.block_on(TestKubernetes::start());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = TestKubernetes::kubeconfig(&kube_url, dir.path());
    let (ns, name) = ("vitals-prod", "vitals-db-production-cnpg-v1-2");
    kube.apply(pod(
        ns,
        name,
        "talos-519-vmy",
        &["postgres"],
        &[("pgdata", name)],
    ));
    let labels = [("namespace", ns), ("pod", name), ("container", "postgres")];
    let line = |n: u32| {
        format!(
            "2026-02-19 03:04:{n:02}.000 UTC [{n}] FATAL:  could not open file \"global/pg_control\": Read-only file system"
        )
    };
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let watch = Watch::start(&[
        "--loki",
        &loki_url,
        "--loki-poll",
        "100ms",
        // Lines are written as the test goes: little lateness to allow
        // for, so the event clock follows Loki closely.
        "--loki-late",
        "1s",
        "--kubernetes",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--fallback-recover",
        "2s",
        "--listen",
        &listen,
    ]);
    let mut records = Vec::new();
    let hit_of = |n: u32| {
        move |r: &Value| is_hit(r) && r["line"].as_str().unwrap().contains(&format!("[{n}]"))
    };
    metrics_show(port, "faultline_fallback_active 0");

    // Loki healthy: the container's lines come through Loki.
    let first = now_ns();
    loki.add(&labels, first, &line(1));
    kube.log(ns, name, "postgres", first, &line(1));
    let hit = watch.next_keeping(&mut records, hit_of(1));
    assert!(
        hit["origin"].as_str().unwrap().starts_with("loki{"),
        "{hit}"
    );
    // Loki's own log shows its WAL failing while it still answers.
    loki.log_read_only_wal(now_ns());
    let hit = watch.next_keeping(&mut records, |r| {
        is_hit(r) && r["labels"]["pod"] == "loki-0"
    });
    assert_eq!(hit["signature"], "loki-wal-read-only");

    // Loki answers 500: the pipeline incident fires and the pod's log is
    // read from the API, from where Loki stopped.
    loki.set_mode(Mode::Failing);
    let paged = watch.next_keeping(&mut records, |r| {
        r["type"] == "incident" && r["key"] == "pipeline/loki"
    });
    assert_eq!(paged["state"], "firing");
    metrics_show(port, "faultline_fallback_active 1");
    metrics_show(
        port,
        "faultline_kubernetes_log_streams{state=\"following\"} 1",
    );
    let during = now_ns();
    kube.log(ns, name, "postgres", during, &line(2));
    let hit = watch.next_keeping(&mut records, hit_of(2));
    assert!(
        hit["origin"].as_str().unwrap().starts_with("kubernetes{"),
        "{hit}"
    );
    assert_eq!(hit["labels"]["namespace"], ns);

    // Loki is back, with what the agent pushed again (line 2) and a new
    // line: only the new one is reported; the incident resolves.
    loki.add(&labels, during, &line(2));
    loki.add(&labels, now_ns(), &line(3));
    loki.set_mode(Mode::Healthy);
    let hit = watch.next_keeping(&mut records, hit_of(3));
    assert!(
        hit["origin"].as_str().unwrap().starts_with("loki{"),
        "{hit}"
    );
    let loki_resolved = |r: &Value| {
        r["type"] == "incident" && r["key"] == "pipeline/loki" && r["state"] == "resolved"
    };
    let resolved = match records.iter().find(|r| loki_resolved(r)) {
        Some(record) => record.clone(),
        None => watch.next_keeping(&mut records, loki_resolved),
    };
    assert_eq!(resolved["state"], "resolved");
    // Healthy for the recovery time: Loki alone again.
    metrics_show(port, "faultline_fallback_active 0");
    metrics_show(
        port,
        "faultline_kubernetes_log_streams{state=\"following\"} 0",
    );
    let last = now_ns();
    loki.add(&labels, last, &line(4));
    kube.log(ns, name, "postgres", last, &line(4));
    watch.next_keeping(&mut records, hit_of(4));
    std::thread::sleep(Duration::from_millis(500));

    let (status, rest) = watch.stop();
    assert!(status.success());
    records.extend(rest);
    for n in 1..=4 {
        let hits = records.iter().filter(|r| hit_of(n)(r)).count();
        assert_eq!(hits, 1, "line {n} reported {hits} times");
    }
    drop(runtime);
}

/// Appends one entry to the journal file `journal` with real systemd
/// tooling (systemd-journal-remote, from the journal export format).
fn journal_entry(journal: &std::path::Path, unit: &str, message: &str) {
    let now = jiff::Timestamp::now().as_microsecond();
    let export = format!(
        "__REALTIME_TIMESTAMP={now}\n__MONOTONIC_TIMESTAMP=1\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_SYSTEMD_UNIT={unit}\nSYSLOG_IDENTIFIER=kubelet\n_HOSTNAME=talos-519-vmy\nMESSAGE={message}\n\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("entry.export");
    std::fs::write(&file, export).unwrap();
    let status = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", journal.display()))
        .arg(&file)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

#[test]
fn the_kubelets_journal_is_followed() {
    let available = std::path::Path::new(JOURNAL_REMOTE).exists()
        && Command::new("journalctl").arg("--version").output().is_ok();
    if common::missing(available, "journalctl and systemd-journal-remote") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("remote.journal");
    let probe = |pod: &str| {
        format!(
            r#"I0226 10:06:02.103020    1234 prober.go:107] "Probe failed" probeType="Liveness" pod="immich-prod/{pod}" podUID="24229ffe-0109-4e8f-9f96-76dd5ad97599" containerName="immich-machine-learning" probeResult="failure" output="Get \"http://10.244.1.23:3003/ping\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)""#
        )
    };
    journal_entry(&journal, "kubelet.service", &probe("from-before-the-start"));
    let watch = Watch::start(&[
        "--journal-directory",
        dir.path().to_str().unwrap(),
        "--node",
        "talos-519-vmy",
    ]);
    // Written once faultline follows: reported. When journalctl starts is
    // not known from outside, so the entry is written again until it is.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut kept = Vec::new();
    let hit = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "never reported: {kept:?}"
        );
        journal_entry(
            &journal,
            "kubelet.service",
            &probe("immich-machine-learning-7d4b9c6f58-6rtdn"),
        );
        if let Some(hit) = watch.try_next_within(Duration::from_millis(500), &mut kept, is_hit) {
            break hit;
        }
    };
    assert_eq!(hit["signature"], "kubelet-liveness-probe-failed");
    assert_eq!(hit["labels"]["node"], "talos-519-vmy");
    assert_eq!(
        hit["captures"]["pod"],
        "immich-machine-learning-7d4b9c6f58-6rtdn"
    );
    let (status, rest) = watch.stop();
    assert!(status.success());
    // The entry from before the start was history: not read.
    let history = |r: &&Value| {
        r["line"]
            .as_str()
            .is_some_and(|l| l.contains("from-before-the-start"))
    };
    assert!(
        !kept.iter().chain(&rest).any(|r| history(&r)),
        "{kept:?} {rest:?}"
    );
}

/// A signature file with one signature, `reload-test-{name}`, matching
/// `{NAME}-FAILURE`.
fn named_signature(name: &str) -> String {
    let upper = name.to_uppercase();
    format!(
        r#"signatures:
  - id: reload-test-{name}
    class: disk-io-error
    severity: warning
    title: A test failure
    match: '{upper}-FAILURE on (?P<device>sd[a-z]+)'
    summary: '{{device}} failed'
    remediation: 'look at {{device}}'
    examples:
      match:
        - line: 'kernel: {upper}-FAILURE on sdb'
          captures: {{device: sdb}}
"#
    )
}

#[test]
fn sighup_reloads_signatures_and_keeps_incidents_and_a_bad_reload_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let signatures = dir.path().join("signatures");
    std::fs::create_dir(&signatures).unwrap();
    let file = signatures.join("test.yaml");
    std::fs::write(&file, named_signature("alpha")).unwrap();
    let logs = dir
        .path()
        .join("pods/vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("0.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.path().join("faultline.yaml");
    std::fs::write(
        &config,
        format!(
            "files:\n  - {}/pods/*/*/*.log\nsignatures:\n  - {}\n",
            dir.path().display(),
            signatures.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let watch = Watch::start(&[
        "--config",
        config.to_str().unwrap(),
        "--read-existing",
        "--listen",
        &listen,
    ]);
    metrics_show(port, "faultline_queue_depth{queue=\"batches\"} 0");
    let mut records = Vec::new();
    append_line(&log, &cri("kernel: ALPHA-FAILURE on sdb"));
    let hit = watch.next_keeping(&mut records, is_hit);
    assert_eq!(hit["signature"], "reload-test-alpha");
    append_line(&log, &cri(FAILURE));
    let firing = watch.next_keeping(&mut records, |r| {
        r["type"] == "incident" && r["state"] == "firing"
    });
    let key = firing["key"].as_str().unwrap().to_string();

    // New signatures, then SIGHUP: they match from now on.
    std::fs::write(&file, named_signature("beta")).unwrap();
    let hangup = |watch: &Watch| {
        let pid = watch.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    hangup(&watch);
    metrics_show(port, "faultline_config_reloads_total{result=\"success\"} 1");
    append_line(&log, &cri("kernel: ALPHA-FAILURE on sdc"));
    append_line(&log, &cri("kernel: BETA-FAILURE on sdd"));
    let hit = watch.next_keeping(&mut records, is_hit);
    assert_eq!(hit["signature"], "reload-test-beta");
    assert_eq!(hit["captures"]["device"], "sdd");

    // A broken file: the reload fails and the running signatures stay.
    std::fs::write(&file, "signatures:\n  - id: broken\n    clas: typo\n").unwrap();
    hangup(&watch);
    metrics_show(port, "faultline_config_reloads_total{result=\"failure\"} 1");
    append_line(&log, &cri("kernel: BETA-FAILURE on sde"));
    let hit = watch.next_keeping(&mut records, is_hit);
    assert_eq!(hit["signature"], "reload-test-beta");

    let (status, rest) = watch.stop();
    assert!(status.success());
    records.extend(rest);
    // The incident lived through both reloads: fired once, never resolved
    // (announced when it fired, and as it stands at the stop).
    let changes: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "incident" && r["key"] == key.as_str())
        .collect();
    assert!(
        !changes.is_empty()
            && changes
                .iter()
                .all(|r| r["state"] == "firing" && r["fired_count"] == 1),
        "{changes:?}"
    );
    assert!(!records.iter().any(|r| is_hit(r)
        && r["signature"] == "reload-test-alpha"
        && r["captures"]["device"] == "sdc"));
}

#[test]
fn secrets_never_appear_in_output_logs_metrics_or_state() {
    use faultline_testkit::loki::{Mode, TestLoki};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (loki, loki_url) = runtime.block_on(TestLoki::start(None));
    loki.set_mode(Mode::Failing);
    let secrets = [
        ("FAULTLINE_TEST_LOKI_TOKEN", "planted-loki-token-5f1e"),
        ("FAULTLINE_TEST_WEBHOOK_TOKEN", "planted-webhook-token-9c2a"),
        ("FAULTLINE_TEST_WEBHOOK_SECRET", "planted-hmac-secret-77d0"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let logs = dir
        .path()
        .join("pods/vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("0.log");
    std::fs::write(&log, "").unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("faultline.yaml");
    let dead = free_port();
    std::fs::write(
        &config,
        format!(
            "files: ['{}/pods/*/*/*.log']\nloki: {loki_url}\nloki_token: ${{FAULTLINE_TEST_LOKI_TOKEN}}\n\
             alertmanager: [http://127.0.0.1:{dead}]\nwebhook: [http://127.0.0.1:{dead}/hook]\n\
             webhook_token: ${{FAULTLINE_TEST_WEBHOOK_TOKEN}}\nwebhook_secret: ${{FAULTLINE_TEST_WEBHOOK_SECRET}}\n\
             resend_interval: 1s\nstate_dir: {}\nread_existing: true\nformat: json\npoll: 20ms\n",
            dir.path().display(),
            state.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let stdout = dir.path().join("stdout");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["watch", "--config", config.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .envs(secrets)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    // A failure pages (to sinks that are down), Loki fails: every path
    // that reports, retries and saves state runs.
    metrics_show(port, "faultline_queue_depth{queue=\"batches\"} 0");
    append_line(&log, &cri(FAILURE));
    metrics_show(port, "faultline_source_healthy{source=\"loki\"} 0");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let (_, body) = common::http_get(port, "/metrics").unwrap();
        if body.contains("faultline_alert_send_failures_total{alertmanager=\"http://127.0.0.1")
            || std::time::Instant::now() > deadline
        {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let config_check = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["config", "check", config.to_str().unwrap()])
        .envs(secrets)
        .output()
        .unwrap();
    assert!(config_check.status.success());
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    let mut everything = vec![
        ("stdout", std::fs::read_to_string(&stdout).unwrap()),
        ("stderr", std::fs::read_to_string(&stderr).unwrap()),
        ("metrics", metrics),
        (
            "config check",
            String::from_utf8_lossy(&config_check.stdout).into_owned(),
        ),
    ];
    assert!(
        everything[0].1.contains("\"type\":\"incident\""),
        "the failure paged"
    );
    assert!(
        everything[1].1.contains("Loki is unhealthy"),
        "Loki's failure was told"
    );
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        everything.push(("state", std::fs::read_to_string(&path).unwrap_or_default()));
    }
    for (name, text) in &everything {
        for (_, secret) in secrets {
            assert!(
                !text.contains(secret),
                "{secret} appears in {name}:\n{text}"
            );
        }
    }
    drop(runtime);
}

#[test]
fn a_line_that_is_not_utf8_is_matched_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir
        .path()
        .join("vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("0.log");
    std::fs::write(&log, "").unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let glob = format!("{}/*/*/*.log", dir.path().display());
    let watch = Watch::start(&["--files", &glob, "--listen", &listen]);
    metrics_show(port, "faultline_queue_depth{queue=\"batches\"} 0");
    let mut line = cri(FAILURE).into_bytes();
    line.splice(40..40, *b"\xff\xfe");
    line.push(b'\n');
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&line)
        .unwrap();
    let hit = watch.next(is_hit);
    assert!(hit["line"].as_str().unwrap().contains("\u{fffd}"), "{hit}");
    metrics_show(
        port,
        "faultline_decode_errors_total{reason=\"invalid-utf8\",source=\"file\"} 1",
    );
    let (status, _) = watch.stop();
    assert!(status.success());
}

#[test]
fn a_sidecar_names_its_pod_with_labels() {
    let out = faultline_with_stdin(
        &[
            "watch",
            "--format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--label",
            "namespace=vitals-prod",
            "--label",
            "pod=vitals-db-production-cnpg-v1-2",
            "--label",
            "container=postgres",
            "-",
        ],
        format!("{FAILURE}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hit: Value = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(is_hit)
        .expect("a hit");
    assert_eq!(hit["labels"]["namespace"], "vitals-prod");
    assert_eq!(hit["labels"]["pod"], "vitals-db-production-cnpg-v1-2");
    assert_eq!(hit["labels"]["container"], "postgres");
    let out = faultline_with_stdin(&["watch", "--label", "novalue", "-"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"novalue\" is not NAME=VALUE"));
}
