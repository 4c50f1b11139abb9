//! End-to-end tests of `faultline replay` on inputs that are broken in the
//! ways real archives are: every one must give a clear error, lose nothing
//! else, and never panic.

mod common;

use std::io::Write;
use std::process::Output;

use common::{faultline, faultline_with_stdin};

use serde_json::Value;

/// A kernel failure line (signatures scoped to kernel and node logs).
const FAILURE: &str = "EXT4-fs (sdb): Remounting filesystem read-only";
/// A PostgreSQL failure line, as a pod would log it.
const POD_FAILURE: &str =
    r#"FATAL:  could not open file "global/pg_control": Read-only file system"#;

fn replay(args: &[&str]) -> Output {
    let mut all = vec!["replay", "--format", "json"];
    all.extend_from_slice(args);
    faultline(&all)
}

/// The hit records printed, and the summary (the last record). Incident
/// records are checked by the fixture test.
fn records(out: &Output) -> (Vec<Value>, Value) {
    let mut all: Vec<Value> = String::from_utf8(out.stdout.clone())
        .expect("JSON output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let summary = all.pop().expect("a summary record");
    assert_eq!(summary["type"], "summary");
    all.retain(|r| r["type"] == "hit");
    (all, summary)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn kernel_log(lines: usize, failure_at: usize) -> String {
    (0..lines)
        .map(|i| {
            let msg = if i == failure_at {
                FAILURE
            } else {
                "IPv4: martian source 10.244.1.1 from 10.244.2.2, on dev eth0"
            };
            format!(
                "10.0.0.2: kern:     err: [2026-02-19T03:{:02}:{:02}.000000000Z]: {msg}\n",
                (i / 60) % 60,
                i % 60
            )
        })
        .collect()
}

#[test]
fn hits_come_out_in_event_time_order_with_labels_and_captures() {
    let dir = tempfile::tempdir().unwrap();
    let pod_dir = dir
        .path()
        .join("var/log/pods/vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres");
    std::fs::create_dir_all(&pod_dir).unwrap();
    std::fs::write(
        pod_dir.join("0.log"),
        concat!(
            "2026-02-19T03:04:06.000000000Z stdout F healthy\n",
            r#"2026-02-19T03:04:07.500000000Z stderr F {"level":"info","ts":"2026-02-19T03:04:07.5Z","logger":"postgres","msg":"record","logging_pod":"vitals-db-production-cnpg-v1-2","record":{"error_severity":"PANIC","sql_state_code":"58030","message":"could not write to file \"pg_wal/xlogtemp.72\": Read-only file system"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let node = dir.path().join("node/talos-519-vmy");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::write(node.join("dmesg.log"), kernel_log(10, 5)).unwrap();

    let out = replay(&[dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "hits found: exit 1\n{}",
        stderr(&out)
    );
    let (hits, summary) = records(&out);
    let kinds: Vec<(&str, &str)> = hits
        .iter()
        .map(|h| (h["signature"].as_str().unwrap(), h["ts"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "kernel-ext4-remount-read-only",
                "2026-02-19T03:00:05.000000000Z"
            ),
            ("postgres-wal-read-only", "2026-02-19T03:04:07.500000000Z"),
        ]
    );
    let pg = &hits[1];
    assert_eq!(pg["class"], "volume-read-only");
    assert_eq!(pg["severity"], "critical");
    assert_eq!(pg["labels"]["namespace"], "vitals-prod");
    assert_eq!(pg["labels"]["pod"], "vitals-db-production-cnpg-v1-2");
    assert_eq!(pg["labels"]["container"], "postgres");
    assert_eq!(pg["captures"]["path"], "pg_wal/xlogtemp.72");
    assert!(
        pg["origin"].as_str().unwrap().ends_with("postgres/0.log:2"),
        "{}",
        pg["origin"]
    );
    assert_eq!(
        pg["entity"], "pvc/vitals-prod/vitals-db-production-cnpg-v1-2",
        "by CloudNativePG's naming convention"
    );
    assert_eq!(hits[0]["entity"], "node/talos-519-vmy");
    assert_eq!(
        summary["incidents"], 3,
        "the PVC, the node, and the CNPG cluster rollup"
    );
    assert_eq!(hits[0]["labels"]["node"], "talos-519-vmy");
    assert_eq!(hits[0]["captures"]["device"], "sdb");
    assert_eq!(summary["files"], 2);
    assert_eq!(summary["lines"], 12);
    assert_eq!(summary["hits"], 2);
    assert_eq!(summary["decode_errors"], 0);
}

#[test]
fn nothing_found_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("quiet.log"), kernel_log(20, usize::MAX)).unwrap();
    let out = replay(&[dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let (hits, summary) = records(&out);
    assert!(hits.is_empty());
    assert_eq!(summary["lines"], 20);
}

#[test]
fn a_truncated_gzip_names_the_file_and_offset_and_the_rest_is_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let whole = gzip(kernel_log(50_000, 10).as_bytes());
    let cut = dir.path().join("0.log.20260219-030405.gz");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    std::fs::write(dir.path().join("other.log"), kernel_log(5, 1)).unwrap();
    let out = replay(&[dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "an unreadable input: exit 2");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: corrupt or truncated gzip at byte ",
            cut.display()
        )),
        "{err}"
    );
    let (hits, summary) = records(&out);
    assert_eq!(
        hits.len(),
        2,
        "the hit before the cut and the other file's hit are kept"
    );
    assert_eq!(summary["decode_errors"], 1);
    assert!(
        summary["errors"][0].as_str().unwrap().contains("gzip"),
        "{}",
        summary["errors"]
    );
}

#[test]
fn invalid_utf8_nul_bytes_and_malformed_json_are_matched_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"2026-02-19T03:04:05Z stderr F \xff\xfe\x00 ");
    bytes.extend_from_slice(POD_FAILURE.as_bytes());
    bytes.extend_from_slice(b"\n2026-02-19T03:04:06Z stderr F {\"msg\":\"truncated json ");
    bytes.extend_from_slice(POD_FAILURE.as_bytes());
    bytes.extend_from_slice(b"\n\x00\x00\x00\n");
    std::fs::write(dir.path().join("odd.log"), &bytes).unwrap();
    let out = replay(&[dir.path().join("odd.log").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (hits, summary) = records(&out);
    assert_eq!(hits.len(), 2);
    assert!(
        hits[0]["line"].as_str().unwrap().starts_with(
            "2026-02-19T03:04:05Z stderr F \u{FFFD}\u{FFFD}\u{0} FATAL:  could not open"
        )
    );
    assert_eq!(hits[1]["ts"], "2026-02-19T03:04:06.000000000Z");
    assert_eq!(summary["lines"], 3);
}

#[test]
fn a_12_mb_line_is_cut_matched_on_its_head_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"2026-02-19T03:04:05Z stderr F first\n2026-02-19T03:04:06Z stderr F ".to_vec();
    bytes.extend_from_slice(POD_FAILURE.as_bytes());
    bytes.extend(std::iter::repeat_n(b'x', 12 << 20));
    bytes.extend_from_slice(b"\n2026-02-19T03:04:07Z stderr F last ");
    bytes.extend_from_slice(POD_FAILURE.as_bytes());
    bytes.push(b'\n');
    std::fs::write(dir.path().join("huge.log"), &bytes).unwrap();
    let out = replay(&[dir.path().to_str().unwrap()]);
    let (hits, summary) = records(&out);
    assert_eq!(summary["lines_truncated"], 1);
    assert_eq!(summary["lines"], 3);
    let origins: Vec<&str> = hits.iter().map(|h| h["origin"].as_str().unwrap()).collect();
    assert_eq!(origins.len(), 2, "{origins:?}");
    assert!(
        origins[0].ends_with("huge.log:2") && origins[1].ends_with("huge.log:3"),
        "{origins:?}"
    );
}

#[test]
fn missing_unreadable_and_empty_inputs_are_reported_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.log"), kernel_log(3, 0)).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target.log", dir.path().join("dangling.log")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = replay(&[
        dir.path().to_str().unwrap(),
        empty.path().to_str().unwrap(),
        "/nonexistent/faultline.log",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("dangling.log: cannot read"), "{err}");
    assert!(
        err.contains(&format!(
            "{}: no files in this directory",
            empty.path().display()
        )),
        "{err}"
    );
    assert!(
        err.contains("/nonexistent/faultline.log: cannot read"),
        "{err}"
    );
    let (hits, _) = records(&out);
    assert_eq!(hits.len(), 1, "good.log is still reported");

    let out = replay(&[empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nothing to read"), "{}", stderr(&out));
}

#[test]
fn stdin_is_read_with_a_dash() {
    let out = faultline_with_stdin(
        &["replay", "--format", "json", "-"],
        kernel_log(4, 2).as_bytes(),
    );
    let (hits, _) = records(&out);
    assert_eq!(hits.len(), 1);
    assert!(
        hits[0]["origin"].as_str().unwrap() == "-:3",
        "{}",
        hits[0]["origin"]
    );
}

#[test]
fn text_output_is_a_readable_timeline_without_colour_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.log"), kernel_log(3, 1)).unwrap();
    let out = faultline(&["replay", "--format", "text", dir.path().to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no colour codes when not a terminal"
    );
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        "2026-02-19T03:00:01.000000000Z  CRITICAL  kernel-ext4-remount-read-only  "
    );
    assert!(
        text.lines().nth(1).unwrap().contains("ext4 on /dev/sdb"),
        "{text}"
    );
    let size = std::fs::metadata(dir.path().join("k.log")).unwrap().len();
    assert!(
        text.ends_with(&format!(
            "1 hits of 1 signatures in 1 files (3 lines, {size} bytes)\n"
        )),
        "{text}"
    );
}

#[test]
fn a_failure_split_across_cri_partial_records_is_joined_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let pod_dir = dir
        .path()
        .join("var/log/pods/vitals-prod_vitals-db-production-cnpg-v1-1_0b7c/postgres");
    std::fs::create_dir_all(&pod_dir).unwrap();
    let filler = "y".repeat(16_000);
    std::fs::write(
        pod_dir.join("0.log"),
        format!(
            "2026-02-19T03:04:05.000000001Z stdout F healthy\n\
             2026-02-19T03:04:05.100000000Z stderr P {filler} FATAL:  could not open file \"global/pg_co\n\
             2026-02-19T03:04:05.100000001Z stdout F interleaved healthy line\n\
             2026-02-19T03:04:05.100000002Z stderr F ntrol\": Read-only file system\n"
        ),
    )
    .unwrap();
    let out = replay(&[dir.path().to_str().unwrap()]);
    let (hits, summary) = records(&out);
    assert_eq!(hits.len(), 1, "{}", stderr(&out));
    assert_eq!(hits[0]["captures"]["path"], "global/pg_control");
    assert!(
        hits[0]["origin"].as_str().unwrap().ends_with("0.log:2"),
        "the first chunk's line"
    );
    assert_eq!(hits[0]["ts"], "2026-02-19T03:04:05.100000000Z");
    assert_eq!(summary["lines"], 4);
}

fn tar_member(builder: &mut tar::Builder<impl Write>, path: &str, content: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_771_470_245); // 2026-02-19T03:04:05Z
    header.set_cksum();
    builder.append_data(&mut header, path, content).unwrap();
}

