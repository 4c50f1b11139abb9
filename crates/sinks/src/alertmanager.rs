//! Prometheus Alertmanager, API v2: `POST /api/v2/alerts`.
//!
//! Every incident that has fired is one alert. Its labels say what broke
//! and where: `alertname` (one per kind of failure, see [`alertname`]),
//! `severity`, `faultline_key`, and as they apply `namespace`, `pvc`,
//! `pod`, `node`, `cnpg_cluster`, `signature`. Annotations carry the
//! summary, a description, the remediation, a runbook URL and a few
//! evidence lines. `startsAt` is when the incident was first seen.
//!
//! Alertmanager forgets an alert whose `endsAt` passes, so a firing alert
//! is sent again every resend interval with `endsAt` four intervals ahead;
//! a resolved one is sent once more with `endsAt` = when it resolved. The
//! same labels are the same alert, so resending never pages twice.
//!
//! Delivery never blocks the matcher: alerts wait in a bounded queue per
//! Alertmanager (one task each, so an HA pair both get every alert); a
//! full queue drops the oldest update and counts it; failed sends are
//! retried with jittered backoff.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use faultline_core::{Backoff, Class};
use faultline_correlate::{Report, State, Subject};
use serde::Serialize;
use std::sync::Mutex;

use tokio::sync::Notify;

/// Alerts waiting per Alertmanager before the oldest are dropped.
pub const QUEUE: usize = 1024;

/// Evidence lines put in an alert.
const EVIDENCE_LINES: usize = 3;

/// One alert as Alertmanager's API v2 takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(
        rename = "generatorURL",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub generator_url: String,
}

/// The `alertname` of an incident: its headline class's (a PVC that is
/// read-only *and* whose PGDATA is empty is named for the worse). A
/// CloudNativePG rollup is `FaultlinePostgresCluster`.
pub fn alertname(report: &Report) -> &'static str {
    if matches!(report.incident.subject, Subject::Cnpg { .. }) {
        return "FaultlinePostgresCluster";
    }
    report
        .incident
        .headline_class()
        .map_or("FaultlineFailure", Class::alert_name)
}

fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

/// How alerts are written.
#[derive(Clone, Debug)]
pub struct AlertOptions {
    /// How often firing alerts are sent again.
    pub resend: Duration,
    /// Base of `runbook_url` (the alertname is appended), if any.
    pub runbook_base: Option<String>,
}

