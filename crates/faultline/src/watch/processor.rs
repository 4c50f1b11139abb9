//! The heart of `watch`: matching batches, correlating their hits,
//! printing hits and incident changes, and sending the changes on.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use faultline_correlate::Correlator;
use faultline_formats::{Decoder, Format, path_labels};
use faultline_kubernetes::InventoryChange;
use faultline_matcher::{Matcher, Scratch};
use faultline_sinks::alertmanager::Alerting;
use faultline_sources::loki::Health;
use faultline_sources::{Batch, Checkpoints};

use super::held::Held;
use super::{WatchFormat, metrics};
use crate::facts::Facts;
use crate::replay::output::RecordWriter;
use crate::replay::silence::{self, SilenceRule};
use crate::stream::{self, LineStream};

/// Streams kept at once by default (`--max-streams`); beyond, the
/// hundredth least recently active are let go (counted in
/// `faultline_streams_evicted_total`): a stream that comes back starts
/// afresh.
pub(super) const MAX_STREAMS: usize = 100_000;

/// One stream being watched: how its lines are read and matched.
pub(super) struct Watched {
    /// When it last sent lines (the clock).
    active: i64,
    decoder: Option<Decoder>,
    lines: LineStream,
    /// Its container run and iSCSI sessions, as replay collects them.
    facts: Facts,
    /// When `--silence` watches it: how long it may be quiet.
    quiet: Option<Quiet>,
}

/// A stream watched for silence.
struct Quiet {
    /// `stream/<name>`.
    name: String,
    limit_ns: i64,
    /// When it last sent lines (the clock).
    last: i64,
    /// Its silence incident is open.
    silent: bool,
}

impl Quiet {
    /// The silence watch `rules` give a stream with `labels`, starting at
    /// `now`, if any.
    fn of(
        rules: &[SilenceRule],
        labels: &faultline_formats::Labels,
        origin: &str,
        now: i64,
    ) -> Option<Quiet> {
        silence::limit_for(rules, labels).map(|limit_ns| Quiet {
            name: silence::stream_name(labels, origin),
            limit_ns,
            last: now,
            silent: false,
        })
    }
}

/// Matches batches, correlates their hits and prints hits and incident
/// changes.
pub(super) struct Processor<W: Write> {
    pub matcher: Arc<Matcher>,
    pub scratch: Scratch,
    pub correlator: Correlator,
    pub streams: HashMap<String, Watched>,
    /// Most streams kept (`--max-streams`, at least 1).
    pub max_streams: usize,
    /// Paint the text timeline.
    pub color: bool,
    pub format: WatchFormat,
    pub out: W,
    pub checkpoints: Checkpoints,
    pub metrics: Arc<metrics::Metrics>,
    /// Alert counters (sent, failures, dropped) as last exported, per
    /// Alertmanager.
    pub alert_counts: Vec<[u64; 3]>,
    pub silence: Vec<SilenceRule>,
    /// Labels every stream gets when it has none of that name (`--label`).
    pub extra_labels: faultline_formats::Labels,
    /// Where incidents are sent, if anywhere.
    pub alerting: Option<Alerting>,
    /// Incidents that changed since alerts were last sent: sent at the
    /// next tick, so lines that arrive together (an ext4 error and the
    /// read-only remount it causes) name the alert together.
    pub unsent: std::collections::BTreeSet<String>,
    /// Hits waiting for the event clock.
    pub held: Held,
    /// The event clock: hits up to it are correlated, and incidents fire
    /// and resolve on it (`i64::MIN` until the sources first say where
    /// they stand).
    pub clock: i64,
    /// The time the last hit was correlated at: a hit that comes later
    /// than the clock is correlated now, not back in time.
    pub observed_to: i64,
}

