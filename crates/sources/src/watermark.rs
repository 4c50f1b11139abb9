//! How far in event time each live source has delivered, so that `watch`
//! correlates on the time in the logs, not on when lines happen to arrive.
//!
//! A source's [`Watermark`] says "every entry older than this has been
//! sent" (or is given up for lost): a file source catching up on a
//! backlog holds it until it has read to the end; Loki moves it to the
//! end of each query minus the lateness it allows. A source that is caught
//! up and delivers entries as they are written follows the clock, less
//! [`LIVE_SLACK`] for the way from the writer to faultline. The engine's
//! clock is the lowest watermark ([`Watermarks::low`]): incidents fire and
//! resolve on it, so catching up after an outage or a restart neither
//! resolves an incident early nor pages for what is long over.
//!
//! A source stores its watermark after sending the batches it covers (and
//! holds it while it sends them); the consumer reads the watermarks first
//! and then drains the channel, so every batch a watermark covers has been
//! processed when the clock moves past it, and the clock never moves while
//! a source is half-way through what it read together. The clock itself
//! never goes back: a holding source only stops it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a line written "now" may take to reach faultline from a
/// source that follows the clock (a file write seen by inotify, a kernel
/// record, a push batched by its shipper).
pub const LIVE_SLACK: Duration = Duration::from_secs(2);

/// [`LIVE_SLACK`] in ns.
fn slack_ns() -> i64 {
    i64::try_from(LIVE_SLACK.as_nanos()).unwrap_or(i64::MAX)
}

/// Holding: nothing delivered yet.
const HOLDING: i64 = i64::MIN;
/// Caught up: delivering as entries are written.
const LIVE: i64 = i64::MAX - 1;
/// Ended, or not to be waited for (an unhealthy Loki).
const IDLE: i64 = i64::MAX;

/// One source's watermark.
#[derive(Clone, Debug)]
pub struct Watermark(Arc<AtomicI64>);

impl Default for Watermark {
    /// One that no clock waits for (not registered with [`Watermarks`]).
    fn default() -> Watermark {
        Watermark(Arc::new(AtomicI64::new(IDLE)))
    }
}

impl Watermark {
    /// Everything older than `ts` (UTC ns) has been sent.
    pub fn at(&self, ts: i64) {
        self.0
            .store(ts.clamp(HOLDING + 1, LIVE - 1), Ordering::Release);
    }

    /// Holds the clock where it is: the source is in the middle of
    /// delivering (a round of reads whose lines may be older than the
    /// clock).
    pub fn hold(&self) {
        self.0.store(HOLDING, Ordering::Release);
    }

    /// Caught up: what comes from now on is about as old as the clock.
    pub fn live(&self) {
        self.0.store(LIVE, Ordering::Release);
    }

    /// Ended, or not to be waited for (it is down; what it brings later
    /// is late).
    pub fn idle(&self) {
        self.0.store(IDLE, Ordering::Release);
    }

    /// Where it stands at `now`: `None` when it is not to be waited for.
    fn low(&self, now: i64) -> Option<i64> {
        match self.0.load(Ordering::Acquire) {
            IDLE => None,
            LIVE => Some(now.saturating_sub(slack_ns())),
            at => Some(at.min(now)),
        }
    }
}

/// The watermarks of all live sources.
#[derive(Clone, Debug, Default)]
pub struct Watermarks(Arc<Mutex<Vec<Watermark>>>);

impl Watermarks {
    /// A new source's watermark, holding until the source says how far it
    /// has delivered.
    pub fn holding(&self) -> Watermark {
        let mark = Watermark(Arc::new(AtomicI64::new(HOLDING)));
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(mark.clone());
        mark
    }

    /// A new source's watermark, following the clock from the start.
    pub fn live(&self) -> Watermark {
        let mark = self.holding();
        mark.live();
        mark
    }

    /// The engine's clock at wall-clock `now`: the lowest watermark, or
    /// the clock less [`LIVE_SLACK`] when no source holds it back.
    pub fn low(&self, now: i64) -> i64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|mark| mark.low(now))
            .min()
            .unwrap_or(now.saturating_sub(slack_ns()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn the_lowest_source_holds_the_clock() {
        let marks = Watermarks::default();
        let now = 1_000 * S;
        assert_eq!(marks.low(now), now - 2 * S, "no source: the clock");
        let files = marks.holding();
        let loki = marks.live();
        assert_eq!(marks.low(now), HOLDING, "files are not read yet");
        files.at(100 * S);
        assert_eq!(marks.low(now), 100 * S);
        files.live();
        assert_eq!(marks.low(now), now - 2 * S);
        loki.at(990 * S);
        assert_eq!(marks.low(now), 990 * S);
        // Loki down: it is not waited for.
        loki.idle();
        assert_eq!(marks.low(now), now - 2 * S);
        // Never ahead of the clock.
        files.at(2_000 * S);
        assert_eq!(marks.low(now), now);
    }
}
