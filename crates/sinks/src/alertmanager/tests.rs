use std::collections::BTreeMap;

use faultline_core::{Rule, Severity};
use faultline_correlate::{Correlator, Inventory, Observation};

use super::*;

const MINUTE: i64 = 60_000_000_000;

fn report_for(signature: &str, class: Class, labels: &[(&str, &str)]) -> Report {
    let rules = [Rule {
        class: None,
        severity: None,
        threshold: Some(1),
        window_ns: 10 * MINUTE,
        for_ns: 0,
        resolve_after_ns: 60 * MINUTE,
    }];
    let mut inventory = Inventory::default();
    inventory
        .add_json(br#"{"kind":"Pod","metadata":{"name":"db-2","namespace":"app","labels":{"cnpg.io/cluster":"db"}},
          "spec":{"nodeName":"n1","volumes":[{"name":"pgdata","persistentVolumeClaim":{"claimName":"db-2"}}]}}"#)
        .unwrap();
    let mut c = Correlator::new(inventory, &rules);
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let key = c.observe(&Observation {
        ts: MINUTE,
        signature,
        class,
        severity: Severity::Critical,
        labels: &labels,
        captures: &[],
        summary: "s",
        remediation: "r",
        evidence: "db-2.log:7 FATAL: could not write: Read-only file system",
    });
    c.reports().into_iter().find(|r| r.key == key).unwrap()
}

#[test]
fn a_pvc_alert_names_the_failure_and_where_it_is() {
    let report = report_for(
        "postgres-data-read-only",
        Class::VolumeReadOnly,
        &[("namespace", "app"), ("pod", "db-2")],
    );
    let options = AlertOptions {
        resend: Duration::from_secs(60),
        runbook_base: Some("https://runbooks.example/faultline/".into()),
    };
    let alert = alert(&report, 2 * MINUTE, &options);
    let label = |k: &str| alert.labels.get(k).map(String::as_str);
    assert_eq!(label("alertname"), Some("FaultlineVolumeReadOnly"));
    assert_eq!(label("severity"), Some("critical"));
    assert_eq!(label("namespace"), Some("app"));
    assert_eq!(label("pvc"), Some("db-2"));
    assert_eq!(label("pod"), Some("db-2"));
    assert_eq!(label("node"), Some("n1"));
    assert_eq!(label("cnpg_cluster"), Some("db"));
    assert_eq!(label("faultline_key"), Some("pvc/app/db-2"));
    assert_eq!(label("signature"), Some("postgres-data-read-only"));
    assert_eq!(alert.starts_at, "1970-01-01T00:01:00.000Z");
    // Firing: it ends four resend intervals ahead unless sent again.
    assert_eq!(alert.ends_at, "1970-01-01T00:06:00.000Z");
    assert_eq!(
        alert.annotations["runbook_url"],
        "https://runbooks.example/faultline/FaultlineVolumeReadOnly"
    );
    assert!(alert.annotations["evidence"].contains("Read-only file system"));
    let json = serde_json::to_value(&alert).unwrap();
    assert!(json.get("startsAt").is_some() && json.get("endsAt").is_some());
}

#[test]
fn alertnames_follow_the_worst_class() {
    let empty = report_for(
        "cnpg-pgdata-empty",
        Class::PgControldata,
        &[("namespace", "app"), ("pod", "db-2")],
    );
    assert_eq!(alertname(&empty), "FaultlinePostgresControlData");
    let pipeline = report_for("promtail-push-server-error", Class::LogPushFailure, &[]);
    assert_eq!(alertname(&pipeline), "FaultlineLogPipelineDown");
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_them() {
    // Nothing listens here: every send fails and alerts wait.
    let sender = Sender::start(Target::Alertmanager("http://127.0.0.1:9".into()));
    let report = report_for("x", Class::KernelHang, &[("node", "n1")]);
    let options = AlertOptions {
        resend: Duration::from_secs(60),
        runbook_base: None,
    };
    let one = alert(&report, 0, &options);
    sender.queue(std::iter::repeat_n(one, QUEUE + 10));
    assert_eq!(sender.waiting(), QUEUE);
    assert_eq!(sender.counters.dropped.load(Ordering::Relaxed), 10);
}

/// The alert queued last for the first target.
fn last_queued(alerting: &Alerting) -> Alert {
    alerting.senders()[0]
        .queue
        .lock()
        .unwrap()
        .back()
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn firing_alerts_survive_a_restart_and_resolve_when_their_time_comes() {
    let dir = std::env::temp_dir().join(format!("faultline-alerts-{}", std::process::id()));
    let options = AlertOptions {
        resend: Duration::from_secs(60),
        runbook_base: None,
    };
    let report = report_for(
        "postgres-data-read-only",
        Class::VolumeReadOnly,
        &[("namespace", "app"), ("pod", "db-2")],
    );
    let mut before = Alerting::new(
        &[Target::Alertmanager("http://127.0.0.1:9".into())],
        options.clone(),
    )
    .with_state(&dir)
    .unwrap()
    .0;
    before
        .changed(std::slice::from_ref(&report), 2 * MINUTE)
        .unwrap();

    // The next run takes it up and keeps it firing, unchanged…
    let mut after = Alerting::new(
        &[Target::Alertmanager("http://127.0.0.1:9".into())],
        options,
    )
    .with_state(&dir)
    .unwrap()
    .0;
    after.resend(3 * MINUTE, 3 * MINUTE).unwrap();
    let sent = last_queued(&after);
    assert_eq!(sent.labels["pvc"], "db-2");
    assert_eq!(sent.starts_at, "1970-01-01T00:01:00.000Z", "the same alert");
    assert_eq!(sent.ends_at, "1970-01-01T00:07:00.000Z");
    // While the logs written meanwhile are still being read (the event
    // clock is behind the wall clock), it is not resolved early…
    after.resend(62 * MINUTE, 30 * MINUTE).unwrap();
    let sent = last_queued(&after);
    assert_eq!(sent.ends_at, "1970-01-01T01:06:00.000Z", "still firing");
    // …but once its quiet period has passed in the logs without the
    // failure coming back, it is sent resolved, with the time it
    // resolved, and forgotten.
    after.resend(62 * MINUTE, 62 * MINUTE).unwrap();
    let sent = last_queued(&after);
    assert_eq!(sent.ends_at, "1970-01-01T01:01:00.000Z");
    after.resend(63 * MINUTE, 63 * MINUTE).unwrap();
    let saved = std::fs::read_to_string(dir.join(STATE_FILE)).unwrap();
    assert_eq!(saved.trim(), "{}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_target_is_labelled_without_credentials_path_or_query() {
    let label = |url: &str| Target::Alertmanager(url.to_string()).label();
    assert_eq!(
        label("https://admin:s3cret@am.example.com:9443/t0k3n/api?key=abc"),
        "https://am.example.com:9443"
    );
    assert_eq!(
        label("http://user@alertmanager.monitoring:9093"),
        "http://alertmanager.monitoring:9093"
    );
    assert_eq!(
        label("https://hooks.example.com/services/T000/B000/XXXX"),
        "https://hooks.example.com"
    );
    assert_eq!(label("http://[::1]:9093/"), "http://[::1]:9093");
    assert_eq!(label("not a url"), "unparsable-url");
}
