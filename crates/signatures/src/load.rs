//! Reading one signature file into [`Signature`]s, collecting every problem.
//!
//! The YAML is parsed into a tree that keeps line numbers (`marked-yaml`),
//! then walked by hand: serde would stop at the first problem, and a user
//! fixing a file wants all of them, each with its line.

use std::collections::BTreeSet;

use faultline_core::{Class, LABEL_NAMES, Rule, Severity, SourceKind};
use marked_yaml::{LoaderOptions, Node, types::MarkedMappingNode};

use crate::pattern::{Compile, LazyRegex};
use crate::problem::Problem;
use crate::template::Template;
use crate::{Example, Location, NearMiss, Signature};

const SIGNATURE_FIELDS: &[&str] = &[
    "id",
    "class",
    "severity",
    "title",
    "match",
    "unless",
    "scope",
    "fallback",
    "summary",
    "remediation",
    "examples",
];
const EXAMPLES_FIELDS: &[&str] = &["match", "no_match"];
const MATCH_EXAMPLE_FIELDS: &[&str] = &["line", "captures", "source"];
const NEAR_MISS_FIELDS: &[&str] = &["line", "why", "source"];
const RULE_FIELDS: &[&str] = &[
    "class",
    "severity",
    "fire_after",
    "window",
    "for",
    "resolve_after",
];

/// Rule defaults: the counting window, `for`, and the quiet period.
const DEFAULT_WINDOW: &str = "10m";
const DEFAULT_FOR: &str = "0s";
const DEFAULT_RESOLVE_AFTER: &str = "1h";

/// Problems of one file, located in it.
struct Report<'a> {
    file: &'a str,
    problems: &'a mut Vec<Problem>,
    /// When the file's patterns are compiled.
    compile: Compile,
}

impl Report<'_> {
    fn add(&mut self, line: Option<usize>, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line,
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
        });
    }
}

fn line_of(node: &Node) -> Option<usize> {
    node.span().start().map(|m| m.line())
}

fn map_line(map: &MarkedMappingNode) -> Option<usize> {
    map.span().start().map(|m| m.line())
}

/// Flags every key of `map` that is not in `allowed`.
fn reject_unknown(map: &MarkedMappingNode, allowed: &[&str], prefix: &str, report: &mut Report) {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            report.add(
                key.span().start().map(|m| m.line()),
                &join(prefix, key.as_str()),
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            );
        }
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// A string field: `Some((value, line))`, or `None` after reporting why not.
fn string_field(
    map: &MarkedMappingNode,
    key: &str,
    prefix: &str,
    required: bool,
    report: &mut Report,
) -> Option<(String, Option<usize>)> {
    let field = join(prefix, key);
    match map.get_node(key) {
        None => {
            if required {
                report.add(map_line(map), &field, "missing (required)");
            }
            None
        }
        Some(Node::Scalar(s)) => {
            let line = s.span().start().map(|m| m.line());
            if required && s.as_str().trim().is_empty() {
                report.add(line, &field, "must not be empty");
                return None;
            }
            Some((s.as_str().to_string(), line))
        }
        Some(other) => {
            report.add(line_of(other), &field, "must be a string");
            None
        }
    }
}

fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// What one file holds: its valid signatures and incident rules.
#[derive(Default)]
pub(crate) struct Parsed {
    pub signatures: Vec<Signature>,
    pub rules: Vec<Rule>,
}

/// Parses the file `file` holding `text`; appends its problems to `problems`.
/// Returns the signatures and rules that were complete and valid.
pub(crate) fn parse_file(
    file: &str,
    text: &str,
    compile: Compile,
    problems: &mut Vec<Problem>,
) -> Parsed {
    let mut report = Report {
        file,
        problems,
        compile,
    };
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(root) => root,
        Err(err) => {
            let (line, message) = describe_load_error(&err);
            report.add(line, "", message);
            return Parsed::default();
        }
    };
    let Some(top) = root.as_mapping() else {
        report.add(
            line_of(&root),
            "",
            "the file must be a mapping with a `signatures` list and/or a `rules` list",
        );
        return Parsed::default();
    };
    reject_unknown(top, &["signatures", "rules"], "", &mut report);
    if top.get_node("signatures").is_none() && top.get_node("rules").is_none() {
        report.add(
            map_line(top),
            "signatures",
            "missing (a file needs a `signatures` list, a `rules` list, or both)",
        );
    }
    Parsed {
        signatures: list(top, "signatures", &mut report, parse_signature),
        rules: list(top, "rules", &mut report, parse_rule),
    }
}

