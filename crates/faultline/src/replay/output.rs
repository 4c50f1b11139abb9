//! Printing a replay: JSON lines (the stable contract in docs/output.md)
//! or a human timeline.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};

use faultline_core::Severity;
use faultline_matcher::Matcher;
use faultline_signatures::Template;
use serde::Serialize;

use super::input::InputError;
use super::{HitRecord, Totals};

/// Everything a replay found apart from the hits (printed as they come,
/// by [`RecordWriter`]), ready to print after them.
pub struct Report<'a> {
    pub matcher: &'a Matcher,
    /// How many hits there were.
    pub hits: u64,
    /// Hits per signature, by index in the matcher.
    pub per_signature: &'a [u64],
    pub totals: &'a Totals,
    pub errors: &'a [InputError],
    pub incidents: &'a [faultline_correlate::Report],
    /// Incidents dropped to keep their number bounded.
    pub incidents_evicted: u64,
}

/// `template` filled from the hit's captures, then its labels.
pub fn fill(template: &Template, hit: &HitRecord) -> String {
    template.render(|name| {
        hit.captures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| hit.labels.get(name).map(String::as_str))
    })
}

/// At most `max` bytes of `text`, cut at a character boundary, with `…`
/// when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[derive(Serialize)]
struct JsonIncident<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    key: &'a str,
    state: &'static str,
    severity: &'static str,
    first_seen: String,
    fired_at: Option<String>,
    last_fired_at: Option<String>,
    fired_count: u32,
    last_seen: String,
    resolved_at: Option<String>,
    signatures: &'a BTreeMap<String, u64>,
    hits: u64,
    summary: &'a str,
    remediation: &'a str,
    related: Vec<&'a str>,
    evidence: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonHit<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    signature: &'a str,
    class: &'static str,
    severity: &'static str,
    ts: Option<String>,
    origin: String,
    labels: &'a BTreeMap<String, String>,
    captures: BTreeMap<&'a str, &'a str>,
    entity: Option<String>,
    summary: String,
    line: &'a str,
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    files: u64,
    lines: u64,
    bytes: u64,
    hits: u64,
    incidents: usize,
    incidents_evicted: u64,
    decode_errors: usize,
    lines_truncated: u64,
    errors: Vec<String>,
    skipped: &'a [String],
    signatures: BTreeMap<&'a str, u64>,
}

/// RFC 3339 in UTC with nanoseconds, as faultline prints every time.
pub fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| format!("{t:.9}"))
        .unwrap_or_else(|_| ns.to_string())
}

/// Whether to colour text output: a terminal, and `NO_COLOR` unset.
pub fn use_color() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints hits and incidents one by one, as JSON lines or as text.
pub struct RecordWriter<'a> {
    matcher: &'a Matcher,
    color: bool,
}

