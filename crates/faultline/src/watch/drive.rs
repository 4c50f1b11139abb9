//! The run loop of `watch`: batches from every source go to the
//! processor; every tick the event clock moves to the sources' lowest
//! watermark (after the batches it covers are processed), Loki's health
//! and the fallback are followed, checkpoints are saved, alerts resent,
//! and SIGHUP reloads.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use faultline_kubernetes::InventoryChange;
use faultline_sources::Batch;
use faultline_sources::loki::Health;
use faultline_sources::watermark::Watermarks;
use tokio::sync::{mpsc, watch};

use super::metrics;
use super::processor::Processor;
use super::reload::Reloader;

/// How often time passing is checked.
const TICK: Duration = Duration::from_secs(1);
/// How often checkpoints are saved.
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// What `watch` reads: batches from every source, the sources' problems,
/// Loki's health, inventory changes from the Kubernetes API, and the
/// fallback's state.
pub(super) struct Inputs {
    pub(super) batches: mpsc::Receiver<Batch>,
    pub(super) errors: mpsc::Receiver<String>,
    pub(super) health: watch::Receiver<Health>,
    pub(super) inventory: mpsc::Receiver<InventoryChange>,
    pub(super) fallback: Option<Fallback>,
    /// Loki's newest entry's time, when Loki is read.
    pub(super) loki_position: Option<Arc<AtomicI64>>,
    pub(super) kube_stats: Option<Arc<faultline_kubernetes::Stats>>,
    /// Malformed pushes refused, and how many were exported.
    pub(super) push_rejected: (Arc<std::sync::atomic::AtomicU64>, u64),
    /// Files matching --files not followed for --max-files.
    pub(super) files_unfollowed: Arc<std::sync::atomic::AtomicU64>,
    /// Kernel records overwritten before they were read, and how many
    /// were exported.
    pub(super) kmsg_lost: (Arc<std::sync::atomic::AtomicU64>, u64),
    /// How far in event time each source has delivered.
    pub(super) watermarks: Watermarks,
}

/// Pod logs read from the Kubernetes API while Loki is unhealthy: from
/// Loki's position when it turns unhealthy (so there is no gap; the
/// marks drop what both carry), until Loki has been healthy for
/// `recover`.
pub(super) struct Fallback {
    /// Some(start) while falling back.
    pub(super) streaming: watch::Sender<Option<i64>>,
    pub(super) position: Arc<AtomicI64>,
    pub(super) recover: Duration,
    /// Since when Loki is healthy again, while still falling back.
    pub(super) healthy_since: Option<i64>,
}

impl Fallback {
    fn active(&self) -> bool {
        self.streaming.borrow().is_some()
    }

    /// Loki's health changed at `now`; what to tell, if the fallback
    /// starts.
    fn health(&mut self, health: &Health, now: i64) -> Option<String> {
        match health {
            Health::Unhealthy(_) => {
                self.healthy_since = None;
                if self.active() {
                    return None;
                }
                let from = self.position.load(Ordering::Relaxed);
                self.streaming.send_replace(Some(from));
                Some(format!(
                    "falling back to reading pod logs from the Kubernetes API, from {}",
                    jiff::Timestamp::from_nanosecond(i128::from(from))
                        .map(|t| t.to_string())
                        .unwrap_or_default()
                ))
            }
            Health::Healthy => {
                if self.active() {
                    self.healthy_since = Some(now);
                }
                None
            }
        }
    }

    /// Time passed to `now`; what to tell, if the fallback ends.
    fn tick(&mut self, now: i64) -> Option<String> {
        let since = self.healthy_since?;
        let recover = i64::try_from(self.recover.as_nanos()).unwrap_or(i64::MAX);
        if now.saturating_sub(since) < recover {
            return None;
        }
        self.healthy_since = None;
        self.streaming.send_replace(None);
        Some(format!(
            "Loki has been healthy for {}s: reading pod logs from Loki only again",
            self.recover.as_secs()
        ))
    }
}

