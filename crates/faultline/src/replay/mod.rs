//! `faultline replay`: read log archives offline and report what matched.
//!
//! Each input is read as buffers of whole lines ([`lines::LineReader`]) and
//! scanned by the compiled matcher; only the lines that matched are dated
//! and labelled ([`faultline_formats`]). Inputs are read in parallel, one
//! per worker; their hits are then merged in event-time order, so the
//! report reads as the cluster lived it, whatever order the files came in.

pub mod input;
mod lines;
pub(crate) mod order;
pub(crate) mod output;
mod report;
pub mod silence;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use faultline_core::SourceKind;
use faultline_formats::kubernetes::{self, Document};
use faultline_formats::loki;
use faultline_formats::{Decoder, Format, Labels, path_labels};
use faultline_matcher::Matcher;

use self::input::{Input, InputError, Task};
use self::lines::LineReader;
use crate::facts::Facts;
use crate::stream::LineStream;

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
    /// Report a stream that goes quiet for longer than LIMIT (e.g. 15m) as
    /// a `stream/…` incident, measured between its dated lines and up to
    /// the replay's latest line. With `@LABEL=VALUE,…` only streams whose
    /// path labels match (e.g. `10m@namespace=monitoring`). Repeatable;
    /// the shortest matching limit applies.
    #[arg(long, value_name = "LIMIT[@LABEL=VALUE,…]")]
    silence: Vec<silence::SilenceRule>,
    /// Let time run on to TIME (RFC 3339) after the last line: incidents
    /// quiet long enough by then resolve, and streams silent since their
    /// last line count as silent — what `watch` reading the same logs
    /// shows at TIME. Default: the replay ends at its latest dated line.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<i64>,
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

pub use crate::stream::HitRecord;

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
    /// Container runs seen in pod log files: (namespace, pod, container).
    pub runs: Vec<(ContainerKey, faultline_correlate::inventory::ContainerRun)>,
    /// When the streams `--silence` watches spoke: (stream, activity).
    pub activities: Vec<(String, silence::Activity)>,
    /// The latest dated line of any input: the end of the replay.
    pub latest: Option<i64>,
    /// iSCSI sessions seen in nodes' kernel logs: (node, session, disks).
    pub iscsi: Vec<(String, u32, Vec<String>)>,
}

/// What one stream showed besides its hits.
#[derive(Debug, Default)]
struct StreamFacts {
    /// Its container run and iSCSI sessions.
    facts: Facts,
    /// When it spoke, when `--silence` watches it: (stream name, activity).
    activity: Option<(String, silence::Activity)>,
    /// Its latest dated line.
    latest: Option<i64>,
}

impl StreamFacts {
    /// Continues these facts with `next`, the next part of the same file.
    fn follow(&mut self, next: StreamFacts) {
        self.facts.follow(next.facts);
        if let (Some((_, activity)), Some((_, more))) = (&mut self.activity, next.activity) {
            activity.follow(more);
        }
        self.latest = self.latest.max(next.latest);
    }
}

pub use crate::facts::ContainerKey;

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
    /// Streams to watch for silence (`--silence`).
    pub silence: Vec<silence::SilenceRule>,
    /// Bytes of hits held in memory for event-time ordering; beyond it
    /// they go to sorted runs in temporary files ([`order::DEFAULT_BUDGET`]
    /// by default).
    pub hit_memory: usize,
    /// Where time ends (UTC ns), when later than the latest dated line.
    pub until: Option<i64>,
}

impl Default for Options {
    /// Detected formats, years from file times, no boot time, one worker,
    /// the default memory for hits.
    fn default() -> Options {
        Options {
            input_format: None,
            year: None,
            boot_time: None,
            threads: 1,
            silence: Vec::new(),
            hit_memory: order::DEFAULT_BUDGET,
            until: None,
        }
    }
}

/// Everything a replay found, apart from the hits (which are handed out
/// one by one, in order, as they are correlated).
#[derive(Debug)]
pub struct Replay {
    /// Hits handed out.
    pub hits: u64,
    /// Hits per signature, by the signature's index in the matcher.
    pub per_signature: Vec<u64>,
    /// Totals over all inputs.
    pub totals: Totals,
    /// Inputs that could not be read (in part or at all).
    pub errors: Vec<InputError>,
    /// Incidents formed from the hits, by first sight.
    pub incidents: Vec<faultline_correlate::Report>,
    /// Incidents dropped to keep their number bounded.
    pub incidents_evicted: u64,
    /// Why hits could not be written to temporary files while being put in
    /// order (they were kept in memory instead; nothing was lost).
    pub spill_error: Option<std::io::Error>,
}

