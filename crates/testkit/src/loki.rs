//! A Loki that answers `GET /loki/api/v1/query_range` as Loki's HTTP API
//! documents it, with the failure modes a real one shows: HTTP 500 with a
//! text body on every request (its WAL on a read-only file system), and
//! answers slower than a client's timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// How the test Loki answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As a healthy Loki.
    Healthy,
    /// HTTP 500 with Loki's read-only WAL error, on every request.
    Failing,
    /// Two seconds late.
    Slow,
}

/// The body of the HTTP 500 a Loki with a read-only WAL answers.
pub const READ_ONLY_WAL: &str =
    "rpc error: code = Unknown desc = open /var/loki/wal/00001450: read-only file system";

/// A log entry: its stream's labels, time (ns) and line.
type Entry = (BTreeMap<String, String>, i64, String);

/// A Loki holding log entries.
pub struct TestLoki {
    entries: Mutex<Vec<Entry>>,
    mode: Mutex<Mode>,
    /// Requests must carry this `X-Scope-OrgID` (multi-tenant Loki).
    tenant: Option<String>,
}

impl TestLoki {
    /// Starts one on loopback; requests must name `tenant` if given.
    /// Returns it and its base URL.
    pub async fn start(tenant: Option<&str>) -> (Arc<TestLoki>, String) {
        let loki = Arc::new(TestLoki {
            entries: Mutex::default(),
            mode: Mutex::new(Mode::Healthy),
            tenant: tenant.map(str::to_string),
        });
        let app = axum::Router::new()
            .route("/loki/api/v1/query_range", get(query_range))
            .with_state(loki.clone());
        (loki, crate::serve(app).await)
    }

    /// Switches how it answers.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    fn mode(&self) -> Mode {
        *self.mode.lock().expect("mode")
    }

    /// Stores an entry (as if pushed) in the stream with these labels.
    pub fn add(&self, labels: &[(&str, &str)], ts: i64, line: &str) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.entries
            .lock()
            .expect("entries")
            .push((labels, ts, line.to_string()));
    }
}

async fn query_range(
    State(loki): State<Arc<TestLoki>>,
    headers: axum::http::HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    // Multi-tenant Loki (auth_enabled) refuses requests without a tenant.
    if let Some(tenant) = &loki.tenant
        && headers.get("X-Scope-OrgID").and_then(|v| v.to_str().ok()) != Some(tenant.as_str())
    {
        return (StatusCode::UNAUTHORIZED, "no org id").into_response();
    }
    match loki.mode() {
        Mode::Failing => {
            return (StatusCode::INTERNAL_SERVER_ERROR, READ_ONLY_WAL).into_response();
        }
        Mode::Slow => tokio::time::sleep(Duration::from_secs(2)).await,
        Mode::Healthy => {}
    }
    let number = |name: &str| params.get(name).and_then(|v| v.parse::<i64>().ok());
    let (Some(start), Some(end), Some(limit), Some(query)) = (
        number("start"),
        number("end"),
        number("limit"),
        params.get("query"),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "invalid parameter: query, start, end and limit are required",
        )
            .into_response();
    };
    if params.get("direction").map(String::as_str) != Some("forward") {
        return (StatusCode::BAD_REQUEST, "this test Loki pages forward only").into_response();
    }
    let mut found: Vec<_> = loki
        .entries
        .lock()
        .expect("entries")
        .iter()
        .filter(|(labels, ts, _)| {
            *ts >= start
                && *ts < end
                && crate::selector_matches(query, &|name| labels.get(name).cloned())
        })
        .cloned()
        .collect();
    found.sort_by_key(|(_, ts, _)| *ts);
    found.truncate(usize::try_from(limit).unwrap_or(0));
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
