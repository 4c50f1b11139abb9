//! faultline's own metrics and health, served on `--listen`:
//! `/metrics` (Prometheus text format), `/healthz` (the process answers)
//! and `/readyz` (it is processing its sources).
//!
//! Label values are kinds of things only — a source kind, a signature id,
//! an incident kind and severity, an Alertmanager URL — never log text,
//! pod names or UIDs, so the number of series stays small.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::sync::watch;

/// Every metric faultline exports.
pub struct Metrics {
    registry: Registry,
    /// Lines read, by source kind.
    pub lines: IntCounterVec,
    /// Bytes read, by source kind.
    pub bytes: IntCounterVec,
    /// Lines cut at the line-length cap.
    pub truncated: IntCounter,
    /// Entries that came later than the source's window of lateness, by
    /// source kind (passed on all the same).
    pub late: IntCounterVec,
    /// Records a source lost before faultline could read them (the kernel
    /// overwrote them in its ring buffer).
    pub lost_records: IntCounterVec,
    /// Streams let go to keep their number bounded.
    pub streams_evicted: IntCounter,
    /// Incidents let go to keep their number bounded.
    pub incidents_evicted: IntCounter,
    /// Files matching --files not followed for --max-files.
    pub files_unfollowed: IntGauge,
    /// Hits, by signature.
    pub hits: IntCounterVec,
    /// Incidents firing now, by kind (`pvc`, `node`, …), headline class
    /// and severity.
    pub incidents_firing: IntGaugeVec,
    /// 1 while a source answers, 0 while it does not (Loki).
    pub source_healthy: IntGaugeVec,
    /// Alerts delivered, failed requests and dropped alerts, by
    /// Alertmanager.
    pub alerts_sent: IntCounterVec,
    pub alert_failures: IntCounterVec,
    pub alerts_dropped: IntCounterVec,
    /// Alerts waiting, by Alertmanager.
    pub alert_queue: IntGaugeVec,
    /// Batches of lines waiting to be matched.
    pub batches_waiting: IntGaugeVec,
    /// How far behind the wall clock a source's newest entry is (Loki).
    pub source_lag: IntGaugeVec,
    /// How far behind the wall clock the event clock is: how long a hit
    /// waits before it is correlated.
    pub event_clock_lag: IntGauge,
    /// 1 while pod logs come from the Kubernetes API because Loki is
    /// unhealthy.
    pub fallback_active: IntGauge,
    /// Containers whose logs are read from the Kubernetes API, by state
    /// (`following`, `waiting` for a turn).
    pub log_streams: IntGaugeVec,
    /// SIGHUP reloads, by result (`success`, `failure`).
    pub reloads: IntCounterVec,
    /// Input that could not be decoded as it should, by source kind and
    /// reason (`invalid-utf8` lines, which are matched with the bad bytes
    /// replaced; `malformed-push` bodies, refused with 400).
    pub decode_errors: IntCounterVec,
}

impl Metrics {
    /// All metrics, registered.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("a valid metric definition");
            registry
                .register(Box::new(metric.clone()))
                .expect("each metric is registered once");
            metric
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let metric =
                IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric definition");
            registry
                .register(Box::new(metric.clone()))
                .expect("each metric is registered once");
            metric
        };
        let single = |name: &str, help: &str| {
            let metric = IntCounter::new(name, help).expect("a valid metric definition");
            registry
                .register(Box::new(metric.clone()))
                .expect("each metric is registered once");
            metric
        };
        let single_gauge = |name: &str, help: &str| {
            let metric = IntGauge::new(name, help).expect("a valid metric definition");
            registry
                .register(Box::new(metric.clone()))
                .expect("each metric is registered once");
            metric
        };
        let event_clock_lag = single_gauge(
            "faultline_event_clock_lag_seconds",
            "How far behind the wall clock the event clock (the lowest watermark of the sources) is: how long hits wait before they are correlated.",
        );
        let fallback_active = single_gauge(
            "faultline_fallback_active",
            "1 while pod logs are read from the Kubernetes API because Loki is unhealthy.",
        );
        let incidents_evicted = single(
            "faultline_incidents_evicted_total",
            "Incidents let go (quiet ones seen longest ago first) to keep their number bounded.",
        );
        let files_unfollowed = single_gauge(
            "faultline_files_unfollowed",
            "Files matching --files not followed because --max-files are already followed.",
        );
        let truncated = single(
            "faultline_lines_truncated_total",
            "Lines longer than 4 MiB, cut there.",
        );
        let streams_evicted = single(
            "faultline_streams_evicted_total",
            "Streams let go (least recently active first) to keep their number bounded.",
        );
        Metrics {
            lines: counter("faultline_lines_total", "Lines read.", &["source"]),
            bytes: counter("faultline_bytes_total", "Bytes read.", &["source"]),
            truncated,
            late: counter(
                "faultline_late_entries_total",
                "Entries that came later than the window of lateness (--loki-late) and were read all the same.",
                &["source"],
            ),
            lost_records: counter(
                "faultline_lost_records_total",
                "Records lost before they could be read: kernel records overwritten in the ring buffer (kmsg).",
                &["source"],
            ),
            streams_evicted,
            incidents_evicted,
            files_unfollowed,
            hits: counter(
                "faultline_hits_total",
                "Lines that matched a signature.",
                &["signature"],
            ),
            incidents_firing: gauge(
                "faultline_incidents_firing",
                "Incidents firing now, by kind of thing, the class they are known by, and severity.",
                &["kind", "class", "severity"],
            ),
            source_healthy: gauge(
                "faultline_source_healthy",
                "1 while the source answers, 0 while it does not.",
                &["source"],
            ),
            alerts_sent: counter(
                "faultline_alerts_sent_total",
                "Alerts delivered to Alertmanager.",
                &["alertmanager"],
            ),
            alert_failures: counter(
                "faultline_alert_send_failures_total",
                "Requests to Alertmanager that failed (each is retried).",
                &["alertmanager"],
            ),
            alerts_dropped: counter(
                "faultline_alerts_dropped_total",
                "Alerts dropped because the queue to Alertmanager was full.",
                &["alertmanager"],
            ),
            alert_queue: gauge(
                "faultline_alert_queue_depth",
                "Alerts waiting to be delivered.",
                &["alertmanager"],
            ),
            batches_waiting: gauge(
                "faultline_queue_depth",
                "Items waiting in a queue.",
                &["queue"],
            ),
            source_lag: gauge(
                "faultline_source_lag_seconds",
                "How far behind the wall clock the newest entry read from the source is.",
                &["source"],
            ),
            event_clock_lag,
            fallback_active,
            decode_errors: counter(
                "faultline_decode_errors_total",
                "Input that could not be decoded as it should, by source and reason.",
                &["source", "reason"],
            ),
            reloads: counter(
                "faultline_config_reloads_total",
                "Reloads of the config and signatures on SIGHUP, by result.",
                &["result"],
            ),
            log_streams: gauge(
                "faultline_kubernetes_log_streams",
                "Containers whose logs are read from the Kubernetes API, following or waiting for a turn.",
                &["state"],
            ),
            registry,
        }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("the text encoder writes to memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `stop`
/// turns true; `/readyz` answers 200 once `ready` is set.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        std::io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}"))
    })?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.load(Ordering::Relaxed);
                async move {
                    if ready {
                        (StatusCode::OK, "ready").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
                    }
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(faultline_sources::stopped(stop))
        .await
}