#[test]
fn tar_gz_archives_are_read_member_by_member_with_labels_from_member_paths() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cluster-logs.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&archive).unwrap(),
        flate2::Compression::default(),
    );
    let mut builder = tar::Builder::new(gz);
    let pod_line = format!("2026-02-19T03:04:07.000000000Z stderr F {POD_FAILURE}\n");
    tar_member(
        &mut builder,
        "var/log/pods/linkding-prod_linkding-db-production-cnpg-v1-2_9f1e/postgres/1.log.20260219-030405.gz",
        &gzip(format!("2026-02-19T03:04:06.000000000Z stdout F fine\n{pod_line}").as_bytes()),
    );
    tar_member(
        &mut builder,
        "node/talos-519-vmy/dmesg.log",
        kernel_log(3, 2).as_bytes(),
    );
    builder.into_inner().unwrap().finish().unwrap();

    let out = replay(&[archive.to_str().unwrap()]);
    let (hits, summary) = records(&out);
    assert_eq!(summary["files"], 2, "two members read");
    assert_eq!(hits.len(), 2, "{}", stderr(&out));
    assert_eq!(hits[0]["signature"], "kernel-ext4-remount-read-only");
    assert!(
        hits[0]["origin"]
            .as_str()
            .unwrap()
            .ends_with("cluster-logs.tar.gz:node/talos-519-vmy/dmesg.log:3")
    );
    assert_eq!(hits[0]["labels"]["node"], "talos-519-vmy");
    let pg = &hits[1];
    assert_eq!(pg["labels"]["namespace"], "linkding-prod");
    assert_eq!(pg["labels"]["pod"], "linkding-db-production-cnpg-v1-2");
    assert!(
        pg["origin"]
            .as_str()
            .unwrap()
            .ends_with("postgres/1.log.20260219-030405.gz:2"),
        "{}",
        pg["origin"]
    );
}

