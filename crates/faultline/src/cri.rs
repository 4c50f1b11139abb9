//! Joining CRI partial lines.
//!
//! containerd splits a log line longer than its limit (16 KiB by default)
//! into `P` (partial) records followed by one `F` (full) record, each with
//! its own time and stream prefix. A failure message may straddle the
//! split, so before matching, the chunks of one line are joined back into
//! one `F` line that keeps the first chunk's prefix.

use faultline_sources::MAX_LINE;

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

/// The content of a CRI record (after its time, stream and tag).
pub fn content(line: &[u8]) -> Option<&[u8]> {
    parse(line).map(|(_, _, _, content)| content)
}

/// Whether `line` is a CRI partial (`P`) record.
pub fn is_partial(line: &[u8]) -> bool {
    parse(line).is_some_and(|(_, _, tag, _)| tag == b'P')
}

/// Whether `buf` holds any partial record.
pub fn has_partials(buf: &[u8]) -> bool {
    memchr::memmem::find(buf, b" stdout P").is_some()
        || memchr::memmem::find(buf, b" stderr P").is_some()
}

/// Where the lines of a joined buffer come from: breakpoints of
/// (line index in the joined buffer, input line number of that line); the
/// lines after a breakpoint follow on one by one.
#[derive(Debug, Default)]
pub struct LineMap(Vec<(u64, u64)>);

impl LineMap {
    fn clear(&mut self) {
        self.0.clear();
    }

    fn push(&mut self, index: u64, line_no: u64) {
        self.0.push((index, line_no));
    }

    /// The input line number of line `index` of the joined buffer.
    pub fn line_no(&self, index: u64) -> Option<u64> {
        let at = self
            .0
            .partition_point(|&(i, _)| i <= index)
            .checked_sub(1)?;
        let (start, line_no) = self.0[at];
        Some(line_no + (index - start))
    }
}

/// The first line start at or after `from` whose line is a partial record.
fn next_partial(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let hit = [&b" stdout P"[..], b" stderr P"]
            .iter()
            .filter_map(|needle| memchr::memmem::find(&buf[at..], needle).map(|i| at + i))
            .min()?;
        let start = memchr::memrchr(b'\n', &buf[..hit]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &buf[hit..]).map_or(buf.len(), |i| hit + i);
        if parse(&buf[start..end]).is_some_and(|(_, _, tag, _)| tag == b'P') {
            return Some(start);
        }
        at = hit + 1;
    }
}

impl Joiner {
    /// Whether a line is still being collected.
    pub fn active(&self) -> bool {
        self.pending.iter().any(Option::is_some)
    }

