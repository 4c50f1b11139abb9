//! Finding the files a glob names, safely: a walk from the glob's fixed
//! directory that follows symbolic links but stops at a loop (a link back
//! to a directory it is already inside), goes no deeper than the glob
//! reaches (unless it has `**`), skips directories whose names cannot match,
//! and reports what it could not read instead of passing over it.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};
use walkdir::DirEntryExt;

/// `*` and `?` never match `/`, as in a shell.
const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// One glob, ready to walk.
#[derive(Debug)]
pub(super) struct Glob {
    text: String,
    pattern: Pattern,
    /// Where the walk starts: the path up to the first wildcard.
    root: PathBuf,
    /// The components after `root`, one per level; `None` when a `**`
    /// lets the walk go any depth.
    levels: Option<Vec<Pattern>>,
}

impl Glob {
    /// Parses `text`; the error says what is wrong with it.
    pub(super) fn new(text: &str) -> Result<Glob, String> {
        let pattern =
            Pattern::new(text).map_err(|err| format!("{text}: not a valid glob: {err}"))?;
        let root = fixed_directory(text);
        let rest = Path::new(text)
            .strip_prefix(&root)
            .unwrap_or(Path::new(text));
        let levels = rest
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .map(|c| (c != "**").then(|| Pattern::new(&c).ok()).flatten())
            .collect::<Option<Vec<_>>>();
        Ok(Glob {
            text: text.to_string(),
            pattern,
            root,
            levels,
        })
    }

    /// The regular files matching the glob (symbolic links followed), with
    /// their metadata; each problem met on the way is pushed to `problems`
    /// and the walk goes on past it. The directories a new file matching
    /// the glob could appear in (the walk's start and the directories it
    /// went into) are pushed to `dirs`, with their inode numbers.
    pub(super) fn files(
        &self,
        problems: &mut Vec<String>,
        dirs: &mut Vec<(PathBuf, u64)>,
    ) -> Vec<(PathBuf, Metadata)> {
        // A relative glob starting with a wildcard walks the working
        // directory; its paths are given without a leading `./`.
        let relative = self.root.as_os_str().is_empty();
        let root = if relative { Path::new(".") } else { &self.root };
        if let Ok(meta) = std::fs::metadata(root) {
            dirs.push((root.to_path_buf(), meta.ino()));
        }
        // A glob without wildcards names one file.
        if !self.text.contains(['*', '?', '[']) {
            return match std::fs::metadata(&self.text) {
                Ok(meta) if meta.is_file() => vec![(PathBuf::from(&self.text), meta)],
                Ok(_) => Vec::new(),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(err) => {
                    problems.push(format!("{}: cannot read: {err}", self.text));
                    Vec::new()
                }
            };
        }
        let mut walk = walkdir::WalkDir::new(root).follow_links(true).min_depth(1);
        if let Some(levels) = &self.levels {
            walk = walk.max_depth(levels.len());
        }
        let mut found = Vec::new();
        let entries = walk.into_iter().filter_entry(|entry| {
            // Directories on the way must match their level of the glob.
            let Some(levels) = &self.levels else {
                return true;
            };
            let depth = entry.depth();
            depth == 0
                || depth == levels.len()
                || levels.get(depth - 1).is_some_and(|level| {
                    level.matches_with(&entry.file_name().to_string_lossy(), OPTIONS)
                })
        });
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                // A loop at the glob's last level is a directory there,
                // which is never descended into: nothing to tell.
                Err(err)
                    if err.loop_ancestor().is_some()
                        && self.levels.as_ref().is_some_and(|l| err.depth() == l.len()) =>
                {
                    continue;
                }
                Err(err) => {
                    problems.push(walk_problem(&err, root));
                    continue;
                }
            };
            if entry.file_type().is_dir()
                && self.levels.as_ref().is_none_or(|l| entry.depth() < l.len())
            {
                dirs.push((entry.path().to_path_buf(), entry.ino()));
            }
            let path = if relative {
                entry.path().strip_prefix(root).unwrap_or(entry.path())
            } else {
                entry.path()
            };
            if !entry.file_type().is_file() || !self.pattern.matches_path_with(path, OPTIONS) {
                continue;
            }
            // A link to a file elsewhere (`/var/log/containers/*.log` to
            // `/var/log/pods/…`): it is written where it lives.
            if entry.path_is_symlink()
                && let Some(home) = target_directory(entry.path())
            {
                dirs.push(home);
            }
            match entry.metadata() {
                Ok(meta) => found.push((path.to_path_buf(), meta)),
                Err(err) => problems.push(walk_problem(&err, root)),
            }
        }
        found
    }
}

/// The directory the file a symbolic link leads to is in, with its inode
/// number; None when it cannot be resolved (the walk tells why).
fn target_directory(link: &Path) -> Option<(PathBuf, u64)> {
    let target = std::fs::canonicalize(link).ok()?;
    let dir = target.parent()?;
    let meta = std::fs::metadata(dir).ok()?;
    Some((dir.to_path_buf(), meta.ino()))
}

/// What went wrong at one place of a walk from `root`, for the operator.
fn walk_problem(err: &walkdir::Error, root: &Path) -> String {
    let path = err.path().unwrap_or(root).display();
    if let Some(ancestor) = err.loop_ancestor() {
        return format!(
            "{path}: a symbolic link loop (back to {}); not followed",
            ancestor.display()
        );
    }
    match err.io_error() {
        Some(io) if io.kind() == std::io::ErrorKind::NotFound && err.depth() == 0 => {
            format!("{path}: no such directory (yet); looking again at every poll")
        }
        Some(io) => format!("{path}: cannot read: {io}"),
        None => format!("{path}: {err}"),
    }
}

/// The fixed directory a glob starts in: its path up to the first
/// component with a wildcard (for a glob without one, its directory).
pub(super) fn fixed_directory(glob: &str) -> PathBuf {
    let mut dir = PathBuf::new();
    for component in Path::new(glob).components() {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[']) {
            return dir;
        }
        dir.push(component);
    }
    dir.parent().map(Path::to_path_buf).unwrap_or_default()
}