impl<W: Write> Processor<W> {
    /// Matches one batch seen at `now` and holds its hits (and the
    /// checkpoint it reaches) until the event clock passes them: see
    /// [`Processor::advance`]. A line's time is its own (a line from the
    /// future is taken as now), else the clock's at its arrival.
    pub(super) fn batch(&mut self, batch: &Batch, now: i64) -> io::Result<()> {
        let origin = &batch.stream.origin;
        if self.streams.len() >= self.max_streams && !self.streams.contains_key(origin) {
            let idle = faultline_correlate::least(
                self.streams.iter().map(|(k, w)| (w.active, k)),
                (self.max_streams / 100).max(1),
            );
            for key in idle {
                if let Some(watched) = self.streams.remove(&key) {
                    watched.facts.withdraw(self.correlator.inventory_mut());
                }
                self.metrics.streams_evicted.inc();
            }
        }
        let watched = self.streams.entry(origin.clone()).or_insert_with(|| {
            let mut labels = match batch.stream.path.as_deref() {
                Some(path) => path_labels(path),
                None => batch.stream.labels.iter().cloned().collect(),
            };
            for (name, value) in &self.extra_labels {
                labels.entry(name.clone()).or_insert_with(|| value.clone());
            }
            let quiet = Quiet::of(&self.silence, &labels, origin, now);
            Watched {
                active: now,
                facts: Facts::of(&labels, batch.stream.path.as_deref()),
                decoder: None,
                lines: LineStream::new(0, 0, origin.clone(), labels),
                quiet,
            }
        });
        watched.active = now;
        if let Some(quiet) = &mut watched.quiet {
            if quiet.silent {
                self.correlator.stream_resumed(&quiet.name, now);
                quiet.silent = false;
            }
            quiet.last = now;
        }
        let decoder = *watched.decoder.get_or_insert_with(|| {
            let (format, node_prefixed) =
                Format::detect_prefixed(batch.lines.split(|&b| b == b'\n').take(20));
            let year = jiff::Timestamp::now()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .year();
            Decoder {
                format,
                year,
                boot_ns: boot_time(),
                node_prefixed,
            }
        });
        let source = batch.stream.source;
        let lines = bytecount_lines(&batch.lines);
        self.metrics
            .lines
            .with_label_values(&[source])
            .inc_by(lines);
        self.metrics
            .bytes
            .with_label_values(&[source])
            .inc_by(batch.lines.len() as u64);
        if batch.truncated {
            self.metrics.truncated.inc();
        }
        if batch.late > 0 {
            self.metrics
                .late
                .with_label_values(&[source])
                .inc_by(batch.late as u64);
        }
        if std::str::from_utf8(&batch.lines).is_err() {
            let invalid = batch
                .lines
                .split(|&b| b == b'\n')
                .filter(|line| std::str::from_utf8(line).is_err())
                .count();
            self.metrics
                .decode_errors
                .with_label_values(&[source, "invalid-utf8"])
                .inc_by(invalid as u64);
        }
        let mut hits = Vec::new();
        watched.lines.scan_buffer(
            &self.matcher,
            &mut self.scratch,
            &decoder,
            &batch.lines,
            Some(now),
            &mut |hit| hits.push(hit),
        );
        watched.facts.buffer(&decoder, &batch.lines);
        watched.facts.apply(self.correlator.inventory_mut());
        let held = self.held.begin_batch();
        for hit in hits {
            self.metrics
                .hits
                .with_label_values(&[&self.matcher.signatures()[hit.signature].id])
                .inc();
            let at = hit.ts.unwrap_or(now).min(now);
            self.held.hold(held, at, hit);
        }
        if let Some(checkpoint) = &batch.checkpoint {
            self.held.checkpoint(held, checkpoint.clone());
        }
        // Memory is bounded: past the budget the oldest go at once.
        while self.held.over_budget()
            && let Some(oldest) = self.held.oldest()
        {
            self.advance(oldest)?;
        }
        self.record_settled();
        Ok(())
    }

    /// Moves the event clock to `clock` (never back): correlates the hits
    /// held up to it in time order, prints them and the incidents as they
    /// made them, lets incidents fire and resolve by the clock (and prints
    /// those changes), and records the checkpoints whose hits are all
    /// correlated.
    pub(super) fn advance(&mut self, clock: i64) -> io::Result<()> {
        self.clock = self.clock.max(clock);
        let records = RecordWriter::new(&self.matcher, self.color);
        while let Some((at, mut hit)) = self.held.pop_due(self.clock) {
            self.observed_to = self.observed_to.max(at);
            hit.entity = Some(stream::correlate(
                &mut self.correlator,
                &self.matcher,
                &hit,
                self.observed_to,
            ));
            match self.format {
                WatchFormat::Json => records.json(&mut self.out, &hit)?,
                WatchFormat::Text => records.text(&mut self.out, &hit)?,
            }
        }
        // What the hits made of the incidents, then what time did: a
        // backlog's incident that fired and is long over shows both.
        self.announce()?;
        if self.clock > i64::MIN {
            self.correlator.advance(self.clock);
        }
        self.record_settled();
        self.announce()
    }

