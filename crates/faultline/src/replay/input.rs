//! What `replay` reads: files, directories and standard input, with
//! gzip-compressed files decompressed on the fly.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use faultline_sources::files::read_up_to;

/// One thing to read.
#[derive(Clone, Debug)]
pub struct Input {
    /// The path as the user will recognise it; `-` for standard input.
    pub path: PathBuf,
}

/// A problem with one input; the run goes on without it.
#[derive(Clone, Debug)]
pub struct InputError {
    /// The input's path.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Files in a directory that are never logs: notes and scripts kept beside
/// an archive (`README.md`, a generator script). Named explicitly, they are
/// read like any file.
const NOT_LOGS: &[&str] = &["md", "py", "sh", "rs", "toml"];

/// Expands `paths`: files as given, directories recursively (sorted by
/// name, symlinked directories followed once, files with an extension in
/// [`NOT_LOGS`] left out), `-` as standard input.
/// Problems (missing paths, unreadable directories, empty directories) are
/// returned beside the inputs that were found, and last the symbolic link
/// loops that were not followed.
pub fn expand(paths: &[PathBuf]) -> (Vec<Input>, Vec<InputError>, Vec<String>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let mut walked = Walked::default();
    for path in paths {
        if path == Path::new("-") {
            inputs.push(Input { path: path.clone() });
            continue;
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let before = inputs.len();
                walk(path, &mut inputs, &mut errors, &mut walked);
                if inputs.len() == before {
                    errors.push(InputError {
                        path: path.clone(),
                        message: "no files in this directory".into(),
                    });
                }
            }
            Ok(_) => inputs.push(Input { path: path.clone() }),
            Err(err) => errors.push(InputError {
                path: path.clone(),
                message: format!("cannot read: {err}"),
            }),
        }
    }
    (inputs, errors, walked.loops)
}

/// Where a walk has been.
#[derive(Default)]
struct Walked {
    /// Directories walked (real paths): one reached again by another
    /// path is not walked twice.
    visited: HashSet<PathBuf>,
    /// The real paths of the directories the walk is inside now.
    inside: Vec<PathBuf>,
    /// Links that lead back to a directory the walk was inside.
    loops: Vec<String>,
}

fn walk(dir: &Path, inputs: &mut Vec<Input>, errors: &mut Vec<InputError>, walked: &mut Walked) {
    // A symlink loop leads back to a directory the walk is inside: stop
    // there, and say so.
    let real = match dir.canonicalize() {
        Ok(real) => {
            if walked.inside.contains(&real) {
                walked.loops.push(format!(
                    "{}: a symbolic link loop (back to {}); not followed",
                    dir.display(),
                    real.display()
                ));
                return;
            }
            if !walked.visited.insert(real.clone()) {
                return;
            }
            real
        }
        Err(err) => {
            errors.push(InputError {
                path: dir.to_path_buf(),
                message: format!("cannot read: {err}"),
            });
            return;
        }
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            errors.push(InputError {
                path: dir.to_path_buf(),
                message: format!("cannot read directory: {err}"),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    walked.inside.push(real);
    for path in paths {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, inputs, errors, walked),
            Ok(meta) if meta.is_file() => {
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or_default();
                if !NOT_LOGS.contains(&ext) {
                    inputs.push(Input { path });
                }
            }
            Ok(_) => {}
            Err(err) => errors.push(InputError {
                path,
                message: format!("cannot read: {err}"),
            }),
        }
    }
    walked.inside.pop();
}

/// One unit of work: a whole input, or a byte range of a large one.
#[derive(Clone, Debug)]
pub struct Task {
    /// Index of the input.
    pub input: usize,
    /// The byte range to read, when the input is split.
    pub range: Option<(u64, u64)>,
}

/// Smallest file worth splitting across workers.
const SPLIT_MIN: u64 = 64 << 20;
/// Bytes looked at around a split point to find a line boundary.
const SPLIT_WINDOW: usize = 1 << 20;

/// Splits large plain files into byte ranges at line boundaries, one per
/// worker, so one big file keeps every core busy; everything else is one
/// task. A range never starts inside a CRI partial (`P`) line: the line
/// before every split point is a complete one.
pub fn plan(inputs: &[Input], threads: usize) -> Vec<Task> {
    let mut tasks = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let splits = split_points(&input.path, threads).unwrap_or_default();
        if splits.len() < 3 {
            tasks.push(Task {
                input: index,
                range: None,
            });
            continue;
        }
        for pair in splits.windows(2) {
            tasks.push(Task {
                input: index,
                range: Some((pair[0], pair[1])),
            });
        }
    }
    tasks
}

