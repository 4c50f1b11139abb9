//! Reading from Loki: `watch --loki URL --selector '{…}'`.
//!
//! Follows a LogQL stream selector by paging `GET /loki/api/v1/query_range`
//! forward, every poll interval — or, with `tail`, catches up that way and
//! then follows Loki's `/loki/api/v1/tail` websocket, whose frames arrive
//! as entries are pushed; a tail that ends (Loki closes it, the connection
//! drops, entries are dropped for a slow reader) is a failure, and reading
//! goes on with `query_range`. Each stream becomes a batch of
//! `<RFC 3339 time> <line>` lines with the stream's labels.
//!
//! Entries reach Loki late and out of order (shippers batch and retry;
//! nodes are not in step), so every pass starts `late` before the newest
//! entry seen, not at it, and a [`Window`] remembers what was passed on
//! over that span: each entry is passed on once, however often a pass or
//! the tail brings it. The tail delivers entries as they are pushed, so
//! it also brings entries later than the window: they are passed on and
//! counted in [`Batch::late`]. With polling, an entry that reaches Loki
//! more than `late` after newer ones is not read.
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

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::Batch;
use crate::overlap::{ContainerKey, Marks};
use crate::watermark::Watermark;
use crate::window::{Verdict, Window};
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
    /// Where to start, UTC ns ([`saved_start`] after a restart).
    pub start_ns: i64,
    /// How late an entry may reach Loki — after newer entries of other
    /// streams — and still be read: each pass reads this far back again,
    /// and entries seen are told apart by (stream, time, line).
    pub late: Duration,
    /// Where the cursor ([`CURSOR_FILE`]) is kept, so a restart catches up
    /// from there with `query_range`: the window of lateness is read
    /// again, and what the last run passed on in it is matched twice at
    /// most.
    pub state_dir: Option<std::path::PathBuf>,
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
    /// Once caught up, follow the tail websocket instead of polling.
    pub tail: bool,
    /// How far in event time everything has been read: the end of the
    /// last query (or the newest entry of a full page) less `late`; not
    /// waited for while Loki is unhealthy.
    pub watermark: Watermark,
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

/// The state file holding where reading starts again after a restart.
pub const CURSOR_FILE: &str = "loki-cursor";

/// Entries remembered at most to tell late entries from repeated ones
/// (about 40 MB); at a higher rate the window of lateness shrinks.
pub const MAX_WINDOW: usize = 1_000_000;

/// How often, at most, the cursor is saved while reading.
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// Where reading starts again after a restart, as the previous run saved
/// it in `dir` (UTC ns); none when there is no file. A file that cannot be
/// understood is moved aside, with the warning to print.
pub fn saved_start(dir: &std::path::Path) -> std::io::Result<(Option<i64>, Option<String>)> {
    Ok(faultline_state::load(dir, CURSOR_FILE, faultline_state::now_secs())?.into_parts())
}

/// Where reading stands: the entries seen over the window of lateness,
/// where the next page starts, and when the cursor was saved.
struct Reader {
    /// How late an entry may be, ns (`LokiConfig::late`).
    late: i64,
    window: Window,
    hasher: RandomState,
    /// Where the next `query_range` page starts: the window's floor at the
    /// start of a pass, the newest entry of a full page within one.
    page_at: i64,
    saved: Option<(i64, std::time::Instant)>,
}

impl Reader {
    /// A reader from `start` (ns) that allows entries `late` ns late.
    fn new(late: i64, start: i64) -> Reader {
        Reader {
            late,
            window: Window::new(late, MAX_WINDOW, start),
            hasher: RandomState::new(),
            page_at: start,
            saved: None,
        }
    }

    /// Saves where reading starts again — the window's floor, so a
    /// restart reads the window again and misses nothing late (what it
    /// had passed on is matched twice at most) — every [`SAVE_EVERY`] at
    /// most, or at once with `now`.
    fn save(&mut self, config: &LokiConfig, now: bool) {
        let Some(dir) = &config.state_dir else {
            return;
        };
        let floor = self.window.floor().min(self.page_at);
        let due = match self.saved {
            None => true,
            Some((at, when)) => at != floor && (now || when.elapsed() >= SAVE_EVERY),
        };
        // A failed save only costs a longer catch-up after a restart.
        if due && faultline_state::save(dir, CURSOR_FILE, &floor).is_ok() {
            self.saved = Some((floor, std::time::Instant::now()));
        }
    }
}

