//! What a container's log file shows of its run: kubelet writes one file
//! per run (`<container>/<restart count>.log`), so the file's first and
//! last dated lines are when the run started and when it last spoke, and
//! its last lines are what it was doing when it ended. Correlation uses
//! this to tell a container killed while starting from one that crashed.

use std::collections::VecDeque;

use faultline_correlate::inventory::ContainerRun;
use faultline_formats::{Decoder, Format};

use crate::cri;

/// Last lines kept per run.
const TAIL: usize = 4;
/// Lines looked at, from the end of a buffer, for the tail; and from its
/// start, for the first dated line.
const LOOK: usize = 64;
/// Bytes kept of a tail line.
const TAIL_LINE: usize = 240;

/// The run seen so far in one stream.
#[derive(Debug, Default)]
pub struct RunTracker {
    first: Option<i64>,
    tail: VecDeque<(i64, String)>,
}

impl RunTracker {
    /// Takes in one buffer of whole lines, in stream order.
    pub fn buffer(&mut self, decoder: &Decoder, buf: &[u8]) {
        if self.first.is_none() {
            self.first = buf
                .split(|&b| b == b'\n')
                .take(LOOK)
                .find_map(|line| decoder.timestamp(line));
        }
        let mut newest: Vec<(i64, String)> = buf
            .strip_suffix(b"\n")
            .unwrap_or(buf)
            .rsplit(|&b| b == b'\n')
            .take(LOOK)
            .filter_map(|line| Some((decoder.timestamp(line)?, message(decoder.format, line))))
            // An indented line continues the record before it.
            .filter(|(_, message)| !message.is_empty())
            .take(TAIL)
            .collect();
        newest.reverse();
        self.append(newest);
    }

    fn append(&mut self, lines: impl IntoIterator<Item = (i64, String)>) {
        for line in lines {
            if self.tail.len() == TAIL {
                self.tail.pop_front();
            }
            self.tail.push_back(line);
        }
    }

    /// Continues this run with `next`, the tracker of the next part of the
    /// same file.
    pub fn follow(&mut self, next: RunTracker) {
        self.first = self.first.or(next.first);
        self.append(next.tail);
    }

    /// The run so far, if the stream had a dated line.
    pub fn current(&self) -> Option<ContainerRun> {
        let ended = self.tail.back().map(|(ts, _)| *ts)?;
        Some(ContainerRun {
            started: self.first.unwrap_or(ended),
            ended,
            tail: self.tail.iter().cloned().collect(),
        })
    }
}

/// The message of a log line: a CRI record's content, else the line.
fn message(format: Format, line: &[u8]) -> String {
    let text = match format {
        Format::Cri => cri::content(line).unwrap_or(line),
        _ => line,
    };
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.first().is_some_and(u8::is_ascii_whitespace) {
        return String::new();
    }
    let cut = &text[..text.len().min(TAIL_LINE)];
    String::from_utf8_lossy(cut).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> Decoder {
        Decoder::new(Format::Cri, 2026)
    }

    #[test]
    fn a_run_spans_its_first_and_last_dated_lines_and_keeps_its_tail() {
        let first = b"2026-02-27T23:43:49.148728766Z stdout F Initializing\n\
2026-02-27T23:43:57.765895045Z stdout F Loading visual model to memory\n\
2026-02-27T23:43:57.838904917Z stdout F                     in descending order\n";
        let second = b"2026-02-27T23:44:06.240965799Z stderr F MIOpen warning\n\
2026-02-27T23:49:44.339091172Z stdout F [02/27/26 23:49:44] INFO     Handling signal: term   \n";
        let mut head = RunTracker::default();
        head.buffer(&decoder(), first);
        let mut rest = RunTracker::default();
        rest.buffer(&decoder(), second);
        head.follow(rest);
        let run = head.current().unwrap();
        let s = 1_000_000_000;
        assert_eq!(run.started / s, 1_772_235_829);
        assert_eq!((run.ended - run.started) / s, 355);
        let lines: Vec<&str> = run.tail.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "Initializing",
                "Loading visual model to memory",
                "MIOpen warning",
                "[02/27/26 23:49:44] INFO     Handling signal: term"
            ]
        );
    }

    #[test]
    fn a_stream_without_dates_has_no_run() {
        let mut tracker = RunTracker::default();
        tracker.buffer(&decoder(), b"no time here\n");
        assert!(tracker.current().is_none());
    }
}