/// `[0, b1, …, size]` for a file worth splitting into `parts`, else empty.
fn split_points(path: &Path, parts: usize) -> io::Result<Vec<u64>> {
    use std::io::{Seek, SeekFrom};
    if parts < 2 || path == Path::new("-") {
        return Ok(Vec::new());
    }
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() || meta.len() < SPLIT_MIN {
        return Ok(Vec::new());
    }
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    if read_up_to(&mut file, &mut magic)? == 2 && magic == [0x1f, 0x8b] {
        return Ok(Vec::new());
    }
    let size = meta.len();
    let mut points = vec![0];
    let mut window = vec![0u8; SPLIT_WINDOW];
    for k in 1..parts as u64 {
        let target = size * k / parts as u64;
        file.seek(SeekFrom::Start(target))?;
        let got = read_up_to(&mut file, &mut window)?;
        if let Some(at) = boundary(&window[..got]) {
            let point = target + at as u64;
            if point > *points.last().unwrap_or(&0) && point < size {
                points.push(point);
            }
        }
    }
    points.push(size);
    Ok(points)
}

/// Offset just after the first newline in `window` that ends a complete
/// line which is not a CRI partial record.
fn boundary(window: &[u8]) -> Option<usize> {
    let first = memchr::memchr(b'\n', window)?;
    let mut start = first + 1;
    while let Some(len) = memchr::memchr(b'\n', &window[start..]) {
        let line = &window[start..start + len];
        let end = start + len + 1;
        if !crate::cri::is_partial(line) {
            return Some(end);
        }
        start = end;
    }
    None
}

/// Counts the bytes read through it, so a decompression error can say
/// where in the compressed file it happened.
pub struct Counting<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// How an input's bytes are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed.
    Plain,
    /// gzip (one or more members).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Encoding {
    /// What a read error in such a stream most likely means.
    pub fn failure(self) -> &'static str {
        match self {
            Encoding::Plain => "read error",
            Encoding::Gzip => "corrupt or truncated gzip",
            Encoding::Zstd => "corrupt or truncated zstd",
        }
    }
}

/// An opened input: its decompressed bytes, and how far into the raw file
/// reading got.
pub struct Opened {
    /// The decompressed stream.
    pub reader: Box<dyn Read>,
    /// Raw (compressed) bytes consumed so far.
    pub raw_offset: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// How the raw bytes were compressed.
    pub encoding: Encoding,
    /// The file's modification time, UTC nanoseconds, if known.
    pub mtime_ns: Option<i64>,
}

/// Reads up to `n` bytes of `reader` and hands them back together with a
/// reader that still yields the whole stream.
pub fn peek<'a>(
    mut reader: Box<dyn Read + 'a>,
    n: usize,
) -> io::Result<(Vec<u8>, Box<dyn Read + 'a>)> {
    let mut head = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    head.truncate(got);
    let chained = io::Cursor::new(head.clone()).chain(reader);
    Ok((head, Box::new(chained)))
}

/// Wraps `reader` in the decompressor its magic bytes call for: gzip
/// (`1f 8b`) or Zstandard (`28 b5 2f fd`); anything else passes through.
pub fn decompressing<'a>(reader: Box<dyn Read + 'a>) -> io::Result<(Box<dyn Read + 'a>, Encoding)> {
    let (head, reader) = peek(reader, 4)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(1 << 16, reader));
        return Ok((Box::new(gz), Encoding::Gzip));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok((
            Box::new(zstd::stream::read::Decoder::new(reader)?),
            Encoding::Zstd,
        ));
    }
    Ok((reader, Encoding::Plain))
}

