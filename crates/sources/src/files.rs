//! Following log files: `watch --files GLOB`.
//!
//! Every poll interval the globs are expanded and each followed file is
//! read from where it stands to its end, by an open handle:
//!
//! * a file resumes at its checkpoint; a file without one is read from its
//!   start — except at the very first start (no checkpoints at all), when
//!   the files already there are history and are followed from their end
//!   (unless `read_existing`);
//! * **rename rotation** (`0.log` renamed away, a new `0.log` created): the
//!   renamed file is still read to its end through its open handle, then
//!   the new file from its start — no line lost or read twice;
//! * **copytruncate** (the file copied, then truncated in place): a file
//!   shorter than its offset was truncated, and is read again from 0;
//! * a file deleted while open is read to its end, then let go.
//!
//! Only whole lines are passed on; a partial last line waits for its end
//! (or for the file to be let go). Backpressure: when the channel is full
//! the source waits, offsets unchanged.
//!
//! File system events (inotify, through `notify`) on the directories the
//! globs' walks go through wake the follower as soon as something is
//! written, so lines are seen within milliseconds; the poll interval is
//! the fallback where events cannot be had (no inotify watches left, a
//! network file system, a directory that cannot be read). Directories are
//! watched one by one, as the walk finds them (and the directory a linked
//! file lives in), so one unreadable directory costs events for itself
//! only; only events that can bring lines wake the follower (not the
//! opens of its own walk). A file must live at its path
//! until the next look to be seen: one created and renamed away in
//! between is missed.
//!
//! Globs are walked without `glob::glob` (see [`discover`]): symbolic link
//! loops are stopped and reported, unreadable directories reported, and at
//! most `max_files` files are followed at once (each holds a descriptor),
//! the most recently written first. A problem is reported once while it
//! lasts, not at every poll.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::checkpoint::{self, Checkpoint, Checkpoints, Resume};
use crate::watermark::Watermark;
use crate::{Batch, MAX_LINE, Stream};

mod discover;

use discover::Glob;

/// Bytes read from one file per read.
const READ: usize = 256 << 10;

/// Bytes read from one file per round at most, so that a file with an
/// endless line (skipped past [`MAX_LINE`]) does not keep the others
/// waiting.
const ROUND: usize = 64 << 20;

/// Files followed at once unless configured otherwise.
pub const DEFAULT_MAX_FILES: usize = 10_000;

/// How files are followed.
#[derive(Clone, Debug)]
pub struct FileConfig {
    /// Glob patterns of the files (`/var/log/pods/*/*/*.log`).
    pub globs: Vec<String>,
    /// How often to look for new lines and files.
    pub poll: Duration,
    /// Read files that exist at the start from their start (when they
    /// have no checkpoint), not from their end.
    pub read_existing: bool,
    /// Where followed files stood when faultline last stopped.
    pub checkpoints: Checkpoints,
    /// Most files followed at once.
    pub max_files: usize,
    /// Set to the number of matching files not followed because
    /// `max_files` are.
    pub unfollowed: Arc<AtomicU64>,
    /// Held until the files are read to their ends (the backlog of
    /// `read_existing`, or what was written while faultline was down),
    /// then follows the clock.
    pub watermark: Watermark,
}

/// A file being followed.
struct Followed {
    stream: Arc<Stream>,
    file: File,
    dev: u64,
    ino: u64,
    /// Bytes passed on (always at a line boundary).
    offset: u64,
    /// Bytes read after `offset` that do not end a line yet.
    pending: Vec<u8>,
    /// The first bytes of the file, for its checkpoint.
    fingerprint: Vec<u8>,
    /// Its path no longer leads to it (rotated or deleted): read to the
    /// end, then let go.
    detached: bool,
    /// The rest of a line cut at [`MAX_LINE`] is being skipped.
    skipping: bool,
}

