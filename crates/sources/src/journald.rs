//! The node's journal, for the kubelet and other node services:
//! `journalctl --output=json --follow` (`--lines=0`, or all the journal
//! with `from_start`), one JSON object per line, labelled with the node's
//! name.

use std::io;

use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::Batch;
use crate::kernel::{one_line, stream};

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