/// Feeds batches to the processor until every source ended or a signal
/// came; checks time every [`TICK`]; saves checkpoints every
/// [`SAVE_EVERY`] and at the end. A save that fails while running (a full
/// or read-only state volume) is told once and tried again at the next;
/// detection goes on. A failed save at the end is the run's error.
pub(super) async fn drive(
    mut processor: Processor<impl Write>,
    mut inputs: Inputs,
    mut reloader: Reloader,
    resend_interval: Duration,
    state_dir: Option<&std::path::Path>,
) -> Result<()> {
    let clock = Clock::start();
    let mut tick = tokio::time::interval(TICK);
    let mut resend = tokio::time::interval(resend_interval);
    let mut save = tokio::time::interval(SAVE_EVERY);
    let mut save_failing = false;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    loop {
        tokio::select! {
            batch = inputs.batches.recv() => match batch {
                Some(batch) => processor.batch(&batch, clock.now())?,
                None => break,
            },
            Some(error) = inputs.errors.recv() => eprintln!("faultline: {error}"),
            Some(change) = inputs.inventory.recv() => processor.inventory(change),
            Ok(()) = inputs.health.changed() => {
                let now = inputs.health.borrow_and_update().clone();
                processor.loki_health(&now, clock.now())?;
                if let Some(told) = inputs.fallback.as_mut().and_then(|f| f.health(&now, clock.now())) {
                    eprintln!("faultline: {told}");
                }
            }
            _ = tick.tick() => {
                // The watermarks first, then what the channel holds: every
                // batch a watermark covers is processed before the event
                // clock passes it.
                let event_clock = inputs.watermarks.low(clock.now());
                while let Ok(batch) = inputs.batches.try_recv() {
                    processor.batch(&batch, clock.now())?;
                }
                inputs.export(&processor.metrics, clock.now());
                if let Some(told) = inputs.fallback.as_mut().and_then(|f| f.tick(clock.now())) {
                    eprintln!("faultline: {told}");
                }
                processor.tick(event_clock, clock.now())?;
            }
            _ = save.tick() => match processor.save(state_dir) {
                Ok(()) if save_failing => {
                    save_failing = false;
                    eprintln!("faultline: checkpoints are saved again");
                }
                Ok(()) => {}
                Err(err) => {
                    if !save_failing {
                        eprintln!(
                            "faultline: {err:#}; watching goes on, and saving is tried again every {}s",
                            SAVE_EVERY.as_secs()
                        );
                    }
                    save_failing = true;
                }
            },
            _ = resend.tick() => processor.resend(clock.now()),
            _ = hangup.recv() => match reloader.reload() {
                Ok(reload) => {
                    let signatures = reload.matcher.signatures().len();
                    processor.reload(reload.matcher, reload.library.rules(), reload.args.silence.clone(), clock.now())?;
                    processor.metrics.reloads.with_label_values(&["success"]).inc();
                    eprintln!("faultline: reloaded: {signatures} signatures, {} rules", reload.library.rules().len());
                    if !reload.unapplied.is_empty() {
                        eprintln!(
                            "faultline: changed settings that take effect at the next start: {}",
                            reload.unapplied.join(", ")
                        );
                    }
                }
                Err(err) => {
                    processor.metrics.reloads.with_label_values(&["failure"]).inc();
                    eprintln!("faultline: the reload failed, the running config and signatures stay: {err:#}");
                }
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    // Whatever was already read is still processed.
    inputs.batches.close();
    while let Some(batch) = inputs.batches.recv().await {
        processor.batch(&batch, clock.now())?;
    }
    processor.finish(inputs.watermarks.low(clock.now()), clock.now())?;
    processor.save(state_dir)
}

impl Inputs {
    /// Updates the metrics of the inputs' state at `now`.
    fn export(&mut self, metrics: &metrics::Metrics, now: i64) {
        let rejected = self.push_rejected.0.load(Ordering::Relaxed);
        metrics
            .decode_errors
            .with_label_values(&["push", "malformed-push"])
            .inc_by(rejected.saturating_sub(self.push_rejected.1));
        self.push_rejected.1 = rejected;
        let lost = self.kmsg_lost.0.load(Ordering::Relaxed);
        metrics
            .lost_records
            .with_label_values(&["kmsg"])
            .inc_by(lost.saturating_sub(self.kmsg_lost.1));
        self.kmsg_lost.1 = lost;
        metrics
            .files_unfollowed
            .set(i64::try_from(self.files_unfollowed.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        metrics
            .batches_waiting
            .with_label_values(&["batches"])
            .set(i64::try_from(self.batches.len()).unwrap_or(i64::MAX));
        if let Some(position) = &self.loki_position {
            let lag = now.saturating_sub(position.load(Ordering::Relaxed)) / 1_000_000_000;
            metrics
                .source_lag
                .with_label_values(&["loki"])
                .set(lag.max(0));
        }
        metrics.fallback_active.set(i64::from(
            self.fallback.as_ref().is_some_and(Fallback::active),
        ));
        if let Some(stats) = &self.kube_stats {
            for (state, count) in [("following", &stats.following), ("waiting", &stats.waiting)] {
                metrics
                    .log_streams
                    .with_label_values(&[state])
                    .set(count.load(Ordering::Relaxed));
            }
        }
    }
}

/// Wall-clock time, in UTC ns, read through tokio's clock (so tests with a
/// paused clock control it).
pub(super) struct Clock {
    pub(super) wall: i64,
    pub(super) start: tokio::time::Instant,
}

impl Clock {
    pub(super) fn start() -> Clock {
        let wall = jiff::Timestamp::now().as_nanosecond();
        Clock {
            wall: i64::try_from(wall).unwrap_or(i64::MAX),
            start: tokio::time::Instant::now(),
        }
    }

    pub(super) fn now(&self) -> i64 {
        let elapsed = i64::try_from(self.start.elapsed().as_nanos()).unwrap_or(i64::MAX);
        self.wall.saturating_add(elapsed)
    }
}
