//! Reading from Loki: `watch --loki URL --selector '{…}'`.
//!
//! Follows a LogQL stream selector by paging `GET /loki/api/v1/query_range`
//! forward from where it stands (the start, then the newest entry seen),
//! every poll interval. Entries that share the newest timestamp are
//! remembered so the next page, which starts at that timestamp, does not
//! repeat them (Loki's `start` is inclusive, and stepping past it by a
//! nanosecond could drop entries). Each stream becomes a batch of
//! `<RFC 3339 time> <line>` lines with the stream's labels.
//!
//! Loki's health is judged on every request: an HTTP error status (5xx,
//! 429), a timeout or a refused connection is a failure, and so is an
//! answer whose newest entry is older than `max_lag` (Loki answers, but
//! nothing new reaches it: its ingestion is broken); after
//! [`FAILURES_TO_UNHEALTHY`] failures in a row Loki is unhealthy, and the
//! first success makes it healthy again. Failures are retried with
//! jittered exponential backoff. The health is published on a watch
//! channel, so `watch` can raise the `pipeline/loki` incident (and fall
//! back to other sources) while Loki is down.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::Batch;
use crate::overlap::Marks;
use faultline_core::Backoff;

use crate::push::{Pushed, labelled_batch};

/// Failures in a row after which Loki is unhealthy.
pub const FAILURES_TO_UNHEALTHY: u32 = 3;

/// How to reach Loki and what to read.
#[derive(Clone, Debug)]
pub struct LokiConfig {
    /// Base URL, e.g. `http://loki-gateway.monitoring.svc`.
    pub url: String,
    /// LogQL stream selector, e.g. `{namespace=~".+"}`.
    pub selector: String,
    /// `X-Scope-OrgID`, for a multi-tenant Loki.
    pub org_id: Option<String>,
    /// Credentials.
    pub auth: Option<Auth>,
    /// Time between pages once caught up.
    pub poll: Duration,
    /// Entries per page (Loki's `max_entries_limit_per_query` is 5000).
    pub limit: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Where to start, UTC ns, unless `cursor_file` says where it stopped.
    pub start_ns: i64,
    /// Where the newest timestamp read is kept, so a restart catches up
    /// from there with `query_range` (the entries at that timestamp are
    /// read again, and matched twice at most).
    pub cursor_file: Option<std::path::PathBuf>,
    /// Loki is lagging — unhealthy — when the newest entry of the
    /// selector is older than this.
    pub max_lag: Option<Duration>,
    /// Per-container marks shared with the other roads a container's log
    /// takes (the Kubernetes API fallback): an entry already passed on is
    /// not passed on again.
    pub marks: Marks,
    /// The newest entry's time read so far (UTC ns), published for the
    /// fallback to start from.
    pub position: Arc<AtomicI64>,
}

/// Credentials for Loki.
#[derive(Clone)]
pub enum Auth {
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    /// Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Auth::Bearer(_) => write!(f, "Bearer(***)"),
        }
    }
}

/// Whether Loki answers, as judged by the last requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Answering (or not asked yet).
    Healthy,
    /// [`FAILURES_TO_UNHEALTHY`] requests in a row failed; the last reason.
    Unhealthy(String),
}

/// Where reading stands: the newest timestamp seen and the entries at it.
#[derive(Debug)]
struct Cursor {
    at: i64,
    seen_at: HashSet<(String, String)>,
}

