//! Reading a line's time as UTC nanoseconds since the Unix epoch.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::Format;

/// Dates the lines of one file.
///
/// Some formats carry no year (klog, BSD syslog) or only time since boot
/// (`dmesg`, `/dev/kmsg`): the decoder completes them with `year` and
/// `boot_ns`. Times without a zone (klog, syslog, `dmesg -T`) are taken as
/// UTC — the zone Kubernetes nodes run in.
#[derive(Clone, Copy, Debug)]
pub struct Decoder {
    /// The file's format.
    pub format: Format,
    /// Year for formats that print none (from `--year`, else the file's
    /// modification time).
    pub year: i16,
    /// Boot time, for times relative to boot (from `--boot-time`).
    pub boot_ns: Option<i64>,
    /// Lines carry a `<node>: ` prefix before the format (`talosctl logs`).
    pub node_prefixed: bool,
}

impl Decoder {
    /// A decoder of `format` with `year` for the times that print none, no
    /// boot time and no node prefix.
    pub fn new(format: Format, year: i16) -> Decoder {
        Decoder {
            format,
            year,
            boot_ns: None,
            node_prefixed: false,
        }
    }

    /// The line's own time, or `None` when it has none (or an unreadable one).
    pub fn timestamp(&self, line: &[u8]) -> Option<i64> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = if self.node_prefixed {
            crate::detect::strip_node_prefix(line).unwrap_or(line)
        } else {
            line
        };
        match self.format {
            Format::Cri | Format::Timestamped => leading_rfc3339(line),
            Format::Syslog => leading_rfc3339(line).or_else(|| bsd_syslog(line, self.year)),
            Format::Docker | Format::Json => json_time(line),
            Format::Logfmt => logfmt_time(line),
            Format::Klog => klog(line, self.year),
            Format::TalosDmesg => {
                let start = memchr::memchr(b'[', line)? + 1;
                let end = start + memchr::memchr(b']', &line[start..])?;
                parse_rfc3339(&line[start..end])
            }
            Format::DmesgHuman => {
                let end = memchr::memchr(b']', line)?;
                let text = std::str::from_utf8(line.get(1..end)?).ok()?;
                let civil = DateTime::strptime(
                    "%a %b %e %H:%M:%S %Y",
                    text.split_whitespace().collect::<Vec<_>>().join(" "),
                )
                .ok()?;
                utc_ns(civil)
            }
            Format::Dmesg => {
                let end = memchr::memchr(b']', line)?;
                let seconds: f64 = std::str::from_utf8(line.get(1..end)?)
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some(self.boot_ns? + (seconds * 1e9) as i64)
            }
            Format::Kmsg => {
                let mut fields = line.split(|&b| b == b',');
                let micros: i64 = std::str::from_utf8(fields.nth(2)?).ok()?.parse().ok()?;
                Some(self.boot_ns? + micros * 1000)
            }
            Format::Postgres => postgres(line),
            Format::Plain => leading_rfc3339(line),
        }
    }
}