/// Follows the files of `config` until `stop` turns true, sending batches
/// on `tx`. Errors on single files (unreadable, vanished) are reported on
/// `errors` and the others go on.
pub async fn follow(
    config: FileConfig,
    tx: mpsc::Sender<Batch>,
    errors: mpsc::Sender<String>,
    mut stop: watch::Receiver<bool>,
) {
    let mut globs = Vec::new();
    for text in &config.globs {
        match Glob::new(text) {
            Ok(glob) => globs.push(glob),
            Err(problem) => {
                let _ = errors.send(problem).await;
            }
        }
    }
    let wake = Arc::new(tokio::sync::Notify::new());
    let events = match Events::new(wake.clone()) {
        Ok(events) => Some(events),
        Err(err) => {
            let _ = errors
                .send(format!(
                    "no file system events ({err}); looking for new lines every {:?}",
                    config.poll
                ))
                .await;
            None
        }
    };
    let mut tailer = Tailer {
        config,
        globs,
        files: HashMap::new(),
        first_poll: true,
        told: HashSet::new(),
        events,
    };
    // Whether a file had more than one round's worth to read; then the
    // next round comes at once (looking for files only once per poll).
    let mut behind = false;
    let mut looked_at: Option<tokio::time::Instant> = None;
    loop {
        let look = !behind || looked_at.is_none_or(|at| at.elapsed() >= tailer.config.poll);
        if look {
            looked_at = Some(tokio::time::Instant::now());
        }
        let batches;
        (batches, behind) = tailer.poll(look, &errors).await;
        if !batches.is_empty() {
            // What one round read goes out whole before the clock moves.
            tailer.config.watermark.hold();
        }
        for batch in batches {
            // While the consumer is behind, keep finding files: a file that
            // is opened is safe from rotation, one never seen is lost.
            loop {
                tokio::select! {
                    permit = tx.reserve() => {
                        let Ok(permit) = permit else { return };
                        permit.send(batch);
                        break;
                    }
                    _ = tokio::time::sleep(tailer.config.poll) => {
                        let mut problems = Vec::new();
                        tailer.discover(&mut problems);
                        let new = tailer.not_told(problems, false);
                        report(&errors, new).await;
                    }
                }
            }
        }
        if behind {
            if *stop.borrow() {
                return;
            }
            tokio::task::yield_now().await;
            continue;
        }
        // Every file is read to its end: what comes next is being written.
        tailer.config.watermark.live();
        tokio::select! {
            _ = tokio::time::sleep(tailer.config.poll) => {}
            _ = wake.notified() => {
                // A burst of writes is one look.
                tokio::time::sleep(COALESCE.min(tailer.config.poll)).await;
            }
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// How long a wake-up waits for the rest of a burst of writes.
const COALESCE: Duration = Duration::from_millis(5);

/// File system events on the directories the globs' walks go through:
/// each wakes the follower.
struct Events {
    watcher: notify::RecommendedWatcher,
    /// The directories watched now, with their inode numbers (a
    /// directory deleted and made again at its path is watched anew).
    watched: HashSet<(PathBuf, u64)>,
    wake: Arc<tokio::sync::Notify>,
}

impl Events {
    /// Events that wake `wake`, on no directory yet.
    fn new(wake: Arc<tokio::sync::Notify>) -> notify::Result<Events> {
        let waker = wake.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|event| may_bring_lines(&event.kind)) {
                waker.notify_one();
            }
        })?;
        Ok(Events {
            watcher,
            watched: HashSet::new(),
            wake,
        })
    }

    /// Watches exactly `dirs` (each on its own, not recursively): starts
    /// on the new ones, stops on those gone. A directory that cannot be
    /// watched is pushed to `problems`, unless it is missing or unreadable
    /// (the walk tells that). When a directory was added, one more look
    /// is asked for: a file created in it before its watch began sent no
    /// event.
    fn update(&mut self, dirs: HashSet<(PathBuf, u64)>, problems: &mut Vec<String>) {
        use notify::Watcher;
        let gone: Vec<(PathBuf, u64)> = self.watched.difference(&dirs).cloned().collect();
        for (path, _) in &gone {
            // A deleted directory's watch is gone already: nothing to say.
            let _ = self.watcher.unwatch(path);
        }
        // inotify has one watch per directory, however many paths lead to
        // it (a symbolic link): the other paths to one let go are watched
        // again.
        let gone: HashSet<u64> = gone.into_iter().map(|(_, ino)| ino).collect();
        self.watched.retain(|(_, ino)| !gone.contains(ino));
        let mut watched = HashSet::with_capacity(dirs.len());
        let mut added = false;
        let mut failed = BTreeSet::new();
        for dir in dirs {
            if !self.watched.contains(&dir) {
                let watching = self
                    .watcher
                    .watch(&dir.0, notify::RecursiveMode::NonRecursive);
                match watching {
                    Ok(()) => added = true,
                    // Tried again at the next look.
                    Err(err) => {
                        if !missing_or_unreadable(&err) {
                            failed.insert(why_no_events(err.kind));
                        }
                        continue;
                    }
                }
            }
            watched.insert(dir);
        }
        self.watched = watched;
        // One message, however many directories: the same while it lasts.
        if let Some(why) = failed.first() {
            problems.push(format!(
                "no file system events for some directories ({why}); \
                 looking for new lines in them at every poll"
            ));
        }
        if added {
            self.wake.notify_one();
        }
    }
}

