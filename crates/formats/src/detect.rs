//! Which format a file is in, from its first lines.

use std::sync::LazyLock;

use faultline_core::SourceKind;
use regex::bytes::Regex;

/// A log line format faultline knows how to date and label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// CRI container log: `<RFC3339Nano> stdout|stderr F|P <msg>`.
    Cri,
    /// Docker json-file: `{"log":"…\n","stream":"stderr","time":"…"}`.
    Docker,
    /// One JSON object per line (CloudNativePG, zap, kubelet JSON,
    /// journald `-o json`, Talos JSON lines).
    Json,
    /// `key=value` pairs (Loki, promtail, Alloy).
    Logfmt,
    /// klog text: `I0216 03:04:05.123456    1234 file.go:12] msg`.
    Klog,
    /// `talosctl dmesg`: `<node>: kern:     err: [<RFC3339Nano>]: <msg>`.
    TalosDmesg,
    /// `dmesg -T`: `[Mon Jun 22 10:25:43 2020] <msg>`.
    DmesgHuman,
    /// `dmesg`: `[  123.456789] <msg>`, seconds since boot.
    Dmesg,
    /// `/dev/kmsg` records: `<prio>,<seq>,<µs since boot>,<flags>;<msg>`.
    Kmsg,
    /// syslog: `Feb 16 03:04:05 host prog[pid]: msg`, or with an RFC 3339 time.
    Syslog,
    /// PostgreSQL's own stderr log or csvlog:
    /// `2026-02-19 03:04:05.123 UTC [25] FATAL:  …` / `2026-02-19 03:04:05.123 UTC,"app",…`.
    Postgres,
    /// A line that starts with an RFC 3339 time (`kubectl logs --timestamps`).
    Timestamped,
    /// Anything else.
    Plain,
}

const NAMES: &[(Format, &str)] = &[
    (Format::Cri, "cri"),
    (Format::Docker, "docker"),
    (Format::Json, "json"),
    (Format::Logfmt, "logfmt"),
    (Format::Klog, "klog"),
    (Format::TalosDmesg, "talos-dmesg"),
    (Format::DmesgHuman, "dmesg-t"),
    (Format::Dmesg, "dmesg"),
    (Format::Kmsg, "kmsg"),
    (Format::Syslog, "syslog"),
    (Format::Postgres, "postgres"),
    (Format::Timestamped, "timestamped"),
    (Format::Plain, "plain"),
];

macro_rules! re {
    ($name:ident, $pattern:expr) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pattern).expect("a valid built-in regex"));
    };
}

re!(
    CRI,
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (stdout|stderr) [FP](:\S*)? "
);
re!(
    DOCKER,
    r#"^\{"log":".*"stream":"(stdout|stderr)".*"time":""#
);
re!(
    KLOG,
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6}\s+\d+ [^ :]+:\d+\] "
);
re!(
    TALOS_DMESG,
    r"^\S+: [a-z]+: +[a-z]+: \[\d{4}-\d\d-\d\dT[^\]]+\]: "
);
re!(
    DMESG_HUMAN,
    r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\] "
);
re!(DMESG, r"^\[ *\d+\.\d+\] ");
re!(KMSG, r"^\d+,\d+,\d+,[-c][^;]*;");
re!(
    SYSLOG_BSD,
    r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [^ :\[]+(\[\d+\])?: "
);
re!(
    SYSLOG_RFC3339,
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) [A-Za-z0-9._-]+ [^ :\[]+(\[\d+\])?: "
);
re!(
    POSTGRES,
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? ([A-Z]{2,5}|[+-]\d\d(:?\d\d)?)[ ,]"
);
re!(
    TIMESTAMPED,
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) "
);
re!(
    LOGFMT,
    r#"^(?:[A-Za-z_][\w.-]*=(?:"(?:[^"\\]|\\.)*"|\S*) +){2,}"#
);