/// Whether `head` (the first 512 bytes of a stream) is a tar header.
pub fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
}

/// Opens `input` (or the byte `range` of it), decompressing it as its
/// magic bytes say.
pub fn open(input: &Input, range: Option<(u64, u64)>) -> io::Result<Opened> {
    let raw_offset = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    if input.path == Path::new("-") {
        let counted = Counting {
            inner: io::stdin(),
            count: raw_offset.clone(),
        };
        let (reader, encoding) = decompressing(Box::new(counted))?;
        return Ok(Opened {
            reader,
            raw_offset,
            encoding,
            mtime_ns: None,
        });
    }
    let mut file = File::open(&input.path)?;
    let mtime_ns = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
    if let Some((start, end)) = range {
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(start))?;
        let counted = Counting {
            inner: file.take(end - start),
            count: raw_offset.clone(),
        };
        return Ok(Opened {
            reader: Box::new(counted),
            raw_offset,
            encoding: Encoding::Plain,
            mtime_ns,
        });
    }
    let counted = Counting {
        inner: file,
        count: raw_offset.clone(),
    };
    let (reader, encoding) = decompressing(Box::new(counted))?;
    Ok(Opened {
        reader,
        raw_offset,
        encoding,
        mtime_ns,
    })
}

/// The first `max` bytes of the file at `path` (fewer if it is shorter).
pub fn head(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; max];
    let got = read_up_to(&mut File::open(path)?, &mut head)?;
    head.truncate(got);
    Ok(head)
}

/// Bytes read at a time when looking backwards for a dated line.
const BACKWARD_BLOCK: usize = 64 << 10;

