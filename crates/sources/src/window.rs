//! The recent past of a stream of timestamped entries, remembered so that
//! entries that arrive late and out of order are passed on once each.
//!
//! Shippers batch and retry and nodes are not in step, so an entry can
//! reach Loki — and faultline — after newer entries of other streams. A
//! reader that only asks for what is newer than the newest entry it has
//! seen never reads it. [`Window`] lets a reader ask again for the last
//! `late` nanoseconds and pass on only what it has not passed on yet: it
//! remembers every entry (its time and a hash of its stream and line)
//! from `newest - late` on, and answers for each entry whether it is new,
//! seen again, or older than anything remembered.
//!
//! Memory is bounded: at most `capacity` entries are remembered; beyond,
//! the oldest are forgotten and the window starts later (what is older
//! than [`Window::floor`] is never asked for again by a poller).

use std::collections::BTreeSet;

/// What [`Window::check`] found an entry to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen before: pass it on (it is remembered now).
    New,
    /// Seen before: drop it.
    Again,
    /// Older than the window: whether it was seen cannot be told.
    Late,
}

/// Entries seen from [`Window::floor`] on, by (time, hash).
#[derive(Debug)]
pub struct Window {
    late: i64,
    capacity: usize,
    newest: i64,
    floor: i64,
    seen: BTreeSet<(i64, u64)>,
}

impl Window {
    /// A window reaching `late` ns back from the newest entry, starting
    /// at `floor` (nothing older is asked for), remembering at most
    /// `capacity` entries.
    pub fn new(late: i64, capacity: usize, floor: i64) -> Window {
        Window {
            late: late.max(0),
            capacity: capacity.max(1),
            newest: floor,
            floor,
            seen: BTreeSet::new(),
        }
    }

    /// The newest entry's time seen (or the starting floor).
    pub fn newest(&self) -> i64 {
        self.newest
    }

    /// Where the window starts: entries from here on are remembered, and
    /// a reader that asks again asks from here.
    pub fn floor(&self) -> i64 {
        self.floor
    }

    /// How many entries are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Whether the entry at `ts` whose stream and line hash to `hash` was
    /// seen; a new one is remembered, and the window moves on with it.
    pub fn check(&mut self, ts: i64, hash: u64) -> Verdict {
        if ts < self.floor {
            return Verdict::Late;
        }
        if !self.seen.insert((ts, hash)) {
            return Verdict::Again;
        }
        if ts > self.newest {
            self.newest = ts;
            let floor = ts.saturating_sub(self.late);
            if floor > self.floor {
                self.raise(floor);
            }
        }
        if self.seen.len() > self.capacity {
            // Forget the oldest time whole: an entry at a time partly
            // forgotten could otherwise be taken for new.
            if let Some(&(oldest, _)) = self.seen.first() {
                self.raise(oldest.saturating_add(1));
            }
        }
        Verdict::New
    }

    /// Forgets what is older than `floor`.
    fn raise(&mut self, floor: i64) {
        self.floor = floor;
        self.seen = self.seen.split_off(&(floor, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn late_entries_within_the_window_are_new_once() {
        let mut window = Window::new(10, 100, 0);
        assert_eq!(window.check(5, 1), Verdict::New);
        assert_eq!(window.check(20, 2), Verdict::New);
        assert_eq!(window.floor(), 10);
        // Late but within 10 of the newest: new, then seen.
        assert_eq!(window.check(12, 3), Verdict::New);
        assert_eq!(window.check(12, 3), Verdict::Again);
        assert_eq!(window.check(20, 2), Verdict::Again);
        // Another line at the same time is new.
        assert_eq!(window.check(20, 4), Verdict::New);
        // Older than the window.
        assert_eq!(window.check(5, 1), Verdict::Late);
        assert_eq!(window.check(9, 9), Verdict::Late);
        assert_eq!(window.newest(), 20);
    }

    #[test]
    fn memory_is_bounded_and_the_window_shrinks_instead() {
        let mut window = Window::new(1_000, 4, 0);
        for ts in 0..10 {
            assert_eq!(window.check(ts, 0), Verdict::New);
        }
        assert!(window.len() <= 4);
        assert_eq!(window.floor(), 6);
        assert_eq!(window.check(5, 0), Verdict::Late);
        assert_eq!(window.check(9, 0), Verdict::Again);
    }

    #[test]
    fn a_forgotten_time_is_forgotten_whole() {
        let mut window = Window::new(1_000, 2, 0);
        assert_eq!(window.check(1, 1), Verdict::New);
        assert_eq!(window.check(1, 2), Verdict::New);
        assert_eq!(window.check(2, 3), Verdict::New);
        // Time 1 is forgotten whole: its entries are late, not new.
        assert_eq!(window.check(1, 1), Verdict::Late);
        assert_eq!(window.check(1, 2), Verdict::Late);
    }

    proptest! {
        /// Whatever the order entries come in, and however often, each
        /// one within the window is new exactly once.
        #[test]
        fn each_entry_is_new_once(
            entries in proptest::collection::vec((0i64..200, 0u64..4), 1..80),
            repeats in proptest::collection::vec(0usize..80, 0..80),
        ) {
            let late = 50;
            let mut window = Window::new(late, 10_000, 0);
            let mut arrivals = entries.clone();
            arrivals.extend(repeats.iter().filter_map(|&i| entries.get(i).copied()));
            let mut passed = std::collections::HashSet::new();
            let mut newest = 0;
            for (ts, hash) in arrivals {
                let within = ts >= newest - late;
                match window.check(ts, hash) {
                    Verdict::New => prop_assert!(passed.insert((ts, hash)), "passed twice"),
                    Verdict::Again => prop_assert!(passed.contains(&(ts, hash))),
                    Verdict::Late => prop_assert!(!within, "late within the window"),
                }
                newest = newest.max(ts);
            }
        }
    }
}