/// Why a replay stopped.
#[derive(Debug)]
pub enum ReplayError {
    /// None of the paths could be expanded into anything to read.
    NothingToRead(Vec<InputError>),
    /// Handing out a hit failed (the output was closed), or hits written
    /// to a temporary file could not be read back.
    Io(std::io::Error),
}

/// Reads `paths`, matches them with `matcher`, and hands every hit to
/// `on_hit` in event-time order (ties, and undated lines, keep input and
/// line order), with the entity `correlator` resolved it to filled in.
/// Object lists and mount tables found among the inputs are added to the
/// correlator's inventory before the first hit is correlated.
pub fn replay(
    matcher: &Matcher,
    paths: &[PathBuf],
    options: &Options,
    mut correlator: faultline_correlate::Correlator,
    on_hit: impl FnMut(&HitRecord) -> std::io::Result<()>,
) -> Result<Replay, ReplayError> {
    let (inputs, mut errors, loops) = input::expand(paths);
    if inputs.is_empty() && !errors.is_empty() {
        return Err(ReplayError::NothingToRead(errors));
    }
    let (spool, line_offsets, mut totals, read_errors) = scan_all(matcher, &inputs, options);
    errors.extend(read_errors);
    totals.skipped.extend(loops);
    let inventory = correlator.inventory_mut();
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
    for ((namespace, pod, container), run) in &totals.runs {
        inventory.add_run(namespace, pod, container, run.clone());
    }
    for (node, session, disks) in &totals.iscsi {
        for disk in disks {
            inventory.add_iscsi_disk(node, *session, disk);
        }
    }
    let (merge, spill_error) = spool.into_merge().map_err(ReplayError::Io)?;
    let mut counted = Counted {
        hits: 0,
        per_signature: vec![0; matcher.signatures().len()],
        on_hit,
    };
    let end = totals.latest.max(options.until);
    let silences = silence::events(
        std::mem::take(&mut totals.activities),
        end.unwrap_or(i64::MIN),
    );
    let (incidents, incidents_evicted) = correlate(
        matcher,
        merge,
        &line_offsets,
        (silences, end),
        correlator,
        &mut counted,
    )
    .map_err(ReplayError::Io)?;
    Ok(Replay {
        hits: counted.hits,
        per_signature: counted.per_signature,
        totals,
        errors,
        incidents,
        incidents_evicted,
        spill_error,
    })
}

/// Counts the hits on their way out.
struct Counted<F> {
    hits: u64,
    per_signature: Vec<u64>,
    on_hit: F,
}

impl<F: FnMut(&HitRecord) -> std::io::Result<()>> Counted<F> {
    fn hand_out(&mut self, hit: &HitRecord) -> std::io::Result<()> {
        self.hits += 1;
        self.per_signature[hit.signature] += 1;
        (self.on_hit)(hit)
    }
}

/// Feeds the hits, in event-time order, to a correlator, with the
/// streams' silences (and the latest dated line of any input, the end of
/// the replay) interleaved by time; records on each hit the entity it is
/// about and hands it out; returns the incidents as of the end, and how
/// many were evicted on the way. `line_offsets[task]` is added to the line
/// numbers of each task's hits (the lines of the input before that part).
fn correlate<F: FnMut(&HitRecord) -> std::io::Result<()>>(
    matcher: &Matcher,
    hits: order::Merge,
    line_offsets: &[u64],
    (silences, latest): (Vec<silence::Event>, Option<i64>),
    mut correlator: faultline_correlate::Correlator,
    out: &mut Counted<F>,
) -> std::io::Result<(Vec<faultline_correlate::Report>, u64)> {
    let mut last = None;
    let mut silences = silences.into_iter().peekable();
    let mut silences_until = |correlator: &mut faultline_correlate::Correlator, until: i64| {
        while let Some(event) = silences.next_if(|e| e.at <= until) {
            match event.change {
                silence::Change::Silent {
                    last_line,
                    limit_ns,
                } => {
                    correlator.stream_silent(&event.stream, last_line, limit_ns);
                }
                silence::Change::Resumed => correlator.stream_resumed(&event.stream, event.at),
            }
        }
    };
    for hit in hits {
        let mut hit = hit.map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!("reading back hits written to a temporary file: {err}"),
            )
        })?;
        hit.line_no += line_offsets[hit.task];
        let Some(ts) = hit.ts else {
            out.hand_out(&hit)?;
            continue;
        };
        silences_until(&mut correlator, ts);
        let key = crate::stream::correlate(&mut correlator, matcher, &hit, ts);
        hit.entity = Some(key);
        last = Some(ts);
        out.hand_out(&hit)?;
    }
    silences_until(&mut correlator, i64::MAX);
    if let Some(end) = last.max(latest) {
        correlator.advance(end);
    }
    Ok((correlator.reports(), correlator.evicted))
}

