//! The node's own logs: the kernel ring buffer (`/dev/kmsg`) and journald.
//!
//! A DaemonSet mounts the host's `/dev/kmsg` (privileged) and, for the
//! kubelet and other node services, runs `journalctl`. Every record is
//! labelled with the node's name.
//!
//! * `/dev/kmsg`: each `read` returns one record,
//!   `<prio>,<seq>,<µs since boot>,<flags>;<message>` followed by
//!   dictionary lines (` KEY=value`), which are dropped. Reading starts
//!   after the newest record (or at the oldest one still in the buffer,
//!   with `from_start`). When the kernel overwrote records before they
//!   were read, `read` fails with `EPIPE`: the loss is counted and
//!   reading goes on.
//! * journald: `journalctl --output=json --follow` (`--lines=0`, or all
//!   the journal with `from_start`), one JSON object per line.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::{Batch, Stream};

/// Largest kmsg record (the kernel's limit is about 1 KiB of message plus
/// its dictionary).
const RECORD: usize = 8192;

fn stream(source: &'static str, origin: &str, node: &str) -> Arc<Stream> {
    Arc::new(Stream {
        source,
        origin: origin.to_string(),
        path: None,
        labels: vec![("node".to_string(), node.to_string())],
    })
}

fn one_line(stream: &Arc<Stream>, mut line: Vec<u8>) -> Batch {
    line.push(b'\n');
    Batch {
        stream: stream.clone(),
        lines: line,
        checkpoint: None,
        truncated: false,
        late: 0,
    }
}

/// Reads kernel records from `path` (`/dev/kmsg`) until the channel
/// closes; counts records the kernel overwrote before they were read in
/// `lost`. Runs on a blocking thread: a read waits for the next record.
pub fn read_kmsg(
    path: PathBuf,
    node: String,
    from_start: bool,
    tx: mpsc::Sender<Batch>,
    lost: Arc<AtomicU64>,
) -> io::Result<()> {
    let mut file = std::fs::File::open(&path)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
    if !from_start {
        file.seek(SeekFrom::End(0))?;
    }
    let stream = stream("kmsg", &path.display().to_string(), &node);
    let mut record = vec![0u8; RECORD];
    loop {
        let got = match file.read(&mut record) {
            Ok(0) => return Ok(()),
            Ok(got) => got,
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

/// Follows journald through `journalctl --output=json --follow` — the
/// system journal, or the journal files in `directory` (a node's
/// `/var/log/journal` mounted into a DaemonSet) — until it ends or the
/// channel closes.
pub async fn follow_journal(
    node: String,
    from_start: bool,
    directory: Option<std::path::PathBuf>,
    tx: mpsc::Sender<Batch>,
) -> io::Result<()> {
    let mut command = tokio::process::Command::new("journalctl");
    command.args(["--output=json", "--follow"]);
    if let Some(directory) = directory {
        command.arg("--directory").arg(directory);
    }
    if !from_start {
        command.arg("--lines=0");
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| io::Error::new(err.kind(), format!("cannot run journalctl: {err}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("journalctl has no standard output"))?;
    let stream = stream("journald", "journald", &node);
    let mut lines = tokio::io::BufReader::new(stdout).split(b'\n');
    while let Some(line) = lines.next_segment().await? {
        if tx.send(one_line(&stream, line)).await.is_err() {
            break;
        }
    }
    Ok(())
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
        let reader = {
            let lost = lost.clone();
            tokio::task::spawn_blocking(move || read_kmsg(path, "n1".into(), true, tx, lost))
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
    }
}
