//! How rare a literal is likely to be in log text, without having seen the
//! logs: the guess the prefilter uses to choose what to search for.
//!
//! Spaces, quotes and frequent lowercase letters are everywhere; capitals,
//! digits in odd places and rare symbols are not; and some words appear in
//! a large share of all Kubernetes log lines (`container`, `connection`,
//! `volume`, `error`, …), so a literal that is little more than one of them
//! is a poor filter however long it is.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

/// How common a byte is in log text, from 2 (rare) to 10 (everywhere).
pub fn commonness(byte: u8) -> u32 {
    match byte {
        b' ' | b'"' => 10,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' | b',' | b':' => 8,
        b'a'..=b'z' | b'0'..=b'9' | b'=' | b'.' => 7,
        b'-' | b'_' | b'/' | b'(' | b')' | b'[' | b']' | b'{' | b'}' => 6,
        b'A'..=b'Z' => 3,
        _ => 2,
    }
}

/// Words found in a large share of Kubernetes and application log lines.
const COMMON_WORDS: &[&str] = &[
    "connection",
    "container",
    "containername",
    "volume",
    "error",
    "failed",
    "request",
    "status",
    "readiness",
    "liveness",
    "probe",
    "namespace",
    "message",
    "caller",
    "component",
    "level",
    "info",
    "warning",
    "debug",
    "time",
    "pod",
    "node",
    "client",
    "server",
    "service",
    "http",
    "for",
    "the",
    "with",
    "from",
    "file",
    "code",
    "name",
    // Healthy Kubernetes nodes print these all the time: every volume
    // mount (`MountVolume.SetUp succeeded`), every path under /var/lib
    // (kubelet, PostgreSQL data directories), every probe type, every
    // missing-file message.
    "mountvolume",
    "/var/lib/",
    "postgresql",
    "startup",
    "no such file or directory",
    // Words of every access log, database and process table, and the
    // kubelet's own vocabulary.
    "connect",
    "database",
    "process",
    "handle",
    "manager",
    "post /",
    "get /",
    "syncloop",
    "probetype",
    "msg",
    // The verbs and nouns of healthy progress messages, found in most
    // programs' routine lines.
    "started",
    "starting",
    "complete",
    "command",
    "archive",
    "limit",
    "success",
    "update",
    "create",
    "delete",
    "running",
    "finished",
    "received",
    "sending",
    "loading",
    "config",
    "version",
    "checkpoint",
    "instance",
    "initial",
    "timeout",
    "attempt",
    "retry",
    "closed",
    "watch",
    "event",
    "ready",
    "write",
    "index",
    "table",
    "query",
    "transaction",
    "segment",
    "chunk",
    "flush",
    "upload",
    "worker",
    "cluster",
    "leader",
    "replica",
    "primary",
    "storage",
    "system",
    "session",
    "mount",
    "device",
    "memory",
    "address",
    "image",
];

/// The common words, searched for all at once (rarity is asked for
/// every literal and anchor candidate of the library at every start).
static WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::new(COMMON_WORDS).expect("a few dozen short words build an automaton")
});

/// The common words one after the other, to find a gram inside any of them
/// with one search.
static WORDS_JOINED: LazyLock<String> = LazyLock::new(|| COMMON_WORDS.join("\n"));

/// Whether `gram` (an anchor: a few bytes cut from a literal) lies inside
/// one of the common words, or holds one whole, so that it is no rarer
/// than that word.
pub fn within_common_word(gram: &[u8]) -> bool {
    let trimmed = gram
        .iter()
        .position(u8::is_ascii_alphabetic)
        .zip(gram.iter().rposition(u8::is_ascii_alphabetic))
        .map_or(&[][..], |(first, last)| &gram[first..=last]);
    let lower = trimmed.to_ascii_lowercase();
    !lower.is_empty()
        && (memchr::memmem::find(WORDS_JOINED.as_bytes(), &lower).is_some()
            || WORDS
                .find_overlapping_iter(&lower)
                .any(|word| word.len() >= 5))
}

/// A rarity score: higher is rarer. Grows with length and with uncommon
/// bytes; a literal that is mostly common words counts only its other bytes.
pub fn rarity(literal: &[u8]) -> i64 {
    let total: i64 = literal.iter().map(|&b| 11 - i64::from(commonness(b))).sum();
    let lower = literal.to_ascii_lowercase();
    let common: i64 = WORDS
        .find_overlapping_iter(&lower)
        .map(|word| {
            literal[word.range()]
                .iter()
                .map(|&b| 11 - i64::from(commonness(b)))
                .sum::<i64>()
        })
        .sum();
    // Common words still filter a little: keep a quarter of their weight.
    let score = total - common + common / 4;
    // Three bytes (`ata`, `msg`) are in some word of most lines whatever
    // they are: worth half as much.
    if literal.len() <= 3 { score / 2 } else { score }
}

/// The score of searching for a whole set: its weakest member, less a
/// cost per doubling of the number of members.
pub fn set_rarity(set: &[Vec<u8>]) -> i64 {
    let weakest = set.iter().map(|l| rarity(l)).min().unwrap_or(i64::MAX);
    let doublings = i64::from(usize::BITS - set.len().max(1).leading_zeros()) - 1;
    weakest.saturating_sub(4 * doublings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_phrases_outrank_common_words() {
        assert!(rarity(b"Probe failed") > rarity(b"containerName"));
        assert!(rarity(b"ping timeout of ") > rarity(b"connection"));
        assert!(rarity(b"MountVolume.SetUp failed for volume ") > rarity(b" for volume "));
        assert!(rarity(b"EROFS") > rarity(b"error"));
    }

    #[test]
    fn more_members_cost_something() {
        let one = vec![b"Liveness probe failed".to_vec()];
        let two = vec![
            b"Liveness probe failed".to_vec(),
            b"Readiness probe failed".to_vec(),
        ];
        assert!(set_rarity(&one) > set_rarity(&two));
    }
}