#[test]
fn zstd_files_are_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dmesg.log.zst");
    std::fs::write(
        &path,
        zstd::encode_all(kernel_log(5, 4).as_bytes(), 3).unwrap(),
    )
    .unwrap();
    let out = replay(&[path.to_str().unwrap()]);
    let (hits, summary) = records(&out);
    assert_eq!(hits.len(), 1);
    assert!(
        hits[0]["origin"]
            .as_str()
            .unwrap()
            .ends_with("dmesg.log.zst:5")
    );
    assert_eq!(summary["lines"], 5);
}

#[test]
fn kubernetes_events_are_records_and_an_inventory_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("events.json"),
        r#"{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "count": 40,
            "firstTimestamp": "2026-02-25T10:06:00Z",
            "involvedObject": {"kind": "Pod", "name": "immich-machine-learning-7d9f-abcde", "namespace": "immich-prod"},
            "kind": "Event",
            "lastTimestamp": "2026-02-27T10:06:00Z",
            "message": "Container immich-machine-learning failed liveness probe, will be restarted",
            "reason": "Killing",
            "source": {"component": "kubelet", "host": "talos-519-vmy"},
            "type": "Normal"
        }
    ],
    "kind": "List"
}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("inventory.json"),
        "{\n    \"apiVersion\": \"v1\",\n    \"items\": [{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"status\": {\"containerStatuses\": [{\"state\": {\"waiting\": {\"reason\": \"CrashLoopBackOff\"}}}]}}],\n    \"kind\": \"List\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("EXPECTED.md"),
        format!("must find: {FAILURE}\n"),
    )
    .unwrap();
    let out = replay(&[dir.path().to_str().unwrap()]);
    let (hits, summary) = records(&out);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["signature"], "kubelet-probe-kill");
    assert_eq!(hits[0]["ts"], "2026-02-27T10:06:00.000000000Z");
    assert_eq!(hits[0]["labels"]["namespace"], "immich-prod");
    assert_eq!(
        hits[0]["labels"]["pod"],
        "immich-machine-learning-7d9f-abcde"
    );
    assert_eq!(hits[0]["labels"]["node"], "talos-519-vmy");
    let skipped = summary["skipped"][0].as_str().unwrap();
    assert!(
        skipped.ends_with(
            "inventory.json: a Kubernetes object list (Pod), not a log; used as inventory"
        ),
        "{skipped}"
    );
    assert_eq!(summary["files"], 2, "EXPECTED.md is not read");
}