/// The time of the last line before byte `end` of the file at `path` that
/// `date` finds a time in, reading backwards. This is the time the lines
/// at the start of a split part inherit, as they would have had the file
/// been read from its start. Only the first [`super::lines::MAX_LINE`]
/// bytes of a line are looked at, as when reading forwards. Stops after
/// `max_lines` undated lines.
pub fn last_dated_line(
    path: &Path,
    end: u64,
    max_lines: usize,
    date: impl Fn(&[u8]) -> Option<i64>,
) -> io::Result<Option<i64>> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    let mut pos = end;
    // The head of the line that ends where the bytes already seen begin.
    let mut carry: Vec<u8> = Vec::new();
    let mut block = vec![0u8; BACKWARD_BLOCK];
    let mut looked = 0;
    let tested = |line: &[u8], looked: &mut usize| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let head = &line[..line.len().min(super::lines::MAX_LINE)];
        *looked += 1;
        date(head)
    };
    // The byte before `end` is the newline ending the previous line.
    let mut skip_newline = true;
    while pos > 0 {
        let n = usize::try_from(pos.min(BACKWARD_BLOCK as u64)).unwrap_or(BACKWARD_BLOCK);
        pos -= n as u64;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut block[..n])?;
        let mut chunk = &block[..n];
        if skip_newline {
            chunk = chunk.strip_suffix(b"\n").unwrap_or(chunk);
            skip_newline = false;
        }
        // Lines that end inside this chunk, from the last one back.
        let mut line_end = chunk.len();
        let mut first = true;
        while let Some(nl) = memchr::memrchr(b'\n', &chunk[..line_end]) {
            let ts = if first {
                let mut line = chunk[nl + 1..line_end].to_vec();
                line.extend_from_slice(&carry);
                tested(&line, &mut looked)
            } else {
                tested(&chunk[nl + 1..line_end], &mut looked)
            };
            if ts.is_some() {
                return Ok(ts);
            }
            if looked >= max_lines {
                return Ok(None);
            }
            first = false;
            line_end = nl;
        }
        let mut head = chunk[..line_end].to_vec();
        if first {
            head.extend_from_slice(&carry);
        }
        head.truncate(super::lines::MAX_LINE);
        carry = head;
    }
    Ok(if carry.is_empty() {
        None
    } else {
        tested(&carry, &mut looked)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_dated_line_is_found_backwards_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        // "T<n>" lines are dated n; others are not. A long undated line
        // spans several backward blocks.
        let long = "x".repeat(3 * BACKWARD_BLOCK + 17);
        let text = format!("T7 first\nplain\nT9 second\r\n{long}\nplain\nT11 third\nplain\n");
        std::fs::write(&path, &text).unwrap();
        let date = |line: &[u8]| {
            let rest = line.strip_prefix(b"T")?;
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
        };
        let at = |needle: &str| text.find(needle).unwrap() as u64;
        let last = |end, max| last_dated_line(&path, end, max, date).unwrap();
        assert_eq!(last(text.len() as u64, 100), Some(11));
        assert_eq!(last(at("T11"), 100), Some(9));
        assert_eq!(last(at("plain\nT11"), 100), Some(9));
        assert_eq!(last(at("plain\nT11"), 1), None);
        assert_eq!(last(at("plain\nT9"), 100), Some(7));
        assert_eq!(last(at("plain\nT9"), 100), Some(7));
        assert_eq!(last(at("T9"), 100), Some(7));
        assert_eq!(
            last(at("plain\nT9"), 0),
            Some(7),
            "at least one line is looked at"
        );
        assert_eq!(last(0, 100), None);
    }

    #[test]
    fn directories_expand_recursively_in_name_order_and_loops_stop() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/2.log"), "x").unwrap();
        std::fs::write(dir.path().join("a.log"), "x").unwrap();
        std::fs::write(dir.path().join("README.md"), "notes").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("b/loop")).unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let (inputs, errors, loops) = expand(&[
            dir.path().to_path_buf(),
            dir.path().join("empty"),
            dir.path().join("missing"),
        ]);
        let names: Vec<String> = inputs
            .iter()
            .map(|i| {
                i.path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["a.log", "b/c/2.log"]);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].ends_with("empty: no files in this directory"));
        assert!(messages[1].contains("missing: cannot read"));
        assert_eq!(
            loops,
            [format!(
                "{}: a symbolic link loop (back to {}); not followed",
                dir.path().join("b/loop").display(),
                dir.path().canonicalize().unwrap().display()
            )]
        );
    }

    #[test]
    fn large_files_split_at_complete_lines_and_never_inside_a_partial_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let mut text = Vec::new();
        let mut i = 0u64;
        while (text.len() as u64) < SPLIT_MIN + (8 << 20) {
            let tag = if i % 3 == 0 { "P" } else { "F" };
            text.extend_from_slice(
                format!("2026-02-19T03:04:05.{i:09}Z stdout {tag} line {i}\n").as_bytes(),
            );
            i += 1;
        }
        std::fs::write(&path, &text).unwrap();
        let tasks = plan(&[Input { path: path.clone() }], 3);
        assert_eq!(tasks.len(), 3);
        let mut covered = 0;
        for task in &tasks {
            let (start, end) = task.range.unwrap();
            assert_eq!(start, covered, "ranges are contiguous");
            covered = end;
            if start > 0 {
                assert_eq!(text[start as usize - 1], b'\n');
                let prev_start = text[..start as usize - 1]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                assert!(!crate::cri::is_partial(
                    &text[prev_start..start as usize - 1]
                ));
            }
        }
        assert_eq!(covered, text.len() as u64);
        let small = dir.path().join("small.log");
        std::fs::write(&small, "x\n").unwrap();
        assert!(plan(&[Input { path: small }], 3)[0].range.is_none());
    }

    #[test]
    fn gzip_is_recognised_by_its_magic_bytes() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rotated.log.20260219-030405");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello\n").unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let mut opened = open(&Input { path }, None).unwrap();
        let mut text = String::new();
        opened.reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello\n");
        assert_eq!(opened.encoding, Encoding::Gzip);

        let zst = dir.path().join("archive.log.zst");
        std::fs::write(&zst, zstd::encode_all(&b"zstd line\n"[..], 3).unwrap()).unwrap();
        let mut opened = open(&Input { path: zst }, None).unwrap();
        let mut text = String::new();
        opened.reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "zstd line\n");
        assert_eq!(opened.encoding, Encoding::Zstd);
    }
}
