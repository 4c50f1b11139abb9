//! The node's kernel log: the ring buffer, `/dev/kmsg`, which a DaemonSet
//! mounts from the host (privileged). Every record is labelled with the
//! node's name.
//!
//! * Each `read` returns one record,
//!   `<prio>,<seq>,<µs since boot>,<flags>;<message>` followed by
//!   dictionary lines (` KEY=value`), which are dropped. Reading starts
//!   after the newest record (or at the oldest one still in the buffer,
//!   with `from_start`, holding the event clock until they are read).
//!   When the kernel overwrote records before they were read, `read`
//!   fails with `EPIPE`: the loss is counted and reading goes on.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::watermark::Watermark;
use crate::{Batch, Stream};

/// Largest kmsg record (the kernel's limit is about 1 KiB of message plus
/// its dictionary).
const RECORD: usize = 8192;

/// A stream of the node's own logs, labelled with the node's name.
pub(crate) fn stream(source: &'static str, origin: &str, node: &str) -> Arc<Stream> {
    Arc::new(Stream {
        source,
        origin: origin.to_string(),
        path: None,
        labels: vec![("node".to_string(), node.to_string())],
    })
}

/// One line of `stream` as a batch.
pub(crate) fn one_line(stream: &Arc<Stream>, mut line: Vec<u8>) -> Batch {
    line.push(b'\n');
    Batch {
        stream: stream.clone(),
        lines: line,
        checkpoint: None,
        truncated: false,
        late: 0,
    }
}

/// How often a reader that has read every record looks for new ones.
const KMSG_POLL: Duration = Duration::from_millis(100);

/// `O_NONBLOCK` on Linux: a read of `/dev/kmsg` with no record waiting
/// fails with `EAGAIN` instead of waiting, which tells the backlog's end.
const O_NONBLOCK: i32 = 0o4000;

/// Reads kernel records from `path` (`/dev/kmsg`) until the channel
/// closes; counts records the kernel overwrote before they were read in
/// `lost`. `watermark` holds the event clock while the records already in
/// the buffer are read (`from_start`), then follows the clock; it is let
/// go when reading ends. Runs on a blocking thread.
pub fn read_kmsg(
    path: PathBuf,
    node: String,
    from_start: bool,
    tx: mpsc::Sender<Batch>,
    lost: Arc<AtomicU64>,
    watermark: Watermark,
) -> io::Result<()> {
    let read = read_records(&path, &node, from_start, &tx, &lost, &watermark);
    watermark.idle();
    read
}

fn read_records(
    path: &Path,
    node: &str,
    from_start: bool,
    tx: &mpsc::Sender<Batch>,
    lost: &AtomicU64,
    watermark: &Watermark,
) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
    if !from_start {
        file.seek(SeekFrom::End(0))?;
    }
    let stream = stream("kmsg", &path.display().to_string(), node);
    let mut record = vec![0u8; RECORD];
    loop {
        let got = match file.read(&mut record) {
            Ok(0) => return Ok(()),
            Ok(got) => got,
            // Every record in the buffer is read: what comes next is
            // being written now.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                watermark.live();
                if tx.is_closed() {
                    return Ok(());
                }
                std::thread::sleep(KMSG_POLL);
                continue;
            }
            // Records were overwritten before they were read.
            Err(err) if err.raw_os_error() == Some(32) => {
                lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("{}: {err}", path.display()),
                ));
            }
        };
        // The record's first line; dictionary lines follow it.
        let first = record[..got]
            .split(|&b| b == b'\n')
            .next()
            .unwrap_or_default()
            .to_vec();
        if tx.blocking_send(one_line(&stream, first)).is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kmsg_records_arrive_one_per_line_with_the_node() {
        // A file in the kmsg record format stands in for the device here;
        // the watch tests read the real /dev/kmsg as root.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsg");
        std::fs::write(
            &path,
            "3,1183,812345678,-;EXT4-fs (sdb): Remounting filesystem read-only\n SUBSYSTEM=block\n",
        )
        .unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let lost = Arc::new(AtomicU64::new(0));
        let watermarks = crate::watermark::Watermarks::default();
        let watermark = watermarks.holding();
        let reader = {
            let lost = lost.clone();
            tokio::task::spawn_blocking(move || {
                read_kmsg(path, "n1".into(), true, tx, lost, watermark)
            })
        };
        let batch = rx.recv().await.unwrap();
        assert_eq!(
            batch.stream.labels,
            [("node".to_string(), "n1".to_string())]
        );
        // A regular file gives all of it in one read: the first line only.
        assert_eq!(
            String::from_utf8(batch.lines).unwrap(),
            "3,1183,812345678,-;EXT4-fs (sdb): Remounting filesystem read-only\n"
        );
        reader.await.unwrap().unwrap();
        assert_eq!(lost.load(Ordering::Relaxed), 0);
        // Reading ended: the event clock no longer waits for it.
        assert_eq!(watermarks.low(1_000 * 1_000_000_000), 998 * 1_000_000_000);
    }
}
