//! faultline's signatures: failure patterns as data.
//!
//! A signature names one failure as a real component prints it: a `match`
//! regular expression with named captures, what class of failure it is, how
//! severe, a summary and a remediation to show the operator, and examples
//! that must (and must not) match. They live in YAML files, one per failure
//! family; the format is specified in `docs/signatures.md`.
//!
//! The built-in library (the repository's `signatures/` directory) is
//! compiled into the binary, so faultline works with no configuration. Users
//! add directories of their own; a user signature with the id of a built-in
//! one replaces it.
//!
//! Loading never stops at the first problem: every problem in every file is
//! collected and reported with its file, line and field, so one run of
//! `faultline check` tells a user everything to fix.
//!
//! ```
//! let library = faultline_signatures::Library::builtin().expect("the built-in library is valid");
//! assert!(library.signatures().len() >= 40);
//! ```

mod captures;
mod load;
mod pattern;
mod problem;
mod template;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use faultline_core::{Class, Rule, Severity, SourceKind};

pub use load::parse_duration;
pub use pattern::{Compile, LazyRegex};
pub use problem::{Problem, Problems};
pub use template::Template;

/// Where something was written: a file and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it; built-in files as `signatures/NAME`.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A line that must match, with the captures it must yield.
#[derive(Clone, Debug)]
pub struct Example {
    /// The raw line, as the component printed it.
    pub line: String,
    /// Capture name → exact value. Captures not listed are not checked.
    pub captures: Vec<(String, String)>,
    /// Where the line was seen (a URL), if given.
    pub source: Option<String>,
    /// Where the example is written.
    pub location: Location,
}

/// A line that looks like the failure but is not, and must not match.
#[derive(Clone, Debug)]
pub struct NearMiss {
    /// The raw line.
    pub line: String,
    /// Why it is not the failure.
    pub why: Option<String>,
    /// Where the line was seen (a URL), if given.
    pub source: Option<String>,
    /// Where the near-miss is written.
    pub location: Location,
}

/// One validated signature. Its regular expressions are compiled and its
/// templates only name captures of `match` or record labels.
#[derive(Clone, Debug)]
pub struct Signature {
    /// Stable kebab-case name, unique in a loaded [`Library`].
    pub id: String,
    /// What kind of thing broke.
    pub class: Class,
    /// How urgent it is.
    pub severity: Severity,
    /// One-line human name of the failure.
    pub title: String,
    /// The `match` regular expression, as written.
    pub pattern: String,
    /// `match`, compiled (on first use for the built-in library).
    pub regex: LazyRegex,
    /// `unless`, compiled likewise: a line matching it is not a hit.
    pub unless: Option<LazyRegex>,
    /// The record sources the signature applies to; empty means any.
    pub scope: Vec<SourceKind>,
    /// A safety net: reported only on a line that no specific (non-fallback)
    /// signature matches, so a storage errno no signature knows is never
    /// silently missed and a known failure is reported once, specifically.
    pub fallback: bool,
    /// What happened, filled from captures and labels.
    pub summary: Template,
    /// What to do about it.
    pub remediation: Template,
    /// Lines that must match.
    pub examples: Vec<Example>,
    /// Lines that must not match.
    pub near_misses: Vec<NearMiss>,
    /// Where the signature starts.
    pub location: Location,
}

/// A set of signature files to load: a display name and the text of each.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name problems are reported under.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

/// The built-in signature files: `(name, YAML text)`, sorted by name.
pub fn builtin_files() -> &'static [(&'static str, &'static str)] {
    BUILTIN
}

/// A loaded, validated set of signatures with unique ids.
#[derive(Clone, Debug)]
pub struct Library {
    signatures: Vec<Signature>,
    rules: Vec<Rule>,
}

impl Library {
    /// The built-in library alone.
    pub fn builtin() -> Result<Library, Problems> {
        Library::load(&[])
    }

    /// The built-in library plus every `*.yaml` / `*.yml` file directly in
    /// each of `dirs` (a path to a single file is accepted too). A user
    /// signature whose id is a built-in one replaces it; the same id twice
    /// among the user's files is a problem.
    pub fn load(dirs: &[PathBuf]) -> Result<Library, Problems> {
        let builtin: Vec<SourceFile> = builtin_files()
            .iter()
            .map(|(name, text)| SourceFile {
                name: name.to_string(),
                text: text.to_string(),
            })
            .collect();
        let mut problems = Vec::new();
        let user = read_user_files(dirs, &mut problems);
        let library = Library::assemble(&builtin, Compile::OnFirstUse, &user);
        match library {
            Ok(library) if problems.is_empty() => Ok(library),
            Ok(_) => Err(Problems(problems)),
            Err(Problems(more)) => {
                problems.extend(more);
                Err(Problems(problems))
            }
        }
    }