#[test]
fn a_saved_loki_query_response_is_read_entry_by_entry() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("query_range.json"),
        r#"{"status":"success","data":{"resultType":"streams","result":[{"stream":{"namespace":"monitoring","pod":"loki-0","container":"loki"},"values":[["1772013600000000000","level=error ts=2026-02-25T10:00:00Z caller=flush.go:1 msg=\"failed to flush\" err=\"write /var/loki/wal/00001449: read-only file system\""],["1772013590000000000","level=info msg=\"healthy\""]]}],"stats":{}}}"#,
    )
    .unwrap();
    let out = replay(&[dir.path().to_str().unwrap()]);
    let (hits, summary) = records(&out);
    assert_eq!(hits.len(), 1, "{}", stderr(&out));
    assert_eq!(hits[0]["signature"], "loki-wal-read-only");
    assert_eq!(hits[0]["ts"], "2026-02-25T10:00:00.000000000Z");
    assert_eq!(hits[0]["labels"]["pod"], "loki-0");
    assert!(
        hits[0]["origin"]
            .as_str()
            .unwrap()
            .ends_with("query_range.json:2"),
        "entries in time order"
    );
    assert_eq!(summary["lines"], 2);
}

#[test]
fn a_kubectl_get_events_table_is_dated_from_when_it_was_printed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.txt");
    std::fs::write(
        &path,
        "LAST SEEN   TYPE      REASON    OBJECT                       MESSAGE\n\
         5m          Normal    Killing   pod/ml-7d4b9c6f58-6rtdn      Container ml failed liveness probe, will be restarted\n",
    )
    .unwrap();
    let printed = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_772_236_800); // 2026-02-28T00:00:00Z
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(printed)
        .unwrap();
    let out = replay(&[path.to_str().unwrap()]);
    let (hits, _) = records(&out);
    assert_eq!(hits.len(), 1, "{}", stderr(&out));
    assert_eq!(hits[0]["signature"], "kubelet-probe-kill");
    assert_eq!(hits[0]["ts"], "2026-02-27T23:55:00.000000000Z");
    assert_eq!(hits[0]["labels"]["pod"], "ml-7d4b9c6f58-6rtdn");
}

