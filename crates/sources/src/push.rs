//! A Loki push receiver: `watch --listen-push ADDR`.
//!
//! promtail, Grafana Alloy or Vector can send faultline a copy of what they
//! push to Loki, so detection does not depend on Loki being healthy. It
//! accepts `POST /loki/api/v1/push` in both encodings Loki accepts and
//! answers as Loki does:
//!
//! * `Content-Type: application/x-protobuf` (promtail's default): a
//!   snappy-compressed (block format) `logproto.PushRequest` (Loki's
//!   `pkg/push/push.proto`);
//! * `Content-Type: application/json`, optionally `Content-Encoding: gzip`:
//!   `{"streams":[{"stream":{…},"values":[["<ns>","line"(,{metadata})]]}]}`,
//!   with the time as a string of nanoseconds (a number is rejected).
//!
//! Success is 204; a malformed body is 400 with the reason as text (and
//! counted); a request whose body has not arrived whole within the timeout
//! is 408, and a connection whose request headers have not arrived within
//! it is closed (slow clients cannot hold connections); a body over the
//! limit is 413 before it is read whole. At most [`MAX_CONNECTIONS`] are
//! served at once; more wait in the listen queue. Each pushed stream
//! becomes a batch whose lines are `<RFC 3339 time> <line>` (the time from
//! the entry), labelled with the stream's labels (`node_name`, `nodename`
//! or `host` also give `node`). When faultline is behind, the request
//! waits for room (the client's own backoff then applies), so nothing is
//! accepted and dropped.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, watch};

use crate::{Batch, Stream};

/// Largest push body accepted, compressed (Loki's distributor takes far
/// less per push in practice).
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// What a push may cost.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest body accepted, compressed (larger: 413, refused before it
    /// is read whole).
    pub max_body: usize,
    /// Longest a request may take to arrive: its headers (longer: the
    /// connection is closed) and then its body (longer: 408).
    pub timeout: std::time::Duration,
}

/// Connections served at once; further clients wait to be accepted.
pub const MAX_CONNECTIONS: usize = 1024;

/// Largest body after decompression: a snappy or gzip bomb stops here.
const MAX_DECODED: usize = 64 << 20;

/// Loki's `logproto.PushRequest`, from `pkg/push/push.proto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
    #[prost(string, tag = "2")]
    pub format: String,
}

/// `logproto.StreamAdapter`: labels in Prometheus text form
/// (`{namespace="x", pod="y"}`) and the entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
    #[prost(message, repeated, tag = "4")]
    pub parsed: Vec<LabelPairAdapter>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One pushed stream, decoded: its labels and (time ns, line) entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub labels: Vec<(String, String)>,
    pub entries: Vec<(i64, String)>,
}

/// Serves the push API on `listener` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    limits: Limits,
    tx: mpsc::Sender<Batch>,
    rejected: Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
) {
    let app = axum::Router::new()
        .route("/loki/api/v1/push", post(push))
        .route("/ready", get(|| async { "ready" }))
        .with_state(Arc::new(Receiver {
            tx,
            rejected,
            limits,
        }));
    serve_connections(listener, app, limits.timeout, stop).await;
}

/// Accepts connections until `stop`, serving each with `app` over HTTP/1
/// with `header_timeout` on the request headers, at most
/// [`MAX_CONNECTIONS`] at once; then lets the open requests finish.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_timeout: std::time::Duration,
    stop: watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let service = hyper_util::service::TowerToHyperService::new(app);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let stopped = crate::stopped(stop);
    tokio::pin!(stopped);
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = async {
                let slot = slots.clone().acquire_owned().await;
                (listener.accept().await, slot)
            } => accepted,
        };
        let (stream, slot) = match accepted {
            (Ok((stream, _)), Ok(slot)) => (stream, slot),
            (Err(_), _) => {
                // Out of file descriptors or a connection reset before it
                // was accepted: the listener itself is fine; pause so a
                // persistent error does not spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            (_, Err(_)) => break,
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that breaks its connection is its own problem.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    // Requests under way get the timeout to finish.
    let _ = tokio::time::timeout(header_timeout, graceful.shutdown()).await;
}

/// Binds `addr` for [`serve`], with an error that names it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| std::io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))
}

/// Where accepted pushes go, the count of malformed ones, and what a push
/// may cost.
struct Receiver {
    tx: mpsc::Sender<Batch>,
    rejected: Arc<AtomicU64>,
    limits: Limits,
}

/// Reads a push body within the limits: a client that stalls gets 408 and
/// lets go of its connection, a body over the limit 413 as soon as it
/// passes it. Waiting for room once the body is in is not the client's
/// fault and is not timed (the client then sees faultline's backpressure,
/// not an error it would drop the push for).
async fn receive(body: Body, limits: Limits) -> Result<Bytes, Response> {
    match tokio::time::timeout(limits.timeout, axum::body::to_bytes(body, limits.max_body)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(err)) => {
            let over = std::error::Error::source(&err)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            Err(if over {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is over {} bytes", limits.max_body),
                )
                    .into_response()
            } else {
                (StatusCode::BAD_REQUEST, format!("reading the body: {err}")).into_response()
            })
        }
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request did not arrive within {}s",
                limits.timeout.as_secs_f64()
            ),
        )
            .into_response()),
    }
}

