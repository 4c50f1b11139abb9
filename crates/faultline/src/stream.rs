//! Matching a stream of lines: the part of reading a log that replay and
//! watch share. A [`LineStream`] takes buffers of whole lines in order,
//! joins CRI partial records, matches them, and dates and labels each hit:
//! its own time, else the time of the nearest earlier dated line of the
//! stream, else the fallback given (a file's modification time).

use std::sync::Arc;

use faultline_core::SourceKind;
use faultline_formats::{Decoder, Format, Labels, LineView};
use faultline_matcher::{Hit, Matcher, Scratch};

use crate::cri;

/// One line that matched one signature, dated and labelled.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HitRecord {
    /// Index of the signature in the matcher.
    pub signature: usize,
    /// UTC nanoseconds: the line's own time, else inherited (see docs).
    pub ts: Option<i64>,
    /// Index of the input it came from.
    pub input: usize,
    /// Index of the task (the input, or a part of it) that found it.
    pub task: usize,
    /// The path it came from, or `ARCHIVE:MEMBER` for a tar member.
    pub origin: std::sync::Arc<str>,
    /// 1-based line number in the (decompressed) input.
    pub line_no: u64,
    /// Labels from the path and the line.
    pub labels: Labels,
    /// Named captures, in pattern order.
    pub captures: Vec<(String, String)>,
    /// The raw line, lossily decoded.
    pub line: String,
    /// The key of the broken thing it is about, once correlated.
    pub entity: Option<String>,
}

/// The state of matching one stream of lines.
pub(crate) struct LineStream {
    input: usize,
    task: usize,
    /// Where hits say they come from: the path, or `ARCHIVE:MEMBER`.
    origin: Arc<str>,
    path_labels: Labels,
    /// Where the records come from, when the input says so rather than
    /// the format (Kubernetes Events).
    pub source: Option<SourceKind>,
    /// Lines read so far.
    pub lines: u64,
    /// Time of the last dated line before the current buffer.
    pub carried_ts: Option<i64>,
    /// CRI partial lines being joined, the joined buffer and, for each of
    /// its lines, the input line number it starts at.
    joiner: cri::Joiner,
    joined: Vec<u8>,
    line_map: cri::LineMap,
}

impl LineStream {
    /// A stream of input `input` (task `task`), known as `origin`, with the
    /// labels its path gives.
    pub fn new(input: usize, task: usize, origin: String, path_labels: Labels) -> LineStream {
        LineStream {
            input,
            task,
            origin: origin.into(),
            path_labels,
            source: None,
            lines: 0,
            carried_ts: None,
            joiner: cri::Joiner::default(),
            joined: Vec::new(),
            line_map: cri::LineMap::default(),
        }
    }

    /// The labels its path (or source) gives.
    pub fn path_labels(&self) -> &Labels {
        &self.path_labels
    }

    /// Matches one buffer of whole lines, hands each hit to `on_hit`,
    /// advances the line count, and says how many hits it found.
    pub fn scan_buffer(
        &mut self,
        matcher: &Matcher,
        scratch: &mut Scratch,
        decoder: &Decoder,
        buf: &[u8],
        mtime: Option<i64>,
        on_hit: &mut dyn FnMut(HitRecord),
    ) -> usize {
        let found =
            if decoder.format == Format::Cri && (self.joiner.active() || cri::has_partials(buf)) {
                let first_line = self.lines;
                self.match_joined(
                    matcher,
                    scratch,
                    decoder,
                    mtime,
                    on_hit,
                    |joiner, joined, map| joiner.join(buf, first_line, joined, map),
                )
            } else {
                self.match_lines(matcher, scratch, decoder, (buf, None), mtime, on_hit)
            };
        let unterminated = u64::from(!buf.ends_with(b"\n") && !buf.is_empty());
        self.lines += count_lines(buf) + unterminated;
        if let Some(ts) = last_dated(decoder, buf, 0, buf.len()) {
            self.carried_ts = Some(ts);
        }
        found
    }

    /// At the end of the stream: matches a CRI line still being joined.
    pub fn finish(
        &mut self,
        matcher: &Matcher,
        scratch: &mut Scratch,
        decoder: &Decoder,
        mtime: Option<i64>,
        on_hit: &mut dyn FnMut(HitRecord),
    ) {
        if self.joiner.active() {
            self.match_joined(
                matcher,
                scratch,
                decoder,
                mtime,
                on_hit,
                |joiner, joined, map| joiner.finish(joined, map),
            );
        }
    }

