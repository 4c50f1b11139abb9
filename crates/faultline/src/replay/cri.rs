//! Joining CRI partial lines.
//!
//! containerd splits a log line longer than its limit (16 KiB by default)
//! into `P` (partial) records followed by one `F` (full) record, each with
//! its own time and stream prefix. A failure message may straddle the
//! split, so before matching, the chunks of one line are joined back into
//! one `F` line that keeps the first chunk's prefix.

use super::lines::MAX_LINE;

/// A line whose `P` chunks are being collected.
#[derive(Debug, Default)]
struct Pending {
    /// `<time> <stream> F ` of the first chunk.
    prefix: Vec<u8>,
    /// The chunks' contents so far (capped at `MAX_LINE`).
    content: Vec<u8>,
    /// 1-based line number of the first chunk.
    first_line: u64,
}

/// Joins `P` chunks across buffers, per stream (stdout and stderr may
/// interleave).
#[derive(Debug, Default)]
pub struct Joiner {
    pending: [Option<Pending>; 2],
}

/// Splits a CRI line into (prefix up to the tag, stream index, tag, content).
fn parse(line: &[u8]) -> Option<(usize, usize, u8, &[u8])> {
    let ts_end = memchr::memchr(b' ', line)?;
    let rest = &line[ts_end + 1..];
    let stream = if rest.starts_with(b"stdout ") {
        0
    } else if rest.starts_with(b"stderr ") {
        1
    } else {
        return None;
    };
    let tag_at = ts_end + 1 + 7;
    let tag = *line.get(tag_at)?;
    let content_at = tag_at + memchr::memchr(b' ', &line[tag_at..])? + 1;
    Some((tag_at, stream, tag, &line[content_at..]))
}

/// Whether `buf` holds any partial record.
pub fn has_partials(buf: &[u8]) -> bool {
    memchr::memmem::find(buf, b" stdout P").is_some()
        || memchr::memmem::find(buf, b" stderr P").is_some()
}

impl Joiner {
    /// Whether a line is still being collected.
    pub fn active(&self) -> bool {
        self.pending.iter().any(Option::is_some)
    }

    /// Rewrites `buf` (whole lines; its first line is line `first_line + 1`
    /// of the input) into `out` with partial records joined, and records in
    /// `line_map` the input line number of each line of `out`.
    pub fn join(
        &mut self,
        buf: &[u8],
        first_line: u64,
        out: &mut Vec<u8>,
        line_map: &mut Vec<u64>,
    ) {
        out.clear();
        line_map.clear();
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            let line_no = first_line + i as u64 + 1;
            let Some((tag_at, stream, tag, content)) = parse(line) else {
                out.extend_from_slice(line);
                out.push(b'\n');
                line_map.push(line_no);
                continue;
            };
            if tag == b'P' {
                let pending = self.pending[stream].get_or_insert_with(|| Pending {
                    prefix: [&line[..tag_at], b"F "].concat(),
                    content: Vec::new(),
                    first_line: line_no,
                });
                let room = MAX_LINE.saturating_sub(pending.content.len());
                pending
                    .content
                    .extend_from_slice(&content[..content.len().min(room)]);
                continue;
            }
            match self.pending[stream].take() {
                Some(pending) => {
                    out.extend_from_slice(&pending.prefix);
                    out.extend_from_slice(&pending.content);
                    let room = MAX_LINE.saturating_sub(pending.content.len());
                    out.extend_from_slice(&content[..content.len().min(room)]);
                    line_map.push(pending.first_line);
                }
                None => {
                    out.extend_from_slice(line);
                    line_map.push(line_no);
                }
            }
            out.push(b'\n');
        }
    }

    /// Lines still being collected at the end of the input, as if their
    /// final chunk had arrived (a container that died mid-line).
    pub fn finish(&mut self, out: &mut Vec<u8>, line_map: &mut Vec<u64>) {
        out.clear();
        line_map.clear();
        for pending in self.pending.iter_mut().filter_map(Option::take) {
            out.extend_from_slice(&pending.prefix);
            out.extend_from_slice(&pending.content);
            out.push(b'\n');
            line_map.push(pending.first_line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_chunks_are_joined_under_the_first_prefix_across_buffers() {
        let mut joiner = Joiner::default();
        let (mut out, mut map) = (Vec::new(), Vec::new());
        let first = b"2026-02-19T03:04:05.1Z stderr P could not open fi\n2026-02-19T03:04:05.2Z stdout F other\n";
        assert!(has_partials(first));
        joiner.join(first, 10, &mut out, &mut map);
        assert_eq!(out, b"2026-02-19T03:04:05.2Z stdout F other\n");
        assert_eq!(map, [12]);
        assert!(joiner.active());
        let second = b"2026-02-19T03:04:05.3Z stderr P le \"pg_wal/1\": Read-\n2026-02-19T03:04:05.4Z stderr F only file system\n";
        joiner.join(second, 12, &mut out, &mut map);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "2026-02-19T03:04:05.1Z stderr F could not open file \"pg_wal/1\": Read-only file system\n"
        );
        assert_eq!(map, [11]);
        assert!(!joiner.active());
    }

    #[test]
    fn an_unfinished_line_is_flushed_at_the_end() {
        let mut joiner = Joiner::default();
        let (mut out, mut map) = (Vec::new(), Vec::new());
        joiner.join(
            b"2026-02-19T03:04:05Z stdout P half a line\n",
            0,
            &mut out,
            &mut map,
        );
        joiner.finish(&mut out, &mut map);
        assert_eq!(out, b"2026-02-19T03:04:05Z stdout F half a line\n");
        assert_eq!(map, [1]);
    }

    #[test]
    fn lines_that_are_not_cri_pass_through() {
        let mut joiner = Joiner::default();
        let (mut out, mut map) = (Vec::new(), Vec::new());
        joiner.join(
            b"garbage\n2026-02-19T03:04:05Z stdout F ok",
            0,
            &mut out,
            &mut map,
        );
        assert_eq!(out, b"garbage\n2026-02-19T03:04:05Z stdout F ok\n");
        assert_eq!(map, [1, 2]);
    }
}