    /// Builds a library from `base` files overridden by `overrides` files,
    /// every pattern compiled now.
    pub fn from_sources(
        base: &[SourceFile],
        overrides: &[SourceFile],
    ) -> Result<Library, Problems> {
        Library::assemble(base, Compile::Now, overrides)
    }

    /// [`Library::from_sources`], compiling `base`'s patterns as told.
    fn assemble(
        base: &[SourceFile],
        base_compile: Compile,
        overrides: &[SourceFile],
    ) -> Result<Library, Problems> {
        let mut problems = Vec::new();
        let (base, base_rules) = parse_unique(base, base_compile, &mut problems);
        let (overrides, mut rules) = parse_unique(overrides, Compile::Now, &mut problems);
        rules.extend(base_rules);
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        let replaced: HashMap<&str, &Signature> =
            overrides.iter().map(|s| (s.id.as_str(), s)).collect();
        let mut signatures: Vec<Signature> = base
            .iter()
            .map(|s| {
                replaced
                    .get(s.id.as_str())
                    .map_or_else(|| s.clone(), |&o| o.clone())
            })
            .collect();
        let base_ids: HashMap<&str, ()> = base.iter().map(|s| (s.id.as_str(), ())).collect();
        signatures.extend(
            overrides
                .iter()
                .filter(|s| !base_ids.contains_key(s.id.as_str()))
                .cloned(),
        );
        Ok(Library { signatures, rules })
    }

    /// The incident rules, the user's first, then the built-in ones, each
    /// set in file order: a hit's rule is the first that applies to it.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The signatures, built-in ones first in file order, then the user's.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The signature named `id`.
    pub fn get(&self, id: &str) -> Option<&Signature> {
        self.signatures.iter().find(|s| s.id == id)
    }
}

/// Parses `files`, reporting ids used twice among them; returns their
/// signatures and their rules.
fn parse_unique(
    files: &[SourceFile],
    compile: Compile,
    problems: &mut Vec<Problem>,
) -> (Vec<Signature>, Vec<Rule>) {
    let mut out: Vec<Signature> = Vec::new();
    let mut rules = Vec::new();
    let mut first_seen: BTreeMap<String, Location> = BTreeMap::new();
    for file in files {
        let parsed = load::parse_file(&file.name, &file.text, compile, problems);
        rules.extend(parsed.rules);
        for sig in parsed.signatures {
            if let Some(first) = first_seen.get(&sig.id) {
                problems.push(Problem {
                    file: sig.location.file.clone(),
                    line: Some(sig.location.line),
                    field: Some("id".to_string()),
                    message: format!("duplicate id {:?}, first defined at {first}", sig.id),
                });
                continue;
            }
            first_seen.insert(sig.id.clone(), sig.location.clone());
            out.push(sig);
        }
    }
    (out, rules)
}

/// Reads the signature files under `paths`, sorted by name within a directory.
fn read_user_files(paths: &[PathBuf], problems: &mut Vec<Problem>) -> Vec<SourceFile> {
    let mut files = Vec::new();
    for path in paths {
        let unreadable = |problems: &mut Vec<Problem>, path: &Path, err: std::io::Error| {
            problems.push(Problem {
                file: path.display().to_string(),
                line: None,
                field: None,
                message: format!("cannot read: {err}"),
            });
        };
        let entries: Vec<PathBuf> = if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(dir) => {
                    let mut found: Vec<PathBuf> = dir
                        .filter_map(|entry| entry.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.is_file()
                                && matches!(
                                    p.extension().and_then(|e| e.to_str()),
                                    Some("yaml" | "yml")
                                )
                        })
                        .collect();
                    found.sort();
                    if found.is_empty() {
                        problems.push(Problem {
                            file: path.display().to_string(),
                            line: None,
                            field: None,
                            message: "no *.yaml or *.yml signature files in this directory"
                                .to_string(),
                        });
                    }
                    found
                }
                Err(err) => {
                    unreadable(problems, path, err);
                    continue;
                }
            }
        } else {
            vec![path.clone()]
        };
        for file in entries {
            match std::fs::read_to_string(&file) {
                Ok(text) => files.push(SourceFile {
                    name: file.display().to_string(),
                    text,
                }),
                Err(err) => unreadable(problems, &file, err),
            }
        }
    }
    files
}

#[cfg(test)]
mod tests;