/// Runs `replay` and prints the report.
pub fn run(args: &ReplayArgs) -> Result<ExitCode> {
    let (library, matcher) = crate::setup::library(&args.signature_dirs)?;
    let options = Options {
        input_format: args.input_format,
        year: args.year,
        boot_time: args.boot_time,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
        silence: args.silence.clone(),
        hit_memory: order::DEFAULT_BUDGET,
        until: args.until,
    };
    let inventory = crate::setup::inventory(&args.inventory)?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Text
    } else {
        OutputFormat::Json
    });
    let color = output::use_color();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let hits = output::RecordWriter::new(&matcher, color);
    let replayed = replay(
        &matcher,
        &args.paths,
        &options,
        faultline_correlate::Correlator::new(inventory, library.rules()),
        |hit| match format {
            OutputFormat::Json => hits.json(&mut out, hit),
            OutputFormat::Text => hits.text(&mut out, hit),
            OutputFormat::Markdown | OutputFormat::Html => Ok(()),
        },
    );
    let replay = match replayed {
        Ok(replay) => replay,
        Err(ReplayError::NothingToRead(errors)) => {
            for error in &errors {
                eprintln!("faultline: {error}");
            }
            bail!("nothing to read");
        }
        Err(ReplayError::Io(err)) => return Err(err.into()),
    };
    if let Some(err) = &replay.spill_error {
        eprintln!(
            "faultline: could not write hits to a temporary file ({err}); kept them in memory instead"
        );
    }
    let report = output::Report {
        matcher: &matcher,
        hits: replay.hits,
        per_signature: &replay.per_signature,
        totals: &replay.totals,
        errors: &replay.errors,
        incidents: &replay.incidents,
        incidents_evicted: replay.incidents_evicted,
    };
    match format {
        OutputFormat::Json => report.write_json(&mut out)?,
        OutputFormat::Text => report.write_text(&mut out, color)?,
        OutputFormat::Markdown => report.write_markdown(&mut out)?,
        OutputFormat::Html => report.write_html(&mut out)?,
    }
    for error in &replay.errors {
        eprintln!("faultline: {error}");
    }
    Ok(if !replay.errors.is_empty() {
        ExitCode::from(2)
    } else if replay.hits == 0 && replay.incidents.is_empty() {
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
) -> (order::Spool, Vec<u64>, Totals, Vec<InputError>) {
    let threads = options.threads.max(1);
    let tasks = input::plan(inputs, threads);
    let progress = Progress {
        bar: progress_bar(inputs),
        hits: AtomicUsize::new(0),
    };
    let next = AtomicUsize::new(0);
    let spool = order::Spool::new(options.hit_memory);
    let parts: Mutex<Vec<Option<Part>>> = Mutex::new((0..tasks.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(tasks.len()).max(1) {
            scope.spawn(|| {
                let mut scratch = matcher.scratch();
                loop {
                    let slot = next.fetch_add(1, Ordering::Relaxed);
                    let Some(task) = tasks.get(slot) else { break };
                    let scan = FileScan {
                        index: slot,
                        task,
                        input: &inputs[task.input],
                        options,
                        progress: &progress,
                        spool: &spool,
                    };
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
    let (line_offsets, totals, errors) = stitch(&tasks, parts);
    (spool, line_offsets, totals, errors)
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

/// What scanning one task found, apart from its hits (which went to the
/// spool).
struct Part {
    lines: u64,
    bytes: u64,
    truncated: u64,
    error: Option<InputError>,
    /// Files read: 1, or the members of a tar archive.
    files: u64,
    /// Why the input was not matched, when it is not a log.
    skipped: Option<String>,
    /// A Kubernetes object list found among the inputs, for correlation.
    inventory: Option<Vec<u8>>,
    /// A node's mount table found among the inputs: (node, mountinfo).
    mounts: Option<(String, String)>,
    /// What its streams showed besides hits (one stream per file or
    /// archive member).
    streams: Vec<StreamFacts>,
}

/// Joins the parts of each input in order: returns, for each task, the
/// lines of its input before it (its hits' line numbers continue from
/// there), and the totals and errors of all tasks.
fn stitch(tasks: &[Task], parts: Vec<Option<Part>>) -> (Vec<u64>, Totals, Vec<InputError>) {
    let mut offsets = Vec::with_capacity(tasks.len());
    let mut totals = Totals::default();
    let mut errors = Vec::new();
    let mut current: Option<usize> = None;
    let mut line_offset = 0u64;
    let mut streams: Vec<StreamFacts> = Vec::new();
    for (task, mut part) in tasks.iter().zip(parts.into_iter().flatten()) {
        let continued = current == Some(task.input);
        if !continued {
            current = Some(task.input);
            line_offset = 0;
            totals.files += part.files;
        }
        // A later part of a split file continues the stream of the part
        // before.
        let mut part_streams = std::mem::take(&mut part.streams).into_iter();
        if continued && let (Some(before), Some(next)) = (streams.last_mut(), part_streams.next()) {
            before.follow(next);
        }
        streams.extend(part_streams);
        offsets.push(line_offset);
        line_offset += part.lines;
        totals.lines += part.lines;
        totals.bytes += part.bytes;
        totals.truncated += part.truncated;
        totals.skipped.extend(part.skipped);
        totals.inventories.extend(part.inventory);
        totals.mounts.extend(part.mounts);
        errors.extend(part.error);
    }
    for facts in streams {
        totals.latest = totals.latest.max(facts.latest);
        if let Some((key, run)) = facts.facts.run() {
            totals.runs.push((key.clone(), run));
        }
        totals.iscsi.extend(facts.facts.iscsi());
        totals.activities.extend(facts.activity);
    }
    (offsets, totals, errors)
}

/// Scanning one task: a whole input, a byte range of one, or every member
/// of a tar archive.
struct FileScan<'a> {
    /// Index of the task.
    index: usize,
    task: &'a Task,
    input: &'a Input,
    options: &'a Options,
    progress: &'a Progress,
    spool: &'a order::Spool,
}

/// Bytes looked at to tell a tar archive or a Kubernetes API document
/// from a log (tar's magic sits inside its first 512-byte header).
const HEAD: usize = 4096;
/// Largest Kubernetes API document read whole.
const MAX_DOCUMENT: u64 = 256 << 20;

impl FileScan<'_> {
    /// Scans the task to its end (or to a read error) and says what it found.
    fn run(self, matcher: &Matcher, scratch: &mut faultline_matcher::Scratch) -> Part {
        let mut part = Part::nothing_yet();
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
                let stream = self.stream(origin.clone(), member_labels);
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
        let mut stream = self.stream(display.clone(), labels.clone());
        if let Some((start, _)) = self.task.range.filter(|(start, _)| *start > 0) {
            // A later part of a split file: read as the file's first lines
            // say, and dated from the lines before it.
            stream.follows = Some((self.input.path.as_path(), start));
            stream.format = input::head(&self.input.path, HEAD)
                .ok()
                .map(|head| Format::detect_prefixed(head.split(|&b| b == b'\n').take(20)));
        }
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
                        stream.stream.source = Some(SourceKind::Events);
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
    /// A part of one file that has read nothing yet.
    fn nothing_yet() -> Part {
        Part {
            lines: 0,
            bytes: 0,
            truncated: 0,
            error: None,
            files: 1,
            skipped: None,
            inventory: None,
            mounts: None,
            streams: Vec::new(),
        }
    }

    /// Adds what one stream of the task found.
    fn absorb(&mut self, scanned: Scanned, describe: impl FnOnce(std::io::Error) -> InputError) {
        self.streams.push(scanned.facts);
        self.lines += scanned.lines;
        self.bytes += scanned.bytes;
        self.truncated += scanned.truncated;
        if let Some(err) = scanned.error {
            self.error = Some(describe(err));
        }
    }
}

/// What scanning one stream found, apart from its hits.
struct Scanned {
    /// What the stream showed besides its hits.
    facts: StreamFacts,
    lines: u64,
    bytes: u64,
    truncated: u64,
    error: Option<std::io::Error>,
}

/// The state of scanning one stream of lines.
struct StreamScan<'a> {
    /// Matching its lines.
    stream: LineStream,
    /// Where the hits go.
    spool: &'a order::Spool,
    /// The file and offset this stream starts at, when it is a later part
    /// of a split file: its first lines inherit the time of the last dated
    /// line before that offset.
    follows: Option<(&'a std::path::Path, u64)>,
    /// The format (and whether lines carry a `<node>: ` prefix) when known
    /// before reading: detected from the start of a split file.
    format: Option<(Format, bool)>,
    options: &'a Options,
    /// Where bytes read and hits found are shown (hidden when piped).
    progress: &'a Progress,
    /// What the stream shows besides its hits.
    facts: StreamFacts,
}

impl<'a> FileScan<'a> {
    /// What to track of a stream besides its hits: the container run of a
    /// pod log, and its activity when `--silence` watches it (the stream
    /// named `<namespace>/<pod>/<container>`, else by its origin).
    fn facts(&self, origin: &str, path_labels: &Labels) -> StreamFacts {
        let activity = silence::limit_for(&self.options.silence, path_labels).map(|limit| {
            (
                silence::stream_name(path_labels, origin),
                silence::Activity::new(limit),
            )
        });
        StreamFacts {
            facts: Facts::of(path_labels, Some(std::path::Path::new(origin))),
            activity,
            latest: None,
        }
    }

    /// A stream of this task's input (or of one of its members).
    fn stream(&self, origin: String, path_labels: Labels) -> StreamScan<'a> {
        StreamScan {
            facts: self.facts(&origin, &path_labels),
            stream: LineStream::new(self.task.input, self.index, origin, path_labels),
            spool: self.spool,
            follows: None,
            format: None,
            options: self.options,
            progress: self.progress,
        }
    }
}

/// Hits a stream hands to the spool at a time (a buffer of lines that all
/// match must not be held whole).
const SPOOL_BATCH: usize = 1024;

impl StreamScan<'_> {
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
                    None => self
                        .format
                        .unwrap_or_else(|| Format::detect_prefixed(first_lines)),
                };
                Decoder {
                    format,
                    year,
                    boot_ns: self.options.boot_time,
                    node_prefixed,
                }
            });
            if let Some((path, start)) = self.follows.take()
                && decoder.format != Format::Plain
            {
                self.stream.carried_ts =
                    input::last_dated_line(path, start, usize::MAX, |line| decoder.timestamp(line))
                        .ok()
                        .flatten();
            }
            let new_hits = self.scan_buffer(matcher, scratch, &decoder, buf, mtime);
            self.progress.bar.inc(buf.len() as u64);
            if new_hits > 0 {
                let total = self.progress.hits.fetch_add(new_hits, Ordering::Relaxed) + new_hits;
                self.progress.bar.set_message(format!("{total} hits"));
            }
        };
        if let Some(decoder) = decoder {
            let spool = self.spool;
            let mut found = Vec::new();
            self.stream
                .finish(matcher, scratch, &decoder, mtime, &mut |hit| {
                    found.push(hit)
                });
            spool.add(found);
        }
        self.facts.latest = self.stream.carried_ts;
        Scanned {
            facts: self.facts,
            lines: self.stream.lines,
            bytes: reader.bytes,
            truncated: reader.truncated,
            error,
        }
    }

    /// Matches one buffer of whole lines (handing the hits to the spool),
    /// notes what else it shows, and says how many hits it found.
    fn scan_buffer(
        &mut self,
        matcher: &Matcher,
        scratch: &mut faultline_matcher::Scratch,
        decoder: &Decoder,
        buf: &[u8],
        mtime: Option<i64>,
    ) -> usize {
        let spool = self.spool;
        let mut found = Vec::new();
        let count = self
            .stream
            .scan_buffer(matcher, scratch, decoder, buf, mtime, &mut |hit| {
                found.push(hit);
                // A buffer whose every line matches is not held whole.
                if found.len() == SPOOL_BATCH {
                    spool.add(std::mem::take(&mut found));
                }
            });
        spool.add(found);
        self.facts.facts.buffer(decoder, buf);
        if let Some((_, activity)) = &mut self.facts.activity {
            for line in buf.split(|&b| b == b'\n') {
                if let Some(ts) = decoder.timestamp(line) {
                    activity.line(ts);
                }
            }
        }
        count
    }
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

    fn part(lines: u64) -> Option<Part> {
        Some(Part {
            lines,
            bytes: lines * 10,
            ..Part::nothing_yet()
        })
    }

    #[test]
    fn parts_of_a_split_file_continue_line_numbers() {
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
        let (offsets, totals, errors) = stitch(&tasks, vec![part(10), part(12), part(3)]);
        assert_eq!(offsets, [0, 10, 0]);
        assert_eq!((totals.files, totals.lines, totals.bytes), (2, 25, 250));
        assert!(errors.is_empty());
    }
}