/// The valid items of the list `key` of `top`, each parsed by `parse`.
fn list<T>(
    top: &MarkedMappingNode,
    key: &str,
    report: &mut Report,
    parse: fn(&MarkedMappingNode, &str, &mut Report) -> Option<T>,
) -> Vec<T> {
    let items = match top.get_node(key) {
        Some(Node::Sequence(items)) => items,
        Some(other) => {
            report.add(line_of(other), key, "must be a list");
            return Vec::new();
        }
        None => return Vec::new(),
    };
    let mut out = Vec::new();
    for (i, node) in items.iter().enumerate() {
        let prefix = format!("{key}[{i}]");
        match node.as_mapping() {
            Some(map) => out.extend(parse(map, &prefix, report)),
            None => report.add(line_of(node), &prefix, "must be a mapping"),
        }
    }
    out
}

/// One incident rule: `class` and/or `severity` it applies to,
/// `fire_after` (a count, or `never`), `window`, `for`, `resolve_after`.
fn parse_rule(map: &MarkedMappingNode, prefix: &str, report: &mut Report) -> Option<Rule> {
    reject_unknown(map, RULE_FIELDS, prefix, report);
    let class = optional_parsed::<Class>(map, "class", prefix, report);
    let severity = optional_parsed::<Severity>(map, "severity", prefix, report);
    let threshold = match string_field(map, "fire_after", prefix, true, report) {
        Some((text, _)) if text == "never" => Some(None),
        Some((text, at)) => match text.parse::<u32>() {
            Ok(n) if n >= 1 => Some(Some(n)),
            _ => {
                report.add(
                    at,
                    &join(prefix, "fire_after"),
                    format!("{text:?} is not a count of hits (1 or more) or `never`"),
                );
                None
            }
        },
        None => None,
    };
    let window_ns = duration_field(map, "window", DEFAULT_WINDOW, prefix, report);
    let for_ns = duration_field(map, "for", DEFAULT_FOR, prefix, report);
    let resolve_after_ns =
        duration_field(map, "resolve_after", DEFAULT_RESOLVE_AFTER, prefix, report);
    if let Some(0) = window_ns {
        report.add(
            map_line(map),
            &join(prefix, "window"),
            "must be longer than 0s",
        );
        return None;
    }
    Some(Rule {
        class: class?,
        severity: severity?,
        threshold: threshold?,
        window_ns: window_ns?,
        for_ns: for_ns?,
        resolve_after_ns: resolve_after_ns?,
    })
}

/// An optional field parsed with `FromStr`: `Some(None)` when absent,
/// `None` after reporting a bad value.
fn optional_parsed<T: std::str::FromStr<Err = faultline_core::UnknownName>>(
    map: &MarkedMappingNode,
    key: &str,
    prefix: &str,
    report: &mut Report,
) -> Option<Option<T>> {
    if map.get_node(key).is_none() {
        return Some(None);
    }
    parsed_field(map, key, prefix, report).map(Some)
}

/// A duration field such as `90s`, `10m`, `1h30m` (ns), or `default` when
/// absent; `None` after reporting a bad value.
fn duration_field(
    map: &MarkedMappingNode,
    key: &str,
    default: &str,
    prefix: &str,
    report: &mut Report,
) -> Option<i64> {
    let (text, at) = match string_field(map, key, prefix, false, report) {
        Some(found) => found,
        None if map.get_node(key).is_some() => return None,
        None => (default.to_string(), None),
    };
    match parse_duration(&text) {
        Some(ns) => Some(ns),
        None => {
            report.add(
                at,
                &join(prefix, key),
                format!("{text:?} is not a duration (examples: 30s, 10m, 1h30m)"),
            );
            None
        }
    }
}

/// `30s`, `10m`, `1h30m`, `2d` … as nanoseconds; never negative.
pub fn parse_duration(text: &str) -> Option<i64> {
    let span: jiff::SignedDuration = text.trim().parse().ok()?;
    let ns = i64::try_from(span.as_nanos()).ok()?;
    (ns >= 0).then_some(ns)
}

