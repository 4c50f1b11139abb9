//! Putting hits in event-time order with bounded memory.
//!
//! Workers hand their hits to a [`Spool`] as they find them. The spool
//! holds them in memory up to a budget; past it, it sorts what it holds and
//! writes it to an anonymous temporary file as one sorted run. At the end,
//! [`Spool::into_merge`] merges the runs and what is still held (a k-way
//! merge on a heap), so the hits come out in order while memory holds one
//! hit per run. Runs are merged into one whenever there are
//! [`MAX_RUNS`] of them, so the number of open files stays bounded too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};
use std::sync::Mutex;

use super::HitRecord;

/// Runs on disk before they are merged into one.
pub const MAX_RUNS: usize = 64;

/// Default memory for held hits before they are written out (bytes, as
/// estimated by [`weight`]).
pub const DEFAULT_BUDGET: usize = 8 << 20;

/// Read buffer per run while merging.
const RUN_BUFFER: usize = 64 << 10;

/// Event-time order: time (undated first), then input, then the part of
/// the input, then line.
type Key = (i64, usize, usize, u64);

fn key(hit: &HitRecord) -> Key {
    (hit.ts.unwrap_or(i64::MIN), hit.input, hit.task, hit.line_no)
}

/// Bytes a held hit costs, roughly: its fixed size and its strings.
pub(crate) fn weight(hit: &HitRecord) -> usize {
    std::mem::size_of::<HitRecord>()
        + hit.line.len()
        + hit
            .captures
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum::<usize>()
        + hit
            .labels
            .iter()
            .map(|(k, v)| k.len() + v.len() + 64)
            .sum::<usize>()
}

/// Hits waiting to be put in order; shared by the workers.
pub struct Spool {
    budget: usize,
    state: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    hits: Vec<HitRecord>,
    bytes: usize,
    runs: Vec<File>,
    /// Why hits could not be written out, once: they are then kept in
    /// memory (nothing is lost; memory is no longer bounded).
    spill_error: Option<io::Error>,
}

impl Spool {
    /// A spool that holds about `budget` bytes of hits in memory.
    pub fn new(budget: usize) -> Spool {
        Spool {
            budget,
            state: Mutex::new(Held::default()),
        }
    }

    /// Adds hits, in any order.
    pub fn add(&self, hits: Vec<HitRecord>) {
        if hits.is_empty() {
            return;
        }
        let mut held = self
            .state
            .lock()
            .expect("no worker panics while holding the spool");
        held.bytes += hits.iter().map(weight).sum::<usize>();
        held.hits.extend(hits);
        if held.bytes > self.budget && held.spill_error.is_none() {
            let mut batch = std::mem::take(&mut held.hits);
            batch.sort_unstable_by_key(key);
            match write_run(batch.iter()).and_then(|run| {
                held.runs.push(run);
                if held.runs.len() >= MAX_RUNS {
                    let runs = std::mem::take(&mut held.runs);
                    let merged = Merge::new(Vec::new(), runs)?;
                    held.runs.push(write_merged(merged)?);
                }
                Ok(())
            }) {
                Ok(()) => held.bytes = 0,
                Err(err) => {
                    held.hits = batch;
                    held.spill_error = Some(err);
                }
            }
        }
    }

    /// How many sorted runs were written to temporary files.
    #[cfg(test)]
    fn runs(&self) -> usize {
        self.state.lock().expect("not poisoned").runs.len()
    }

    /// All the hits added, in event-time order, and the error that kept
    /// hits in memory, if one did.
    pub fn into_merge(self) -> io::Result<(Merge, Option<io::Error>)> {
        let held = self.state.into_inner().expect("workers are done");
        let mut hits = held.hits;
        hits.sort_unstable_by_key(key);
        Ok((Merge::new(hits, held.runs)?, held.spill_error))
    }
}

/// Writes hits, one JSON document per line, to a new temporary file and
/// rewinds it.
fn write_run<'a>(hits: impl Iterator<Item = &'a HitRecord>) -> io::Result<File> {
    let mut out = BufWriter::new(tempfile::tempfile()?);
    for hit in hits {
        serde_json::to_writer(&mut out, hit)?;
        out.write_all(b"\n")?;
    }
    let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.rewind()?;
    Ok(file)
}

fn write_merged(merged: Merge) -> io::Result<File> {
    let mut out = BufWriter::new(tempfile::tempfile()?);
    for hit in merged {
        serde_json::to_writer(&mut out, &hit?)?;
        out.write_all(b"\n")?;
    }
    let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.rewind()?;
    Ok(file)
}