/// Whether an event on a watched directory can mean new lines or files:
/// a write, a file made, renamed or removed. Not an open or a read —
/// faultline's own look opens every directory it walks, and waking on
/// that would make it look again at once, for ever.
fn may_bring_lines(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any | EventKind::Other => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
    }
}

/// Why a directory cannot be watched, for the operator.
fn why_no_events(kind: notify::ErrorKind) -> String {
    match kind {
        notify::ErrorKind::MaxFilesWatch => {
            "the inotify watch limit is reached; raise fs.inotify.max_user_watches".to_string()
        }
        notify::ErrorKind::Io(io) => io.to_string(),
        notify::ErrorKind::Generic(text) => text,
        other => format!("{other:?}"),
    }
}

/// The watch failed because the directory is missing or may not be read:
/// the walk reports that itself.
fn missing_or_unreadable(err: &notify::Error) -> bool {
    match &err.kind {
        notify::ErrorKind::PathNotFound => true,
        notify::ErrorKind::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
        ),
        _ => false,
    }
}

struct Tailer {
    config: FileConfig,
    /// The valid globs of `config`.
    globs: Vec<Glob>,
    /// Followed files by (device, inode).
    files: HashMap<(u64, u64), Followed>,
    first_poll: bool,
    /// Problems reported and still standing.
    told: HashSet<String>,
    /// File system events, when they can be had.
    events: Option<Events>,
}

impl Tailer {
    /// One round: find files (if `look`), read what is new in each.
    /// Returns the batches read and whether a file has more to read.
    async fn poll(&mut self, look: bool, errors: &mpsc::Sender<String>) -> (Vec<Batch>, bool) {
        let mut problems = Vec::new();
        if look {
            self.discover(&mut problems);
        }
        let mut batches = Vec::new();
        let mut done = Vec::new();
        let mut behind = false;
        for (id, followed) in self.files.iter_mut() {
            let at_end = match followed.read() {
                Ok((batch, at_end)) => {
                    batches.extend(batch);
                    at_end
                }
                Err(err) => {
                    problems.push(format!("{}: {err}", followed.stream.origin));
                    done.push(*id);
                    continue;
                }
            };
            behind |= !at_end;
            // A file whose path no longer leads to it is let go once read
            // to its end.
            if followed.detached && at_end {
                batches.extend(followed.flush_pending());
                done.push(*id);
            }
        }
        for id in done {
            self.files.remove(&id);
        }
        self.first_poll = false;
        let new = self.not_told(problems, look);
        report(errors, new).await;
        // Stream order between files does not matter; within a file the
        // batches are in order.
        (batches, behind)
    }

    /// The problems among `problems` not reported yet. After a whole
    /// round (`round`), problems it did not meet are over and would be
    /// reported again should they come back.
    fn not_told(&mut self, problems: Vec<String>, round: bool) -> Vec<String> {
        let new = problems
            .iter()
            .filter(|p| !self.told.contains(*p))
            .cloned()
            .collect::<Vec<_>>();
        if round {
            self.told = problems.into_iter().collect();
        } else {
            self.told.extend(problems);
        }
        new
    }