/// Follows `config.selector` until `stop` turns true, sending batches on
/// `tx` and Loki's health on `health`.
pub async fn follow(
    config: LokiConfig,
    tx: mpsc::Sender<Batch>,
    health: watch::Sender<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(client) => client,
        Err(err) => {
            let _ = health.send(Health::Unhealthy(format!(
                "cannot build an HTTP client: {err}"
            )));
            return;
        }
    };
    let saved = config
        .cursor_file
        .as_deref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| text.trim().parse::<i64>().ok());
    let mut cursor = Cursor {
        at: saved.unwrap_or(config.start_ns),
        seen_at: HashSet::new(),
    };
    config.position.store(cursor.at, Ordering::Relaxed);
    let started = now_ns();
    let mut backoff = Backoff::new();
    let mut failures = 0u32;
    let fail = |failures: &mut u32, reason: String| {
        *failures += 1;
        if *failures >= FAILURES_TO_UNHEALTHY {
            health.send_replace(Health::Unhealthy(reason));
        }
    };
    loop {
        let end = now_ns();
        let wait = match query_range(&client, &config, cursor.at, end).await {
            Ok(streams) => {
                backoff.reset();
                let returned: usize = streams.iter().map(|s| s.entries.len()).sum();
                let before = cursor.at;
                for batch in fresh(&mut cursor, streams, &config.marks) {
                    if tx.send(batch).await.is_err() {
                        return;
                    }
                }
                config.position.store(cursor.at, Ordering::Relaxed);
                let lag = Duration::from_nanos(
                    u64::try_from(end.saturating_sub(cursor.at.max(started))).unwrap_or(0),
                );
                match config.max_lag.filter(|&max| lag > max) {
                    Some(max) => fail(
                        &mut failures,
                        format!(
                            "no new entries for more than {}s: Loki answers but is not ingesting",
                            max.as_secs()
                        ),
                    ),
                    None => {
                        failures = 0;
                        health.send_if_modified(|h| {
                            let changed = *h != Health::Healthy;
                            *h = Health::Healthy;
                            changed
                        });
                    }
                }
                if cursor.at != before
                    && let Some(file) = &config.cursor_file
                {
                    // What is sent is processed, or drained at a clean stop.
                    let temporary = file.with_extension("tmp");
                    let _ = std::fs::write(&temporary, cursor.at.to_string())
                        .and_then(|()| std::fs::rename(&temporary, file));
                }
                // A full page means more is waiting: ask again at once.
                if returned >= config.limit {
                    Duration::ZERO
                } else {
                    config.poll
                }
            }
            Err(reason) => {
                fail(&mut failures, reason);
                backoff.next_wait()
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// The streams' entries not seen yet — by this reader, or by another road
/// (`marks`) — as batches, advancing the cursor.
fn fresh(cursor: &mut Cursor, streams: Vec<Pushed>, marks: &Marks) -> Vec<Batch> {
    let newest = streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|(ts, _)| *ts))
        .max();
    let mut batches = Vec::new();
    let mut at_newest = HashSet::new();
    for mut stream in streams {
        let key = labels_key(&stream.labels);
        let container = Marks::key(&stream.labels);
        stream.entries.sort_by_key(|(ts, _)| *ts);
        stream.entries.retain(|(ts, line)| {
            let entry = (key.clone(), line.clone());
            if Some(*ts) == newest {
                at_newest.insert(entry.clone());
            }
            (*ts > cursor.at || (*ts == cursor.at && !cursor.seen_at.contains(&entry)))
                && container
                    .as_ref()
                    .is_none_or(|container| marks.admit(container, *ts, line))
        });
        if !stream.entries.is_empty() {
            batches.push(labelled_batch("loki", stream));
        }
    }
    if let Some(newest) = newest {
        if newest == cursor.at {
            cursor.seen_at.extend(at_newest);
        } else if newest > cursor.at {
            cursor.at = newest;
            cursor.seen_at = at_newest;
        }
    }
    batches
}

fn labels_key(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn now_ns() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

/// One `query_range` request, forward from `start` (inclusive) to `end`.
async fn query_range(
    client: &reqwest::Client,
    config: &LokiConfig,
    start: i64,
    end: i64,
) -> Result<Vec<Pushed>, String> {
    let url = format!(
        "{}/loki/api/v1/query_range",
        config.url.trim_end_matches('/')
    );
    let mut request = client.get(&url).query(&[
        ("query", config.selector.as_str()),
        ("start", &start.to_string()),
        ("end", &end.to_string()),
        ("limit", &config.limit.to_string()),
        ("direction", "forward"),
    ]);
    if let Some(org) = &config.org_id {
        request = request.header("X-Scope-OrgID", org);
    }
    request = match &config.auth {
        Some(Auth::Basic { user, password }) => request.basic_auth(user, Some(password)),
        Some(Auth::Bearer(token)) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.map_err(|err| describe(&err))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|err| describe(&err))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let text: String = text.trim().chars().take(200).collect();
        return Err(format!("HTTP {}: {text}", status.as_u16()));
    }
    parse_query_range(&body)
}

/// A request failure in words: timeout, refused, or the error itself.
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        format!("cannot connect: {err}")
    } else {
        err.to_string()
    }
}

/// Parses a `query_range` response for a log query (`resultType`
/// `streams`); values may carry a third element (structured metadata),
/// which is ignored.
pub fn parse_query_range(body: &[u8]) -> Result<Vec<Pushed>, String> {
    // Values are [ts, line] or [ts, line, {metadata}]: read loosely.
    #[derive(serde::Deserialize)]
    struct Loose {
        status: String,
        data: LooseData,
    }
    #[derive(serde::Deserialize)]
    struct LooseData {
        #[serde(rename = "resultType")]
        result_type: String,
        result: Vec<LooseStream>,
    }
    #[derive(serde::Deserialize)]
    struct LooseStream {
        #[serde(default)]
        stream: std::collections::BTreeMap<String, String>,
        values: Vec<Vec<serde_json::Value>>,
    }
    let response: Loose =
        serde_json::from_slice(body).map_err(|err| format!("not a query_range response: {err}"))?;
    if response.status != "success" {
        return Err(format!("query_range status {:?}", response.status));
    }
    if response.data.result_type != "streams" {
        return Err(format!(
            "query_range returned {:?}, not streams: the selector is not a log query",
            response.data.result_type
        ));
    }
    response
        .data
        .result
        .into_iter()
        .map(|stream| {
            let entries = stream
                .values
                .into_iter()
                .map(|value| {
                    let ts = value
                        .first()
                        .and_then(|v| v.as_str())
                        .and_then(|v| v.parse::<i64>().ok())
                        .ok_or("an entry without a timestamp string")?;
                    let line = value
                        .get(1)
                        .and_then(|v| v.as_str())
                        .ok_or("an entry without a line")?;
                    Ok((ts, line.to_string()))
                })
                .collect::<Result<_, &str>>()
                .map_err(|err| format!("not a query_range response: {err}"))?;
            Ok(Pushed {
                labels: stream.stream.into_iter().collect(),
                entries,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
