//! `faultline replay`: read log archives offline and report what matched.
//!
//! Each input is read as buffers of whole lines ([`lines::LineReader`]) and
//! scanned by the compiled matcher; only the lines that matched are dated
//! and labelled ([`faultline_formats`]). Inputs are read in parallel, one
//! per worker; their hits are then merged in event-time order, so the
//! report reads as the cluster lived it, whatever order the files came in.

mod cri;
mod input;
mod lines;
mod output;
mod report;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use faultline_core::SourceKind;
use faultline_formats::kubernetes::{self, Document};
use faultline_formats::loki;
use faultline_formats::{Decoder, Format, Labels, line_labels, path_labels};
use faultline_matcher::{Hit, Matcher};
use faultline_signatures::Library;

use self::input::{Input, InputError, Task};
use self::lines::LineReader;

/// Arguments of `faultline replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Files and directories to read (directories recursively; `.gz` files
    /// are decompressed; - reads standard input).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format. Default: text on a terminal, json otherwise.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<OutputFormat>,
    /// Treat every input as this log format instead of detecting it from
    /// its first lines.
    #[arg(long, value_name = "NAME", value_parser = parse_input_format)]
    input_format: Option<Format>,
    /// A directory of *.yaml signature files to add to the built-in
    /// library (repeatable).
    #[arg(long = "signatures", value_name = "DIR")]
    signature_dirs: Vec<PathBuf>,
    /// Year for formats that print none (klog, BSD syslog). Default: the
    /// year of each file's modification time.
    #[arg(long, value_name = "YYYY")]
    year: Option<i16>,
    /// Boot time of the node, RFC 3339, for kernel logs that count seconds
    /// since boot (`dmesg`, `/dev/kmsg`). Without it those lines have no
    /// time of their own.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    boot_time: Option<i64>,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// `kubectl get pods,pvc,pv,nodes -A -o json` output, to tell which PVC,
    /// node and workload each failure belongs to (repeatable). Object lists
    /// found among the inputs are used the same way.
    #[arg(long, value_name = "FILE")]
    inventory: Vec<PathBuf>,
}

/// How `replay` prints what it found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A human timeline.
    Text,
    /// One JSON object per line (documented in docs/output.md).
    Json,
    /// An incident report in Markdown, for a post-mortem.
    Markdown,
    /// The incident report as one self-contained HTML page with a timeline.
    Html,
}

fn parse_input_format(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| {
        format!(
            "unknown format {name:?}; expected one of: {}",
            Format::names().collect::<Vec<_>>().join(", ")
        )
    })
}

fn parse_time(text: &str) -> Result<i64, String> {
    faultline_formats::parse_rfc3339(text.as_bytes())
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time"))
}

/// One line that matched one signature, dated and labelled.
#[derive(Debug)]
pub struct HitRecord {
    /// Index of the signature in the matcher.
    pub signature: usize,
    /// UTC nanoseconds: the line's own time, else inherited (see docs).
    pub ts: Option<i64>,
    /// Index of the input it came from.
    pub input: usize,
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
    /// No dated line came before it in its part of the input: its time is
    /// a fallback that an earlier part of the same input may improve on.
    pub undated_before: bool,
}

/// Totals over the run.
#[derive(Debug, Default)]
pub struct Totals {
    /// Inputs read (to the end or to an error).
    pub files: u64,
    /// Lines read.
    pub lines: u64,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Lines cut at the line-length cap.
    pub truncated: u64,
    /// Inputs that are not logs (Kubernetes object lists), and why.
    pub skipped: Vec<String>,
    /// The object lists among the inputs, used as inventory.
    pub inventories: Vec<Vec<u8>>,
    /// Nodes' mount tables among the inputs: (node, mountinfo).
    pub mounts: Vec<(String, String)>,
}

/// How inputs are read, independent of how results are printed.
#[derive(Clone, Debug)]
pub struct Options {
    /// Force this format for every input instead of detecting it.
    pub input_format: Option<Format>,
    /// Year for formats that print none.
    pub year: Option<i16>,
    /// Boot time (UTC ns) for kernel times relative to boot.
    pub boot_time: Option<i64>,
    /// Worker threads (at least 1).
    pub threads: usize,
}

