//! faultline's metrics are scraped by a real Prometheus (Debian's
//! `prometheus`, started here on loopback), and a query for
//! `faultline_hits_total` returns the series of the signature that hit.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, append_line, cri_now, free_port, http_get, missing};
use serde_json::Value;

#[test]
fn prometheus_scrapes_the_hits_per_signature() {
    let installed = Command::new("prometheus").arg("--version").output().is_ok();
    if missing(installed, "prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (metrics_port, prometheus_port) = (free_port(), free_port());
    let glob = format!("{}/var/log/pods/*/*/*.log", dir.path().display());
    let _watch = Running(
        Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args([
                "watch", "--format", "json", "--poll", "50ms", "--files", &glob,
            ])
            .args(["--listen", &format!("127.0.0.1:{metrics_port}")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: faultline\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    // faultline answers health checks, then sees a failure.
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(metrics_port, "/readyz").map(|(_, b)| b).as_deref() != Some("ready") {
        assert!(Instant::now() < deadline, "faultline never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        http_get(metrics_port, "/healthz")
            .map(|(_, b)| b)
            .as_deref(),
        Some("ok")
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = dir
        .path()
        .join("var/log/pods/vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres/0.log");
    append_line(
        &log,
        &cri_now(
            r#"2026-02-19 03:04:07.123 UTC [25] FATAL:  could not open file "global/pg_control": Read-only file system"#,
        ),
    );
    let query = "/api/v1/query?query=faultline_hits_total";
    loop {
        assert!(Instant::now() < deadline, "prometheus never had the series");
        let result: Option<Value> =
            http_get(prometheus_port, query).and_then(|(_, body)| serde_json::from_str(&body).ok());
        let series = result
            .as_ref()
            .and_then(|r| r["data"]["result"].as_array().cloned())
            .unwrap_or_default();
        if let Some(hit) = series
            .iter()
            .find(|s| s["metric"]["signature"] == "postgres-data-read-only")
        {
            assert_eq!(hit["metric"]["job"], "faultline");
            assert_eq!(hit["value"][1], "1");
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // The firing incident is a state: its gauge says so, once the event
    // clock has passed the line.
    let firing =
        r#"faultline_incidents_firing{class="volume-read-only",kind="pvc",severity="critical"} 1"#;
    let metrics = loop {
        let (_, metrics) = http_get(metrics_port, "/metrics").unwrap();
        if metrics.contains(firing) {
            break metrics;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        metrics.contains(r#"faultline_lines_total{source="file"} 1"#),
        "{metrics}"
    );
}