fn describe_load_error(err: &marked_yaml::LoadError) -> (Option<usize>, String) {
    use marked_yaml::LoadError::*;
    let (marker, what) = match err {
        TopLevelMustBeMapping(m) => (
            m,
            "the file must be a mapping with a `signatures` list".to_string(),
        ),
        TopLevelMustBeSequence(m) => (m, "unexpected top-level sequence".to_string()),
        UnexpectedAnchor(m) => (m, "YAML anchors are not supported".to_string()),
        MappingKeyMustBeScalar(m) => (m, "mapping keys must be plain strings".to_string()),
        UnexpectedTag(m) => (m, "YAML tags are not supported".to_string()),
        ScanError(m, e) => (m, format!("invalid YAML: {}", e.info())),
        DuplicateKey(inner) => {
            let key = &inner.key;
            return (
                key.span().start().map(|m| m.line()),
                format!("duplicate key `{}`", key.as_str()),
            );
        }
    };
    (Some(marker.line()), what)
}

fn parse_signature(
    map: &MarkedMappingNode,
    prefix: &str,
    report: &mut Report,
) -> Option<Signature> {
    reject_unknown(map, SIGNATURE_FIELDS, prefix, report);
    let line = map_line(map).unwrap_or(1);
    // Problems in one field must not hide problems in the next: evaluate
    // every field before giving up on the signature.
    let id = string_field(map, "id", prefix, true, report).and_then(|(id, at)| {
        if is_kebab_case(&id) {
            Some(id)
        } else {
            report.add(
                at,
                &join(prefix, "id"),
                format!("{id:?} must be kebab-case, like `postgres-read-only-file-system`"),
            );
            None
        }
    });
    let class = parsed_field::<Class>(map, "class", prefix, report);
    let severity = parsed_field::<Severity>(map, "severity", prefix, report);
    let title = string_field(map, "title", prefix, true, report).map(|(t, _)| t);
    let pattern = string_field(map, "match", prefix, true, report);
    let regex = pattern
        .as_ref()
        .and_then(|(p, at)| compile(p, *at, &join(prefix, "match"), report));
    let unless_src = string_field(map, "unless", prefix, false, report);
    // `Some(None)`: no `unless`; `None`: an `unless` that does not compile.
    let unless = match &unless_src {
        Some((p, at)) => compile(p, *at, &join(prefix, "unless"), report).map(Some),
        None => Some(None),
    };
    let scope = parse_scope(map, prefix, report);
    let fallback = bool_field(map, "fallback", prefix, report);
    let (capture_names, always): (BTreeSet<String>, BTreeSet<String>) = pattern
        .as_ref()
        .filter(|_| regex.is_some())
        .map(|(p, _)| crate::captures::of(p))
        .unwrap_or_default();
    let captures = Captures {
        names: &capture_names,
        always: &always,
        known: regex.is_some(),
    };
    let summary = template_field(map, "summary", prefix, &captures, report);
    let remediation = template_field(map, "remediation", prefix, &captures, report);
    let (examples, near_misses) =
        parse_examples(map, prefix, &capture_names, regex.is_some(), report);

    Some(Signature {
        id: id?,
        class: class?,
        severity: severity?,
        title: title?,
        pattern: pattern?.0,
        regex: regex?,
        unless: unless?,
        scope: scope?,
        fallback: fallback?,
        summary: summary?,
        remediation: remediation?,
        examples: examples?,
        near_misses: near_misses?,
        location: Location {
            file: report.file.to_string(),
            line,
        },
    })
}

/// An optional boolean field: `Some(false)` when absent, `None` when it
/// is not a boolean (reported).
fn bool_field(
    map: &MarkedMappingNode,
    key: &str,
    prefix: &str,
    report: &mut Report,
) -> Option<bool> {
    let Some(node) = map.get_node(key) else {
        return Some(false);
    };
    match node.as_scalar().map(|s| s.as_str()) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => {
            report.add(line_of(node), &join(prefix, key), "must be true or false");
            None
        }
    }
}

fn parsed_field<T: std::str::FromStr<Err = faultline_core::UnknownName>>(
    map: &MarkedMappingNode,
    key: &str,
    prefix: &str,
    report: &mut Report,
) -> Option<T> {
    let (text, at) = string_field(map, key, prefix, true, report)?;
    text.parse::<T>()
        .map_err(|err| report.add(at, &join(prefix, key), err.to_string()))
        .ok()
}