/// Everything a replay found.
#[derive(Debug)]
pub struct Replay {
    /// Hits in event-time order.
    pub hits: Vec<HitRecord>,
    /// Totals over all inputs.
    pub totals: Totals,
    /// Inputs that could not be read (in part or at all).
    pub errors: Vec<InputError>,
    /// Incidents formed from the hits, by first sight.
    pub incidents: Vec<faultline_correlate::Report>,
}

/// Reads `paths` and matches them with `matcher`. `None` when none of the
/// paths could be expanded into anything to read (the errors say why).
pub fn replay_paths(
    matcher: &Matcher,
    paths: &[PathBuf],
    options: &Options,
) -> Result<Replay, Vec<InputError>> {
    replay_with_inventory(
        matcher,
        paths,
        options,
        faultline_correlate::Inventory::default(),
    )
}

/// [`replay_paths`] with an inventory to resolve entities with; object
/// lists found among the inputs are added to it.
pub fn replay_with_inventory(
    matcher: &Matcher,
    paths: &[PathBuf],
    options: &Options,
    mut inventory: faultline_correlate::Inventory,
) -> Result<Replay, Vec<InputError>> {
    let (inputs, mut errors) = input::expand(paths);
    if inputs.is_empty() && !errors.is_empty() {
        return Err(errors);
    }
    let (mut hits, totals, read_errors) = scan_all(matcher, &inputs, options);
    errors.extend(read_errors);
    // Event-time order; ties (and undated lines) keep input and line order.
    hits.sort_by_key(|h| (h.ts.unwrap_or(i64::MIN), h.input, h.line_no));
    for (i, bytes) in totals.inventories.iter().enumerate() {
        if let Err(err) = inventory.add_json(bytes) {
            errors.push(InputError {
                path: format!("inventory #{}", i + 1).into(),
                message: err,
            });
        }
    }
    for (node, table) in &totals.mounts {
        inventory.add_mounts(node, table);
    }
    let incidents = correlate(matcher, &mut hits, inventory);
    Ok(Replay {
        hits,
        totals,
        errors,
        incidents,
    })
}

/// Feeds the hits, in event-time order, to a correlator; records on each
/// hit the entity it is about; returns the incidents as of the last hit.
fn correlate(
    matcher: &Matcher,
    hits: &mut [HitRecord],
    inventory: faultline_correlate::Inventory,
) -> Vec<faultline_correlate::Report> {
    let mut correlator = faultline_correlate::Correlator::new(inventory);
    let mut last = None;
    for hit in hits.iter_mut() {
        let Some(ts) = hit.ts else { continue };
        let sig = &matcher.signatures()[hit.signature];
        let evidence = format!(
            "{}:{} {}",
            hit.origin,
            hit.line_no,
            output::clip(&hit.line, 300)
        );
        let key = correlator.observe(&faultline_correlate::Observation {
            ts,
            signature: &sig.id,
            class: sig.class,
            severity: sig.severity,
            labels: &hit.labels,
            captures: &hit.captures,
            summary: &output::fill(&sig.summary, hit),
            remediation: &output::fill(&sig.remediation, hit),
            evidence: &evidence,
        });
        hit.entity = Some(key);
        last = Some(ts);
    }
    if let Some(end) = last {
        correlator.advance(end);
    }
    correlator.reports()
}