/// Follows `config.selector` until `stop` turns true, sending batches on
/// `tx` and Loki's health on `health`.
pub async fn follow(
    config: LokiConfig,
    tx: mpsc::Sender<Batch>,
    health: watch::Sender<Health>,
    stop: watch::Receiver<bool>,
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
    let late = i64::try_from(config.late.as_nanos()).unwrap_or(i64::MAX);
    let mut reader = Reader::new(late, config.start_ns);
    config
        .position
        .store(reader.window.newest(), Ordering::Relaxed);
    read(&client, &config, &mut reader, &tx, &health, stop).await;
    reader.save(&config, true);
}

/// Reads until `stop` turns true or the batches are no longer wanted.
async fn read(
    client: &reqwest::Client,
    config: &LokiConfig,
    reader: &mut Reader,
    tx: &mpsc::Sender<Batch>,
    health: &watch::Sender<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let started = now_ns();
    let mut backoff = Backoff::new();
    let mut failures = 0u32;
    let fail = |failures: &mut u32, reason: String| {
        *failures += 1;
        if *failures >= FAILURES_TO_UNHEALTHY {
            // Not waited for while down: what it brings later is late.
            config.watermark.idle();
            // Told once per change, not once per failed request.
            let unhealthy = Health::Unhealthy(reason);
            health.send_if_modified(|h| {
                let changed = *h != unhealthy;
                *h = unhealthy;
                changed
            });
        }
    };
    loop {
        let end = now_ns();
        let wait = match query_range(client, config, reader.page_at, end).await {
            Ok(streams) => {
                backoff.reset();
                let returned: usize = streams.iter().map(|s| s.entries.len()).sum();
                let page_newest = streams
                    .iter()
                    .flat_map(|s| s.entries.iter().map(|(ts, _)| *ts))
                    .max();
                for batch in fresh(reader, streams, &config.marks, false) {
                    if tx.send(batch).await.is_err() {
                        return;
                    }
                }
                config
                    .position
                    .store(reader.window.newest(), Ordering::Relaxed);
                let lag = Duration::from_nanos(
                    u64::try_from(end.saturating_sub(reader.window.newest().max(started)))
                        .unwrap_or(0),
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
                let read_to = if returned >= config.limit {
                    page_newest.unwrap_or(end).min(end)
                } else {
                    end
                };
                if failures == 0 {
                    config.watermark.at(read_to.saturating_sub(reader.late));
                }
                if returned >= config.limit {
                    // A full page means more is waiting: the next page at
                    // once, from this one's newest entry (a page all at
                    // one time steps past it).
                    let newest = page_newest.unwrap_or(reader.page_at);
                    reader.page_at = if newest > reader.page_at {
                        newest
                    } else {
                        newest.saturating_add(1)
                    };
                    reader.save(config, false);
                    Duration::ZERO
                } else {
                    // The pass is done: the next one reads the window again.
                    reader.page_at = reader.window.floor();
                    reader.save(config, false);
                    if config.tail && failures == 0 {
                        let ended = tokio::select! {
                            ended = tail(config, reader, tx) => ended,
                            _ = stop.changed() => return,
                        };
                        match ended {
                            Err(Gone) => return,
                            Ok(reason) => fail(&mut failures, reason),
                        }
                        backoff.next_wait()
                    } else {
                        config.poll
                    }
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

/// The batches are no longer wanted.
struct Gone;

/// Follows the tail websocket from the window's floor until it ends: why
/// it ended. Loki sends what it holds from there, then entries as they
/// are pushed — late ones too, in the order they arrive.
async fn tail(
    config: &LokiConfig,
    reader: &mut Reader,
    tx: &mpsc::Sender<Batch>,
) -> Result<String, Gone> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let request = match tail_request(config, reader.window.floor()) {
        Ok(request) => request,
        Err(reason) => return Ok(reason),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|builder| {
        builder
            .with_root_certificates(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
            .with_no_client_auth()
    });
    let tls = match tls {
        Ok(tls) => tls,
        Err(err) => return Ok(format!("TLS for the tail: {err}")),
    };
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(tls))),
    );
    let mut socket = match tokio::time::timeout(config.timeout, connect).await {
        Err(_) => return Ok("the tail timed out connecting".to_string()),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let body: String = body.trim().chars().take(200).collect();
            return Ok(format!("tail: HTTP {}: {body}", response.status().as_u16()));
        }
        Ok(Err(err)) => return Ok(format!("tail: {err}")),
        Ok(Ok((socket, _))) => socket,
    };
    let mut quiet = Duration::ZERO;
    loop {
        // The tail brings entries as they are pushed: all but late ones
        // older than the lateness allowed have come.
        config.watermark.at(now_ns().saturating_sub(reader.late));
        // A link that died without closing (Loki's node gone) must not
        // hold the tail forever: after a quiet minute, catch up instead.
        let message = match tokio::time::timeout(TAIL_BEAT, socket.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Ok("the tail ended".to_string()),
            Err(_) if quiet + TAIL_BEAT < TAIL_QUIET => {
                quiet += TAIL_BEAT;
                continue;
            }
            Err(_) => return Ok(format!("the tail was silent for {}s", TAIL_QUIET.as_secs())),
        };
        quiet = Duration::ZERO;
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(frame)) => {
                return Ok(match frame {
                    Some(frame) if !frame.reason.is_empty() => {
                        format!("Loki closed the tail: {}", frame.reason)
                    }
                    _ => "Loki closed the tail".to_string(),
                });
            }
            Ok(_) => continue,
            Err(err) => return Ok(format!("the tail broke: {err}")),
        };
        let (streams, dropped) = match parse_tail_frame(text.as_bytes()) {
            Ok(frame) => frame,
            Err(reason) => return Ok(reason),
        };
        for batch in fresh(reader, streams, &config.marks, true) {
            tx.send(batch).await.map_err(|_| Gone)?;
        }
        config
            .position
            .store(reader.window.newest(), Ordering::Relaxed);
        reader.page_at = reader.window.floor();
        if let Some(&oldest) = dropped.iter().min() {
            // Read again from the oldest entry Loki dropped: query_range
            // brings it back (the window drops what was passed on).
            reader.page_at = reader.page_at.min(oldest);
            reader.save(config, true);
            return Ok(format!(
                "the tail dropped {} entries (faultline read too slowly)",
                dropped.len()
            ));
        }
        reader.save(config, false);
    }
}

