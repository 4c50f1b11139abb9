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
/// [`MAX_LINE`] is cut there and the rest of it skipped (memory stays
/// bounded). Returns the read error, if one ended it.
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
    // Bytes of the current line; past MAX_LINE the rest of it is skipped,
    // so memory stays bounded whatever the line's length.
    let mut line_len = 0usize;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            break;
        }
        let (chunk, ends_line) = match memchr::memchr(b'\n', available) {
            Some(at) => (&available[..at], true),
            None => (available, false),
        };
        let room = MAX_LINE.saturating_sub(line_len);
        lines.extend_from_slice(&chunk[..chunk.len().min(room)]);
        truncated |= chunk.len() > room;
        line_len = line_len.saturating_add(chunk.len()).min(MAX_LINE + 1);
        let used = chunk.len() + usize::from(ends_line);
        reader.consume(used);
        if ends_line {
            lines.push(b'\n');
            line_len = 0;
            if reader.buffer().is_empty() || lines.len() >= BATCH {
                let batch = Batch {
                    stream: stream.clone(),
                    lines: std::mem::take(&mut lines),
                    checkpoint: None,
                    truncated: std::mem::take(&mut truncated),
                    late: 0,
                };
                if tx.send(batch).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    if line_len > 0 {
        lines.push(b'\n');
    }
    if !lines.is_empty() {
        let _ = tx
            .send(Batch {
                stream,
                lines,
                checkpoint: None,
                truncated,
                late: 0,
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

    #[tokio::test]
    async fn a_line_longer_than_the_cap_is_cut_and_the_next_one_is_whole() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut input = vec![b'x'; MAX_LINE * 2 + 5];
        input.extend_from_slice(b"\nnext line\n");
        read(input.as_slice(), tx).await.unwrap();
        let mut all = Vec::new();
        let mut cut = false;
        while let Some(batch) = rx.recv().await {
            cut |= batch.truncated;
            all.extend(batch.lines);
        }
        assert!(cut);
        let lines: Vec<&[u8]> = all.split(|&b| b == b'\n').collect();
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[1], b"next line");
    }
}