    /// Rewrites `buf` (whole lines; its first line is line `first_line + 1`
    /// of the input) into `out` with partial records joined, and records in
    /// `map` where each line of `out` came from. Runs of lines with no
    /// partial record in progress are copied whole.
    pub fn join(&mut self, buf: &[u8], first_line: u64, out: &mut Vec<u8>, map: &mut LineMap) {
        out.clear();
        map.clear();
        let mut pos = 0usize;
        let mut line_no = first_line + 1;
        let mut out_lines = 0u64;
        while pos < buf.len() {
            if !self.active() {
                // Copy everything up to the next partial record in one go.
                let until = next_partial(buf, pos).unwrap_or(buf.len());
                if until > pos {
                    let run = &buf[pos..until];
                    map.push(out_lines, line_no);
                    out.extend_from_slice(run);
                    let mut lines = bytecount::count(run, b'\n') as u64;
                    if !run.ends_with(b"\n") {
                        out.push(b'\n');
                        lines += 1;
                    }
                    out_lines += lines;
                    line_no += lines;
                    pos = until;
                    continue;
                }
            }
            let end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i);
            let line = &buf[pos..end];
            pos = end + 1;
            if let Some(joined_from) = self.take_line(line, line_no, out) {
                map.push(out_lines, joined_from);
                out_lines += 1;
            }
            line_no += 1;
        }
    }

    /// Feeds one line while a partial line may be in progress. Returns the
    /// input line number of the line written to `out`, if one was.
    fn take_line(&mut self, line: &[u8], line_no: u64, out: &mut Vec<u8>) -> Option<u64> {
        let Some((tag_at, stream, tag, content)) = parse(line) else {
            out.extend_from_slice(line);
            out.push(b'\n');
            return Some(line_no);
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
            return None;
        }
        let from = match self.pending[stream].take() {
            Some(pending) => {
                out.extend_from_slice(&pending.prefix);
                out.extend_from_slice(&pending.content);
                let room = MAX_LINE.saturating_sub(pending.content.len());
                out.extend_from_slice(&content[..content.len().min(room)]);
                pending.first_line
            }
            None => {
                out.extend_from_slice(line);
                line_no
            }
        };
        out.push(b'\n');
        Some(from)
    }

    /// Lines still being collected at the end of the input, as if their
    /// final chunk had arrived (a container that died mid-line).
    pub fn finish(&mut self, out: &mut Vec<u8>, map: &mut LineMap) {
        out.clear();
        map.clear();
        for (index, pending) in self.pending.iter_mut().filter_map(Option::take).enumerate() {
            out.extend_from_slice(&pending.prefix);
            out.extend_from_slice(&pending.content);
            out.push(b'\n');
            map.push(index as u64, pending.first_line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(joiner: &mut Joiner, buf: &[u8], first_line: u64) -> (String, Vec<Option<u64>>) {
        let (mut out, mut map) = (Vec::new(), LineMap::default());
        joiner.join(buf, first_line, &mut out, &mut map);
        let lines = out.iter().filter(|&&b| b == b'\n').count() as u64;
        (
            String::from_utf8(out).unwrap(),
            (0..lines).map(|i| map.line_no(i)).collect(),
        )
    }

    #[test]
    fn partial_chunks_are_joined_under_the_first_prefix_across_buffers() {
        let mut joiner = Joiner::default();
        let first = b"2026-02-19T03:04:05.1Z stderr P could not open fi\n2026-02-19T03:04:05.2Z stdout F other\n";
        assert!(has_partials(first));
        let (out, lines) = join(&mut joiner, first, 10);
        assert_eq!(out, "2026-02-19T03:04:05.2Z stdout F other\n");
        assert_eq!(lines, [Some(12)]);
        assert!(joiner.active());
        let second = b"2026-02-19T03:04:05.3Z stderr P le \"pg_wal/1\": Read-\n2026-02-19T03:04:05.4Z stderr F only file system\n";
        let (out, lines) = join(&mut joiner, second, 12);
        assert_eq!(
            out,
            "2026-02-19T03:04:05.1Z stderr F could not open file \"pg_wal/1\": Read-only file system\n"
        );
        assert_eq!(lines, [Some(11)]);
        assert!(!joiner.active());
    }

    #[test]
    fn an_unfinished_line_is_flushed_at_the_end() {
        let mut joiner = Joiner::default();
        join(
            &mut joiner,
            b"2026-02-19T03:04:05Z stdout P half a line\n",
            0,
        );
        let (mut out, mut map) = (Vec::new(), LineMap::default());
        joiner.finish(&mut out, &mut map);
        assert_eq!(out, b"2026-02-19T03:04:05Z stdout F half a line\n");
        assert_eq!(map.line_no(0), Some(1));
    }

    #[test]
    fn lines_that_are_not_cri_pass_through() {
        let mut joiner = Joiner::default();
        let (out, lines) = join(&mut joiner, b"garbage\n2026-02-19T03:04:05Z stdout F ok", 0);
        assert_eq!(out, "garbage\n2026-02-19T03:04:05Z stdout F ok\n");
        assert_eq!(lines, [Some(1), Some(2)]);
    }

    #[test]
    fn line_numbers_survive_a_join_in_the_middle_of_a_long_run() {
        let mut joiner = Joiner::default();
        let buf = b"a\nb\n2026-02-19T03:04:05Z stdout P x\n2026-02-19T03:04:05Z stdout F y\nc\nd\n";
        let (out, lines) = join(&mut joiner, buf, 100);
        assert_eq!(out, "a\nb\n2026-02-19T03:04:05Z stdout F xy\nc\nd\n");
        assert_eq!(
            lines,
            [Some(101), Some(102), Some(103), Some(105), Some(106)]
        );
    }
}
