//! Reading one line on its own terms.
//!
//! A file's format is detected from its first lines, but real files mix:
//! a support bundle concatenates a pod's log with the node's syslog, a
//! container that tails the host's kernel log writes syslog lines inside
//! CRI records' neighbours, `kubectl logs --prefix` puts
//! `[pod/NAME/CONTAINER] ` before each line and docker-compose
//! `SERVICE  | `. A [`LineView`] says how one matched line reads: the
//! prefix such a tool added (and the labels it names), the format of what
//! follows, and a decoder for it. A line in the file's own format reads as
//! the file does; a line that does not decode in it is decoded on its own.

use std::sync::LazyLock;

use faultline_core::SourceKind;
use regex::bytes::Regex;

use crate::{Decoder, Format, Labels, line_labels};

/// `kubectl logs --prefix`: `[pod/<pod>/<container>] `.
static KUBECTL_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[pod/([a-z0-9][a-z0-9.-]*)/([a-z0-9][a-z0-9-]*)\] ")
        .expect("a valid built-in regex")
});

/// docker-compose (v1 and v2): `<service>  | ` or `<service>-1  | `.
static COMPOSE_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z0-9][A-Za-z0-9_.-]*) +\| ").expect("a valid built-in regex")
});

/// One line as it reads on its own.
#[derive(Clone, Debug)]
pub struct LineView<'a> {
    /// The decoder for the line's own format (the file's, when the line is
    /// in it).
    pub decoder: Decoder,
    /// The line after any prefix a tool put before it.
    pub body: &'a [u8],
    /// Labels the prefix names (`pod`, `container` from `kubectl logs
    /// --prefix`).
    pub prefix_labels: Labels,
}

impl<'a> LineView<'a> {
    /// How `line`, read from a file that `file` decodes, reads.
    pub fn of(file: &Decoder, line: &'a [u8]) -> LineView<'a> {
        let mut prefix_labels = Labels::new();
        let mut body = line.strip_suffix(b"\r").unwrap_or(line);
        if file.node_prefixed
            && let Some(rest) = crate::detect::strip_node_prefix(body)
        {
            body = rest;
        }
        if let Some(caps) = KUBECTL_PREFIX.captures(body) {
            for (name, index) in [("pod", 1), ("container", 2)] {
                prefix_labels.insert(
                    name.into(),
                    String::from_utf8_lossy(&caps[index]).into_owned(),
                );
            }
            body = &body[caps[0].len()..];
        } else if file.format == Format::Plain
            && let Some(caps) = COMPOSE_PREFIX.captures(body)
        {
            body = &body[caps[0].len()..];
        }
        let own = Format::of_line(body).unwrap_or(Format::Plain);
        let format = if own == Format::Plain || own == file.format {
            file.format
        } else {
            own
        };
        LineView {
            decoder: Decoder {
                format,
                node_prefixed: false,
                ..*file
            },
            body,
            prefix_labels,
        }
    }

    /// The line's own time, if it has one.
    pub fn timestamp(&self) -> Option<i64> {
        self.decoder.timestamp(self.body)
    }

    /// The labels the line names: its prefix's, then its own.
    pub fn labels(&self) -> Labels {
        let mut labels = self.prefix_labels.clone();
        for (key, value) in line_labels(self.decoder.format, self.body) {
            labels.entry(key).or_insert(value);
        }
        labels
    }

    /// Where the line comes from, when its format says so.
    pub fn source_kind(&self) -> Option<SourceKind> {
        self.decoder.format.source_kind()
    }
}

impl Decoder {
    /// The line's own time: in the file's format, else in the line's own.
    pub fn line_timestamp(&self, line: &[u8]) -> Option<i64> {
        self.timestamp(line)
            .or_else(|| LineView::of(self, line).timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cri() -> Decoder {
        Decoder::new(Format::Cri, 2026)
    }

    #[test]
    fn a_syslog_line_in_a_cri_file_reads_as_syslog() {
        let line =
            b"Feb 16 03:04:28 worker-7 kernel: [266999.6] blk_update_request: I/O error, dev rbd2";
        let view = LineView::of(&cri(), line);
        assert_eq!(view.decoder.format, Format::Syslog);
        assert_eq!(
            view.labels().get("node").map(String::as_str),
            Some("worker-7")
        );
        assert_eq!(view.source_kind(), None);
        assert!(view.timestamp().is_some());
        assert_eq!(cri().timestamp(line), None);
        assert_eq!(cri().line_timestamp(line), view.timestamp());
    }

    #[test]
    fn a_line_in_the_files_format_reads_as_the_file() {
        let line = b"2026-02-16T03:04:05.1Z stderr F mkdir: cannot create directory '/data': Read-only file system";
        let view = LineView::of(&cri(), line);
        assert_eq!(view.decoder.format, Format::Cri);
        assert_eq!(view.source_kind(), Some(SourceKind::Pod));
        let plain = b"    at java.base/java.io.FileOutputStream.open0(Native Method)";
        assert_eq!(LineView::of(&cri(), plain).decoder.format, Format::Cri);
    }

    #[test]
    fn tool_prefixes_are_read_through() {
        let plain = Decoder {
            format: Format::Plain,
            ..cri()
        };
        let kubectl = b"[pod/pg-1/postgres] 2026-02-19 03:04:05.123 UTC [25] FATAL:  x";
        let view = LineView::of(&plain, kubectl);
        assert_eq!(view.decoder.format, Format::Postgres);
        assert_eq!(view.labels().get("pod").map(String::as_str), Some("pg-1"));
        assert_eq!(
            view.labels().get("container").map(String::as_str),
            Some("postgres")
        );
        assert!(view.timestamp().is_some());
        let compose = b"loki-1  | level=error ts=2026-02-25T10:00:00Z msg=\"failed to flush\"";
        let view = LineView::of(&plain, compose);
        assert_eq!(view.decoder.format, Format::Logfmt);
        assert!(view.timestamp().is_some());
    }
}
