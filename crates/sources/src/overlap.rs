//! One container's log can reach faultline by two roads: through Loki,
//! and straight from the Kubernetes API while Loki is down. [`Marks`]
//! remembers, per container, the newest entry passed on (its time, and
//! the lines at that time), so that an entry arriving by the other road —
//! or again after a reconnect — is passed on once only.
//!
//! The rule is the one Loki's own paging needs: an entry older than the
//! container's mark was passed on; one at the mark was if its line was
//! among those at the mark; a newer one was not. Entries of one container
//! come in time order on each road (Loki returns them sorted, the kubelet
//! writes them in order), so nothing new is taken for old.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

/// A container: (namespace, pod, container).
pub type ContainerKey = (String, String, String);

/// Containers remembered at most; beyond, the least recently seen
/// hundredth is forgotten (a forgotten container's next entry is new).
pub const MAX_MARKS: usize = 100_000;

#[derive(Debug, Default)]
struct Mark {
    at: i64,
    /// Hashes of the lines at `at`.
    seen_at: HashSet<u64>,
    /// When it was last used (a counter).
    used: u64,
}

#[derive(Debug, Default)]
struct Table {
    marks: HashMap<ContainerKey, Mark>,
    clock: u64,
    hasher: RandomState,
}

/// Per-container marks, shared by the sources that can carry the same
/// container's log.
#[derive(Clone, Debug, Default)]
pub struct Marks(Arc<Mutex<Table>>);

impl Marks {
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
        if !table.marks.contains_key(key) && table.marks.len() >= MAX_MARKS {
            let mut ages: Vec<(u64, ContainerKey)> = table
                .marks
                .iter()
                .map(|(k, m)| (m.used, k.clone()))
                .collect();
            ages.sort_unstable();
            for (_, old) in ages.into_iter().take(MAX_MARKS / 100) {
                table.marks.remove(&old);
            }
        }
        let mark = table.marks.entry(key.clone()).or_insert_with(|| Mark {
            at: i64::MIN,
            ..Mark::default()
        });
        mark.used = used;
        if ts < mark.at {
            false
        } else if ts == mark.at {
            mark.seen_at.insert(hash)
        } else {
            mark.at = ts;
            mark.seen_at.clear();
            mark.seen_at.insert(hash);
            true
        }
    }

    /// The time of the newest entry of `key` passed on.
    pub fn at(&self, key: &ContainerKey) -> Option<i64> {
        self.table().marks.get(key).map(|m| m.at)
    }

    /// Forgets a container (its pod is gone).
    pub fn forget(&self, key: &ContainerKey) {
        self.table().marks.remove(key);
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
        assert_eq!(marks.at(&db), Some(30));
        // Containers are apart.
        assert!(marks.admit(&key("sidecar"), 10, "a"));
        marks.forget(&db);
        assert_eq!(marks.at(&db), None);
        assert!(marks.admit(&db, 10, "a"), "forgotten: new again");
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
        assert_eq!(marks.at(&key(&(MAX_MARKS + 9).to_string())), Some(1));
    }
}
