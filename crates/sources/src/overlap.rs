//! One container's log can reach faultline by two roads: through Loki,
//! and straight from the Kubernetes API while Loki is down. [`Marks`]
//! remembers, per container, the entries passed on over the last
//! `late` (a [`Window`]: their times and line hashes), so that an entry
//! arriving by the other road — or again after a reconnect, or late and
//! out of order from another of the container's streams — is passed on
//! once only.
//!
//! An entry older than the container's window counts as passed on: each
//! road brings a container's entries in time order from where the window
//! starts ([`Marks::resume_from`]), so nothing older is new.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::window::{Verdict, Window};

/// A container: (namespace, pod, container).
pub type ContainerKey = (String, String, String);

/// Containers remembered at most; beyond, the least recently seen
/// hundredth is forgotten (a forgotten container's next entry is new).
pub const MAX_MARKS: usize = 100_000;

/// Entries remembered per container at most (its window shrinks beyond).
pub const MAX_MARKED_PER_CONTAINER: usize = 1_024;

/// Entries remembered in all at most; beyond, the least recently seen
/// containers are forgotten.
pub const MAX_MARKED: usize = 1_000_000;

#[derive(Debug)]
struct Mark {
    window: Window,
    /// When it was last used (a counter).
    used: u64,
}

#[derive(Debug, Default)]
struct Table {
    marks: HashMap<ContainerKey, Mark>,
    /// Entries remembered across all windows.
    entries: usize,
    clock: u64,
    late: i64,
    hasher: RandomState,
}

impl Table {
    /// Forgets the least recently seen hundredth of the containers.
    fn forget_oldest(&mut self) {
        let mut ages: Vec<(u64, ContainerKey)> = self
            .marks
            .iter()
            .map(|(k, m)| (m.used, k.clone()))
            .collect();
        ages.sort_unstable();
        for (_, old) in ages.into_iter().take((self.marks.len() / 100).max(1)) {
            if let Some(mark) = self.marks.remove(&old) {
                self.entries -= mark.window.len();
            }
        }
    }
}

/// Per-container marks, shared by the sources that can carry the same
/// container's log.
#[derive(Clone, Debug, Default)]
pub struct Marks(Arc<Mutex<Table>>);

impl Marks {
    /// Marks that take entries up to `late` older than a container's
    /// newest for new (the lateness the sources allow).
    pub fn with_lateness(late: Duration) -> Marks {
        let marks = Marks::default();
        marks.table().late = i64::try_from(late.as_nanos()).unwrap_or(i64::MAX);
        marks
    }

    /// The container a stream's labels name (`namespace`, `pod`,
    /// `container`), if they name one.
    pub fn key(labels: &[(String, String)]) -> Option<ContainerKey> {
        let get = |name: &str| {
            labels
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        Some((get("namespace")?, get("pod")?, get("container")?))
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the entry (`ts` ns, `line`) of `key` is new; if it is, it
    /// now counts as passed on.
    pub fn admit(&self, key: &ContainerKey, ts: i64, line: &str) -> bool {
        let mut table = self.table();
        let hash = table.hasher.hash_one(line);
        table.clock += 1;
        let used = table.clock;
        while !table.marks.is_empty()
            && ((!table.marks.contains_key(key) && table.marks.len() >= MAX_MARKS)
                || table.entries >= MAX_MARKED)
        {
            table.forget_oldest();
        }
        let late = table.late;
        let mark = table.marks.entry(key.clone()).or_insert_with(|| Mark {
            window: Window::new(late, MAX_MARKED_PER_CONTAINER, i64::MIN),
            used,
        });
        mark.used = used;
        let before = mark.window.len();
        let verdict = mark.window.check(ts, hash);
        let after = mark.window.len();
        table.entries = table.entries + after - before;
        verdict == Verdict::New
    }

    /// Where a road that reads `key` from the start of its window should
    /// start (ns): entries from here on are told apart, older ones count
    /// as passed on. `None` for a container not seen.
    pub fn resume_from(&self, key: &ContainerKey) -> Option<i64> {
        self.table().marks.get(key).map(|m| m.window.floor())
    }

    /// Forgets a container (its pod is gone).
    pub fn forget(&self, key: &ContainerKey) {
        let mut table = self.table();
        if let Some(mark) = table.marks.remove(key) {
            table.entries -= mark.window.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(container: &str) -> ContainerKey {
        ("ns".into(), "pod".into(), container.into())
    }

    #[test]
    fn an_entry_is_passed_on_once_whichever_road_it_takes() {
        let marks = Marks::default();
        let db = key("postgres");
        assert!(marks.admit(&db, 10, "a"));
        assert!(marks.admit(&db, 20, "b"));
        assert!(marks.admit(&db, 20, "c"), "another line at the same time");
        // The other road brings the same entries again, from earlier.
        assert!(!marks.admit(&db, 10, "a"));
        assert!(!marks.admit(&db, 20, "b"));
        assert!(!marks.admit(&db, 20, "c"));
        assert!(marks.admit(&db, 30, "d"));
        assert_eq!(marks.resume_from(&db), Some(30));
        // Containers are apart.
        assert!(marks.admit(&key("sidecar"), 10, "a"));
        marks.forget(&db);
        assert_eq!(marks.resume_from(&db), None);
        assert!(marks.admit(&db, 10, "a"), "forgotten: new again");
    }

    #[test]
    fn a_late_entry_from_another_of_the_containers_streams_is_new_once() {
        let marks = Marks::with_lateness(Duration::from_nanos(10));
        let db = key("postgres");
        assert!(marks.admit(&db, 20, "a line on stdout"));
        assert!(marks.admit(&db, 15, "a line on stderr, ingested late"));
        assert!(!marks.admit(&db, 15, "a line on stderr, ingested late"));
        assert!(!marks.admit(&db, 5, "older than the window: passed on"));
        assert_eq!(marks.resume_from(&db), Some(10));
    }

    #[test]
    fn the_entries_remembered_are_bounded() {
        let marks = Marks::with_lateness(Duration::from_secs(3600));
        for i in 0..MAX_MARKED / MAX_MARKED_PER_CONTAINER + 10 {
            for ts in 0..MAX_MARKED_PER_CONTAINER as i64 + 5 {
                marks.admit(&key(&i.to_string()), ts, "x");
            }
        }
        let table = marks.table();
        assert!(table.entries <= MAX_MARKED);
        assert_eq!(
            table.entries,
            table.marks.values().map(|m| m.window.len()).sum::<usize>()
        );
    }

    #[test]
    fn labels_name_a_container_only_with_all_three() {
        let labels = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            Marks::key(&labels(&[
                ("container", "c"),
                ("namespace", "n"),
                ("pod", "p"),
                ("job", "n/p")
            ])),
            Some(("n".into(), "p".into(), "c".into()))
        );
        assert_eq!(
            Marks::key(&labels(&[("namespace", "n"), ("pod", "p")])),
            None
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let marks = Marks::default();
        for i in 0..MAX_MARKS + 10 {
            marks.admit(&key(&i.to_string()), 1, "x");
        }
        assert!(marks.table().marks.len() <= MAX_MARKS);
        // The most recent is kept.
        assert_eq!(
            marks.resume_from(&key(&(MAX_MARKS + 9).to_string())),
            Some(1)
        );
    }
}