/// Runs `replay` and prints the report.
pub fn run(args: &ReplayArgs) -> Result<ExitCode> {
    let library = Library::load(&args.signature_dirs)
        .map_err(|problems| anyhow::anyhow!("signature problems:\n{problems}"))?;
    let matcher = Matcher::new(library.signatures()).context("compiling the signature library")?;
    let options = Options {
        input_format: args.input_format,
        year: args.year,
        boot_time: args.boot_time,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
    };
    let mut inventory = faultline_correlate::Inventory::default();
    for file in &args.inventory {
        let bytes =
            std::fs::read(file).with_context(|| format!("reading inventory {}", file.display()))?;
        inventory
            .add_json(&bytes)
            .map_err(|err| anyhow::anyhow!("inventory {}: {err}", file.display()))?;
    }
    let Replay {
        hits,
        totals,
        errors,
        incidents,
    } = match replay_with_inventory(&matcher, &args.paths, &options, inventory) {
        Ok(replay) => replay,
        Err(errors) => {
            for error in &errors {
                eprintln!("faultline: {error}");
            }
            bail!("nothing to read");
        }
    };

    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Text
    } else {
        OutputFormat::Json
    });
    let report = output::Report {
        matcher: &matcher,
        hits: &hits,
        totals: &totals,
        errors: &errors,
        incidents: &incidents,
    };
    match format {
        OutputFormat::Json => report.write_json(&mut std::io::stdout().lock())?,
        OutputFormat::Text => {
            report.write_text(&mut std::io::stdout().lock(), output::use_color())?
        }
        OutputFormat::Markdown => report.write_markdown(&mut std::io::stdout().lock())?,
        OutputFormat::Html => report.write_html(&mut std::io::stdout().lock())?,
    }
    for error in &errors {
        eprintln!("faultline: {error}");
    }
    Ok(if !errors.is_empty() {
        ExitCode::from(2)
    } else if hits.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Scans every input on `threads` workers (large files split across
/// them), then stitches the parts of each input back together.
fn scan_all(
    matcher: &Matcher,
    inputs: &[Input],
    options: &Options,
) -> (Vec<HitRecord>, Totals, Vec<InputError>) {
    let threads = options.threads.max(1);
    let tasks = input::plan(inputs, threads);
    let progress = Progress {
        bar: progress_bar(inputs),
        hits: AtomicUsize::new(0),
    };
    let next = AtomicUsize::new(0);
    let parts: Mutex<Vec<Option<Part>>> = Mutex::new((0..tasks.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(tasks.len()).max(1) {
            scope.spawn(|| {
                let mut scratch = matcher.scratch();
                loop {
                    let slot = next.fetch_add(1, Ordering::Relaxed);
                    let Some(task) = tasks.get(slot) else { break };
                    let scan = FileScan::new(task, &inputs[task.input], options, &progress);
                    let part = scan.run(matcher, &mut scratch);
                    parts
                        .lock()
                        .expect("no worker panics while holding the lock")[slot] = Some(part);
                }
            });
        }
    });
    progress.bar.finish_and_clear();
    let parts = parts.into_inner().expect("workers are done");
    stitch(&tasks, parts)
}

/// A progress bar on stderr (bytes, rate, hits) when stderr is a
/// terminal; a hidden one otherwise.
fn progress_bar(inputs: &[Input]) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let total: u64 = inputs
        .iter()
        .filter_map(|i| std::fs::metadata(&i.path).ok())
        .map(|m| m.len())
        .sum();
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left) {msg}",
    )
    .expect("a valid progress template");
    bar.set_style(style);
    bar
}

/// Progress shared by the workers.
struct Progress {
    bar: indicatif::ProgressBar,
    hits: AtomicUsize,
}

/// What scanning one task found.
struct Part {
    hits: Vec<HitRecord>,
    lines: u64,
    bytes: u64,
    truncated: u64,
    /// Time of the last dated line of the part.
    last_ts: Option<i64>,
    error: Option<InputError>,
    /// Files read: 1, or the members of a tar archive.
    files: u64,
    /// Why the input was not matched, when it is not a log.
    skipped: Option<String>,
    /// A Kubernetes object list found among the inputs, for correlation.
    inventory: Option<Vec<u8>>,
    /// A node's mount table found among the inputs: (node, mountinfo).
    mounts: Option<(String, String)>,
}

/// Joins the parts of each input in order: line numbers continue from the
/// previous part, and hits with no dated line before them in their part
/// take the previous part's last time.
fn stitch(tasks: &[Task], parts: Vec<Option<Part>>) -> (Vec<HitRecord>, Totals, Vec<InputError>) {
    let mut hits = Vec::new();
    let mut totals = Totals::default();
    let mut errors = Vec::new();
    let mut current: Option<usize> = None;
    let (mut line_offset, mut last_ts) = (0u64, None);
    for (task, part) in tasks.iter().zip(parts.into_iter().flatten()) {
        if current != Some(task.input) {
            current = Some(task.input);
            (line_offset, last_ts) = (0, None);
            totals.files += part.files;
        }
        for mut hit in part.hits {
            hit.line_no += line_offset;
            if hit.undated_before && last_ts.is_some() {
                hit.ts = last_ts;
            }
            hits.push(hit);
        }
        line_offset += part.lines;
        last_ts = part.last_ts.or(last_ts);
        totals.lines += part.lines;
        totals.bytes += part.bytes;
        totals.truncated += part.truncated;
        totals.skipped.extend(part.skipped);
        totals.inventories.extend(part.inventory);
        totals.mounts.extend(part.mounts);
        errors.extend(part.error);
    }
    (hits, totals, errors)
}