    /// Records the checkpoints whose batches' hits are all correlated.
    fn record_settled(&mut self) {
        for checkpoint in self.held.settled() {
            self.checkpoints.record(checkpoint);
        }
    }

    /// At a stop: correlates every hit still held (the clock goes as far
    /// as the newest of them, or `clock`), sends what changed, and prints
    /// each incident still firing as it stands — its hits, story and fix
    /// have grown since it was announced.
    pub(super) fn finish(&mut self, clock: i64, now: i64) -> io::Result<()> {
        let newest = self.held.newest().unwrap_or(i64::MIN);
        // Late hits are due at once: the clock is past them.
        self.advance(clock.max(newest))?;
        self.send_changes(now);
        self.export();
        let firing: Vec<_> = self
            .correlator
            .reports()
            .into_iter()
            .filter(|r| r.incident.state == faultline_correlate::State::Firing)
            .collect();
        self.print_incidents(&firing)?;
        self.out.flush()
    }

    /// Lets time pass: the event clock to `clock` (the sources' lowest
    /// watermark) unless that is behind it, streams' silences by the wall
    /// clock `now`; incidents
    /// fire at the end of their `for` and resolve when quiet; changes are
    /// sent.
    pub(super) fn tick(&mut self, clock: i64, now: i64) -> io::Result<()> {
        // A watermark behind the clock is a source holding it (half-way
        // through what it read together, or catching up): nothing moves,
        // late hits included, until it has delivered.
        if clock >= self.clock {
            self.advance(clock)?;
        }
        self.metrics
            .event_clock_lag
            .set(now.saturating_sub(self.event_time(now)) / 1_000_000_000);
        self.metrics
            .batches_waiting
            .with_label_values(&["hits"])
            .set(i64::try_from(self.held.len()).unwrap_or(i64::MAX));
        self.send_changes(now);
        self.export();
        for quiet in self.streams.values_mut().filter_map(|w| w.quiet.as_mut()) {
            if !quiet.silent && now - quiet.last > quiet.limit_ns {
                self.correlator
                    .stream_silent(&quiet.name, quiet.last, quiet.limit_ns);
                quiet.silent = true;
            }
        }
        self.announce()
    }

