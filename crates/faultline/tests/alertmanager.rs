//! Incidents reach a real Prometheus Alertmanager (Debian's
//! `prometheus-alertmanager`, started here on loopback) and are read back
//! from its API: the alert with the expected labels is active while the
//! failure lasts, stays one alert across a restart of faultline, resolves
//! after the failure stops, and reaches both members of an HA pair,
//! including one that only comes up after the failure.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, append_line, cri_now, free_port, http_get, missing};
use serde_json::Value;

const FAILURE: &str = r#"2026-02-19 03:04:07.123 UTC [25] FATAL:  could not open file "global/pg_control": Read-only file system"#;

/// The Alertmanager binary, if installed.
fn alertmanager_binary() -> Option<&'static str> {
    ["prometheus-alertmanager", "alertmanager"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn start_alertmanager(binary: &str, dir: &Path, port: u16) -> Running {
    let config = dir.join(format!("am-{port}.yml"));
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.join(format!("data-{port}")).display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("alertmanager starts");
    let running = Running(child);
    wait_for(|| http_get(port, "/-/ready").is_some_and(|(status, _)| status == 200));
    running
}

/// Polls `done` for up to 60 s (only a broken system takes that long).
fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The active faultline alerts in the Alertmanager on `port`.
fn alerts(port: u16) -> Vec<Value> {
    http_get(port, "/api/v2/alerts")
        .and_then(|(_, body)| serde_json::from_str::<Vec<Value>>(&body).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["labels"]["faultline_key"].is_string())
        .collect()
}

#[test]
fn a_read_only_pvc_pages_both_alertmanagers_survives_a_restart_and_resolves() {
    let binary = alertmanager_binary();
    if missing(binary.is_some(), "prometheus-alertmanager") {
        return;
    }
    let binary = binary.unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (free_port(), free_port());
    let _am1 = start_alertmanager(binary, dir.path(), first);
    // A quick rule so the test need not wait an hour for resolution (long
    // enough for the second Alertmanager to come up on a busy machine).
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("quick.yaml"),
        "rules:\n  - severity: critical\n    fire_after: 1\n    resolve_after: 30s\n",
    )
    .unwrap();
    let glob = format!("{}/var/log/pods/*/*/*.log", dir.path().display());
    let log = dir
        .path()
        .join("var/log/pods/vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres/0.log");
    let state = dir.path().join("state");
    let watch = || {
        Running(
            Command::new(env!("CARGO_BIN_EXE_faultline"))
                .args(["watch", "--format", "json", "--poll", "50ms"])
                .args(["--files", &glob, "--listen", "127.0.0.1:0"])
                // The first start reads the log from its start, however
                // late it comes up; the restart resumes from its checkpoint.
                .args(["--state-dir", state.to_str().unwrap(), "--read-existing"])
                .args(["--signatures", rules.to_str().unwrap()])
                .args(["--alertmanager", &format!("http://127.0.0.1:{first}")])
                .args(["--alertmanager", &format!("http://127.0.0.1:{second}")])
                .args(["--resend-interval", "1s"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let running = watch();
    std::thread::sleep(Duration::from_millis(500));
    append_line(&log, &cri_now(FAILURE));

    wait_for(|| !alerts(first).is_empty());
    let alert = &alerts(first)[0];
    assert_eq!(alert["labels"]["alertname"], "FaultlineVolumeReadOnly");
    assert_eq!(alert["labels"]["namespace"], "vitals-prod");
    assert_eq!(alert["labels"]["pvc"], "vitals-db-production-cnpg-v1-2");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["status"]["state"], "active");
    assert!(
        alert["annotations"]["remediation"]
            .as_str()
            .unwrap()
            .contains("kubectl delete pod vitals-db-production-cnpg-v1-2 -n vitals-prod")
    );

    // faultline restarts mid-incident: still exactly one alert, and (the
    // failure having stopped) it still resolves.
    drop(running);
    let _running = watch();
    std::thread::sleep(Duration::from_millis(1500));
    let ours: Vec<Value> = alerts(first)
        .into_iter()
        .filter(|a| a["labels"]["pvc"] == "vitals-db-production-cnpg-v1-2")
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");

    // The second Alertmanager comes up only now: the alert reaches it too.
    let _am2 = start_alertmanager(binary, dir.path(), second);
    wait_for(|| {
        alerts(second)
            .iter()
            .any(|a| a["labels"]["pvc"] == "vitals-db-production-cnpg-v1-2")
    });

    // Quiet for longer than resolve_after: resolved in both.
    wait_for(|| {
        alerts(first)
            .iter()
            .all(|a| a["labels"]["pvc"] != "vitals-db-production-cnpg-v1-2")
    });
    wait_for(|| {
        alerts(second)
            .iter()
            .all(|a| a["labels"]["pvc"] != "vitals-db-production-cnpg-v1-2")
    });
}

/// The value of the first `/metrics` line of faultline on `port` that
/// starts with `prefix`.
fn metric(port: u16, prefix: &str) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn two_replicas_page_once_because_their_alerts_are_identical() {
    let binary = alertmanager_binary();
    if missing(binary.is_some(), "prometheus-alertmanager") {
        return;
    }
    let binary = binary.unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _am = start_alertmanager(binary, dir.path(), port);
    let glob = format!("{}/var/log/pods/*/*/*.log", dir.path().display());
    let log = dir
        .path()
        .join("var/log/pods/vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres/0.log");
    // Two replicas, as the standalone Deployment runs them: same input,
    // own state, each sending to the same Alertmanager.
    let replica = |n: u32, metrics: u16| {
        Running(
            Command::new(env!("CARGO_BIN_EXE_faultline"))
                .args(["watch", "--format", "json", "--poll", "50ms"])
                .args(["--files", &glob])
                .args(["--listen", &format!("127.0.0.1:{metrics}")])
                .args([
                    "--state-dir",
                    dir.path().join(format!("state-{n}")).to_str().unwrap(),
                ])
                .args(["--alertmanager", &format!("http://127.0.0.1:{port}")])
                .args(["--resend-interval", "1s"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let (metrics_a, metrics_b) = (free_port(), free_port());
    let _a = replica(1, metrics_a);
    let _b = replica(2, metrics_b);
    wait_for(|| {
        metric(metrics_a, "faultline_queue_depth").is_some()
            && metric(metrics_b, "faultline_queue_depth").is_some()
    });
    append_line(&log, &cri_now(FAILURE));
    let sent = format!("faultline_alerts_sent_total{{alertmanager=\"http://127.0.0.1:{port}\"}}");
    // Both replicas delivered the alert…
    wait_for(|| {
        metric(metrics_a, &sent).is_some_and(|n| n >= 1.0)
            && metric(metrics_b, &sent).is_some_and(|n| n >= 1.0)
    });
    // …and Alertmanager holds one: their label sets are the same.
    let ours: Vec<Value> = alerts(port)
        .into_iter()
        .filter(|a| a["labels"]["pvc"] == "vitals-db-production-cnpg-v1-2")
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0]["labels"]["alertname"], "FaultlineVolumeReadOnly");
}