async fn push(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    let body = match receive(body, receiver.limits).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf");
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let decoded = if content_type.starts_with("application/json") {
        decode_json(&body, gzip)
    } else if content_type.starts_with("application/x-protobuf") {
        decode_protobuf(&body)
    } else {
        Err(format!("unsupported Content-Type {content_type:?}"))
    };
    let streams = match decoded {
        Ok(streams) => streams,
        Err(reason) => {
            receiver.rejected.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::BAD_REQUEST, reason).into_response();
        }
    };
    for pushed in streams {
        if pushed.entries.is_empty() {
            continue;
        }
        if receiver
            .tx
            .send(labelled_batch("push", pushed))
            .await
            .is_err()
        {
            return (StatusCode::SERVICE_UNAVAILABLE, "faultline is stopping").into_response();
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// A stream of entries (pushed, or read from Loki) as a batch of
/// `<RFC 3339 time> <line>` lines with the stream's labels; a line with
/// newlines of its own becomes one line (they turn into spaces).
pub fn labelled_batch(source: &'static str, pushed: Pushed) -> Batch {
    let mut labels = pushed.labels;
    let node = ["node_name", "nodename", "host"]
        .iter()
        .find_map(|k| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
    if let Some(node) = node
        && !labels.iter().any(|(n, _)| n == "node")
    {
        labels.push(("node".into(), node));
    }
    let origin = format!(
        "{source}{{{}}}",
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut lines = Vec::new();
    for (ts, line) in pushed.entries {
        let when = jiff::Timestamp::from_nanosecond(i128::from(ts))
            .map(|t| format!("{t:.9}"))
            .unwrap_or_default();
        lines.extend_from_slice(when.as_bytes());
        lines.push(b' ');
        lines.extend(
            line.trim_end_matches(['\n', '\r'])
                .bytes()
                .map(|b| if b == b'\n' { b' ' } else { b }),
        );
        lines.push(b'\n');
    }
    Batch {
        stream: Arc::new(Stream {
            source,
            origin,
            path: None,
            labels,
        }),
        lines,
        checkpoint: None,
        truncated: false,
        late: 0,
    }
}

/// Decodes a snappy-compressed protobuf `PushRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<Pushed>, String> {
    let length = snap::raw::decompress_len(body)
        .map_err(|err| format!("the body is not snappy-compressed: {err}"))?;
    if length > MAX_DECODED {
        return Err(format!(
            "the body decompresses to {length} bytes, more than the {MAX_DECODED} allowed"
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|err| format!("the body is not snappy-compressed: {err}"))?;
    let request = <PushRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|err| format!("the body is not a protobuf PushRequest: {err}"))?;
    request
        .streams
        .into_iter()
        .map(|stream| {
            Ok(Pushed {
                labels: parse_labels(&stream.labels)?,
                entries: stream
                    .entries
                    .into_iter()
                    .map(|e| {
                        let ts = e.timestamp.unwrap_or_default();
                        (
                            ts.seconds
                                .saturating_mul(1_000_000_000)
                                .saturating_add(i64::from(ts.nanos)),
                            e.line,
                        )
                    })
                    .collect(),
            })
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(serde::Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    values: Vec<Vec<serde_json::Value>>,
}

/// Decodes a JSON push body (gzip-compressed when `gzip`).
pub fn decode_json(body: &[u8], gzip: bool) -> Result<Vec<Pushed>, String> {
    let mut inflated = Vec::new();
    let body = if gzip {
        flate2::read::GzDecoder::new(body)
            .take(MAX_DECODED as u64 + 1)
            .read_to_end(&mut inflated)
            .map_err(|err| format!("the body is not gzip-compressed: {err}"))?;
        if inflated.len() > MAX_DECODED {
            return Err(format!(
                "the body decompresses to more than the {MAX_DECODED} bytes allowed"
            ));
        }
        &inflated[..]
    } else {
        body
    };
    let push: JsonPush = serde_json::from_slice(body)
        .map_err(|err| format!("the body is not a JSON push: {err}"))?;
    push.streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            let entries = stream
                .values
                .into_iter()
                .enumerate()
                .map(|(j, value)| {
                    let at = format!("streams[{i}].values[{j}]");
                    let (Some(ts), Some(line)) = (value.first(), value.get(1)) else {
                        return Err(format!("{at}: expected [\"<ns>\", \"line\"]"));
                    };
                    let ts = ts
                        .as_str()
                        .ok_or_else(|| {
                            format!("{at}: the timestamp must be a string of nanoseconds")
                        })?
                        .parse::<i64>()
                        .map_err(|err| {
                            format!("{at}: the timestamp is not a number of nanoseconds: {err}")
                        })?;
                    let line = line
                        .as_str()
                        .ok_or_else(|| format!("{at}: the line must be a string"))?;
                    if value.len() > 3 {
                        return Err(format!("{at}: expected 2 or 3 elements"));
                    }
                    Ok((ts, line.to_string()))
                })
                .collect::<Result<_, String>>()?;
            Ok(Pushed {
                labels: stream.stream.into_iter().collect(),
                entries,
            })
        })
        .collect()
}

/// Parses Prometheus-style labels: `{a="x", b="y \"quoted\""}`.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let bad = |why: &str| format!("labels {text:?}: {why}");
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| bad("not in braces"))?;
    let mut labels = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| bad("a label without ="))?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad("a label name that is not [a-zA-Z0-9_]+"));
        }
        let mut chars = after.trim_start().char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(bad("a value that is not quoted"));
        }
        let mut value = String::new();
        let mut end = None;
        let quoted = after.trim_start();
        let mut escaped = false;
        for (i, c) in chars {
            match (escaped, c) {
                (true, 'n') => value.push('\n'),
                (true, c) => value.push(c),
                (false, '\\') => {
                    escaped = true;
                    continue;
                }
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                (false, c) => value.push(c),
            }
            escaped = false;
        }
        let end = end.ok_or_else(|| bad("an unterminated value"))?;
        labels.push((name.to_string(), value));
        rest = quoted[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(labels)
}

#[cfg(test)]
mod tests;