/// The alert for `report` at time `now` (UTC ns).
pub fn alert(report: &Report, now: i64, options: &AlertOptions) -> Alert {
    let incident = &report.incident;
    let mut labels = BTreeMap::new();
    let name = alertname(report);
    labels.insert("alertname".to_string(), name.to_string());
    labels.insert(
        "severity".to_string(),
        incident.severity.as_str().to_string(),
    );
    labels.insert("faultline_key".to_string(), report.key.clone());
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            labels.insert(k.to_string(), v.to_string());
        }
    };
    match &incident.subject {
        Subject::Pvc {
            namespace,
            name,
            pod,
            node,
            cnpg,
            ..
        } => {
            put("namespace", namespace);
            put("pvc", name);
            put("pod", pod);
            put("node", node.as_deref().unwrap_or_default());
            put("cnpg_cluster", cnpg.as_deref().unwrap_or_default());
        }
        Subject::Node { name } => put("node", name),
        Subject::Workload { namespace, pod, .. } => {
            put("namespace", namespace);
            put("pod", pod);
        }
        Subject::Cnpg { namespace, cluster } => {
            put("namespace", namespace);
            put("cnpg_cluster", cluster);
        }
        Subject::Pod { namespace, name } => {
            put("namespace", namespace);
            put("pod", name);
        }
        Subject::Pipeline { .. } | Subject::Stream { .. } | Subject::Unknown { .. } => {}
    }
    // The signature seen most.
    if let Some((signature, _)) = incident.signatures.iter().max_by_key(|(_, n)| **n) {
        labels.insert("signature".to_string(), signature.clone());
    }
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), report.summary.clone());
    annotations.insert(
        "description".to_string(),
        format!(
            "{} hits since {}; related: {}",
            incident.hits,
            rfc3339(incident.first_seen),
            if incident.related.is_empty() {
                "none".to_string()
            } else {
                incident
                    .related
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    );
    annotations.insert("remediation".to_string(), report.remediation.clone());
    if let Some(base) = &options.runbook_base {
        annotations.insert(
            "runbook_url".to_string(),
            format!("{}/{name}", base.trim_end_matches('/')),
        );
    }
    let evidence: Vec<&str> = incident
        .evidence()
        .take(EVIDENCE_LINES)
        .map(String::as_str)
        .collect();
    annotations.insert("evidence".to_string(), evidence.join("\n"));
    let ends_at = match (incident.state, incident.resolved_at) {
        (State::Resolved, Some(at)) => at.min(now),
        _ => {
            now.saturating_add(4 * i64::try_from(options.resend.as_nanos()).unwrap_or(i64::MAX / 8))
        }
    };
    Alert {
        labels,
        annotations,
        starts_at: rfc3339(incident.first_seen),
        ends_at: rfc3339(ends_at),
        generator_url: String::new(),
    }
}

/// Counters of one Alertmanager's deliveries.
#[derive(Debug, Default)]
pub struct Counters {
    /// Alerts delivered.
    pub sent: AtomicU64,
    /// Requests that failed (each is retried).
    pub failures: AtomicU64,
    /// Alerts dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// The queue of alerts for one Alertmanager, and its delivery task.
#[derive(Clone, Debug)]
pub struct Sender {
    queue: Arc<Mutex<VecDeque<Alert>>>,
    ready: Arc<Notify>,
    /// How delivery is going.
    pub counters: Arc<Counters>,
}

impl Sender {
    /// Starts delivering to `target`.
    pub fn start(target: Target) -> Sender {
        let sender = Sender {
            queue: Arc::new(Mutex::new(VecDeque::new())),
            ready: Arc::new(Notify::new()),
            counters: Arc::new(Counters::default()),
        };
        let worker = sender.clone();
        tokio::spawn(async move { worker.deliver(target).await });
        sender
    }

    /// Queues `alerts`; never waits. A full queue drops its oldest alerts.
    pub fn queue(&self, alerts: impl IntoIterator<Item = Alert>) {
        let mut queue = self.queue.lock().expect("no panic while queueing");
        for alert in alerts {
            if queue.len() == QUEUE {
                queue.pop_front();
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            queue.push_back(alert);
        }
        drop(queue);
        self.ready.notify_one();
    }

    /// How many alerts wait.
    pub fn waiting(&self) -> usize {
        self.queue.lock().expect("no panic while queueing").len()
    }

    async fn deliver(self, target: Target) {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
        {
            Ok(client) => client,
            Err(_) => return,
        };
        let mut backoff = Backoff::new();
        loop {
            let batch: Vec<Alert> = {
                let queue = self.queue.lock().expect("no panic while queueing");
                queue.iter().take(64).cloned().collect()
            };
            if batch.is_empty() {
                self.ready.notified().await;
                continue;
            }
            let sent = target
                .request(&client, &batch)
                .send()
                .await
                .map(|r| r.status().is_success());
            if matches!(sent, Ok(true)) {
                backoff.reset();
                let mut queue = self.queue.lock().expect("no panic while queueing");
                // Those sent are at the front, unless dropped meanwhile.
                for alert in &batch {
                    if queue.front() == Some(alert) {
                        queue.pop_front();
                    }
                }
                self.counters
                    .sent
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            } else {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff.next_wait()).await;
            }
        }
    }
}

/// Where alerts are delivered.
#[derive(Clone, Debug)]
pub enum Target {
    /// An Alertmanager, by its base URL: `POST /api/v2/alerts`.
    Alertmanager(String),
    /// A webhook receiving Alertmanager's webhook payload.
    Webhook(crate::webhook::Webhook),
}

impl Target {
    /// The URL alerts go to.
    pub fn url(&self) -> &str {
        match self {
            Target::Alertmanager(url) => url,
            Target::Webhook(hook) => &hook.url,
        }
    }

    /// The target as a metric label: its URL's scheme, host and port only,
    /// so that credentials (`user:pass@`) and tokens in the path or query
    /// never reach `/metrics`.
    pub fn label(&self) -> String {
        match reqwest::Url::parse(self.url()) {
            Ok(url) => {
                let host = url.host_str().unwrap_or_default();
                match url.port() {
                    Some(port) => format!("{}://{host}:{port}", url.scheme()),
                    None => format!("{}://{host}", url.scheme()),
                }
            }
            Err(_) => "unparsable-url".to_string(),
        }
    }

    fn request(&self, client: &reqwest::Client, batch: &[Alert]) -> reqwest::RequestBuilder {
        match self {
            Target::Alertmanager(url) => client
                .post(format!("{}/api/v2/alerts", url.trim_end_matches('/')))
                .json(batch),
            Target::Webhook(hook) => hook.request(client, batch),
        }
    }
}

/// Alerts for every Alertmanager: what has fired is sent when it changes
/// and resent while it fires.
///
/// With a state directory, the firing alerts (as last sent, and when each
/// resolves unless its failure goes on) are saved there on every change
/// and resend. After a restart they are sent on unchanged — the same
/// labels are the same alert, so nobody is paged twice — until the
/// correlator reports the incident again (the failure goes on) or its
/// time to resolve passes, when it is resolved: a restart never leaves an
/// alert firing forever.
#[derive(Debug)]
pub struct Alerting {
    /// Each target as a metric label, in the senders' order.
    target_labels: Vec<String>,
    senders: Vec<Sender>,
    options: AlertOptions,
    /// Firing incidents by key: resent every interval.
    firing: BTreeMap<String, Report>,
    /// Alerts still firing when faultline last stopped, by key.
    restored: BTreeMap<String, Saved>,
    /// The labels each incident was first sent with: kept for its whole
    /// life, since other labels would make Alertmanager see a new alert
    /// (what the incident is named for may grow as it is learnt).
    labels: BTreeMap<String, BTreeMap<String, String>>,
    state_dir: Option<std::path::PathBuf>,
}

/// A firing alert as saved in the state directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Saved {
    pub alert: Alert,
    /// When it resolves unless its failure goes on (UTC ns).
    pub resolves_at: i64,
}

/// File name of the saved alerts in the state directory.
pub const STATE_FILE: &str = "alerts.json";

impl Alerting {
    /// Alerting to every one of `targets` (each gets every alert).
    pub fn new(targets: &[Target], options: AlertOptions) -> Alerting {
        Alerting {
            target_labels: targets.iter().map(Target::label).collect(),
            senders: targets.iter().cloned().map(Sender::start).collect(),
            options,
            firing: BTreeMap::new(),
            restored: BTreeMap::new(),
            labels: BTreeMap::new(),
            state_dir: None,
        }
    }

    /// The alert for `report`, with the labels it was first sent with.
    fn alert_for(&mut self, report: &Report, now: i64) -> Alert {
        let mut alert = alert(report, now, &self.options);
        alert.labels = self
            .labels
            .entry(report.key.clone())
            .or_insert(alert.labels)
            .clone();
        alert
    }

    /// Saves firing alerts in `dir`, and takes up those saved there by the
    /// previous run. A file that cannot be understood is moved aside (the
    /// warning to print comes back) and no alert is taken up; one that
    /// cannot be read is an error naming it.
    pub fn with_state(
        mut self,
        dir: &std::path::Path,
    ) -> std::io::Result<(Alerting, Option<String>)> {
        let (restored, warning) =
            faultline_state::load(dir, STATE_FILE, faultline_state::now_secs())?.into_parts();
        self.restored = restored.unwrap_or_default();
        self.state_dir = Some(dir.to_path_buf());
        Ok((self, warning))
    }

    /// Saves the firing alerts, atomically and durably.
    fn save(&self, now: i64) -> std::io::Result<()> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        let mut saved = self.restored.clone();
        for (key, report) in &self.firing {
            let mut alert = alert(report, now, &self.options);
            if let Some(labels) = self.labels.get(key) {
                alert.labels = labels.clone();
            }
            saved.insert(
                key.clone(),
                Saved {
                    alert,
                    resolves_at: report.incident.resolves_at().unwrap_or(now),
                },
            );
        }
        faultline_state::save(dir, STATE_FILE, &saved)
    }

    /// The senders, for their counters.
    pub fn senders(&self) -> &[Sender] {
        &self.senders
    }

    /// The targets as metric labels ([`Target::label`]), in the senders'
    /// order.
    pub fn target_labels(&self) -> &[String] {
        &self.target_labels
    }

    /// Incidents that changed at `now`: fired ones are sent and kept for
    /// resending; resolved ones are sent once with their end. Says why the
    /// state could not be saved, if it could not.
    pub fn changed(&mut self, reports: &[Report], now: i64) -> std::io::Result<()> {
        let mut alerts = Vec::new();
        for report in reports {
            if report.incident.fired_at.is_none() {
                continue;
            }
            // Reported again: the live incident takes over, under the
            // labels it was paged with.
            if let Some(saved) = self.restored.remove(&report.key) {
                self.labels.insert(report.key.clone(), saved.alert.labels);
            }
            alerts.push(self.alert_for(report, now));
            if report.incident.state == State::Firing {
                self.firing.insert(report.key.clone(), report.clone());
            } else {
                self.firing.remove(&report.key);
                self.labels.remove(&report.key);
            }
        }
        self.send(alerts);
        if reports.is_empty() {
            Ok(())
        } else {
            self.save(now)
        }
    }

    /// Sends every firing alert again at wall-clock `now` (call every
    /// resend interval); a restored alert whose time has come by the event
    /// clock `clock` is resolved instead — so one the logs still being
    /// caught up may yet extend is not resolved early.
    pub fn resend(&mut self, now: i64, clock: i64) -> std::io::Result<()> {
        let firing: Vec<Report> = self.firing.values().cloned().collect();
        let mut alerts: Vec<Alert> = firing
            .iter()
            .map(|report| self.alert_for(report, now))
            .collect();
        let resend = self.options.resend;
        self.restored.retain(|_, saved| {
            let mut alert = saved.alert.clone();
            let resolved = clock >= saved.resolves_at;
            let ends_at = if resolved {
                saved.resolves_at
            } else {
                now.saturating_add(4 * i64::try_from(resend.as_nanos()).unwrap_or(i64::MAX / 8))
            };
            alert.ends_at = rfc3339(ends_at);
            alerts.push(alert);
            !resolved
        });
        self.send(alerts);
        self.save(now)
    }

    fn send(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        for sender in &self.senders {
            sender.queue(alerts.iter().cloned());
        }
    }
}

#[cfg(test)]
mod tests;
