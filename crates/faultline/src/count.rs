//! `faultline count`: grep-compatible line counting with the compiled set.
//!
//! This is faultline's matcher with nothing around it, so it can be timed
//! beside ripgrep, GNU grep and Hyperscan on the same corpus (see
//! `scripts/bench-compare.sh`). Regular files are memory-mapped and split
//! at line boundaries across all cores; other inputs are streamed.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use faultline_matcher::GrepSet;

/// Arguments of `faultline count`.
#[derive(Debug, Args)]
pub struct CountArgs {
    /// File with one regular expression per line.
    #[arg(long, short = 'f', value_name = "FILE")]
    patterns: PathBuf,
    /// Files to search; - for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Worker threads for large files (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print the scan time and rate on stderr as `scan SECS s = RATE MB/s`.
    #[arg(long)]
    stats: bool,
}

/// Smallest slice of a file worth a thread of its own.
const MIN_CHUNK: usize = 8 << 20;
/// Read size for inputs that cannot be memory-mapped.
const STREAM_BUFFER: usize = 4 << 20;

/// Counts and prints; exit 0 when some line matched, 1 when none did.
pub fn run(args: &CountArgs) -> Result<ExitCode> {
    let patterns = read_patterns(&args.patterns)?;
    let set = GrepSet::new(&patterns).map_err(|err| {
        anyhow::anyhow!(
            "{}: line {}: {}",
            args.patterns.display(),
            err.index + 1,
            err.message
        )
    })?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let started = Instant::now();
    let mut total = 0u64;
    let mut bytes = 0u64;
    let mut per_path = Vec::new();
    for path in &args.paths {
        let (count, size) =
            count_path(&set, path, threads).with_context(|| format!("{}", path.display()))?;
        total += count;
        bytes += size;
        per_path.push((path, count));
    }
    let elapsed = started.elapsed().as_secs_f64();
    if per_path.len() > 1 {
        for (path, count) in &per_path {
            println!("{}:{count}", path.display());
        }
    }
    println!("{total}");
    if args.stats {
        eprintln!(
            "scan {elapsed:.3} s = {:.1} MB/s ({} patterns, {} literals, {threads} threads)",
            bytes as f64 / elapsed.max(1e-9) / 1e6,
            patterns.len(),
            set.literal_count()
        );
    }
    Ok(if total > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reads a pattern file the way `rg -f` does: one pattern per line, `\n`
/// or `\r\n` terminated.
fn read_patterns(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading patterns from {}", path.display()))?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Counts matching lines of one input; returns (count, bytes read).
fn count_path(set: &GrepSet, path: &Path, threads: usize) -> Result<(u64, u64)> {
    if path == Path::new("-") {
        return count_stream(set, io::stdin().lock());
    }
    let file = File::open(path).context("cannot open")?;
    let meta = file.metadata().context("cannot stat")?;
    if meta.is_dir() {
        bail!("is a directory; count takes files");
    }
    if !meta.is_file() || meta.len() == 0 {
        return count_stream(set, file);
    }
    // SAFETY: the map is read-only and dropped before this function
    // returns. If another process truncates the file meanwhile, reads past
    // the new end fault (SIGBUS) — the same trade-off ripgrep makes for
    // speed on large files.
    let map = unsafe { memmap2::Mmap::map(&file) }.context("cannot memory-map")?;
    Ok((count_parallel(set, &map, threads), map.len() as u64))
}

/// Splits `buf` at line boundaries into up to `threads` chunks and counts
/// them concurrently, each worker with its own regex cache.
fn count_parallel(set: &GrepSet, buf: &[u8], threads: usize) -> u64 {
    let chunks = line_chunks(buf, threads.min(buf.len() / MIN_CHUNK).max(1));
    if chunks.len() == 1 {
        return set.count_lines(buf, &mut set.cache());
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || set.count_lines(chunk, &mut set.cache())))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a counting worker panicked"))
            .sum()
    })
}

/// `buf` cut into `n` pieces of about equal size, each ending after a `\n`
/// (the last may end without one).
fn line_chunks(buf: &[u8], n: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    for i in 1..n {
        let target = (buf.len() * i / n).max(start);
        let end = memchr::memchr(b'\n', &buf[target..]).map_or(buf.len(), |p| target + p + 1);
        if end > start {
            chunks.push(&buf[start..end]);
            start = end;
        }
    }
    if start < buf.len() || chunks.is_empty() {
        chunks.push(&buf[start..]);
    }
    chunks
}

/// Counts a non-seekable input in fixed-size reads, carrying the partial
/// last line of each read into the next.
fn count_stream(set: &GrepSet, mut input: impl Read) -> Result<(u64, u64)> {
    let mut cache = set.cache();
    let mut buf = vec![0u8; STREAM_BUFFER];
    let (mut filled, mut total, mut bytes) = (0usize, 0u64, 0u64);
    loop {
        if filled == buf.len() {
            // A line longer than the buffer: grow rather than split it.
            buf.resize(buf.len() * 2, 0);
        }
        let n = match input.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).context("read failed"),
        };
        bytes += n as u64;
        filled += n;
        if n == 0 {
            total += set.count_lines(&buf[..filled], &mut cache);
            return Ok((total, bytes));
        }
        if let Some(last) = memchr::memrchr(b'\n', &buf[..filled]) {
            total += set.count_lines(&buf[..=last], &mut cache);
            buf.copy_within(last + 1..filled, 0);
            filled -= last + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_line_boundaries_and_cover_everything() {
        let buf = b"aaaa\nbb\ncccccc\nd\neeeee";
        for n in 1..8 {
            let chunks = line_chunks(buf, n);
            assert_eq!(chunks.concat(), buf.to_vec(), "n={n}");
            for chunk in &chunks[..chunks.len() - 1] {
                assert_eq!(chunk.last(), Some(&b'\n'), "n={n}");
            }
        }
    }

    #[test]
    fn streaming_and_parallel_counts_agree() {
        let set = GrepSet::new(&["needle [0-9]+"]).unwrap();
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(if i % 7 == 0 {
                "a needle 42 here\n"
            } else {
                "hay hay hay\n"
            });
        }
        let expected = (0..20_000).filter(|i| i % 7 == 0).count() as u64;
        assert_eq!(
            count_stream(&set, text.as_bytes()).unwrap(),
            (expected, text.len() as u64)
        );
        assert_eq!(count_parallel(&set, text.as_bytes(), 4), expected);
        let chunks = line_chunks(text.as_bytes(), 3);
        let sum: u64 = chunks
            .iter()
            .map(|c| set.count_lines(c, &mut set.cache()))
            .sum();
        assert_eq!(sum, expected);
    }
}