/// Parses an RFC 3339 time (any offset, any fraction) to UTC nanoseconds.
pub fn parse_rfc3339(text: &[u8]) -> Option<i64> {
    let ts: Timestamp = std::str::from_utf8(text).ok()?.parse().ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

fn leading_rfc3339(line: &[u8]) -> Option<i64> {
    let end = memchr::memchr(b' ', line).unwrap_or(line.len());
    parse_rfc3339(&line[..end])
}

fn utc_ns(civil: DateTime) -> Option<i64> {
    let zoned = civil.to_zoned(TimeZone::UTC).ok()?;
    i64::try_from(zoned.timestamp().as_nanosecond()).ok()
}

fn digits(text: &[u8]) -> Option<i64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// `HH:MM:SS[.fraction]` → (h, m, s, nanoseconds).
fn clock(text: &[u8]) -> Option<(i8, i8, i8, i32)> {
    let (hms, fraction) = match memchr::memchr(b'.', text) {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    let mut parts = hms.split(|&b| b == b':');
    let h = digits(parts.next()?)?;
    let m = digits(parts.next()?)?;
    let s = digits(parts.next()?)?;
    let mut nanos = 0i64;
    for i in 0..9 {
        nanos = nanos * 10
            + fraction
                .get(i)
                .map_or(0, |d| i64::from(d.wrapping_sub(b'0')) % 10);
    }
    Some((h as i8, m as i8, s as i8, nanos as i32))
}

fn civil(year: i16, month: i64, day: i64, time: (i8, i8, i8, i32)) -> Option<i64> {
    let dt = DateTime::new(year, month as i8, day as i8, time.0, time.1, time.2, time.3).ok()?;
    utc_ns(dt)
}

/// `Lmmdd hh:mm:ss.uuuuuu …`
fn klog(line: &[u8], year: i16) -> Option<i64> {
    let month = digits(line.get(1..3)?)?;
    let day = digits(line.get(3..5)?)?;
    let time = clock(line.get(6..21)?)?;
    civil(year, month, day, time)
}

/// `YYYY-MM-DD HH:MM:SS[.fff] ZONE` (PostgreSQL's `%m` log prefix and
/// csvlog's first field). `UTC`, `GMT` and numeric offsets are honoured;
/// other zone names are read as UTC, which is what CloudNativePG and most
/// containers run PostgreSQL in.
fn postgres(line: &[u8]) -> Option<i64> {
    let year: i16 = digits(line.get(0..4)?)?.try_into().ok()?;
    let month = digits(line.get(5..7)?)?;
    let day = digits(line.get(8..10)?)?;
    let rest = line.get(11..)?;
    let clock_end = rest.iter().position(|&b| b == b' ')?;
    let time = clock(&rest[..clock_end])?;
    let zone = &rest[clock_end + 1..];
    let zone = &zone[..zone
        .iter()
        .position(|&b| b == b' ' || b == b',')
        .unwrap_or(zone.len())];
    let offset_s = match zone.first() {
        Some(sign @ (b'+' | b'-')) => {
            let body: Vec<u8> = zone[1..]
                .iter()
                .copied()
                .filter(u8::is_ascii_digit)
                .collect();
            let hours = digits(body.get(0..2)?)?;
            let minutes = body.get(2..4).and_then(digits).unwrap_or(0);
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'+' { seconds } else { -seconds }
        }
        _ => 0,
    };
    Some(civil(year, month, day, time)? - offset_s * 1_000_000_000)
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Mmm dd hh:mm:ss …`
fn bsd_syslog(line: &[u8], year: i16) -> Option<i64> {
    let month = MONTHS.iter().position(|m| line.get(..3) == Some(*m))? as i64 + 1;
    let day = digits(line.get(4..6)?.trim_ascii_start())?;
    let time = clock(line.get(7..15)?)?;
    civil(year, month, day, time)
}

/// The first time field of a JSON object: `ts`, `time`, `timestamp`,
/// `@timestamp`, `talos-time` or journald's `__REALTIME_TIMESTAMP`.
/// Numbers are read by magnitude (seconds, milliseconds, microseconds or
/// nanoseconds since the epoch).
fn json_time(line: &[u8]) -> Option<i64> {
    let Value::Object(map) = serde_json::from_slice::<Value>(line).ok()? else {
        return None;
    };
    for key in [
        "ts",
        "time",
        "timestamp",
        "@timestamp",
        "talos-time",
        "__REALTIME_TIMESTAMP",
    ] {
        let found = match map.get(key) {
            Some(Value::String(text)) => {
                parse_rfc3339(text.as_bytes()).or_else(|| epoch_number(text))
            }
            Some(Value::Number(n)) => epoch_number(&n.to_string()),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// A decimal number of seconds, milliseconds, microseconds or nanoseconds
/// since the epoch (told apart by the digits before the point), read
/// exactly: `1771211045000.5` is milliseconds and half of one.
fn epoch_number(text: &str) -> Option<i64> {
    let (int, fraction) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let exponent = match int.len() {
        0..=11 => 9,
        12..=14 => 6,
        15..=17 => 3,
        _ => 0,
    };
    let whole: i64 = int.parse().ok()?;
    let mut part = 0i64;
    for i in 0..exponent {
        part = part * 10
            + fraction
                .as_bytes()
                .get(i)
                .map_or(0, |d| i64::from(d - b'0'));
    }
    whole
        .checked_mul(10i64.pow(exponent as u32))?
        .checked_add(part)
}

/// `ts=` or `time=` in a logfmt line.
fn logfmt_time(line: &[u8]) -> Option<i64> {
    for key in [&b"ts="[..], b"time="] {
        let mut from = 0;
        while let Some(at) = memchr::memmem::find(&line[from..], key) {
            let start = from + at;
            if start == 0 || line[start - 1] == b' ' {
                let value = &line[start + key.len()..];
                let value = value.strip_prefix(b"\"").unwrap_or(value);
                let end = value
                    .iter()
                    .position(|&b| b == b' ' || b == b'"')
                    .unwrap_or(value.len());
                if let Some(ns) = parse_rfc3339(&value[..end]) {
                    return Some(ns);
                }
            }
            from = start + key.len();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEB16: i64 = 1_771_211_045_000_000_000; // 2026-02-16T03:04:05Z

    fn at(format: Format, line: &str) -> Option<i64> {
        Decoder {
            format,
            year: 2026,
            boot_ns: Some(FEB16),
            node_prefixed: false,
        }
        .timestamp(line.as_bytes())
    }

    #[test]
    fn reads_the_time_of_each_format() {
        assert_eq!(
            at(Format::Cri, "2026-02-16T03:04:05.123456789Z stderr F x"),
            Some(FEB16 + 123_456_789)
        );
        assert_eq!(
            at(Format::Cri, "2026-02-16T04:04:05.5+01:00 stdout F x"),
            Some(FEB16 + 500_000_000)
        );
        assert_eq!(
            at(
                Format::Docker,
                r#"{"log":"x\n","stream":"stderr","time":"2026-02-16T03:04:05.25Z"}"#
            ),
            Some(FEB16 + 250_000_000)
        );
        assert_eq!(
            at(
                Format::Json,
                r#"{"level":"info","ts":"2026-02-16T03:04:05Z"}"#
            ),
            Some(FEB16)
        );
        assert_eq!(
            at(
                Format::Json,
                r#"{"ts":1771211045000.5,"msg":"Probe failed","v":0}"#
            ),
            Some(FEB16 + 500_000)
        );
        assert_eq!(
            at(Format::Json, r#"{"level":"info","ts":1771211045.25}"#),
            Some(FEB16 + 250_000_000)
        );
        assert_eq!(
            at(
                Format::Json,
                r#"{"MESSAGE":"x","__REALTIME_TIMESTAMP":"1771211045000001"}"#
            ),
            Some(FEB16 + 1000)
        );
        assert_eq!(
            at(
                Format::Logfmt,
                r#"level=error ts=2026-02-16T03:04:05.1Z msg="x""#
            ),
            Some(FEB16 + 100_000_000)
        );
        assert_eq!(
            at(
                Format::Logfmt,
                r#"msg="ts=bogus" time="2026-02-16T03:04:05Z""#
            ),
            Some(FEB16)
        );
        assert_eq!(
            at(
                Format::Klog,
                r#"E0216 03:04:05.000002    1234 kubelet.go:1] "x""#
            ),
            Some(FEB16 + 2000)
        );
        assert_eq!(
            at(
                Format::TalosDmesg,
                "10.0.0.2: kern:     err: [2026-02-16T03:04:05.000000001Z]: x"
            ),
            Some(FEB16 + 1)
        );
        assert_eq!(
            at(
                Format::DmesgHuman,
                "[Mon Feb 16 03:04:05 2026] EXT4-fs (sdb): x"
            ),
            Some(FEB16)
        );
        assert_eq!(
            at(Format::Dmesg, "[   12.500000] x"),
            Some(FEB16 + 12_500_000_000)
        );
        assert_eq!(
            at(Format::Kmsg, "3,77,2000000,-;x"),
            Some(FEB16 + 2_000_000_000)
        );
        assert_eq!(
            at(Format::Syslog, "Feb 16 03:04:05 node kernel: x"),
            Some(FEB16)
        );
        assert_eq!(
            at(Format::Syslog, "Feb  6 03:04:05 node kernel: x"),
            Some(FEB16 - 10 * 86_400 * 1_000_000_000)
        );
        assert_eq!(
            at(Format::Syslog, "2026-02-16T03:04:05+00:00 node kernel: x"),
            Some(FEB16)
        );
        assert_eq!(
            at(
                Format::Postgres,
                "2026-02-16 03:04:05.250 UTC [25] FATAL:  x"
            ),
            Some(FEB16 + 250_000_000)
        );
        assert_eq!(
            at(Format::Postgres, "2026-02-16 04:04:05 +01 [25] LOG:  x"),
            Some(FEB16)
        );
        assert_eq!(
            at(Format::Postgres, r#"2026-02-16 03:04:05.000 UTC,"app",,25"#),
            Some(FEB16)
        );
        assert_eq!(at(Format::Plain, "no time here"), None);
    }

    #[test]
    fn relative_times_need_a_boot_time() {
        let decoder = Decoder {
            format: Format::Dmesg,
            year: 2026,
            boot_ns: None,
            node_prefixed: false,
        };
        assert_eq!(decoder.timestamp(b"[   12.500000] x"), None);
        let talos = Decoder {
            format: Format::Json,
            year: 2026,
            boot_ns: None,
            node_prefixed: true,
        };
        assert_eq!(
            talos.timestamp(br#"10.0.10.21: {"ts":1771211045000,"msg":"x"}"#),
            Some(FEB16)
        );
        assert_eq!(decoder.timestamp(b"[   12.500000] x"), None);
    }

    #[test]
    fn malformed_times_are_none_not_errors() {
        assert_eq!(at(Format::Cri, "2026-13-40T99:99:99Z stderr F x"), None);
        assert_eq!(at(Format::Klog, "E1399 03:04:05.000002 1 a.go:1] x"), None);
        assert_eq!(at(Format::Json, "{not json"), None);
        assert_eq!(at(Format::Syslog, "Foo 16 03:04:05 node kernel: x"), None);
    }
}
