//! Hits waiting for the event clock to pass their time, so that `watch`
//! correlates them in event-time order whatever order the sources deliver
//! them in — the order `replay` correlates the same lines in.
//!
//! A file's checkpoint is recorded only once every hit of its batch (and
//! of every batch before) has been correlated: a stop or a crash while
//! hits wait never skips them at the restart.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use faultline_sources::Checkpoint;

use crate::replay::order::weight;
use crate::stream::HitRecord;

/// Bytes of hits held at most; beyond, the oldest are correlated at once
/// (out of order if a source lags that far).
pub(super) const MAX_HELD_BYTES: usize = 16 << 20;

/// A held hit, ordered by the time it is correlated at, then arrival.
struct Waiting {
    at: i64,
    seq: u64,
    batch: u64,
    hit: HitRecord,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The hits held, and the checkpoints waiting for them.
#[derive(Default)]
pub(super) struct Held {
    queue: BinaryHeap<Reverse<Waiting>>,
    bytes: usize,
    seq: u64,
    batches: u64,
    /// Hits held, per batch that has any.
    per_batch: BTreeMap<u64, usize>,
    checkpoints: VecDeque<(u64, Checkpoint)>,
}

impl Held {
    /// Starts a batch: the number its hits and checkpoint are held under.
    pub fn begin_batch(&mut self) -> u64 {
        self.batches += 1;
        self.batches
    }

    /// Holds `hit` of `batch` until the clock reaches `at`.
    pub fn hold(&mut self, batch: u64, at: i64, hit: HitRecord) {
        self.seq += 1;
        self.bytes += weight(&hit);
        *self.per_batch.entry(batch).or_default() += 1;
        self.queue.push(Reverse(Waiting {
            at,
            seq: self.seq,
            batch,
            hit,
        }));
    }

    /// Holds `checkpoint`, reached once `batch` is processed.
    pub fn checkpoint(&mut self, batch: u64, checkpoint: Checkpoint) {
        self.checkpoints.push_back((batch, checkpoint));
    }

    /// The oldest hit held, taken out if its time is at or before `clock`:
    /// the time it is due at, and the hit.
    pub fn pop_due(&mut self, clock: i64) -> Option<(i64, HitRecord)> {
        if self.queue.peek()?.0.at > clock {
            return None;
        }
        let Reverse(waiting) = self.queue.pop()?;
        self.bytes = self.bytes.saturating_sub(weight(&waiting.hit));
        if let Some(count) = self.per_batch.get_mut(&waiting.batch) {
            *count -= 1;
            if *count == 0 {
                self.per_batch.remove(&waiting.batch);
            }
        }
        Some((waiting.at, waiting.hit))
    }

    /// The time of the oldest hit held.
    pub fn oldest(&self) -> Option<i64> {
        self.queue.peek().map(|w| w.0.at)
    }

    /// The time of the newest hit held.
    pub fn newest(&self) -> Option<i64> {
        self.queue.iter().map(|w| w.0.at).max()
    }

    /// How many hits are held.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether more is held than memory allows.
    pub fn over_budget(&self) -> bool {
        self.bytes > MAX_HELD_BYTES
    }

    /// The checkpoints whose batches, and all batches before, have no hit
    /// held any more.
    pub fn settled(&mut self) -> Vec<Checkpoint> {
        let first_held = self.per_batch.keys().next().copied().unwrap_or(u64::MAX);
        let mut settled = Vec::new();
        while let Some((batch, _)) = self.checkpoints.front()
            && *batch < first_held
        {
            if let Some((_, checkpoint)) = self.checkpoints.pop_front() {
                settled.push(checkpoint);
            }
        }
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(line: &str) -> HitRecord {
        HitRecord {
            signature: 0,
            ts: None,
            input: 0,
            task: 0,
            origin: "f".into(),
            line_no: 1,
            labels: Default::default(),
            captures: Vec::new(),
            line: line.into(),
            entity: None,
        }
    }

    fn checkpoint(offset: u64) -> Checkpoint {
        Checkpoint {
            path: "f".into(),
            dev: 1,
            ino: 1,
            fingerprint: String::new(),
            offset,
        }
    }

    #[test]
    fn hits_come_out_in_time_order_once_the_clock_passes_them() {
        let mut held = Held::default();
        let a = held.begin_batch();
        held.hold(a, 30, hit("a30"));
        held.hold(a, 10, hit("a10"));
        let b = held.begin_batch();
        held.hold(b, 20, hit("b20"));
        held.hold(b, 10, hit("b10"));
        assert_eq!(held.oldest(), Some(10));
        assert_eq!(held.newest(), Some(30));
        let mut out = Vec::new();
        while let Some((at, hit)) = held.pop_due(20) {
            out.push((at, hit.line));
        }
        assert_eq!(
            out,
            [
                (10, "a10".to_string()),
                (10, "b10".to_string()),
                (20, "b20".to_string())
            ],
            "by time, then arrival"
        );
        assert_eq!(held.oldest(), Some(30));
    }

    #[test]
    fn a_checkpoint_waits_for_the_hits_of_its_batch_and_those_before() {
        let mut held = Held::default();
        let a = held.begin_batch();
        held.hold(a, 50, hit("late in time"));
        held.checkpoint(a, checkpoint(100));
        let b = held.begin_batch();
        held.hold(b, 10, hit("early"));
        held.checkpoint(b, checkpoint(200));
        let c = held.begin_batch();
        held.checkpoint(c, checkpoint(300));
        assert!(held.settled().is_empty());
        // b's hit is correlated, a's not yet: nothing is settled.
        assert!(held.pop_due(10).is_some());
        assert!(held.settled().is_empty());
        assert!(held.pop_due(50).is_some());
        let offsets: Vec<u64> = held.settled().iter().map(|c| c.offset).collect();
        assert_eq!(offsets, [100, 200, 300]);
    }
}
