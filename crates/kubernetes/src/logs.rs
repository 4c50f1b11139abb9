//! Reading one container's log from the API: the dead run once, then the
//! live one, followed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use faultline_core::Backoff;
use faultline_sources::overlap::{ContainerKey, Marks};
use faultline_sources::push::{Pushed, labelled_batch};
use faultline_sources::{Batch, MAX_LINE};
use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use tokio::sync::mpsc;

use crate::Stats;

/// Entries sent in one batch at most.
const BATCH: usize = 512;

/// One container to read.
pub(crate) struct Container {
    pub api: kube::Api<Pod>,
    pub key: ContainerKey,
    /// The stream's labels (namespace, pod, container, node…).
    pub labels: Vec<(String, String)>,
    /// Where to start when the marks know nothing of it (UTC ns).
    pub since_ns: i64,
    /// Read the log of its last dead run first.
    pub previous: bool,
}

/// Where the lines go.
pub(crate) struct Sink {
    pub batches: mpsc::Sender<Batch>,
    pub errors: mpsc::Sender<String>,
    pub marks: Marks,
    pub stats: Arc<Stats>,
}

/// Counts a container as followed while it lives.
struct Following(Arc<Stats>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.following.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads `container` — its dead run, then its live run, reconnecting with
/// backoff whenever the follow ends — until the task is aborted or the
/// batches are no longer wanted. Waits for a `turn` first.
pub(crate) async fn read(container: Container, sink: Sink, turns: Arc<tokio::sync::Semaphore>) {
    sink.stats.waiting.fetch_add(1, Ordering::Relaxed);
    let turn = turns.acquire_owned().await;
    sink.stats.waiting.fetch_sub(1, Ordering::Relaxed);
    let Ok(_turn) = turn else { return };
    sink.stats.following.fetch_add(1, Ordering::Relaxed);
    let _following = Following(sink.stats.clone());
    let (namespace, pod, name) = &container.key;
    let what = format!("kubernetes: the log of {namespace}/{pod}/{name}");
    if container.previous {
        match request(&container, &sink, true).await {
            Err(Stop) => return,
            Ok(Ok(_)) => {
                sink.stats.previous_read.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(err)) => {
                let _ = sink
                    .errors
                    .send(format!("{what} before its restart: {err}"))
                    .await;
            }
        }
    }
    let mut backoff = Backoff::new();
    let mut failing = false;
    loop {
        match request(&container, &sink, false).await {
            Err(Stop) => return,
            Ok(Ok(0)) => {}
            Ok(Ok(_)) => {
                backoff.reset();
                failing = false;
            }
            Ok(Err(err)) => {
                if !failing {
                    failing = true;
                    let _ = sink.errors.send(format!("{what}: {err}")).await;
                }
            }
        }
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

/// The batches are no longer wanted.
struct Stop;

/// One request for the log (`previous`: of the dead run, else followed),
/// from the container's mark or `since_ns`: the entries it brought, or
/// why it failed.
async fn request(
    container: &Container,
    sink: &Sink,
    previous: bool,
) -> Result<Result<usize, String>, Stop> {
    let from = sink
        .marks
        .resume_from(&container.key)
        .unwrap_or(container.since_ns);
    // sinceTime counts in whole seconds: start at the second before.
    let since = jiff::Timestamp::from_second(from.div_euclid(1_000_000_000)).ok();
    let params = LogParams {
        container: Some(container.key.2.clone()),
        follow: !previous,
        previous,
        timestamps: true,
        since_time: since,
        ..LogParams::default()
    };
    let reader = match container.api.log_stream(&container.key.1, &params).await {
        Ok(reader) => reader,
        Err(err) => return Ok(Err(describe(&err))),
    };
    let lines = futures_util::stream::unfold(Box::pin(reader), |mut reader| async move {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(line), reader)),
            Err(err) => Some((Err(err), reader)),
        }
    });
    let mut chunks = std::pin::pin!(lines.ready_chunks(BATCH));
    let mut passed = 0;
    while let Some(chunk) = chunks.next().await {
        // Room first, then the marks: a task aborted while it waits for
        // room has marked nothing it did not pass on.
        let Ok(permit) = sink.batches.reserve().await else {
            return Err(Stop);
        };
        let mut entries = Vec::with_capacity(chunk.len());
        let mut failed = None;
        for line in chunk {
            match line {
                Ok(line) => {
                    if let Some((ts, text)) = entry(&line)
                        && sink.marks.admit(&container.key, ts, &text)
                    {
                        entries.push((ts, text));
                    }
                }
                Err(err) => failed = Some(err.to_string()),
            }
        }
        passed += entries.len();
        if !entries.is_empty() {
            let pushed = Pushed {
                labels: container.labels.clone(),
                entries,
            };
            permit.send(labelled_batch(crate::SOURCE, pushed));
        }
        if let Some(err) = failed {
            return Ok(Err(err));
        }
    }
    Ok(Ok(passed))
}

/// `<RFC 3339 time> <text>` as (UTC ns, text); invalid UTF-8 is replaced,
/// an overlong line cut at [`MAX_LINE`].
pub fn entry(line: &[u8]) -> Option<(i64, String)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let split = line.iter().position(|&b| b == b' ')?;
    let ts = crate::nanos(std::str::from_utf8(&line[..split]).ok()?)?;
    let text = &line[split + 1..];
    let text = &text[..text.len().min(MAX_LINE)];
    Some((ts, String::from_utf8_lossy(text).into_owned()))
}

/// An API error in words: the API server's message when it sent one.
pub(crate) fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!("HTTP {}: {}", status.code, status.message),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamped_lines_become_entries() {
        assert_eq!(
            entry(b"2026-02-28T10:00:00.5Z FATAL:  could not write\n"),
            Some((
                1_772_272_800_500_000_000,
                "FATAL:  could not write".to_string()
            ))
        );
        assert_eq!(
            entry(b"2026-02-28T10:00:00Z bad \xff byte\r\n").map(|e| e.1),
            Some("bad \u{fffd} byte".to_string())
        );
        assert_eq!(entry(b"no timestamp here\n"), None);
    }
}