    /// Updates the metrics that are states, not counts.
    pub(super) fn export(&mut self) {
        let evicted = &self.metrics.incidents_evicted;
        evicted.inc_by(self.correlator.evicted.saturating_sub(evicted.get()));
        self.metrics.incidents_firing.reset();
        for ((kind, class, severity), count) in self.correlator.firing() {
            self.metrics
                .incidents_firing
                .with_label_values(&[kind, class, severity.as_str()])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let Some(alerting) = &self.alerting else {
            return;
        };
        self.alert_counts.resize(alerting.senders().len(), [0; 3]);
        for ((sender, last), target) in alerting
            .senders()
            .iter()
            .zip(&mut self.alert_counts)
            .zip(alerting.target_labels())
        {
            let counters = &sender.counters;
            let now = [
                counters.sent.load(std::sync::atomic::Ordering::Relaxed),
                counters.failures.load(std::sync::atomic::Ordering::Relaxed),
                counters.dropped.load(std::sync::atomic::Ordering::Relaxed),
            ];
            for ((metric, was), is) in [
                &self.metrics.alerts_sent,
                &self.metrics.alert_failures,
                &self.metrics.alerts_dropped,
            ]
            .into_iter()
            .zip(last.iter_mut())
            .zip(now)
            {
                metric
                    .with_label_values(&[target])
                    .inc_by(is.saturating_sub(*was));
                *was = is;
            }
            self.metrics
                .alert_queue
                .with_label_values(&[target])
                .set(i64::try_from(sender.waiting()).unwrap_or(i64::MAX));
        }
    }

    /// The event clock, or `now` before it is set.
    fn event_time(&self, now: i64) -> i64 {
        if self.clock == i64::MIN {
            now
        } else {
            self.clock
        }
    }

    /// Loki's health changed at `now`: unhealthy is the `pipeline/loki`
    /// incident, healthy again resolves it.
    pub(super) fn loki_health(&mut self, health: &Health, now: i64) -> io::Result<()> {
        self.metrics
            .source_healthy
            .with_label_values(&["loki"])
            .set(i64::from(*health == Health::Healthy));
        match health {
            Health::Unhealthy(reason) => {
                eprintln!("faultline: Loki is unhealthy: {reason}");
                self.correlator
                    .source_unhealthy("loki", self.event_time(now), reason);
            }
            Health::Healthy => self.correlator.source_healthy("loki", self.event_time(now)),
        }
        self.announce()
    }

    /// Matches with `matcher`, fires by `rules` and watches for silence by
    /// `silence` from `now` on (a reload): streams, their positions and
    /// the incidents stay as they are.
    pub(super) fn reload(
        &mut self,
        matcher: Matcher,
        rules: &[faultline_core::Rule],
        silence: Vec<SilenceRule>,
        now: i64,
    ) -> io::Result<()> {
        self.scratch = matcher.scratch();
        self.matcher = Arc::new(matcher);
        self.correlator.set_rules(rules);
        self.silence = silence;
        for (origin, watched) in &mut self.streams {
            let limit = silence::limit_for(&self.silence, watched.lines.path_labels());
            match (&mut watched.quiet, limit) {
                (Some(quiet), Some(limit_ns)) => quiet.limit_ns = limit_ns,
                (Some(quiet), None) => {
                    if quiet.silent {
                        self.correlator.stream_resumed(&quiet.name, now);
                    }
                    watched.quiet = None;
                }
                (None, Some(_)) => {
                    watched.quiet =
                        Quiet::of(&self.silence, watched.lines.path_labels(), origin, now);
                }
                (None, None) => {}
            }
        }
        self.announce()
    }

    /// Applies a change of the cluster's objects to the inventory.
    pub(super) fn inventory(&mut self, change: InventoryChange) {
        let inventory = self.correlator.inventory_mut();
        match change {
            InventoryChange::Applied(json) => {
                if let Err(err) = inventory.add_json(&json) {
                    eprintln!("faultline: kubernetes: an object not understood: {err}");
                }
            }
            InventoryChange::Deleted {
                kind,
                namespace,
                name,
            } => inventory.remove(kind, &namespace, &name),
        }
    }

    /// Prints `reports` in the output format.
    fn print_incidents(&mut self, reports: &[faultline_correlate::Report]) -> io::Result<()> {
        let records = RecordWriter::new(&self.matcher, self.color);
        for report in reports {
            match self.format {
                WatchFormat::Json => records.incident_json(&mut self.out, report)?,
                WatchFormat::Text => records.incident_text(&mut self.out, report)?,
            }
        }
        Ok(())
    }

    /// Prints the incidents that changed, and marks them to be sent.
    fn announce(&mut self) -> io::Result<()> {
        let changed = self.correlator.changes();
        self.print_incidents(&changed)?;
        if self.alerting.is_some() {
            self.unsent.extend(changed.into_iter().map(|r| r.key));
        }
        self.out.flush()
    }

    /// Sends the incidents that changed since the last call, as they are
    /// now.
    fn send_changes(&mut self, now: i64) {
        let Some(alerting) = &mut self.alerting else {
            return;
        };
        if self.unsent.is_empty() {
            return;
        }
        let reports = self.correlator.reports_of(&self.unsent);
        self.unsent.clear();
        if let Err(err) = alerting.changed(&reports, now) {
            eprintln!("faultline: saving alert state: {err}");
        }
    }

    /// Sends the firing alerts again; alerts taken up from the last run
    /// resolve by the event clock.
    pub(super) fn resend(&mut self, now: i64) {
        if let Some(alerting) = &mut self.alerting
            && let Err(err) = alerting.resend(now, self.clock)
        {
            eprintln!("faultline: saving alert state: {err}");
        }
    }

    /// Saves the checkpoints to `dir`, if there is one.
    pub(super) fn save(&self, dir: Option<&std::path::Path>) -> Result<()> {
        if let Some(dir) = dir {
            self.checkpoints
                .save(dir)
                .with_context(|| format!("saving checkpoints in {}", dir.display()))?;
        }
        Ok(())
    }
}

fn bytecount_lines(bytes: &[u8]) -> u64 {
    bytecount::count(bytes, b'\n') as u64
}

/// When this machine booted (UTC ns), for kernel times counted from boot:
/// now minus `/proc/uptime`.
fn boot_time() -> Option<i64> {
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let seconds: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).ok()?;
    Some(now - (seconds * 1e9) as i64)
}
