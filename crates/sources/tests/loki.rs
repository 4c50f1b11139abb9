//! Following a Loki that follows the documented HTTP API — a test server
//! here, with the failure modes a real one shows: HTTP 500 with a text
//! body on every request, and answers slower than the client's timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use faultline_sources::Batch;
use faultline_sources::loki::{self, Health, LokiConfig};
use tokio::sync::{mpsc, watch};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Healthy,
    Failing,
    Slow,
}

/// A log entry: its stream's labels, time (ns) and line.
type Entry = (BTreeMap<String, String>, i64, String);

/// A Loki holding log entries, answering `query_range` as Loki does.
#[derive(Default)]
struct TestLoki {
    entries: Mutex<Vec<Entry>>,
    mode: Mutex<Option<Mode>>,
}

impl TestLoki {
    fn mode(&self) -> Mode {
        self.mode.lock().unwrap().unwrap_or(Mode::Healthy)
    }

    fn add(&self, labels: &[(&str, &str)], ts: i64, line: &str) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.entries
            .lock()
            .unwrap()
            .push((labels, ts, line.to_string()));
    }
}

/// `{a="x", b=~"regex"}`: equality and regex matchers.
fn matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    let inner = selector
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}');
    inner.split(',').filter(|m| !m.trim().is_empty()).all(|m| {
        let (name, op, value) = if let Some((n, v)) = m.split_once("=~") {
            (n, "=~", v)
        } else {
            let (n, v) = m.split_once('=').unwrap();
            (n, "=", v)
        };
        let value = value.trim().trim_matches('"');
        let have = labels.get(name.trim()).map(String::as_str).unwrap_or("");
        match op {
            "=~" => regex::Regex::new(&format!("^(?:{value})$"))
                .unwrap()
                .is_match(have),
            _ => have == value,
        }
    })
}

async fn query_range(
    State(loki): State<Arc<TestLoki>>,
    headers: axum::http::HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    // Multi-tenant Loki (auth_enabled) refuses requests without a tenant.
    if headers.get("X-Scope-OrgID").and_then(|v| v.to_str().ok()) != Some("tenant-1") {
        return (StatusCode::UNAUTHORIZED, "no org id").into_response();
    }
    match loki.mode() {
        Mode::Failing => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "rpc error: code = Unknown desc = open /var/loki/wal/00001450: read-only file system",
            )
                .into_response();
        }
        Mode::Slow => tokio::time::sleep(Duration::from_secs(2)).await,
        Mode::Healthy => {}
    }
    let start: i64 = params["start"].parse().unwrap();
    let end: i64 = params["end"].parse().unwrap();
    let limit: usize = params["limit"].parse().unwrap();
    assert_eq!(params["direction"], "forward");
    let mut found: Vec<_> = loki
        .entries
        .lock()
        .unwrap()
        .iter()
        .filter(|(labels, ts, _)| *ts >= start && *ts < end && matches(&params["query"], labels))
        .cloned()
        .collect();
    found.sort_by_key(|(_, ts, _)| *ts);
    found.truncate(limit);
    let mut streams: BTreeMap<BTreeMap<String, String>, Vec<serde_json::Value>> = BTreeMap::new();
    for (labels, ts, line) in found {
        streams
            .entry(labels)
            .or_default()
            .push(serde_json::json!([ts.to_string(), line]));
    }
    let result: Vec<serde_json::Value> = streams
        .into_iter()
        .map(|(stream, values)| serde_json::json!({"stream": stream, "values": values}))
        .collect();
    axum::Json(serde_json::json!({
        "status": "success",
        "data": {"resultType": "streams", "result": result, "stats": {}}
    }))
    .into_response()
}

