//! Reading any input as buffers of whole lines, in bounded memory.

use std::io::{self, Read};

/// Longest line kept whole, and the size of the read buffer. A longer line
/// is cut: its first `MAX_LINE - 1` bytes are matched as the line, the rest
/// is skipped and counted in [`LineReader::truncated`].
pub const MAX_LINE: usize = faultline_sources::MAX_LINE;

/// Hands out buffers of whole lines from a reader. Memory stays at one
/// buffer whatever the input, including a single line of gigabytes.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// `buf[carry_from..filled]` is the partial line carried to the next call.
    carry_from: usize,
    filled: usize,
    eof: bool,
    /// The rest of a cut line is being skipped.
    skipping: bool,
    /// A read error met after some data: reported once that data is out.
    pending_error: Option<io::Error>,
    /// Lines cut at [`MAX_LINE`].
    pub truncated: u64,
    /// Bytes read from `inner`.
    pub bytes: u64,
}

impl<R: Read> LineReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner,
            buf: vec![0; MAX_LINE],
            carry_from: 0,
            filled: 0,
            eof: false,
            skipping: false,
            pending_error: None,
            truncated: 0,
            bytes: 0,
        }
    }

    fn read_some(&mut self) -> io::Result<usize> {
        loop {
            match self.inner.read(&mut self.buf[self.filled..]) {
                Ok(n) => {
                    self.filled += n;
                    self.bytes += n as u64;
                    self.eof |= n == 0;
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// The next buffer of whole lines (the last line of the input may lack
    /// its `\n`), or `None` at the end. On a read error the lines before it
    /// have all been handed out.
    pub fn next_lines(&mut self) -> io::Result<Option<&[u8]>> {
        if let Some(err) = self.pending_error.take() {
            return Err(err);
        }
        self.buf.copy_within(self.carry_from..self.filled, 0);
        self.filled -= self.carry_from;
        self.carry_from = 0;
        while !self.eof && self.filled < self.buf.len() {
            match self.read_some() {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if self.filled == 0 => return Err(err),
                Err(err) => {
                    // Hand out what was read; the error comes next call.
                    self.pending_error = Some(err);
                    self.eof = true;
                    break;
                }
            }
            if self.skipping {
                match memchr::memchr(b'\n', &self.buf[..self.filled]) {
                    Some(end) => {
                        self.buf.copy_within(end + 1..self.filled, 0);
                        self.filled -= end + 1;
                        self.skipping = false;
                    }
                    None => self.filled = 0,
                }
            }
        }
        if self.filled == 0 {
            return Ok(None);
        }
        if self.eof {
            self.carry_from = self.filled;
            return Ok(Some(&self.buf[..self.filled]));
        }
        if let Some(last) = memchr::memrchr(b'\n', &self.buf[..self.filled]) {
            self.carry_from = last + 1;
            return Ok(Some(&self.buf[..=last]));
        }
        // The buffer is full and holds no line end: one line longer than
        // MAX_LINE. Hand out its head as the line and skip the rest.
        self.truncated += 1;
        self.skipping = true;
        self.carry_from = self.filled;
        self.buf[MAX_LINE - 1] = b'\n';
        Ok(Some(&self.buf[..MAX_LINE]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(input: &[u8]) -> (Vec<Vec<u8>>, u64) {
        let mut reader = LineReader::new(input);
        let mut lines = Vec::new();
        while let Some(buf) = reader.next_lines().unwrap() {
            let body = buf.strip_suffix(b"\n").unwrap_or(buf);
            lines.extend(body.split(|&b| b == b'\n').map(<[u8]>::to_vec));
        }
        (lines, reader.truncated)
    }

    #[test]
    fn every_line_comes_out_once_across_buffers() {
        let mut input = Vec::new();
        for i in 0..400_000 {
            input.extend_from_slice(
                format!("line {i} with some padding to cross buffer edges\n").as_bytes(),
            );
        }
        input.extend_from_slice(b"last without newline");
        let (lines, truncated) = all_lines(&input);
        assert_eq!(lines.len(), 400_001);
        assert_eq!(
            lines[123_456],
            b"line 123456 with some padding to cross buffer edges"
        );
        assert_eq!(lines.last().unwrap(), b"last without newline");
        assert_eq!(truncated, 0);
    }

    #[test]
    fn a_huge_line_is_cut_to_its_head_and_counted() {
        let mut input = b"before\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 12 << 20));
        input.extend_from_slice(b" tail\nafter\n");
        let (lines, truncated) = all_lines(&input);
        assert_eq!(truncated, 1);
        assert_eq!(lines.len(), 3, "before, the cut line, after");
        assert_eq!(lines[0], b"before");
        assert_eq!(lines[1].len(), MAX_LINE - 1);
        assert!(lines[1].iter().all(|&b| b == b'x'));
        assert_eq!(lines[2], b"after");
    }

    #[test]
    fn a_huge_last_line_without_newline_ends_cleanly() {
        let input = vec![b'y'; 9 << 20];
        let (lines, truncated) = all_lines(&input);
        assert_eq!((lines.len(), truncated), (1, 1));
    }
}
