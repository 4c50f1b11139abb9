//! Anchors: a few short strings that together cover many literals.
//!
//! The fastest literal searcher (Teddy, SIMD) works best on at most 64
//! strings; faultline splits up to 192 over three Teddy searchers.
//! With hundreds of signatures there are hundreds of literals; rather than
//! fall back to a byte-at-a-time automaton, faultline searches for a small
//! set of 4-byte substrings such that every literal contains one of them
//! (a greedy set cover that prefers rare substrings). Lines holding an
//! anchor are confirmed exactly as before, so the answer never changes;
//! only the number of lines confirmed grows, gently, with the library.
//!
//! Longer anchors are far more selective (`ejecting I/O to` against `ejec`)
//! while Teddy checks every needle whole after its fingerprint: the widest
//! substrings that still fit the limit are taken, from [`WIDTHS`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::rarity::{self, commonness};

/// Anchor widths tried, widest first: the first that covers every literal
/// within the limit wins.
pub const WIDTHS: [usize; 4] = [12, 8, 6, 4];

/// How common a gram is likely to be: the sum of its bytes' commonness,
/// counting every byte as found everywhere when the gram is a piece of a
/// word that most log lines hold (`equest`, `onnect`).
fn cost(gram: &[u8]) -> u32 {
    if rarity::within_common_word(gram) {
        return 10 * gram.len() as u32;
    }
    gram.iter().map(|&b| commonness(b)).sum()
}

/// Up to `limit` anchors such that every literal contains at least one, or
/// `None` when that many do not suffice. Literals shorter than an anchor
/// are their own.
///
/// A greedy weighted cover: each round takes the gram with the best ratio
/// of literals newly covered to likely frequency in logs, where frequency
/// grows exponentially with the commonness of its bytes. If the result does
/// not fit in `limit`, the preference for rarity is relaxed step by step
/// (down to plain "most literals covered").
pub fn cover(literals: &[Vec<u8>], limit: usize) -> Option<Vec<Vec<u8>>> {
    WIDTHS
        .iter()
        .find_map(|&width| cover_with(literals, limit, width))
}

/// [`cover`] with anchors of `width` bytes (shorter literals are their own).
fn cover_with(literals: &[Vec<u8>], limit: usize, width: usize) -> Option<Vec<Vec<u8>>> {
    let mut holders: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, literal) in literals.iter().enumerate() {
        let grams: Vec<&[u8]> = if literal.len() <= width {
            vec![literal.as_slice()]
        } else {
            literal.windows(width).collect()
        };
        for gram in grams {
            let list = holders.entry(gram).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let mut grams: Vec<(&[u8], u32, &Vec<usize>)> = holders
        .iter()
        .map(|(gram, list)| (*gram, cost(gram), list))
        .collect();
    // A fixed order, so that ties always break the same way.
    grams.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    // Plain "most literals covered" (base 1) needs the fewest anchors: if
    // even it does not fit, no rarer choice will, and the width is given up
    // at once.
    let widest = greedy(&grams, literals.len(), limit, 1.0)?;
    let mut anchors = [2.0, 1.6, 1.3, 1.1]
        .into_iter()
        .find_map(|base| greedy(&grams, literals.len(), limit, base))
        .unwrap_or(widest);
    anchors.sort();
    Some(anchors)
}

/// A gram's width as a float, to weigh costs per 4 bytes whatever the width.
fn width_of(gram: &[u8]) -> f64 {
    gram.len().max(1) as f64
}

/// Greedy weighted set cover: each round takes the gram maximising
/// `gain / base^cost` (ties: the first in `grams`' order). `None` if more
/// than `limit` grams are needed.
///
/// Lazily evaluated: a gram's gain only shrinks as literals get covered,
/// so its last score is an upper bound; a gram is re-scored only when it
/// reaches the top of the heap, and taken if it stays there.
fn greedy(
    grams: &[(&[u8], u32, &Vec<usize>)],
    literals: usize,
    limit: usize,
    base: f64,
) -> Option<Vec<Vec<u8>>> {
    let mut covered = vec![false; literals];
    let mut left = literals;
    let mut anchors = Vec::new();
    let mut heap: BinaryHeap<(Score, Reverse<usize>)> = grams
        .iter()
        .enumerate()
        .map(|(index, &(gram, cost, list))| {
            let weight = base.powf(f64::from(cost) / 2.0 * (4.0 / width_of(gram)));
            (Score(list.len() as f64 / weight, weight), Reverse(index))
        })
        .collect();
    while left > 0 {
        if anchors.len() == limit {
            return None;
        }
        let (Score(_, weight), Reverse(index)) = heap.pop()?;
        let (gram, _, list) = grams[index];
        let gain = list.iter().filter(|&&i| !covered[i]).count();
        if gain == 0 {
            continue;
        }
        let now = (Score(gain as f64 / weight, weight), Reverse(index));
        if heap.peek().is_some_and(|top| *top > now) {
            heap.push(now);
            continue;
        }
        for &i in list {
            if !covered[i] {
                covered[i] = true;
                left -= 1;
            }
        }
        anchors.push(gram.to_vec());
    }
    Some(anchors)
}

/// A gram's score (gain per weight) and its weight, ordered by score.
#[derive(Clone, Copy, Debug)]
struct Score(f64, f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn every_literal_contains_an_anchor() {
        let literals = lits(&[
            "etcd: failed to sync lease",
            "vault: failed to renew lease",
            "EROFS",
            "Remounting filesystem read-only",
            "I/O error, dev ",
            "ab",
        ]);
        let anchors = cover(&literals, 64).unwrap();
        for literal in &literals {
            assert!(
                anchors
                    .iter()
                    .any(|a| memchr::memmem::find(literal, a).is_some()),
                "{:?} has no anchor in {anchors:?}",
                String::from_utf8_lossy(literal)
            );
        }
        assert!(anchors.len() <= literals.len());
    }

    #[test]
    fn a_tight_limit_shares_anchors_between_literals() {
        let literals = lits(&[
            "etcd: failed to sync",
            "vault: failed to renew",
            "minio: failed to heal",
        ]);
        let anchors = cover(&literals, 1).unwrap();
        assert_eq!(anchors.len(), 1);
        assert!(
            literals
                .iter()
                .all(|l| memchr::memmem::find(l, &anchors[0]).is_some())
        );
    }

    #[test]
    fn too_few_anchors_is_none() {
        let literals = lits(&["AAAA", "BBBB", "CCCC"]);
        assert_eq!(cover(&literals, 2), None);
        assert_eq!(cover(&literals, 3).map(|a| a.len()), Some(3));
    }

    #[test]
    fn rare_substrings_are_preferred() {
        let anchors = cover(&lits(&["the XFS shutdown"]), 64).unwrap();
        assert_eq!(anchors.len(), 1);
        assert!(
            anchors[0].windows(3).any(|w| w == b"XFS"),
            "{:?}",
            String::from_utf8_lossy(&anchors[0])
        );
    }
}