async fn start_loki() -> (Arc<TestLoki>, String) {
    let loki = Arc::new(TestLoki::default());
    let app = axum::Router::new()
        .route("/loki/api/v1/query_range", get(query_range))
        .with_state(loki.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (loki, url)
}

/// Following the monitoring namespace on the test Loki, quickly.
fn config(url: String, cursor_file: Option<std::path::PathBuf>) -> LokiConfig {
    LokiConfig {
        url,
        selector: r#"{namespace="monitoring"}"#.into(),
        org_id: Some("tenant-1".into()),
        auth: None,
        poll: Duration::from_millis(10),
        limit: 100,
        timeout: Duration::from_millis(500),
        start_ns: 0,
        cursor_file,
    }
}

async fn receive(rx: &mut mpsc::Receiver<Batch>, count: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while lines.len() < count {
        let batch = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {lines:?} arrived"))
            .unwrap();
        lines.extend(
            String::from_utf8(batch.lines)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    lines
}

async fn health_becomes(health: &mut watch::Receiver<Health>, wanted: impl Fn(&Health) -> bool) {
    tokio::time::timeout(Duration::from_secs(20), health.wait_for(|h| wanted(h)))
        .await
        .expect("health changes in time")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_is_followed_through_an_outage_without_loss_or_repeats() {
    let (loki, url) = start_loki().await;
    let monitoring = [("namespace", "monitoring"), ("pod", "loki-0")];
    let other = [("namespace", "kube-system"), ("pod", "coredns-1")];
    for i in 0..7 {
        loki.add(&monitoring, 1_000 + i, &format!("line {i}"));
    }
    loki.add(&other, 1_003, "not selected");
    let (tx, mut rx) = mpsc::channel(8);
    let (health_tx, mut health) = watch::channel(Health::Healthy);
    let (stop_tx, stop) = watch::channel(false);
    // Pages of 3: the seven entries take three pages.
    let config = LokiConfig {
        limit: 3,
        ..config(url, None)
    };
    let task = tokio::spawn(loki::follow(config, tx, health_tx, stop));
    let got = receive(&mut rx, 7).await;
    let texts: Vec<&str> = got.iter().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(
        texts,
        (0..7).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );

    // HTTP 500 on every request: unhealthy, with Loki's own reason.
    *loki.mode.lock().unwrap() = Some(Mode::Failing);
    health_becomes(&mut health, |h| matches!(h, Health::Unhealthy(_))).await;
    let Health::Unhealthy(reason) = health.borrow().clone() else {
        unreachable!()
    };
    assert!(reason.starts_with("HTTP 500: rpc error"), "{reason}");
    // Written during the outage; read once Loki answers again.
    let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap();
    loki.add(&monitoring, now - 1_000_000, "during the outage");
    *loki.mode.lock().unwrap() = Some(Mode::Healthy);
    health_becomes(&mut health, |h| *h == Health::Healthy).await;
    let got = receive(&mut rx, 1).await;
    assert!(got[0].ends_with(" during the outage"), "{got:?}");

    // Slower than the timeout: unhealthy too.
    *loki.mode.lock().unwrap() = Some(Mode::Slow);
    health_becomes(
        &mut health,
        |h| matches!(h, Health::Unhealthy(r) if r == "timed out"),
    )
    .await;
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    assert!(rx.try_recv().is_err(), "nothing repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_catches_up_from_the_saved_cursor() {
    let (loki, url) = start_loki().await;
    let labels = [("namespace", "monitoring"), ("pod", "loki-0")];
    for i in 0..3 {
        loki.add(&labels, 1_000 + i, &format!("before {i}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(url, Some(dir.path().join("loki-cursor")));
    let run = |config: LokiConfig| {
        let (tx, rx) = mpsc::channel(8);
        let (health_tx, _) = watch::channel(Health::Healthy);
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(loki::follow(config, tx, health_tx, stop));
        (rx, stop_tx, task)
    };
    let (mut rx, stop_tx, task) = run(config.clone());
    assert_eq!(receive(&mut rx, 3).await.len(), 3);
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    // Written while faultline was down.
    loki.add(&labels, 2_000, "while down");
    let (mut rx, stop_tx, task) = run(config);
    let got = receive(&mut rx, 2).await;
    // The entry at the saved timestamp is read again; nothing older is.
    assert!(got[0].ends_with(" before 2"), "{got:?}");
    assert!(got[1].ends_with(" while down"), "{got:?}");
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}