fn compile(
    pattern: &str,
    at: Option<usize>,
    field: &str,
    report: &mut Report,
) -> Option<LazyRegex> {
    match LazyRegex::new(pattern, report.compile) {
        Ok(regex) => Some(regex),
        Err(err) => {
            // The regex crate's message spans several lines with a caret
            // under the error; keep it, indented, so it stays readable.
            let message = err.replace('\n', "\n    ");
            report.add(
                at,
                field,
                format!("invalid regular expression:\n    {message}"),
            );
            None
        }
    }
}

fn parse_scope(
    map: &MarkedMappingNode,
    prefix: &str,
    report: &mut Report,
) -> Option<Vec<SourceKind>> {
    let field = join(prefix, "scope");
    let Some(node) = map.get_node("scope") else {
        return Some(Vec::new());
    };
    let Some(list) = node.as_sequence() else {
        report.add(
            line_of(node),
            &field,
            format!("must be a list of sources: {}", SourceKind::expected()),
        );
        return None;
    };
    let mut kinds = Vec::new();
    let mut ok = true;
    for (i, item) in list.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        match item.as_scalar().map(|s| s.as_str().parse::<SourceKind>()) {
            Some(Ok(kind)) => kinds.push(kind),
            Some(Err(err)) => {
                report.add(line_of(item), &item_field, err.to_string());
                ok = false;
            }
            None => {
                report.add(line_of(item), &item_field, "must be a string");
                ok = false;
            }
        }
    }
    ok.then_some(kinds)
}

/// What a template may name: the captures of `match`, and which of them
/// take part in every match.
struct Captures<'a> {
    names: &'a BTreeSet<String>,
    always: &'a BTreeSet<String>,
    /// False when `match` did not compile: nothing is known of it.
    known: bool,
}

fn template_field(
    map: &MarkedMappingNode,
    key: &str,
    prefix: &str,
    captures: &Captures,
    report: &mut Report,
) -> Option<Template> {
    let (text, at) = string_field(map, key, prefix, true, report)?;
    let field = join(prefix, key);
    let template = Template::parse(&text)
        .map_err(|err| report.add(at, &field, err))
        .ok()?;
    if !captures.known {
        return Some(template);
    }
    let mut ok = true;
    for name in template.fields() {
        if !captures.names.contains(name) && !LABEL_NAMES.contains(&name) {
            report.add(
                at,
                &field,
                format!(
                    "placeholder {{{name}}} is neither a capture of `match` ({}) nor a label ({})",
                    list_or_none(captures.names.iter().map(String::as_str)),
                    LABEL_NAMES.join(", ")
                ),
            );
            ok = false;
        }
    }
    // A value that can be missing needs words to show in its place, or
    // the reader would see a raw `{name}`.
    let mut unworded: Vec<&str> = template
        .fields_without_wording()
        .filter(|name| captures.names.contains(*name) || LABEL_NAMES.contains(name))
        .filter(|name| !captures.always.contains(*name))
        .collect();
    unworded.sort_unstable();
    unworded.dedup();
    for name in unworded {
        let why = if captures.names.contains(name) {
            "is a capture that does not take part in every match"
        } else {
            "is a label a record may not have"
        };
        report.add(
            at,
            &field,
            format!(
                "placeholder {{{name}}} {why}: give the words to show without it, as {{{name}|the {name}}}"
            ),
        );
        ok = false;
    }
    ok.then_some(template)
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "it has none".to_string()
    } else {
        names.join(", ")
    }
}

type ParsedExamples = (Option<Vec<Example>>, Option<Vec<NearMiss>>);

