//! faultline's live sources: where `faultline watch` reads from.
//!
//! Every source sends [`Batch`]es — whole lines of one stream, in order —
//! on a bounded channel. A full channel makes the source wait (files keep
//! their offsets, so nothing is lost while it waits). A file batch carries
//! the [`Checkpoint`] the file reaches once the batch is processed; the
//! consumer records it in [`Checkpoints`] after processing, and they are
//! persisted atomically, so a restart resumes where processing stopped.

pub mod checkpoint;
pub mod files;
pub mod journald;
pub mod kernel;
pub mod loki;
pub mod overlap;
pub mod push;
pub mod stdin;
pub mod watermark;
pub mod window;

use std::path::PathBuf;
use std::sync::Arc;

pub use checkpoint::{Checkpoint, Checkpoints, Resume};

/// One stream of lines: a file (across its rotations), a Loki stream,
/// a pushed stream, the kernel log, journald or standard input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stream {
    /// What kind of source it comes from: `file`, `loki`, `push`, `kmsg`,
    /// `journald` or `stdin` (a metric label: never anything per stream).
    pub source: &'static str,
    /// What hits say they come from: the path, or `-`.
    pub origin: String,
    /// The file's path, when it is one (its layout gives labels).
    pub path: Option<PathBuf>,
    /// Labels the source gives the stream (a pushed stream's labels).
    pub labels: Vec<(String, String)>,
}

/// Whole lines of one stream, each ending in `\n`, in stream order.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The stream they come from.
    pub stream: Arc<Stream>,
    /// The lines.
    pub lines: Vec<u8>,
    /// Where the stream stands once these lines are processed (files).
    pub checkpoint: Option<Checkpoint>,
    /// A line in it was longer than [`MAX_LINE`] and was cut there.
    pub truncated: bool,
    /// Entries in it that came later than the source's window of allowed
    /// lateness (passed on all the same).
    pub late: usize,
}

/// Longest line passed on; a longer one is cut here (its head is matched)
/// and the rest of it skipped.
pub const MAX_LINE: usize = 4 << 20;

/// Resolves once `stop` is true (or its sender is gone): the graceful
/// shutdown of a server.
pub async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
