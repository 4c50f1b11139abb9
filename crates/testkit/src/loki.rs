//! A Loki that answers `GET /loki/api/v1/query_range` and the
//! `GET /loki/api/v1/tail` websocket as Loki's HTTP API documents them,
//! with the failure modes a real one shows: HTTP 500 with a text body on
//! every request and tails closed with the error (its WAL on a read-only
//! file system), answers slower than a client's timeout, and tail
//! connections dropped without a close frame.

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
    /// Answers queries, but drops every tail connection after its first
    /// frame, without a close frame.
    Disconnecting,
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
    /// Tail connections opened so far.
    tails: std::sync::atomic::AtomicUsize,
    /// The `Authorization` header requests must carry, if any.
    authorization: Mutex<Option<String>>,
}

impl TestLoki {
    /// Starts one on loopback; requests must name `tenant` if given.
    /// Returns it and its base URL.
    pub async fn start(tenant: Option<&str>) -> (Arc<TestLoki>, String) {
        TestLoki::start_on(0, tenant).await
    }

    /// [`TestLoki::start`] on loopback port `port` (0: any free one).
    pub async fn start_on(port: u16, tenant: Option<&str>) -> (Arc<TestLoki>, String) {
        let loki = Arc::new(TestLoki {
            entries: Mutex::default(),
            mode: Mutex::new(Mode::Healthy),
            tenant: tenant.map(str::to_string),
            tails: Default::default(),
            authorization: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/loki/api/v1/query_range", get(query_range))
            .route("/loki/api/v1/tail", get(tail))
            .with_state(loki.clone());
        (loki, crate::serve(app, port).await)
    }

    /// Switches how it answers.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    fn mode(&self) -> Mode {
        *self.mode.lock().expect("mode")
    }

    /// Requires basic authentication with these credentials (as a
    /// gateway in front of Loki does): 401 otherwise.
    pub fn require_basic_auth(&self, user: &str, password: &str) {
        use base64::Engine;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        *self.authorization.lock().expect("authorization") = Some(format!("Basic {credentials}"));
    }

    /// How many tail connections were opened.
    pub fn tails(&self) -> usize {
        self.tails.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Loki's own log (its stream `{namespace="monitoring", pod="loki-0",
    /// container="loki"}`) gets the error a read-only WAL makes it write,
    /// at `ts` — while it still answers queries.
    pub fn log_read_only_wal(&self, ts: i64) {
        let when = jiff::Timestamp::from_nanosecond(i128::from(ts))
            .map(|t| t.to_string())
            .unwrap_or_default();
        self.add(
            &[("namespace", "monitoring"), ("pod", "loki-0"), ("container", "loki")],
            ts,
            &format!(
                "level=warn ts={when} caller=grpc_logging.go:74 method=/logproto.Pusher/Push duration=1.04ms msg=gRPC err=\"write /var/loki/wal/00001449: read-only file system\""
            ),
        );
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

/// A gateway refuses requests without the credentials; a multi-tenant
/// Loki (auth_enabled) refuses requests without a tenant.
fn refused(loki: &TestLoki, headers: &axum::http::HeaderMap) -> Option<Response> {
    let wanted = loki.authorization.lock().expect("authorization").clone();
    if let Some(wanted) = wanted
        && headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(wanted.as_str())
    {
        return Some((StatusCode::UNAUTHORIZED, "401 Authorization Required").into_response());
    }
    let tenant = loki.tenant.as_deref()?;
    (headers.get("X-Scope-OrgID").and_then(|v| v.to_str().ok()) != Some(tenant))
        .then(|| (StatusCode::UNAUTHORIZED, "no org id").into_response())
}

/// The streams of `entries` in Loki's JSON shape, entries sorted by time.
fn streams_json(mut entries: Vec<Entry>) -> Vec<serde_json::Value> {
    entries.sort_by_key(|(_, ts, _)| *ts);
    let mut streams: BTreeMap<BTreeMap<String, String>, Vec<serde_json::Value>> = BTreeMap::new();
    for (labels, ts, line) in entries {
        streams
            .entry(labels)
            .or_default()
            .push(serde_json::json!([ts.to_string(), line]));
    }
    streams
        .into_iter()
        .map(|(stream, values)| serde_json::json!({"stream": stream, "values": values}))
        .collect()
}

async fn tail(
    State(loki): State<Arc<TestLoki>>,
    headers: axum::http::HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    if let Some(refused) = refused(&loki, &headers) {
        return refused;
    }
    if loki.mode() == Mode::Failing {
        return (StatusCode::INTERNAL_SERVER_ERROR, READ_ONLY_WAL).into_response();
    }
    let Some(query) = params.get("query").cloned() else {
        return (
            StatusCode::BAD_REQUEST,
            "invalid parameter: query is required",
        )
            .into_response();
    };
    // Loki's default start is an hour ago.
    let start = params
        .get("start")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| {
            i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(0) - 3_600_000_000_000
        });
    loki.tails
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    upgrade.on_upgrade(move |socket| tail_socket(loki, socket, query, start))
}

/// Sends the entries it holds from `start` on, then every entry as it is
/// pushed — of any time, late ones too, as Loki's tailer does — a frame
/// every 20 ms.
async fn tail_socket(
    loki: Arc<TestLoki>,
    mut socket: axum::extract::ws::WebSocket,
    query: String,
    start: i64,
) {
    use axum::extract::ws::{CloseFrame, Message};
    let mut next = 0;
    let mut frames = 0;
    // Rounds so far: the first sends what Loki held from `start` on.
    let mut rounds = 0;
    loop {
        match loki.mode() {
            Mode::Failing => {
                let close = CloseFrame {
                    code: 1011,
                    reason: READ_ONLY_WAL.into(),
                };
                let _ = socket.send(Message::Close(Some(close))).await;
                return;
            }
            Mode::Disconnecting if frames > 0 => return,
            _ => {}
        }
        let found: Vec<Entry> = {
            let entries = loki.entries.lock().expect("entries");
            let found = entries[next..]
                .iter()
                .filter(|(labels, ts, _)| {
                    (rounds > 0 || *ts >= start)
                        && crate::selector_matches(&query, &|name| labels.get(name).cloned())
                })
                .cloned()
                .collect();
            next = entries.len();
            rounds += 1;
            found
        };
        if !found.is_empty() {
            let frame =
                serde_json::json!({"streams": streams_json(found), "dropped_entries": null});
            if socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
            frames += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn query_range(
    State(loki): State<Arc<TestLoki>>,
    headers: axum::http::HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(refused) = refused(&loki, &headers) {
        return refused;
    }
    match loki.mode() {
        Mode::Failing => {
            return (StatusCode::INTERNAL_SERVER_ERROR, READ_ONLY_WAL).into_response();
        }
        Mode::Slow => tokio::time::sleep(Duration::from_secs(2)).await,
        Mode::Healthy | Mode::Disconnecting => {}
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
    let result = streams_json(found);
    axum::Json(serde_json::json!({
        "status": "success",
        "data": {"resultType": "streams", "result": result, "stats": {}}
    }))
    .into_response()
}