/// Scanning one task: a whole input, a byte range of one, or every member
/// of a tar archive.
struct FileScan<'a> {
    task: &'a Task,
    input: &'a Input,
    options: &'a Options,
    progress: &'a Progress,
}

/// Bytes looked at to tell a tar archive or a Kubernetes API document
/// from a log (tar's magic sits inside its first 512-byte header).
const HEAD: usize = 4096;
/// Largest Kubernetes API document read whole.
const MAX_DOCUMENT: u64 = 256 << 20;

impl<'a> FileScan<'a> {
    fn new(
        task: &'a Task,
        input: &'a Input,
        options: &'a Options,
        progress: &'a Progress,
    ) -> FileScan<'a> {
        FileScan {
            task,
            input,
            options,
            progress,
        }
    }

    /// Scans the task to its end (or to a read error) and says what it found.
    fn run(self, matcher: &Matcher, scratch: &mut faultline_matcher::Scratch) -> Part {
        let mut part = Part {
            hits: Vec::new(),
            lines: 0,
            bytes: 0,
            truncated: 0,
            last_ts: None,
            error: None,
            files: 1,
            skipped: None,
            inventory: None,
            mounts: None,
        };
        let fail = |path: String, message: String| InputError {
            path: path.into(),
            message,
        };
        let display = self.input.path.display().to_string();
        let opened = match input::open(self.input, self.task.range) {
            Ok(opened) => opened,
            Err(err) => {
                part.error = Some(fail(display, format!("cannot open: {err}")));
                return part;
            }
        };
        let (head, reader) = match input::peek(opened.reader, HEAD) {
            Ok(peeked) => peeked,
            Err(err) => {
                part.error = Some(fail(
                    display,
                    format!("{}: {err}", opened.encoding.failure()),
                ));
                return part;
            }
        };
        let labels = path_labels(&self.input.path);
        if self.task.range.is_none() && input::is_tar(&head) {
            part.files = 0;
            let mut archive = tar::Archive::new(reader);
            let entries = match archive.entries() {
                Ok(entries) => entries,
                Err(err) => {
                    part.error = Some(fail(display, format!("not a readable tar archive: {err}")));
                    return part;
                }
            };
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(err) => {
                        let at = opened.raw_offset.load(Ordering::Relaxed);
                        part.error = Some(fail(
                            display,
                            format!("corrupt tar archive at byte {at}: {err}"),
                        ));
                        break;
                    }
                };
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let member = entry.path().map(|p| p.into_owned()).unwrap_or_default();
                let mut member_labels = labels.clone();
                member_labels.extend(path_labels(&member));
                let origin = format!("{display}:{}", member.display());
                let mtime = entry
                    .header()
                    .mtime()
                    .ok()
                    .and_then(|s| i64::try_from(s).ok())
                    .map(|s| s * 1_000_000_000);
                let (reader, encoding) = match input::decompressing(Box::new(entry)) {
                    Ok(decompressed) => decompressed,
                    Err(err) => {
                        part.error = Some(fail(origin, format!("cannot read: {err}")));
                        continue;
                    }
                };
                let stream = StreamScan::new(
                    self.task.input,
                    origin.clone(),
                    member_labels,
                    self.options,
                    self.progress,
                );
                let scanned = stream.scan(matcher, scratch, reader, mtime);
                part.files += 1;
                part.absorb(scanned, |err| {
                    fail(
                        origin.clone(),
                        format!("{} in this member: {err}", encoding.failure()),
                    )
                });
            }
            return part;
        }
        let mut stream = StreamScan::new(
            self.task.input,
            display.clone(),
            labels.clone(),
            self.options,
            self.progress,
        );
        let mut reader = reader;
        if self.task.range.is_none() && faultline_correlate::mounts::looks_like_mountinfo(&head) {
            let mut text = String::new();
            if let Err(err) = (&mut reader).take(MAX_DOCUMENT).read_to_string(&mut text) {
                part.error = Some(fail(
                    display,
                    format!("{}: {err}", opened.encoding.failure()),
                ));
                return part;
            }
            part.skipped = Some(match labels.get("node") {
                Some(node) => {
                    let note = format!(
                        "{display}: the mount table of node {node}, not a log; used to map devices to volumes"
                    );
                    part.mounts = Some((node.clone(), text));
                    note
                }
                None => format!(
                    "{display}: a mount table of an unknown node (keep it under node/<name>/); not used"
                ),
            });
            return part;
        }
        let is_loki = loki::looks_like_response(&head);
        let is_table = kubernetes::looks_like_events_table(&head);
        if self.task.range.is_none()
            && (is_loki || is_table || kubernetes::looks_like_document(&head))
        {
            let mut whole = Vec::new();
            if let Err(err) = (&mut reader).take(MAX_DOCUMENT).read_to_end(&mut whole) {
                part.error = Some(fail(
                    display,
                    format!("{}: {err}", opened.encoding.failure()),
                ));
                return part;
            }
            let document = if is_loki {
                loki::response(&whole).map(Document::Events)
            } else if is_table {
                kubernetes::events_table(&String::from_utf8_lossy(&whole), opened.mtime_ns)
                    .map(Document::Events)
            } else {
                kubernetes::document(&whole)
            };
            match document {
                Some(Document::Events(lines)) => {
                    if !is_loki {
                        stream.source = Some(SourceKind::Events);
                    }
                    reader = Box::new(std::io::Cursor::new(lines));
                }
                Some(Document::Objects { kinds }) => {
                    part.skipped = Some(format!(
                        "{display}: a Kubernetes object list ({}), not a log; used as inventory",
                        kinds.join(", ")
                    ));
                    part.inventory = Some(whole);
                    return part;
                }
                None => reader = Box::new(std::io::Cursor::new(whole).chain(reader)),
            }
        }
        let scanned = stream.scan(matcher, scratch, reader, opened.mtime_ns);
        let at = opened.raw_offset.load(Ordering::Relaxed);
        part.absorb(scanned, |err| {
            fail(
                display.clone(),
                format!(
                    "{} at byte {at} of the file: {err} (lines before it were read)",
                    opened.encoding.failure()
                ),
            )
        });
        part
    }
}