    /// Walks the globs; starts following files not followed yet (while
    /// fewer than `max_files` are, the most recently written first), and
    /// marks the followed files no longer found as detached.
    fn discover(&mut self, problems: &mut Vec<String>) {
        let mut present = HashSet::new();
        let mut fresh = Vec::new();
        let mut dirs = Vec::new();
        for glob in &self.globs {
            for (path, meta) in glob.files(problems, &mut dirs) {
                let id = (meta.dev(), meta.ino());
                if present.insert(id) && !self.files.contains_key(&id) {
                    fresh.push((path, meta));
                }
            }
        }
        if let Some(events) = &mut self.events {
            events.update(dirs.into_iter().collect(), problems);
        }
        let room = self.config.max_files.saturating_sub(self.files.len());
        let unfollowed = fresh.len().saturating_sub(room);
        if unfollowed > 0 {
            fresh.sort_by_key(|(_, meta)| std::cmp::Reverse(meta.modified().ok()));
            fresh.truncate(room);
            problems.push(format!(
                "more files match --files than are followed at once (--max-files {}): \
                 the least recently written wait until followed ones go; \
                 raise --max-files (and the open-file limit) or narrow the globs",
                self.config.max_files
            ));
        }
        self.config
            .unfollowed
            .store(unfollowed as u64, Ordering::Relaxed);
        for (path, meta) in fresh {
            let id = (meta.dev(), meta.ino());
            match self.start(&path, id, meta.len()) {
                Ok(followed) => {
                    self.files.insert(id, followed);
                }
                Err(err) => problems.push(format!("{}: cannot read: {err}", path.display())),
            }
        }
        for (id, followed) in self.files.iter_mut() {
            if !present.contains(id) {
                followed.detached = true;
            }
        }
    }

    /// Opens a newly seen file at the offset it should be read from.
    fn start(&self, path: &Path, (dev, ino): (u64, u64), len: u64) -> io::Result<Followed> {
        let mut file = File::open(path)?;
        let mut head = vec![0u8; checkpoint::FINGERPRINT];
        let got = read_up_to(&mut file, &mut head)?;
        head.truncate(got);
        let offset = match self.config.checkpoints.resume(path, dev, ino, &head) {
            Resume::At(offset) if offset <= len => offset,
            // Truncated since, or a new file at a known path: all of it.
            Resume::At(_) | Resume::Replaced => 0,
            // The very first start (no checkpoints at all): files already
            // there are history, followed from their end.
            Resume::Unknown
                if self.first_poll
                    && self.config.checkpoints.is_empty()
                    && !self.config.read_existing =>
            {
                len
            }
            Resume::Unknown => 0,
        };
        let origin = path.display().to_string();
        Ok(Followed {
            stream: Arc::new(Stream {
                source: "file",
                origin,
                path: Some(path.to_path_buf()),
                labels: Vec::new(),
            }),
            file,
            dev,
            ino,
            offset,
            pending: Vec::new(),
            fingerprint: head,
            detached: false,
            skipping: false,
        })
    }
}