/// Where merged hits come from: what was still in memory, or a run.
enum Source {
    Memory(std::vec::IntoIter<HitRecord>),
    Run(io::Lines<BufReader<File>>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<HitRecord>> {
        match self {
            Source::Memory(hits) => Ok(hits.next()),
            Source::Run(lines) => match lines.next() {
                None => Ok(None),
                Some(line) => Ok(Some(serde_json::from_str(&line?)?)),
            },
        }
    }
}

/// Hits from several sorted sources, in order.
pub struct Merge {
    sources: Vec<Source>,
    /// The next hit of each source that has one, keyed for a min-heap.
    heads: BinaryHeap<Reverse<(Key, usize)>>,
    next: Vec<Option<HitRecord>>,
}

impl Merge {
    fn new(memory: Vec<HitRecord>, runs: Vec<File>) -> io::Result<Merge> {
        let mut sources = vec![Source::Memory(memory.into_iter())];
        sources.extend(
            runs.into_iter()
                .map(|file| Source::Run(BufReader::with_capacity(RUN_BUFFER, file).lines())),
        );
        let mut merge = Merge {
            next: (0..sources.len()).map(|_| None).collect(),
            sources,
            heads: BinaryHeap::new(),
        };
        for i in 0..merge.sources.len() {
            merge.pull(i)?;
        }
        Ok(merge)
    }

    fn pull(&mut self, source: usize) -> io::Result<()> {
        if let Some(hit) = self.sources[source].next()? {
            self.heads.push(Reverse((key(&hit), source)));
            self.next[source] = Some(hit);
        }
        Ok(())
    }
}

impl Iterator for Merge {
    type Item = io::Result<HitRecord>;

    fn next(&mut self) -> Option<io::Result<HitRecord>> {
        let Reverse((_, source)) = self.heads.pop()?;
        let hit = self.next[source].take()?;
        Some(self.pull(source).map(|()| hit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(ts: Option<i64>, input: usize, line_no: u64) -> HitRecord {
        HitRecord {
            signature: 0,
            ts,
            input,
            task: input,
            origin: "a.log".into(),
            line_no,
            labels: [("pod".to_string(), "loki-0".to_string())].into(),
            captures: vec![("device".to_string(), "sdb".to_string())],
            line: format!("line {line_no}"),
            entity: None,
        }
    }

    fn order(hits: &[HitRecord]) -> Vec<(Option<i64>, usize, u64)> {
        hits.iter().map(|h| (h.ts, h.input, h.line_no)).collect()
    }

    #[test]
    fn spilled_runs_merge_into_the_same_order_as_a_sort() {
        // Three inputs interleaved in time, added in scrambled batches.
        let mut all = Vec::new();
        for i in 0..3000u64 {
            let ts = if i % 97 == 0 {
                None
            } else {
                Some((i * 7919 % 1000) as i64)
            };
            all.push(hit(ts, (i % 3) as usize, i));
        }
        let mut expected: Vec<HitRecord> = all.to_vec();
        expected.sort_by_key(key);

        // A budget of a few hits: most batches are written out, and the
        // runs are merged into one each time there are MAX_RUNS of them.
        let spool = Spool::new(weight(&all[0]) * 10);
        for batch in all.chunks(17) {
            spool.add(batch.to_vec());
        }
        assert!(spool.runs() >= 2, "{} runs", spool.runs());
        assert!(spool.runs() < MAX_RUNS);
        let (merge, error) = spool.into_merge().unwrap();
        assert!(error.is_none());
        let merged: Vec<HitRecord> = merge.map(Result::unwrap).collect();
        assert_eq!(order(&merged), order(&expected));
        // Hits come back whole from disk.
        let sample = merged.iter().find(|h| h.line_no == 1234).unwrap();
        assert_eq!(sample.line, "line 1234");
        assert_eq!(sample.labels["pod"], "loki-0");
        assert_eq!(sample.captures, [("device".into(), "sdb".into())]);
        assert_eq!(&*sample.origin, "a.log");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// For any interleaving of inputs, any batching and any memory
        /// budget (spilling or not), every hit comes out once, in
        /// event-time order.
        #[test]
        fn every_hit_comes_out_once_in_order(
            times in proptest::collection::vec(proptest::option::weighted(0.9, 0i64..50), 0..400),
            inputs in 1usize..5,
            batch in 1usize..40,
            budget_hits in 1usize..60,
        ) {
            let all: Vec<HitRecord> = times
                .iter()
                .enumerate()
                .map(|(i, ts)| hit(*ts, i % inputs, i as u64))
                .collect();
            let mut expected = all.clone();
            expected.sort_by_key(key);
            let spool = Spool::new(weight(&hit(None, 0, 0)) * budget_hits);
            for chunk in all.chunks(batch) {
                spool.add(chunk.to_vec());
            }
            let (merge, error) = spool.into_merge().unwrap();
            proptest::prop_assert!(error.is_none());
            let merged: Vec<HitRecord> = merge.map(Result::unwrap).collect();
            proptest::prop_assert_eq!(order(&merged), order(&expected));
        }
    }

    #[test]
    fn within_budget_nothing_is_written() {
        let spool = Spool::new(DEFAULT_BUDGET);
        spool.add(vec![hit(Some(5), 0, 2), hit(Some(1), 1, 1)]);
        spool.add(vec![hit(None, 0, 9)]);
        assert_eq!(spool.runs(), 0);
        let (merge, _) = spool.into_merge().unwrap();
        let merged: Vec<HitRecord> = merge.map(Result::unwrap).collect();
        assert_eq!(
            order(&merged),
            [(None, 0, 9), (Some(1), 1, 1), (Some(5), 0, 2)]
        );
    }
}