impl Part {
    /// Adds what one stream of the task found.
    fn absorb(&mut self, scanned: Scanned, describe: impl FnOnce(std::io::Error) -> InputError) {
        self.hits.extend(scanned.hits);
        self.lines += scanned.lines;
        self.bytes += scanned.bytes;
        self.truncated += scanned.truncated;
        self.last_ts = scanned.last_ts.or(self.last_ts);
        if let Some(err) = scanned.error {
            self.error = Some(describe(err));
        }
    }
}

/// What scanning one stream found.
struct Scanned {
    hits: Vec<HitRecord>,
    lines: u64,
    bytes: u64,
    truncated: u64,
    last_ts: Option<i64>,
    error: Option<std::io::Error>,
}

/// The state of scanning one stream of lines.
struct StreamScan<'a> {
    input: usize,
    /// Where hits say they come from: the path, or `ARCHIVE:MEMBER`.
    origin: std::sync::Arc<str>,
    options: &'a Options,
    path_labels: Labels,
    hits: Vec<HitRecord>,
    lines: u64,
    /// Time of the last dated line before the current buffer.
    carried_ts: Option<i64>,
    /// CRI partial lines being joined, the joined buffer and, for each of
    /// its lines, the input line number it starts at.
    joiner: cri::Joiner,
    joined: Vec<u8>,
    line_map: cri::LineMap,
    /// Where bytes read and hits found are shown (hidden when piped).
    progress: &'a Progress,
    /// Where the records come from, when the input says so rather than
    /// the format (Kubernetes Events).
    source: Option<SourceKind>,
}