fn parse_examples(
    map: &MarkedMappingNode,
    prefix: &str,
    captures: &BTreeSet<String>,
    captures_known: bool,
    report: &mut Report,
) -> ParsedExamples {
    let field = join(prefix, "examples");
    let examples = match map.get_node("examples") {
        Some(Node::Mapping(examples)) => examples,
        Some(other) => {
            report.add(
                line_of(other),
                &field,
                "must be a mapping with `match` and `no_match` lists",
            );
            return (None, None);
        }
        None => {
            report.add(
                map_line(map),
                &field,
                "missing (required): at least one line that must match",
            );
            return (None, None);
        }
    };
    reject_unknown(examples, EXAMPLES_FIELDS, &field, report);
    let must = example_list(examples, "match", &field, report).and_then(|items| {
        let mut out = Vec::new();
        let mut ok = true;
        for (item, item_field) in items {
            match parse_match_example(item, &item_field, captures, captures_known, report) {
                Some(example) => out.push(example),
                None => ok = false,
            }
        }
        if out.is_empty() && ok {
            report.add(
                map_line(examples),
                &join(&field, "match"),
                "needs at least one line that must match",
            );
            ok = false;
        }
        ok.then_some(out)
    });
    let must_not = match examples.get_node("no_match") {
        None => Some(Vec::new()),
        Some(_) => example_list(examples, "no_match", &field, report).and_then(|items| {
            let mut out = Vec::new();
            let mut ok = true;
            for (item, item_field) in items {
                reject_unknown(item, NEAR_MISS_FIELDS, &item_field, report);
                let line = string_field(item, "line", &item_field, true, report);
                let why = string_field(item, "why", &item_field, false, report).map(|(w, _)| w);
                let source =
                    string_field(item, "source", &item_field, false, report).map(|(s, _)| s);
                match line {
                    Some((line, at)) => out.push(NearMiss {
                        line,
                        why,
                        source,
                        location: Location {
                            file: report.file.to_string(),
                            line: at.unwrap_or(1),
                        },
                    }),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }),
    };
    (must, must_not)
}

/// The mappings of the list `examples.KEY`, each with its field path.
fn example_list<'a>(
    examples: &'a MarkedMappingNode,
    key: &str,
    prefix: &str,
    report: &mut Report,
) -> Option<Vec<(&'a MarkedMappingNode, String)>> {
    let field = join(prefix, key);
    let list = match examples.get_node(key) {
        Some(Node::Sequence(list)) => list,
        Some(other) => {
            report.add(line_of(other), &field, "must be a list");
            return None;
        }
        None => {
            report.add(map_line(examples), &field, "missing (required)");
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in list.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        match item.as_mapping() {
            Some(map) => out.push((map, item_field)),
            None => {
                report.add(
                    line_of(item),
                    &item_field,
                    "must be a mapping with a `line`",
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn parse_match_example(
    item: &MarkedMappingNode,
    field: &str,
    captures: &BTreeSet<String>,
    captures_known: bool,
    report: &mut Report,
) -> Option<Example> {
    reject_unknown(item, MATCH_EXAMPLE_FIELDS, field, report);
    let line = string_field(item, "line", field, true, report);
    let source = string_field(item, "source", field, false, report).map(|(s, _)| s);
    let mut expected = Vec::new();
    let mut ok = true;
    match item.get_node("captures") {
        None => {}
        Some(Node::Mapping(map)) => {
            for (name, value) in map.iter() {
                let capture_field = format!("{field}.captures.{}", name.as_str());
                let at = name.span().start().map(|m| m.line());
                if captures_known && !captures.contains(name.as_str()) {
                    report.add(
                        at,
                        &capture_field,
                        format!(
                            "`match` has no capture named {:?} (it has: {})",
                            name.as_str(),
                            list_or_none(captures.iter().map(String::as_str))
                        ),
                    );
                    ok = false;
                    continue;
                }
                match value.as_scalar() {
                    Some(v) => expected.push((name.as_str().to_string(), v.as_str().to_string())),
                    None => {
                        report.add(line_of(value), &capture_field, "must be a string");
                        ok = false;
                    }
                }
            }
        }
        Some(other) => {
            report.add(
                line_of(other),
                &format!("{field}.captures"),
                "must be a mapping of capture name to value",
            );
            ok = false;
        }
    }
    let (line, at) = line?;
    ok.then(|| Example {
        line,
        captures: expected,
        source,
        location: Location {
            file: report.file.to_string(),
            line: at.unwrap_or(1),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case_ids() {
        assert!(is_kebab_case("postgres-read-only-file-system"));
        assert!(is_kebab_case("ext4-error2"));
        assert!(!is_kebab_case("Postgres"));
        assert!(!is_kebab_case("a--b"));
        assert!(!is_kebab_case("-a"));
        assert!(!is_kebab_case("a_b"));
        assert!(!is_kebab_case(""));
    }
}
