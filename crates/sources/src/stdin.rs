//! Standard input: `watch -`, for `kubectl logs -f … | faultline watch -`.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::{Batch, MAX_LINE, Stream};

/// Lines gathered into one batch while more are already buffered.
const BATCH: usize = 64 << 10;

/// Reads `input` (standard input in `watch -`) line by line to its end,
/// sending whole lines as batches: a line as soon as it is complete, more
/// at once when they are already buffered. A line longer than
/// [`MAX_LINE`] is cut there. Returns the read error, if one ended it.
pub async fn read(input: impl AsyncRead + Unpin, tx: mpsc::Sender<Batch>) -> std::io::Result<()> {
    let stream = Arc::new(Stream {
        source: "stdin",
        origin: "-".into(),
        path: None,
        labels: Vec::new(),
    });
    let mut reader = BufReader::with_capacity(BATCH, input);
    let mut lines = Vec::new();
    let mut truncated = false;
    loop {
        let start = lines.len();
        let got = reader.read_until(b'\n', &mut lines).await?;
        if got == 0 {
            break;
        }
        if !lines.ends_with(b"\n") {
            lines.push(b'\n');
        }
        if lines.len() - start > MAX_LINE + 1 {
            lines.truncate(start + MAX_LINE);
            lines.push(b'\n');
            truncated = true;
        }
        if reader.buffer().is_empty() || lines.len() >= BATCH {
            let batch = Batch {
                stream: stream.clone(),
                lines: std::mem::take(&mut lines),
                checkpoint: None,
                truncated: std::mem::take(&mut truncated),
            };
            if tx.send(batch).await.is_err() {
                return Ok(());
            }
        }
    }
    if !lines.is_empty() {
        let _ = tx
            .send(Batch {
                stream,
                lines,
                checkpoint: None,
                truncated,
            })
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_arrive_whole_and_the_last_one_gets_its_newline() {
        let (tx, mut rx) = mpsc::channel(4);
        let input: &[u8] = b"one\ntwo\nthree";
        read(input, tx).await.unwrap();
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            assert_eq!(batch.stream.origin, "-");
            all.extend(batch.lines);
        }
        assert_eq!(all, b"one\ntwo\nthree\n");
    }
}