/// Lines looked back through for a time to inherit.
const INHERIT_LOOKBACK: usize = 1000;

impl<'a> StreamScan<'a> {
    fn new(
        input: usize,
        origin: String,
        path_labels: Labels,
        options: &'a Options,
        progress: &'a Progress,
    ) -> StreamScan<'a> {
        StreamScan {
            input,
            origin: origin.into(),
            options,
            path_labels,
            hits: Vec::new(),
            lines: 0,
            carried_ts: None,
            joiner: cri::Joiner::default(),
            joined: Vec::new(),
            line_map: cri::LineMap::default(),
            progress,
            source: None,
        }
    }

    /// Reads `reader` to its end or to a read error (the lines before it
    /// are all matched) and says what it found.
    fn scan(
        mut self,
        matcher: &Matcher,
        scratch: &mut faultline_matcher::Scratch,
        reader: impl std::io::Read,
        mtime: Option<i64>,
    ) -> Scanned {
        let year = self.options.year.unwrap_or_else(|| year_of(mtime));
        let mut reader = LineReader::new(reader);
        let mut decoder: Option<Decoder> = None;
        let error = loop {
            let buf = match reader.next_lines() {
                Ok(Some(buf)) => buf,
                Ok(None) => break None,
                Err(err) => break Some(err),
            };
            let decoder = *decoder.get_or_insert_with(|| {
                let first_lines = buf.split(|&b| b == b'\n').take(20);
                let (format, node_prefixed) = match self.options.input_format {
                    Some(format) => (format, false),
                    None => Format::detect_prefixed(first_lines),
                };
                Decoder {
                    format,
                    year,
                    boot_ns: self.options.boot_time,
                    node_prefixed,
                }
            });
            let hits_before = self.hits.len();
            self.scan_buffer(matcher, scratch, &decoder, buf, mtime);
            self.progress.bar.inc(buf.len() as u64);
            let new_hits = self.hits.len() - hits_before;
            if new_hits > 0 {
                let total = self.progress.hits.fetch_add(new_hits, Ordering::Relaxed) + new_hits;
                self.progress.bar.set_message(format!("{total} hits"));
            }
        };
        if self.joiner.active() {
            let (mut joined, mut map) = (
                std::mem::take(&mut self.joined),
                std::mem::take(&mut self.line_map),
            );
            self.joiner.finish(&mut joined, &mut map);
            if let Some(decoder) = decoder {
                self.match_lines(matcher, scratch, &decoder, &joined, Some(&map), mtime);
            }
        }
        Scanned {
            hits: self.hits,
            lines: self.lines,
            bytes: reader.bytes,
            truncated: reader.truncated,
            last_ts: self.carried_ts,
            error,
        }
    }

    /// Matches one buffer of whole lines and advances the line count.
    fn scan_buffer(
        &mut self,
        matcher: &Matcher,
        scratch: &mut faultline_matcher::Scratch,
        decoder: &Decoder,
        buf: &[u8],
        mtime: Option<i64>,
    ) {
        if decoder.format == Format::Cri && (self.joiner.active() || cri::has_partials(buf)) {
            let (mut joined, mut map) = (
                std::mem::take(&mut self.joined),
                std::mem::take(&mut self.line_map),
            );
            self.joiner.join(buf, self.lines, &mut joined, &mut map);
            self.match_lines(matcher, scratch, decoder, &joined, Some(&map), mtime);
            (self.joined, self.line_map) = (joined, map);
        } else {
            self.match_lines(matcher, scratch, decoder, buf, None, mtime);
        }
        let unterminated = u64::from(!buf.ends_with(b"\n") && !buf.is_empty());
        self.lines += count_lines(buf) + unterminated;
        if let Some(ts) = inherited_ts(decoder, buf, buf.len()) {
            self.carried_ts = Some(ts);
        }
    }

    /// Matches `buf` and records its hits. The line numbers of `buf`'s
    /// lines are `line_map`'s, or follow the lines read so far.
    fn match_lines(
        &mut self,
        matcher: &Matcher,
        scratch: &mut faultline_matcher::Scratch,
        decoder: &Decoder,
        buf: &[u8],
        line_map: Option<&cri::LineMap>,
        mtime: Option<i64>,
    ) {
        let source = self
            .source
            .or_else(|| source_kind(decoder.format, &self.path_labels));
        let mut counted_to = 0usize;
        let mut index = 0u64;
        let mut found = Vec::new();
        matcher.scan(buf, source, scratch, |hit: Hit<'_>| {
            index += count_lines(&buf[counted_to..hit.line_start()]);
            counted_to = hit.line_start();
            let line_no = match line_map {
                Some(map) => map.line_no(index).unwrap_or(self.lines + index + 1),
                None => self.lines + index + 1,
            };
            let own = decoder
                .timestamp(hit.line())
                .or_else(|| inherited_ts(decoder, buf, hit.line_start()))
                .or(self.carried_ts);
            let ts = own.or(mtime);
            let mut labels = self.path_labels.clone();
            for (k, v) in line_labels(decoder.format, hit.line()) {
                labels.entry(k).or_insert(v);
            }
            found.push(HitRecord {
                signature: hit.signature_index(),
                ts,
                input: self.input,
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
                undated_before: own.is_none(),
            });
        });
        self.hits.append(&mut found);
    }
}