/// The incident records printed.
fn incidents(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["type"] == "incident")
        .collect()
}

#[test]
fn user_rules_come_before_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node/n1");
    std::fs::create_dir_all(&node).unwrap();
    // Read-only remounts at minutes 0, 1 and 2 of the hour.
    let log = dir.path().join("node/n1/dmesg.log");
    let text: String = (0..3)
        .map(|m| {
            format!("10.0.0.2: kern:     err: [2026-02-19T03:0{m}:00.000000000Z]: {FAILURE}\n")
        })
        .collect();
    std::fs::write(&log, text).unwrap();
    let log = log.to_str().unwrap();

    // Built in: a critical hit fires at once.
    let built_in = incidents(&replay(&[log]));
    assert_eq!(built_in[0]["key"], "node/n1");
    assert_eq!(built_in[0]["state"], "firing");
    assert_eq!(built_in[0]["fired_at"], "2026-02-19T03:00:00.000000000Z");

    // A user's rule: read-only volumes arm at 2 hits within 5 minutes,
    // fire when armed for 30 s, and resolve after 30 minutes.
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("patient.yaml"),
        "rules:\n  - class: volume-read-only\n    fire_after: 2\n    window: 5m\n    for: 30s\n    resolve_after: 30m\n",
    )
    .unwrap();
    let patient = incidents(&replay(&["--signatures", rules.to_str().unwrap(), log]));
    assert_eq!(patient[0]["fired_at"], "2026-02-19T03:01:30.000000000Z");
    assert_eq!(patient[0]["state"], "firing", "no later hit to resolve it");

    // A typo in a rule names the file, line and field.
    std::fs::write(
        rules.join("patient.yaml"),
        "rules:\n  - class: volume-read-only\n    fire_after: 2\n    window: five minutes\n",
    )
    .unwrap();
    let out = replay(&["--signatures", rules.to_str().unwrap(), log]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("patient.yaml:4: rules[0].window: \"five minutes\" is not a duration"),
        "{err}"
    );
}

/// A CRI log line at minute `m` of 2026-02-19T03:00Z.
fn cri_at(m: u32, message: &str) -> String {
    format!(
        "2026-02-19T{:02}:{:02}:00.000000000Z stdout F {message}\n",
        3 + m / 60,
        m % 60
    )
}