    /// Joins CRI partial records with `join` into the stream's joined
    /// buffer (reused from call to call), then matches what was joined.
    fn match_joined(
        &mut self,
        matcher: &Matcher,
        scratch: &mut Scratch,
        decoder: &Decoder,
        mtime: Option<i64>,
        on_hit: &mut dyn FnMut(HitRecord),
        join: impl FnOnce(&mut cri::Joiner, &mut Vec<u8>, &mut cri::LineMap),
    ) -> usize {
        let (mut joined, mut map) = (
            std::mem::take(&mut self.joined),
            std::mem::take(&mut self.line_map),
        );
        join(&mut self.joiner, &mut joined, &mut map);
        let found = self.match_lines(
            matcher,
            scratch,
            decoder,
            (&joined, Some(&map)),
            mtime,
            on_hit,
        );
        (self.joined, self.line_map) = (joined, map);
        found
    }

    /// Matches `buf` and hands its hits to `on_hit`; says how many there
    /// were. The line numbers of `buf`'s lines are `line_map`'s, or follow
    /// the lines read so far.
    fn match_lines(
        &mut self,
        matcher: &Matcher,
        scratch: &mut Scratch,
        decoder: &Decoder,
        (buf, line_map): (&[u8], Option<&cri::LineMap>),
        mtime: Option<i64>,
        on_hit: &mut dyn FnMut(HitRecord),
    ) -> usize {
        // A line that does not decode in the file's format is read on its
        // own (a kernel line in a CRI file, `kubectl logs --prefix`): its
        // own source, time and labels.
        let fixed_source = self.source;
        let path_labels = &self.path_labels;
        let source_of = |line: &[u8]| {
            fixed_source
                .or_else(|| source_kind(LineView::of(decoder, line).decoder.format, path_labels))
        };
        let mut counted_to = 0usize;
        let mut index = 0u64;
        let mut count = 0;
        // The time lines inherit at `known_at`: looking back from a hit
        // stops there, so the buffer is looked back through only once.
        let (mut known_at, mut known_ts) = (0, self.carried_ts);
        matcher.scan(buf, source_of, scratch, |hit: Hit<'_>| {
            index += count_lines(&buf[counted_to..hit.line_start()]);
            counted_to = hit.line_start();
            let line_no = match line_map {
                Some(map) => map.line_no(index).unwrap_or(self.lines + index + 1),
                None => self.lines + index + 1,
            };
            let inherited = last_dated(decoder, buf, known_at, hit.line_start()).or(known_ts);
            (known_at, known_ts) = (hit.line_start(), inherited);
            let view = LineView::of(decoder, hit.line());
            let ts = view.timestamp().or(inherited).or(mtime);
            let mut labels = self.path_labels.clone();
            for (k, v) in view.labels() {
                labels.entry(k).or_insert(v);
            }
            count += 1;
            on_hit(HitRecord {
                signature: hit.signature_index(),
                ts,
                input: self.input,
                task: self.task,
                origin: self.origin.clone(),
                line_no,
                labels,
                captures: hit
                    .captures()
                    .map(|(name, value)| {
                        (
                            name.to_string(),
                            String::from_utf8_lossy(value).into_owned(),
                        )
                    })
                    .collect(),
                line: String::from_utf8_lossy(hit.line()).into_owned(),
                entity: None,
            });
        });
        count
    }
}

/// Hands `hit` to `correlator` as seen at `ts` (its own time in replay,
/// the clock in watch) and returns the key of the entity it is about.
pub(crate) fn correlate(
    correlator: &mut faultline_correlate::Correlator,
    matcher: &Matcher,
    hit: &HitRecord,
    ts: i64,
) -> String {
    use crate::replay::output::{clip, fill};
    let sig = &matcher.signatures()[hit.signature];
    let evidence = format!("{}:{} {}", hit.origin, hit.line_no, clip(&hit.line, 300));
    correlator.observe(&faultline_correlate::Observation {
        ts,
        signature: &sig.id,
        class: sig.class,
        severity: sig.severity,
        labels: &hit.labels,
        captures: &hit.captures,
        summary: &fill(&sig.summary, hit),
        remediation: &fill(&sig.remediation, hit),
        evidence: &evidence,
    })
}

/// The time of the last dated line of `buf[from..before]` (whole lines;
/// `before` is the start of a line or the end of `buf`), looking back.
fn last_dated(decoder: &Decoder, buf: &[u8], from: usize, before: usize) -> Option<i64> {
    if decoder.format == Format::Plain {
        return None;
    }
    let mut end = before;
    while end > from {
        let body = buf[from..end]
            .strip_suffix(b"\n")
            .unwrap_or(&buf[from..end]);
        let start = memchr::memrchr(b'\n', body).map_or(0, |i| i + 1);
        if let Some(ts) = decoder.line_timestamp(&body[start..]) {
            return Some(ts);
        }
        end = from + start;
    }
    None
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytecount::count(bytes, b'\n') as u64
}

/// Where records come from: the format says, else a pod path label.
fn source_kind(format: Format, labels: &Labels) -> Option<SourceKind> {
    format
        .source_kind()
        .or_else(|| labels.contains_key("pod").then_some(SourceKind::Pod))
}