/// How long a tail may stay silent before it is taken for dead.
const TAIL_QUIET: Duration = Duration::from_secs(60);

/// How often a silent tail moves the watermark on.
const TAIL_BEAT: Duration = Duration::from_secs(1);

/// The websocket request for the tail from `start` (ns), with the
/// tenant and credentials.
fn tail_request(
    config: &LokiConfig,
    start: i64,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let base = config.url.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return Err(format!("{base}: not an http(s) URL"));
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", &config.selector)
        .append_pair("start", &start.to_string())
        .append_pair("limit", &config.limit.to_string())
        .append_pair("delay_for", "0")
        .finish();
    let mut request = format!("{base}/loki/api/v1/tail?{query}")
        .into_client_request()
        .map_err(|err| format!("the tail request: {err}"))?;
    let headers = request.headers_mut();
    let header = |value: &str| {
        value
            .parse::<tokio_tungstenite::tungstenite::http::HeaderValue>()
            .map_err(|err| format!("a header for the tail: {err}"))
    };
    if let Some(org) = &config.org_id {
        headers.insert("X-Scope-OrgID", header(org)?);
    }
    match &config.auth {
        Some(Auth::Bearer(token)) => {
            headers.insert("Authorization", header(&format!("Bearer {token}"))?);
        }
        Some(Auth::Basic { user, password }) => {
            use base64::Engine;
            let credentials = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{password}").as_bytes());
            headers.insert("Authorization", header(&format!("Basic {credentials}"))?);
        }
        None => {}
    }
    Ok(request)
}