#[test]
fn a_stream_that_goes_quiet_for_longer_than_its_limit_is_an_incident() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("var/log/pods");
    let write = |pod: &str, container: &str, minutes: &[u32]| {
        let at = pods.join(pod).join(container);
        std::fs::create_dir_all(&at).unwrap();
        let text: String = minutes
            .iter()
            .map(|&m| cri_at(m, "level=info msg=tick"))
            .collect();
        std::fs::write(at.join("0.log"), text).unwrap();
    };
    // promtail speaks every minute to 03:10, is quiet until 03:50, speaks
    // to 04:00 and stops; another pod speaks to 05:00, the replay's end.
    let promtail: Vec<u32> = (0..=10).chain(50..=60).collect();
    write("monitoring_promtail-x7k2p_1a2b", "promtail", &promtail);
    write(
        "shop_api-7c9d8f6b5-abcde_3c4d",
        "api",
        &(0..=120).collect::<Vec<_>>(),
    );
    // Silent too, but not in the watched namespace.
    write("shop_worker-7c9d8f6b5-fghij_5e6f", "worker", &[0, 1, 2]);

    let out = replay(&[
        "--silence",
        "15m@namespace=monitoring",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an incident, no hits: {}",
        stderr(&out)
    );
    let found = incidents(&out);
    let keys: Vec<&str> = found.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["stream/monitoring/promtail-x7k2p/promtail"]);
    let silent = &found[0];
    // First silence 03:10 + 15 m, over at 03:50; the second from 04:00
    // lasts to the end of the replay, so it is firing.
    assert_eq!(silent["fired_at"], "2026-02-19T03:25:00.000000000Z");
    assert_eq!(silent["last_fired_at"], "2026-02-19T04:15:00.000000000Z");
    assert_eq!(silent["fired_count"], 2);
    assert_eq!(silent["state"], "firing");
    assert_eq!(silent["signatures"]["stream-silent"], 2);
    assert_eq!(silent["severity"], "warning");

    // A bad --silence is a usage error that says why.
    let out = replay(&["--silence", "soon", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a duration"),
        "{}",
        stderr(&out)
    );
}

/// The speed kit's corpus plants failure lines of several formats (kernel
/// syslog and klog lines among CRI records, CloudNativePG JSON, logfmt) in
/// one file: every one is reported, and no healthy line is.
#[test]
fn every_planted_failure_of_the_speed_kit_is_found() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/speed-kit");
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("corpus-3M-s20261207.meta.json")).unwrap())
            .unwrap();
    let planted = meta["expected_matching_lines"].as_u64().unwrap();
    let out = replay(&[dir.join("corpus-3M-s20261207.log.gz").to_str().unwrap()]);
    let (hits, _) = records(&out);
    let lines: std::collections::BTreeSet<&str> = hits
        .iter()
        .map(|h| h["origin"].as_str().unwrap().rsplit_once(':').unwrap().1)
        .collect();
    assert_eq!(
        lines.len() as u64,
        planted,
        "planted failure lines reported"
    );
}

/// A kubelet line that names a pod belongs to the pod's workload, in every
/// wrapping the node's log arrives in — never to the node.
#[test]
fn kubelet_lines_that_name_a_pod_are_the_pods_in_any_wrapping() {
    let dir = tempfile::tempdir().unwrap();
    let klog = r#"I0312 10:00:00.123456    1846 prober.go:107] "Probe failed" probeType="Liveness" pod="media/immich-ml-7d4b9c6f58-6rtdn" podUID="0b7c11aa-1b2c-4d5e-8f90-123456789abc" containerName="ml" probeResult="failure" output="HTTP probe failed with statuscode: 500""#;
    let inputs = [
        ("klog.log", klog.to_string()),
        ("journald.log", format!("Mar 12 10:00:00 node-3 kubelet[1846]: {klog}")),
        (
            "structured.log",
            r#"{"ts":1773309600000.5,"caller":"prober/prober.go:107","msg":"Probe failed","probeType":"Liveness","pod":{"name":"immich-ml-7d4b9c6f58-6rtdn","namespace":"media"},"containerName":"ml","probeResult":"failure","output":"HTTP probe failed with statuscode: 500","v":0}"#
                .to_string(),
        ),
    ];
    for (name, line) in inputs {
        std::fs::write(dir.path().join(name), format!("{line}\n")).unwrap();
        let out = replay(&["--year", "2026", dir.path().join(name).to_str().unwrap()]);
        let records: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let keys: Vec<&str> = records
            .iter()
            .filter(|r| r["type"] == "incident")
            .map(|r| r["key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["workload/media/Deployment/immich-ml"],
            "{name}: {records:?}"
        );
    }
}