/// The time of the nearest dated line before `before` in `buf`.
fn inherited_ts(decoder: &Decoder, buf: &[u8], before: usize) -> Option<i64> {
    let mut end = before;
    for _ in 0..INHERIT_LOOKBACK {
        let body = buf[..end].strip_suffix(b"\n")?;
        let start = memchr::memrchr(b'\n', body).map_or(0, |i| i + 1);
        if let Some(ts) = decoder.timestamp(&body[start..]) {
            return Some(ts);
        }
        end = start;
    }
    None
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytecount::count(bytes, b'\n') as u64
}

fn source_kind(format: Format, labels: &Labels) -> Option<SourceKind> {
    format
        .source_kind()
        .or_else(|| labels.contains_key("pod").then_some(SourceKind::Pod))
}

fn year_of(mtime_ns: Option<i64>) -> i16 {
    let ts = mtime_ns
        .and_then(|ns| jiff::Timestamp::from_nanosecond(i128::from(ns)).ok())
        .unwrap_or_else(jiff::Timestamp::now);
    ts.to_zoned(jiff::tz::TimeZone::UTC).year()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(line_no: u64, ts: Option<i64>, undated_before: bool) -> HitRecord {
        HitRecord {
            signature: 0,
            ts,
            input: 0,
            origin: "test.log".into(),
            line_no,
            labels: Labels::new(),
            captures: Vec::new(),
            line: String::new(),
            entity: None,
            undated_before,
        }
    }

    fn part(hits: Vec<HitRecord>, lines: u64, last_ts: Option<i64>) -> Option<Part> {
        Some(Part {
            hits,
            lines,
            bytes: lines * 10,
            truncated: 0,
            last_ts,
            error: None,
            files: 1,
            skipped: None,
            inventory: None,
            mounts: None,
        })
    }

    #[test]
    fn parts_of_a_split_file_continue_line_numbers_and_times() {
        let tasks = [
            Task {
                input: 0,
                range: Some((0, 100)),
            },
            Task {
                input: 0,
                range: Some((100, 200)),
            },
            Task {
                input: 1,
                range: None,
            },
        ];
        let parts = vec![
            part(vec![hit(3, Some(50), false)], 10, Some(70)),
            // Its first hit had no dated line before it in this part: it
            // takes the previous part's last time; the second keeps its own.
            part(
                vec![hit(1, Some(999), true), hit(4, Some(80), false)],
                10,
                Some(90),
            ),
            part(vec![hit(2, Some(5), true)], 3, None),
        ];
        let (hits, totals, errors) = stitch(&tasks, parts);
        let seen: Vec<(u64, Option<i64>)> = hits.iter().map(|h| (h.line_no, h.ts)).collect();
        assert_eq!(
            seen,
            [(3, Some(50)), (11, Some(70)), (14, Some(80)), (2, Some(5))]
        );
        assert_eq!((totals.files, totals.lines, totals.bytes), (2, 23, 230));
        assert!(errors.is_empty());
    }
}