impl<'a> RecordWriter<'a> {
    /// `color`: paint the text timeline (see [`use_color`]).
    pub fn new(matcher: &'a Matcher, color: bool) -> RecordWriter<'a> {
        RecordWriter { matcher, color }
    }

    fn summary_of(&self, hit: &HitRecord) -> String {
        fill(&self.matcher.signatures()[hit.signature].summary, hit)
    }

    /// One `"type":"hit"` JSON line.
    pub fn json(&self, out: &mut impl Write, hit: &HitRecord) -> io::Result<()> {
        let sig = &self.matcher.signatures()[hit.signature];
        let record = JsonHit {
            kind: "hit",
            signature: &sig.id,
            class: sig.class.as_str(),
            severity: sig.severity.as_str(),
            ts: hit.ts.map(rfc3339),
            origin: origin(hit),
            labels: &hit.labels,
            captures: hit
                .captures
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            entity: hit.entity.clone(),
            summary: self.summary_of(hit),
            line: &hit.line,
        };
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")
    }

    /// One block of the text timeline.
    pub fn text(&self, out: &mut impl Write, hit: &HitRecord) -> io::Result<()> {
        let paint = |code: &str, text: &str| paint(self.color, code, text);
        let sig = &self.matcher.signatures()[hit.signature];
        let when = hit.ts.map_or_else(|| "(no time)".to_string(), rfc3339);
        let severity = match sig.severity {
            Severity::Critical => paint("1;31", "CRITICAL"),
            Severity::Warning => paint("33", "WARNING "),
            Severity::Info => paint("36", "INFO    "),
        };
        let who = ["namespace", "pod", "container", "node"]
            .iter()
            .filter_map(|k| hit.labels.get(*k).map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(out, "{when}  {severity}  {}  {who}", paint("1", &sig.id))?;
        writeln!(out, "    {}", self.summary_of(hit))?;
        writeln!(out, "    {}", paint("2", &origin(hit)))
    }

    /// One `"type":"incident"` JSON line.
    pub fn incident_json(
        &self,
        out: &mut impl Write,
        report: &faultline_correlate::Report,
    ) -> io::Result<()> {
        let i = &report.incident;
        let record = JsonIncident {
            kind: "incident",
            key: &report.key,
            state: i.state.as_str(),
            severity: i.severity.as_str(),
            first_seen: rfc3339(i.first_seen),
            fired_at: i.fired_at.map(rfc3339),
            last_fired_at: i.last_fired_at.map(rfc3339),
            fired_count: i.fired_count,
            last_seen: rfc3339(i.last_seen),
            resolved_at: i.resolved_at.map(rfc3339),
            signatures: &i.signatures,
            hits: i.hits,
            summary: &report.summary,
            remediation: &report.remediation,
            related: i.related.iter().map(String::as_str).collect(),
            evidence: i.evidence().map(String::as_str).collect(),
        };
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")
    }

    /// One incident as a block of text: state, severity, key, story, fix.
    pub fn incident_text(
        &self,
        out: &mut impl Write,
        report: &faultline_correlate::Report,
    ) -> io::Result<()> {
        let paint = |code: &str, text: &str| paint(self.color, code, text);
        let i = &report.incident;
        let state = match i.state {
            faultline_correlate::State::Firing => paint("1;31", "FIRING  "),
            faultline_correlate::State::Resolved => paint("32", "RESOLVED"),
            faultline_correlate::State::Pending => paint("33", "PENDING "),
        };
        writeln!(
            out,
            "{state}  {:8}  {}",
            i.severity.as_str(),
            paint("1", &report.key)
        )?;
        writeln!(out, "    {}", report.summary)?;
        writeln!(out, "    fix: {}", report.remediation)?;
        if !i.related.is_empty() {
            writeln!(
                out,
                "    related: {}",
                i.related.iter().cloned().collect::<Vec<_>>().join(", ")
            )?;
        }
        Ok(())
    }
}

fn origin(hit: &HitRecord) -> String {
    format!("{}:{}", hit.origin, hit.line_no)
}

/// `text` in the terminal colour `code` when `color`.
fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

impl Report<'_> {
    /// Hits per signature id, for the signatures that had any.
    fn per_signature(&self) -> BTreeMap<&str, u64> {
        self.matcher
            .signatures()
            .iter()
            .zip(self.per_signature)
            .filter(|(_, n)| **n > 0)
            .map(|(sig, n)| (sig.id.as_str(), *n))
            .collect()
    }

    /// What follows the hits' JSON lines: one line per incident, then the
    /// summary.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let records = RecordWriter::new(self.matcher, false);
        for report in self.incidents {
            records.incident_json(out, report)?;
        }
        let summary = JsonSummary {
            kind: "summary",
            files: self.totals.files,
            lines: self.totals.lines,
            bytes: self.totals.bytes,
            hits: self.hits,
            incidents: self.incidents.len(),
            incidents_evicted: self.incidents_evicted,
            decode_errors: self.errors.len(),
            lines_truncated: self.totals.truncated,
            errors: self.errors.iter().map(ToString::to_string).collect(),
            skipped: &self.totals.skipped,
            signatures: self.per_signature(),
        };
        serde_json::to_writer(&mut *out, &summary)?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// What follows the text timeline's hits: the incidents, then totals.
    pub fn write_text(&self, out: &mut impl Write, color: bool) -> io::Result<()> {
        if !self.incidents.is_empty() {
            let count = |state| {
                self.incidents
                    .iter()
                    .filter(|r| r.incident.state == state)
                    .count()
            };
            writeln!(
                out,
                "\n{} incidents ({} firing, {} resolved, {} pending)",
                self.incidents.len(),
                count(faultline_correlate::State::Firing),
                count(faultline_correlate::State::Resolved),
                count(faultline_correlate::State::Pending)
            )?;
        }
        let records = RecordWriter::new(self.matcher, color);
        for report in self.incidents {
            records.incident_text(out, report)?;
        }
        let t = self.totals;
        writeln!(
            out,
            "{} hits of {} signatures in {} files ({} lines, {} bytes{})",
            self.hits,
            self.per_signature().len(),
            t.files,
            t.lines,
            t.bytes,
            if t.truncated > 0 {
                format!(", {} lines cut at 4 MiB", t.truncated)
            } else {
                String::new()
            },
        )?;
        for skipped in &t.skipped {
            writeln!(out, "skipped {skipped}")?;
        }
        out.flush()
    }
}
