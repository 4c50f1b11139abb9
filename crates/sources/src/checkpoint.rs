//! Where each followed file stands, persisted so a restart resumes there.
//!
//! A checkpoint names the file by path, device and inode, and by a
//! fingerprint of its first bytes: a path reused by a new file (rotation)
//! or a file rewritten from the start (copytruncate) does not match and is
//! read from its start instead. The file is saved with
//! [`faultline_state`]: atomically and durably, and a damaged one is
//! moved aside rather than keeping faultline from starting.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use faultline_state as state;
use serde::{Deserialize, Serialize};

/// File name of the checkpoints in the state directory.
pub const FILE_NAME: &str = "checkpoints.json";

/// Bytes of a file's start that identify it.
pub const FINGERPRINT: usize = 64;

/// Where one file stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The path it was followed at.
    pub path: PathBuf,
    /// Device and inode.
    pub dev: u64,
    pub ino: u64,
    /// Its first bytes (up to [`FINGERPRINT`]), hex.
    pub fingerprint: String,
    /// Bytes processed.
    pub offset: u64,
}

/// What a checkpoint says of a file found at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The same file: go on from this offset.
    At(u64),
    /// Another file was followed at this path: this one is new.
    Replaced,
    /// Nothing was recorded at this path.
    Unknown,
}

/// The checkpoints of every followed file, by path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoints {
    files: BTreeMap<PathBuf, Checkpoint>,
}

impl Checkpoints {
    /// Reads the checkpoints in `dir`; none when there is no file yet. A
    /// file that cannot be understood is moved aside and none are
    /// returned, with the warning to print; a file that cannot be read is
    /// an error naming it.
    pub fn load(dir: &Path) -> io::Result<(Checkpoints, Option<String>)> {
        let (checkpoints, warning) = state::load(dir, FILE_NAME, state::now_secs())?.into_parts();
        Ok((checkpoints.unwrap_or_default(), warning))
    }

    /// Writes them to `dir`, atomically and durably.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        state::save(dir, FILE_NAME, self)
    }

    /// Records where a file stands.
    pub fn record(&mut self, checkpoint: Checkpoint) {
        self.files.insert(checkpoint.path.clone(), checkpoint);
    }

    /// Where the file at `path` stood: [`Resume::At`] its offset if it is
    /// the same file (same device and inode, and its first bytes still
    /// start as they did), [`Resume::Replaced`] if another file was
    /// recorded there, [`Resume::Unknown`] if none was.
    pub fn resume(&self, path: &Path, dev: u64, ino: u64, head: &[u8]) -> Resume {
        let Some(known) = self.files.get(path) else {
            return Resume::Unknown;
        };
        let same = known.dev == dev
            && known.ino == ino
            && hex(&head[..head.len().min(FINGERPRINT)]).starts_with(&known.fingerprint);
        if same {
            Resume::At(known.offset)
        } else {
            Resume::Replaced
        }
    }

    /// How many files are recorded.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_resume_only_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Checkpoints::load(dir.path()).unwrap(),
            (Checkpoints::default(), None)
        );
        let mut checkpoints = Checkpoints::default();
        checkpoints.record(Checkpoint {
            path: "/var/log/pods/a/c/0.log".into(),
            dev: 1,
            ino: 42,
            fingerprint: hex(b"2026-02-19T03:04:05Z stdout F hello"),
            offset: 120,
        });
        checkpoints.save(dir.path()).unwrap();
        let (loaded, warning) = Checkpoints::load(dir.path()).unwrap();
        assert_eq!((&loaded, warning), (&checkpoints, None));
        let path = Path::new("/var/log/pods/a/c/0.log");
        let head = b"2026-02-19T03:04:05Z stdout F hello\n2026-02-19T03:04:06Z stdout F more";
        assert_eq!(loaded.resume(path, 1, 42, head), Resume::At(120));
        assert_eq!(
            loaded.resume(path, 1, 43, head),
            Resume::Replaced,
            "another inode"
        );
        assert_eq!(
            loaded.resume(path, 1, 42, b"2026-02-20T00:00:00Z stdout F new"),
            Resume::Replaced,
            "rewritten from the start"
        );
        assert_eq!(
            loaded.resume(Path::new("/other.log"), 1, 42, head),
            Resume::Unknown
        );
        // A damaged file does not keep faultline from starting: it is
        // moved aside, loudly, and every file is read afresh.
        std::fs::write(dir.path().join(FILE_NAME), "{not json").unwrap();
        let (fresh, warning) = Checkpoints::load(dir.path()).unwrap();
        assert!(fresh.is_empty());
        let warning = warning.unwrap();
        assert!(warning.contains("checkpoints.json: "), "{warning}");
        assert!(warning.contains("moved to"), "{warning}");
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}