impl Followed {
    /// Reads what is new; returns the whole lines as a batch, and whether
    /// it read to the end of the file.
    fn read(&mut self) -> io::Result<(Option<Batch>, bool)> {
        let len = self.file.metadata()?.len();
        let read_to = self.offset + self.pending.len() as u64;
        if len < read_to || self.rewritten()? {
            // Truncated in place (copytruncate): the file starts over.
            self.offset = 0;
            self.pending.clear();
            self.skipping = false;
            self.fingerprint.clear();
        }
        let mut lines = Vec::new();
        let mut truncated = false;
        let mut at_end = false;
        let mut read = 0;
        loop {
            let at = self.offset + self.pending.len() as u64;
            self.file.seek(SeekFrom::Start(at))?;
            let mut chunk = vec![0u8; READ];
            let got = read_up_to(&mut self.file, &mut chunk)?;
            if got == 0 {
                at_end = true;
                break;
            }
            chunk.truncate(got);
            read += got;
            if self.fingerprint.len() < checkpoint::FINGERPRINT
                && at < checkpoint::FINGERPRINT as u64
            {
                let from = usize::try_from(at).unwrap_or(usize::MAX);
                let wanted = checkpoint::FINGERPRINT - self.fingerprint.len();
                if from == self.fingerprint.len() {
                    self.fingerprint
                        .extend_from_slice(&chunk[..chunk.len().min(wanted)]);
                }
            }
            self.pending.extend_from_slice(&chunk);
            truncated |= self.take_lines(&mut lines);
            if got < READ {
                at_end = true;
                break;
            }
            if lines.len() >= READ || read >= ROUND {
                break;
            }
        }
        let batch = (!lines.is_empty()).then(|| Batch {
            stream: self.stream.clone(),
            lines,
            checkpoint: self.checkpoint(),
            truncated,
            late: 0,
        });
        Ok((batch, at_end))
    }

    /// Whether the file's first bytes are no longer the ones read: it was
    /// truncated and written past the old offset between two polls.
    fn rewritten(&mut self) -> io::Result<bool> {
        if self.fingerprint.is_empty() {
            return Ok(false);
        }
        let mut head = vec![0u8; self.fingerprint.len()];
        self.file.seek(SeekFrom::Start(0))?;
        let got = read_up_to(&mut self.file, &mut head)?;
        Ok(head[..got] != self.fingerprint[..got])
    }

    /// Moves the whole lines of `pending` to `lines`, advancing the
    /// offset; a line longer than [`MAX_LINE`] is cut there. Says whether
    /// one was cut.
    fn take_lines(&mut self, lines: &mut Vec<u8>) -> bool {
        let mut cut = false;
        // Where the lines not taken yet start: `pending` is shifted once,
        // at the end, not once per line.
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    if !self.skipping {
                        lines.extend_from_slice(&rest[..end.min(MAX_LINE)]);
                        lines.push(b'\n');
                        cut |= end > MAX_LINE;
                    }
                    self.skipping = false;
                    self.offset += end as u64 + 1;
                    start += end + 1;
                }
                // The rest of a cut line goes as it comes.
                None if self.skipping => {
                    self.offset += rest.len() as u64;
                    start = self.pending.len();
                    break;
                }
                None if rest.len() >= MAX_LINE => {
                    lines.extend_from_slice(&rest[..MAX_LINE]);
                    lines.push(b'\n');
                    cut = true;
                    self.skipping = true;
                    self.offset += rest.len() as u64;
                    start = self.pending.len();
                }
                None => break,
            }
        }
        self.pending.drain(..start);
        cut
    }

    /// The unterminated last line of a file being let go, as a batch.
    fn flush_pending(&mut self) -> Option<Batch> {
        if self.pending.is_empty() || self.skipping {
            return None;
        }
        let mut lines = std::mem::take(&mut self.pending);
        self.offset += lines.len() as u64;
        lines.push(b'\n');
        Some(Batch {
            stream: self.stream.clone(),
            lines,
            checkpoint: self.checkpoint(),
            truncated: false,
            late: 0,
        })
    }

    /// Where the file stands; none once its path leads elsewhere (the
    /// path's checkpoint belongs to the file there now).
    fn checkpoint(&self) -> Option<Checkpoint> {
        (!self.detached).then(|| Checkpoint {
            path: self.stream.path.clone().unwrap_or_default(),
            dev: self.dev,
            ino: self.ino,
            fingerprint: checkpoint::hex(&self.fingerprint),
            offset: self.offset,
        })
    }
}

/// Sends each problem on `errors` (a closed channel drops them).
async fn report(errors: &mpsc::Sender<String>, problems: Vec<String>) {
    for problem in problems {
        let _ = errors.send(problem).await;
    }
}

/// Reads into `buf` until it is full or the file ends; says how much.
pub fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests;