re!(NODE_PREFIX, r"^[A-Za-z0-9][A-Za-z0-9.:_-]*: ");

/// The line after a `<node>: ` prefix (as `talosctl logs` prints), or
/// `None` when it has none.
pub fn strip_node_prefix(line: &[u8]) -> Option<&[u8]> {
    NODE_PREFIX.find(line).map(|m| &line[m.end()..])
}

impl Format {
    /// The name used by `--input-format` and in output.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("plain", |(_, n)| n)
    }

    /// Parses a name from [`Format::names`].
    pub fn from_name(name: &str) -> Option<Format> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    /// Every accepted name.
    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(_, n)| *n)
    }

    /// The format of one line, or `None` when it says nothing (blank).
    pub fn of_line(line: &[u8]) -> Option<Format> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let checks: [(&LazyLock<Regex>, Format); 11] = [
            (&CRI, Format::Cri),
            (&DOCKER, Format::Docker),
            (&KLOG, Format::Klog),
            (&TALOS_DMESG, Format::TalosDmesg),
            (&DMESG_HUMAN, Format::DmesgHuman),
            (&DMESG, Format::Dmesg),
            (&KMSG, Format::Kmsg),
            (&SYSLOG_BSD, Format::Syslog),
            (&SYSLOG_RFC3339, Format::Syslog),
            (&POSTGRES, Format::Postgres),
            (&TIMESTAMPED, Format::Timestamped),
        ];
        if let Some((_, format)) = checks.iter().find(|(re, _)| re.is_match(line)) {
            return Some(*format);
        }
        if line.first() == Some(&b'{')
            && serde_json::from_slice::<serde_json::Value>(line).is_ok_and(|v| v.is_object())
        {
            return Some(Format::Json);
        }
        if LOGFMT.is_match(line) {
            return Some(Format::Logfmt);
        }
        Some(Format::Plain)
    }

    /// The format of a file from its first lines: the most common format
    /// among them (the first seen wins ties), `Plain` when there are none.
    pub fn detect<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Format {
        Format::vote(lines.into_iter().filter_map(Format::of_line))
    }

    /// Like [`Format::detect`], and also whether every line carries a
    /// `<node>: ` prefix (`talosctl logs`) before a line in that format.
    /// The prefix is only considered when the lines as they are read as
    /// plain text.
    pub fn detect_prefixed<'a>(
        lines: impl IntoIterator<Item = &'a [u8]> + Clone,
    ) -> (Format, bool) {
        let plain = Format::detect(lines.clone());
        if plain != Format::Plain {
            return (plain, false);
        }
        let stripped: Vec<&[u8]> = lines
            .into_iter()
            .map(|l| strip_node_prefix(l).unwrap_or(b""))
            .collect();
        match Format::detect(stripped) {
            Format::Plain => (Format::Plain, false),
            inner => (inner, true),
        }
    }

    fn vote(formats: impl Iterator<Item = Format>) -> Format {
        let mut votes: Vec<(Format, usize)> = Vec::new();
        for format in formats {
            match votes.iter_mut().find(|(f, _)| *f == format) {
                Some((_, n)) => *n += 1,
                None => votes.push((format, 1)),
            }
        }
        votes
            .iter()
            .fold(None, |best: Option<(Format, usize)>, &(f, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((f, n)),
            })
            .map_or(Format::Plain, |(f, _)| f)
    }

    /// Where records in this format come from, when the format says so.
    pub fn source_kind(self) -> Option<SourceKind> {
        match self {
            Format::TalosDmesg | Format::DmesgHuman | Format::Dmesg | Format::Kmsg => {
                Some(SourceKind::Kernel)
            }
            Format::Klog => Some(SourceKind::Node),
            Format::Cri | Format::Docker => Some(SourceKind::Pod),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(line: &str) -> Format {
        Format::of_line(line.as_bytes()).unwrap()
    }

    #[test]
    fn recognises_each_format_from_a_real_line() {
        assert_eq!(
            of("2026-02-16T03:04:05.123456789Z stderr F level=info msg=ok"),
            Format::Cri
        );
        assert_eq!(
            of("2026-02-16T03:04:05.123456789+01:00 stdout P partial"),
            Format::Cri
        );
        assert_eq!(
            of(r#"{"log":"hello\n","stream":"stderr","time":"2026-02-16T03:04:05.1Z"}"#),
            Format::Docker
        );
        assert_eq!(
            of(r#"{"level":"info","ts":"2026-02-16T03:04:05Z","msg":"record"}"#),
            Format::Json
        );
        assert_eq!(
            of(r#"level=error ts=2026-02-25T10:00:00Z caller=flush.go:1 msg="failed to flush""#),
            Format::Logfmt
        );
        assert_eq!(
            of(r#"E0216 03:04:05.123456    1234 kubelet.go:2123] "Error syncing pod""#),
            Format::Klog
        );
        assert_eq!(
            of(
                "10.0.0.2: kern:     err: [2026-02-19T03:04:05.123456789Z]: EXT4-fs (sdb): Remounting filesystem read-only"
            ),
            Format::TalosDmesg
        );
        assert_eq!(
            of("[Mon Jun 22 10:25:43 2020] EXT4-fs (sdk): Remounting filesystem read-only"),
            Format::DmesgHuman
        );
        assert_eq!(
            of("[70098.185153] EXT4-fs (sdd1): Remounting filesystem read-only"),
            Format::Dmesg
        );
        assert_eq!(
            of("3,1234,70098185153,-;EXT4-fs (sdd1): Remounting filesystem read-only"),
            Format::Kmsg
        );
        assert_eq!(
            of(
                "Feb 20 13:47:05 dev-r7515-c kernel: EXT4-fs (sdk): Remounting filesystem read-only"
            ),
            Format::Syslog
        );
        assert_eq!(
            of("2024-09-26T11:32:52.301738+00:00 ubuntu kernel: EXT4-fs (mmcblk0p2): error"),
            Format::Syslog
        );
        assert_eq!(
            of("2026-02-16T03:04:05.123456789Z starting server"),
            Format::Timestamped
        );
        assert_eq!(of("just words"), Format::Plain);
        assert_eq!(Format::of_line(b"   "), None);
    }

    #[test]
    fn a_file_is_what_most_of_its_first_lines_are() {
        let lines: [&[u8]; 4] = [b"garbage first", b"[1.0] a", b"[2.0] b", b""];
        assert_eq!(Format::detect(lines), Format::Dmesg);
        assert_eq!(Format::detect(std::iter::empty()), Format::Plain);
    }

    #[test]
    fn talosctl_logs_node_prefixes_are_seen_through() {
        let lines: [&[u8]; 2] = [
            br#"10.0.10.21: {"ts":1771211045000.5,"caller":"prober/prober.go:107","msg":"Probe failed","v":0}"#,
            br#"10.0.10.21: {"ts":1771211046000.5,"caller":"kubelet/kubelet.go:1","msg":"SyncLoop","v":2}"#,
        ];
        assert_eq!(Format::detect(lines), Format::Plain);
        assert_eq!(Format::detect_prefixed(lines), (Format::Json, true));
        let dmesg: [&[u8]; 1] =
            [b"10.0.0.2: kern:     err: [2026-02-19T03:04:05.1Z]: EXT4-fs (sdb): x"];
        assert_eq!(Format::detect_prefixed(dmesg), (Format::TalosDmesg, false));
        let text: [&[u8]; 1] = [b"note: nothing structured here"];
        assert_eq!(Format::detect_prefixed(text), (Format::Plain, false));
    }

    #[test]
    fn names_round_trip() {
        for name in Format::names() {
            assert_eq!(Format::from_name(name).unwrap().name(), name);
        }
        assert_eq!(Format::from_name("xml"), None);
    }
}
