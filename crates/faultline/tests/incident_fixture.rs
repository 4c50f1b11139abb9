//! The README's main command: replaying the bundled reconstruction of the
//! 2026-02-28 incident (`fixtures/incident-2026-02-28`, see its
//! EXPECTED.md) must find every failure family, on the right pods and
//! node, and none of the planted near-misses.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::faultline;
use serde_json::Value;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/incident-2026-02-28")
}

struct Replayed {
    hits: Vec<Value>,
    /// Incidents by key.
    incidents: BTreeMap<String, Value>,
    summary: Value,
    /// (namespace/pod, or node) → the signatures that hit it.
    by_subject: BTreeMap<String, BTreeSet<String>>,
}

fn replay() -> Replayed {
    let out = faultline(&["replay", "--format", "json", fixture().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "hits found: exit 1\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = records.pop().unwrap();
    let incidents: BTreeMap<String, Value> = records
        .iter()
        .filter(|r| r["type"] == "incident")
        .map(|r| (r["key"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    records.retain(|r| r["type"] == "hit");
    let mut by_subject: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for hit in &records {
        let labels = &hit["labels"];
        let subject = match (
            labels["namespace"].as_str(),
            labels["pod"].as_str(),
            labels["node"].as_str(),
        ) {
            (Some(ns), Some(pod), _) => format!("{ns}/{pod}"),
            (_, _, Some(node)) => format!("node/{node}"),
            _ => "unlabelled".to_string(),
        };
        by_subject
            .entry(subject)
            .or_default()
            .insert(hit["signature"].as_str().unwrap().to_string());
    }
    Replayed {
        hits: records,
        incidents,
        summary,
        by_subject,
    }
}

fn signatures<'a>(r: &'a Replayed, subject: &str) -> &'a BTreeSet<String> {
    r.by_subject
        .get(subject)
        .unwrap_or_else(|| panic!("no hit for {subject}; subjects: {:?}", r.by_subject.keys()))
}

fn class_of(r: &Replayed, subject: &str, class: &str) -> bool {
    r.hits.iter().any(|h| {
        let l = &h["labels"];
        format!(
            "{}/{}",
            l["namespace"].as_str().unwrap_or(""),
            l["pod"].as_str().unwrap_or("")
        ) == subject
            && h["class"] == class
    })
}

#[test]
fn every_file_is_read_and_the_inventory_is_not_matched_as_a_log() {
    let r = replay();
    assert_eq!(r.summary["errors"], serde_json::json!([]));
    assert_eq!(r.summary["decode_errors"], 0);
    assert!(r.summary["files"].as_u64().unwrap() >= 60, "{}", r.summary);
    let skipped = r.summary["skipped"][0].as_str().unwrap();
    assert!(
        skipped.contains("inventory.json: a Kubernetes object list"),
        "{skipped}"
    );
    // Healthy noise stays quiet: well under 5 % of lines are hits.
    let (lines, hits) = (
        r.summary["lines"].as_u64().unwrap(),
        r.summary["hits"].as_u64().unwrap(),
    );
    assert!(hits * 20 < lines, "{hits} hits in {lines} lines");
    let times: Vec<&str> = r
        .hits
        .iter()
        .map(|h| h["ts"].as_str().expect("every hit is dated"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "hits are in event-time order"
    );
}

#[test]
fn the_node_shows_iscsi_drops_and_ext4_going_read_only_from_the_first_day() {
    let r = replay();
    let node = signatures(&r, "node/talos-519-vmy");
    for sig in [
        "kernel-iscsi-connection-error",
        "kernel-iscsi-session-recovery-timeout",
        "kernel-scsi-device-offline",
        "kernel-block-io-error",
        "kernel-buffer-io-error",
        "kernel-ext4-journal-aborted",
        "kernel-ext4-remount-read-only",
    ] {
        assert!(node.contains(sig), "{sig} missing on the node: {node:?}");
    }
    let first_remount = r
        .hits
        .iter()
        .find(|h| h["signature"] == "kernel-ext4-remount-read-only")
        .unwrap();
    assert!(
        first_remount["ts"]
            .as_str()
            .unwrap()
            .starts_with("2026-02-16T03:14"),
        "{}",
        first_remount["ts"]
    );
}

#[test]
fn read_only_vitals_and_empty_linkding_and_memos_replicas_fail_differently() {
    let r = replay();
    // Empty or uninitialised PGDATA: pg_controldata fails.
    for pod in [
        "linkding-prod/linkding-db-production-cnpg-v1-2",
        "linkding-stage/linkding-db-staging-cnpg-v1-2",
        "linkding-stage/linkding-db-staging-cnpg-v1-3",
        "memos-stage/memos-db-staging-cnpg-v1-2",
        "memos-stage/memos-db-staging-cnpg-v1-3",
    ] {
        let sigs = signatures(&r, pod);
        assert!(
            sigs.contains("cnpg-pg-controldata-failed") && sigs.contains("cnpg-pgdata-empty"),
            "{pod}: {sigs:?}"
        );
        assert!(
            sigs.contains("kubelet-crashloop-backoff"),
            "{pod}: {sigs:?}"
        );
    }
    // Read-only volumes under every vitals-prod instance, primary included;
    // their data directory is intact, so pg_controldata does not fail.
    for i in 1..=3 {
        let pod = format!("vitals-prod/vitals-db-production-cnpg-v1-{i}");
        assert!(
            class_of(&r, &pod, "volume-read-only"),
            "{pod}: {:?}",
            signatures(&r, &pod)
        );
        assert!(
            !class_of(&r, &pod, "pg-controldata"),
            "{pod}: {:?}",
            signatures(&r, &pod)
        );
    }
    assert!(
        signatures(&r, "vitals-stage/vitals-db-staging-cnpg-v1-1")
            .contains("postgres-wal-read-only")
    );
}

#[test]
fn healthy_primaries_and_other_apps_produce_no_hit() {
    let r = replay();
    for pod in [
        "linkding-prod/linkding-db-production-cnpg-v1-1",
        "linkding-prod/linkding-db-production-cnpg-v1-3",
        "linkding-stage/linkding-db-staging-cnpg-v1-1",
        "memos-stage/memos-db-staging-cnpg-v1-1",
        "immich-prod/immich-redis-master-0",
    ] {
        assert!(
            !r.by_subject.contains_key(pod),
            "{pod} is healthy but hit: {:?}",
            r.by_subject[pod]
        );
    }
    // Planted near-misses: hot-standby read-only transactions, LogQL text
    // quoting the phrases, healthy pg_controldata output.
    for hit in &r.hits {
        let line = hit["line"].as_str().unwrap();
        assert!(
            !line.contains("read-only transaction"),
            "near-miss matched: {line}"
        );
        assert!(
            !line.contains("|= \\\"read-only file system\\\"")
                && !line.contains("|= \"read-only file system\""),
            "LogQL matched: {line}"
        );
        assert!(
            !line.contains("Database cluster state:"),
            "healthy pg_controldata matched: {line}"
        );
    }
}

#[test]
fn the_log_pipeline_and_the_ml_probe_loop_are_found() {
    let r = replay();
    let loki = signatures(&r, "monitoring/loki-0");
    assert!(
        loki.contains("loki-wal-read-only") && loki.contains("loki-push-5xx"),
        "{loki:?}"
    );
    assert!(
        class_of(&r, "monitoring/promtail-cqcqm", "log-push-failure"),
        "{:?}",
        signatures(&r, "monitoring/promtail-cqcqm")
    );
    for pod in [
        "immich-prod/immich-machine-learning-7d4b9c6f58-6rtdn",
        "immich-stage/immich-machine-learning-b9d7f5c684-7wqbd",
    ] {
        let sigs = signatures(&r, pod);
        assert!(
            sigs.contains("kubelet-probe-kill") && sigs.contains("kubelet-liveness-probe-failed"),
            "{pod}: {sigs:?}"
        );
    }
}

fn incident<'a>(r: &'a Replayed, key: &str) -> &'a Value {
    r.incidents
        .get(key)
        .unwrap_or_else(|| panic!("no incident {key}; incidents: {:?}", r.incidents.keys()))
}

/// Seconds from RFC 3339 `a` to `b`.
fn seconds_between(a: &str, b: &str) -> i64 {
    let a: jiff::Timestamp = a.parse().unwrap();
    let b: jiff::Timestamp = b.parse().unwrap();
    (b.as_second() - a.as_second()).abs()
}

#[test]
fn each_broken_pvc_is_one_incident_fired_within_a_minute_with_the_right_fix() {
    let r = replay();
    let empty = [
        ("linkding-prod", "linkding-db-production-cnpg-v1-2"),
        ("linkding-stage", "linkding-db-staging-cnpg-v1-2"),
        ("linkding-stage", "linkding-db-staging-cnpg-v1-3"),
        ("memos-stage", "memos-db-staging-cnpg-v1-2"),
        ("memos-stage", "memos-db-staging-cnpg-v1-3"),
    ];
    let read_only = [
        ("vitals-prod", "vitals-db-production-cnpg-v1-1"),
        ("vitals-prod", "vitals-db-production-cnpg-v1-2"),
        ("vitals-prod", "vitals-db-production-cnpg-v1-3"),
        ("vitals-stage", "vitals-db-staging-cnpg-v1-1"),
        // Silent in its own log: only the kernel, through the node's mount
        // table, names its device.
        ("vitals-stage", "vitals-db-staging-cnpg-v1-2"),
        ("vitals-stage", "vitals-db-staging-cnpg-v1-3"),
        ("monitoring", "storage-loki-0"),
    ];
    for (ns, pvc) in empty.iter().chain(&read_only) {
        let i = incident(&r, &format!("pvc/{ns}/{pvc}"));
        let fired = i["fired_at"]
            .as_str()
            .unwrap_or_else(|| panic!("{pvc} never fired: {i}"));
        assert!(
            seconds_between(i["first_seen"].as_str().unwrap(), fired) <= 60,
            "{i}"
        );
        assert!(
            i["related"]
                .as_array()
                .unwrap()
                .contains(&Value::from("node/talos-519-vmy")),
            "{i}"
        );
    }
    // The PVC is recreated only for the empty replicas.
    for (ns, pvc) in empty {
        let fix = incident(&r, &format!("pvc/{ns}/{pvc}"))["remediation"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            fix.contains(&format!("kubectl delete pvc {pvc} -n {ns}")),
            "{fix}"
        );
    }
    for (ns, pvc) in read_only {
        let fix = incident(&r, &format!("pvc/{ns}/{pvc}"))["remediation"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!fix.contains("kubectl delete pvc"), "{fix}");
        assert!(fix.contains("kubectl delete pod"), "{fix}");
    }
    // Healthy instances have none.
    for key in r.incidents.keys() {
        for healthy in [
            "linkding-db-production-cnpg-v1-1",
            "linkding-db-production-cnpg-v1-3",
            "linkding-db-staging-cnpg-v1-1",
            "memos-db-staging-cnpg-v1-1",
        ] {
            assert!(!key.ends_with(healthy), "{key}");
        }
    }
    // Every hit names the broken thing it is about.
    assert!(r.hits.iter().all(|h| h["entity"].is_string()));
}

#[test]
fn the_story_is_told_per_cluster_node_pipeline_and_workload() {
    let r = replay();
    let vitals = incident(&r, "cnpg/vitals-prod/vitals-db-production-cnpg-v1");
    let summary = vitals["summary"].as_str().unwrap();
    assert!(
        summary.contains("3 of 3 instances on read-only volumes")
            && summary.contains("primary affected"),
        "{summary}"
    );
    let linkding = incident(&r, "cnpg/linkding-stage/linkding-db-staging-cnpg-v1");
    assert!(
        linkding["summary"]
            .as_str()
            .unwrap()
            .contains("2 of 3 instances with an empty"),
        "{linkding}"
    );
    let node = incident(&r, "node/talos-519-vmy");
    assert_eq!(node["first_seen"], "2026-02-16T03:12:07.412338000Z");
    assert!(node["related"].as_array().unwrap().len() >= 11, "{node}");
    let pipeline = incident(&r, "pipeline/loki");
    // The ingress in front of Loki answering pushes with 500 is part of it.
    assert!(
        pipeline["signatures"]["proxy-loki-push-5xx"].as_u64() > Some(0),
        "{pipeline}"
    );
    assert!(
        pipeline["related"]
            .as_array()
            .unwrap()
            .contains(&Value::from("pvc/monitoring/storage-loki-0")),
        "{pipeline}"
    );
    assert!(
        pipeline["remediation"]
            .as_str()
            .unwrap()
            .contains("kubectl delete pod loki-0 -n monitoring")
    );
    for ns in ["immich-prod", "immich-stage"] {
        let ml = incident(
            &r,
            &format!("workload/{ns}/Deployment/immich-machine-learning"),
        );
        assert_eq!(ml["state"], "firing");
        let remediation = ml["remediation"].as_str().unwrap();
        assert!(remediation.contains("startupProbe"), "{ml}");
        // The kill uptime, measured on the container's own log files, is
        // the probe's start-up allowance (300 + 6 × 10 s); the log shows the
        // model still loading when the kill came.
        assert!(
            remediation.contains("which is that allowance: it never gets to finish starting"),
            "{ml}"
        );
        assert!(remediation.contains("Loading visual model"), "{ml}");
        assert!(
            ml["summary"]
                .as_str()
                .unwrap()
                .contains("s after the container started"),
            "{ml}"
        );
    }
    // The single readiness failure of the new loki-0 at start-up pages nobody.
    assert_eq!(
        incident(&r, "workload/monitoring/StatefulSet/loki")["state"],
        "pending"
    );
    assert_eq!(
        r.summary["incidents"].as_u64().unwrap() as usize,
        r.incidents.len()
    );
}

#[test]
fn the_markdown_report_tells_each_incident_with_its_fix_and_evidence() {
    let out = faultline(&[
        "replay",
        "--format",
        "markdown",
        fixture().to_str().unwrap(),
    ]);
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.starts_with("# faultline incident report\n"),
        "{}",
        &md[..200.min(md.len())]
    );
    let section = md
        .split("\n## ")
        .find(|s| s.starts_with("`cnpg/vitals-prod/vitals-db-production-cnpg-v1`"))
        .expect("a section for the vitals-prod cluster");
    assert!(
        section.contains("3 of 3 instances on read-only volumes"),
        "{section}"
    );
    assert!(
        section.contains("**Same story:**")
            && section.contains("`pvc/vitals-prod/vitals-db-production-cnpg-v1-1`")
    );
    let replica = md
        .split("\n## ")
        .find(|s| s.starts_with("`pvc/memos-stage/memos-db-staging-cnpg-v1-2`"))
        .expect("a section for the memos replica");
    assert!(
        replica.contains("kubectl delete pvc memos-db-staging-cnpg-v1-2 -n memos-stage"),
        "{replica}"
    );
    assert!(replica.contains("Evidence:\n\n```\n"), "{replica}");
}

/// Debian's Chromium, if installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn the_html_report_renders_in_a_real_browser_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = faultline(&["replay", "--format", "html", fixture().to_str().unwrap()]);
    std::fs::write(&page, &out.stdout).unwrap();
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg") && !html.contains("<script")
    );
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("FAULTLINE_REQUIRE_TOOLS").is_none(),
            "Chromium is required here (apt-get install chromium)"
        );
        eprintln!("chromium is not installed: the page was checked as text only");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let rendered = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let dom = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        dom.contains("<svg") && dom.contains("incident timeline"),
        "the timeline is in the rendered page"
    );
    assert!(dom.contains("pvc/vitals-prod/vitals-db-production-cnpg-v1-1"));
    assert!(dom.contains("kubectl delete pod loki-0 -n monitoring"));
    let log = String::from_utf8_lossy(&rendered.stderr);
    for bad in ["CONSOLE", "Uncaught", "Failed to load resource"] {
        assert!(!log.contains(bad), "browser reported {bad}:\n{log}");
    }
}