/// Parses a tail frame: `{"streams":[{"stream":{…},"values":[[ts,line]]}],
/// "dropped_entries":[{"labels":{…},"timestamp":"<ns>"}]}`: the streams
/// and the times of the entries Loki dropped.
pub fn parse_tail_frame(body: &[u8]) -> Result<(Vec<Pushed>, Vec<i64>), String> {
    #[derive(serde::Deserialize)]
    struct Frame {
        #[serde(default)]
        streams: Vec<LooseStream>,
        #[serde(default)]
        dropped_entries: Option<Vec<serde_json::Value>>,
    }
    let frame: Frame =
        serde_json::from_slice(body).map_err(|err| format!("not a tail frame: {err}"))?;
    let streams = frame
        .streams
        .into_iter()
        .map(LooseStream::into_pushed)
        .collect::<Result<_, _>>()
        .map_err(|err| format!("not a tail frame: {err}"))?;
    let dropped = frame
        .dropped_entries
        .unwrap_or_default()
        .iter()
        .map(|entry| {
            entry["timestamp"]
                .as_str()
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| "not a tail frame: a dropped entry without a timestamp".to_string())
        })
        .collect::<Result<_, _>>()?;
    Ok((streams, dropped))
}

/// A stream as Loki returns it; values are `[ts, line]` or
/// `[ts, line, {metadata}]` (the metadata is ignored).
#[derive(serde::Deserialize)]
struct LooseStream {
    #[serde(default)]
    stream: std::collections::BTreeMap<String, String>,
    values: Vec<Vec<serde_json::Value>>,
}

impl LooseStream {
    fn into_pushed(self) -> Result<Pushed, &'static str> {
        let entries = self
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
            .collect::<Result<_, &str>>()?;
        Ok(Pushed {
            labels: self.stream.into_iter().collect(),
            entries,
        })
    }
}

/// The streams' entries not passed on yet — by this reader, or by another
/// road (`marks`) — as batches, in time order per stream. An entry older
/// than the window is passed on too (it cannot be told from a new one);
/// from the tail (`live`) it is counted as late.
fn fresh(reader: &mut Reader, mut streams: Vec<Pushed>, marks: &Marks, live: bool) -> Vec<Batch> {
    // Every entry as (time, stream, index), in time order across streams:
    // one container's stdout and stderr are often two streams, and the
    // window and the marks see the container's entries in time order.
    let mut order: Vec<(i64, usize, usize)> = streams
        .iter()
        .enumerate()
        .flat_map(|(s, stream)| {
            stream
                .entries
                .iter()
                .enumerate()
                .map(move |(e, (ts, _))| (*ts, s, e))
        })
        .collect();
    order.sort_unstable();
    let keys: Vec<(String, Option<ContainerKey>)> = streams
        .iter()
        .map(|s| (labels_key(&s.labels), Marks::key(&s.labels)))
        .collect();
    let mut keep: Vec<Vec<bool>> = streams
        .iter()
        .map(|s| vec![false; s.entries.len()])
        .collect();
    let mut late = vec![0usize; streams.len()];
    for (ts, s, e) in order {
        let (key, container) = &keys[s];
        let line = &streams[s].entries[e].1;
        let hash = reader.hasher.hash_one((key.as_str(), line.as_str()));
        keep[s][e] = match reader.window.check(ts, hash) {
            Verdict::New => container
                .as_ref()
                .is_none_or(|container| marks.admit(container, ts, line)),
            Verdict::Again => false,
            Verdict::Late => {
                late[s] += usize::from(live);
                true
            }
        };
    }
    let mut batches = Vec::new();
    for ((mut stream, keep), late) in streams.drain(..).zip(keep).zip(late) {
        let mut kept = keep.into_iter();
        stream.entries.retain(|_| kept.next().unwrap_or(false));
        stream.entries.sort_by_key(|(ts, _)| *ts);
        if !stream.entries.is_empty() {
            let mut batch = labelled_batch("loki", stream);
            batch.late = late;
            batches.push(batch);
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
        .map(LooseStream::into_pushed)
        .collect::<Result<_, _>>()
        .map_err(|err| format!("not a query_range response: {err}"))
}

#[cfg(test)]
mod tests;
