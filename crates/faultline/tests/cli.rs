//! End-to-end tests of the `faultline` binary: each runs the real binary in
//! a fresh temporary directory and checks its output and exit code.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{faultline, faultline_with_stdin};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("temp file is writable");
    path
}

const USER_SIGNATURE: &str = r#"signatures:
  - id: user-disk-on-fire
    class: disk-io-error
    severity: warning
    title: The disk is on fire
    match: 'disk (?P<device>sd[a-z]+) is on fire'
    summary: '{device} burns'
    remediation: 'call the fire brigade for {device} on {node|the node}'
    examples:
      match:
        - line: 'kernel: disk sdb is on fire'
          captures: {device: sdb}
      no_match:
        - line: 'disk sdb is fine'
"#;

#[test]
fn check_passes_on_the_builtin_library_with_at_least_40_signatures() {
    let out = faultline(&["check"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "check failed:\n{}{}",
        stdout,
        text(&out.stderr)
    );
    let count: usize = stdout
        .strip_prefix("ok: ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected summary: {stdout}"));
    assert!(count >= 40, "only {count} built-in signatures");
}

#[test]
fn check_adds_user_signatures_and_runs_their_examples() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mine.yaml", USER_SIGNATURE);
    let out = faultline(&["check", "--signatures", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = faultline(&[
        "signatures",
        "--json",
        "--signatures",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let mine = rows
        .iter()
        .find(|r| r["id"] == "user-disk-on-fire")
        .expect("the user signature is listed");
    assert_eq!(mine["class"], "disk-io-error");
    assert_eq!(mine["severity"], "warning");
    assert!(mine["file"].as_str().unwrap().ends_with("mine.yaml"));
    assert_eq!(mine["line"], 2);
    let ids: std::collections::HashSet<&str> =
        rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), rows.len(), "ids are unique");
}

#[test]
fn a_broken_signature_file_is_rejected_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let broken = USER_SIGNATURE
        .replace("severity: warning", "severty: warning")
        .replace(
            r"'disk (?P<device>sd[a-z]+) is on fire'",
            r"'disk (?P<device>sd[a-z]+ is on fire'",
        );
    let file = write(dir.path(), "broken.yaml", &broken);
    let out = faultline(&["check", "--signatures", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let f = file.display();
    for want in [
        format!(
            "{f}:4: signatures[0].severty: unknown field; expected one of: id, class, severity"
        ),
        format!("{f}:2: signatures[0].severity: missing (required)"),
        format!("{f}:6: signatures[0].match: invalid regular expression"),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }
    assert!(stderr.contains("faultline check: 3 problem(s)"), "{stderr}");
}

#[test]
fn a_failing_example_and_a_matching_near_miss_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = USER_SIGNATURE
        .replace("captures: {device: sdb}", "captures: {device: sdc}")
        .replace("'disk sdb is fine'", "'disk sdq is on fire'");
    let file = write(dir.path(), "wrong.yaml", &wrong);
    let out = faultline(&["check", "--signatures", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let f = file.display();
    assert!(
        stderr.contains(&format!(
            "{f}:11: examples.match: signature user-disk-on-fire: capture device: expected \"sdc\", got \"sdb\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{f}:14: examples.no_match: signature user-disk-on-fire matches this near-miss, which it must not"
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_signature_directory_is_an_error_not_a_crash() {
    let out = faultline(&["check", "--signatures", "/nonexistent/faultline-signatures"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/nonexistent/faultline-signatures: cannot read"),
        "{}",
        text(&out.stderr)
    );
}

/// The speed kit's 40 patterns: the first 40 lines of the bench patterns.
fn perf_patterns(dir: &Path) -> PathBuf {
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("../matcher/benches/patterns-400.txt");
    let text = std::fs::read_to_string(all).unwrap();
    let first: Vec<&str> = text.lines().take(40).collect();
    write(dir, "perf-signatures.txt", &(first.join("\n") + "\n"))
}

/// A corpus of healthy lines, every example and near-miss line of the
/// built-in library, and edge cases: CRLF, invalid UTF-8, long lines, no
/// final newline.
fn mixed_corpus() -> Vec<u8> {
    let mut out = Vec::new();
    let library = faultline_signatures::Library::builtin().unwrap();
    for (i, sig) in library.signatures().iter().enumerate() {
        for line in sig
            .examples
            .iter()
            .map(|e| &e.line)
            .chain(sig.near_misses.iter().map(|n| &n.line))
        {
            for _ in 0..3 {
                out.extend_from_slice(
                    b"2026-02-16T03:04:05.123456789Z stdout F GET /healthz 200 OK\n",
                );
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(if i % 5 == 0 { b"\r\n" } else { b"\n" });
        }
    }
    out.extend_from_slice(b"\xff\xfe invalid utf-8 then Remounting filesystem read-only \xc3\n");
    out.extend_from_slice(&b"x".repeat(1 << 20));
    out.extend_from_slice(b" No space left on device\n");
    out.extend_from_slice(b"last line without newline: CrashLoopBackOff");
    out
}

/// Counts like grep: each pattern on each line, one at a time.
fn naive_count(patterns: &[&str], corpus: &[u8]) -> u64 {
    let regexes: Vec<regex::bytes::Regex> = patterns
        .iter()
        .map(|p| regex::bytes::Regex::new(p).unwrap())
        .collect();
    let body = corpus.strip_suffix(b"\n").unwrap_or(corpus);
    body.split(|&b| b == b'\n')
        .filter(|line| regexes.iter().any(|r| r.is_match(line)))
        .count() as u64
}

#[test]
fn count_agrees_with_a_line_by_line_reference_and_with_ripgrep() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.log");
    std::fs::write(&corpus, mixed_corpus()).unwrap();
    let patterns_file = perf_patterns(dir.path());
    let patterns_text = std::fs::read_to_string(&patterns_file).unwrap();
    let patterns: Vec<&str> = patterns_text.lines().collect();
    let expected = naive_count(&patterns, &std::fs::read(&corpus).unwrap());
    assert!(expected > 50, "the corpus holds failure lines ({expected})");

    let out = faultline(&[
        "count",
        "--patterns",
        patterns_file.to_str().unwrap(),
        corpus.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), expected.to_string());

    match Command::new("rg")
        .args(["--no-config", "-c", "-f"])
        .arg(&patterns_file)
        .arg(&corpus)
        .output()
    {
        Ok(rg) => assert_eq!(
            text(&rg.stdout).trim(),
            expected.to_string(),
            "rg -c -f disagrees"
        ),
        Err(_) if std::env::var_os("FAULTLINE_REQUIRE_TOOLS").is_none() => {
            eprintln!("ripgrep is not installed: compared with the line-by-line reference only");
        }
        Err(err) => panic!("ripgrep is required here (FAULTLINE_REQUIRE_TOOLS is set): {err}"),
    }
}

#[test]
fn count_reads_stdin_and_prints_per_file_counts_then_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let patterns = write(dir.path(), "p.txt", "needle\r\n[0-9]{3}x\n");
    let a = write(dir.path(), "a.log", "needle\nhay\n123x\n");
    let b = write(dir.path(), "b.log", "hay\n");
    let out = faultline(&[
        "count",
        "-f",
        patterns.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("{}:2\n{}:0\n2\n", a.display(), b.display())
    );

    let out = faultline_with_stdin(
        &["count", "-f", patterns.to_str().unwrap(), "-"],
        b"a needle\nnothing\n999x",
    );
    assert_eq!(text(&out.stdout), "2\n");

    let out = faultline(&[
        "count",
        "-f",
        patterns.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "no match: exit 1, like grep");
    assert_eq!(text(&out.stdout), "0\n");
}

#[test]
fn count_reports_a_bad_pattern_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let patterns = write(dir.path(), "p.txt", "fine\n(unclosed\n");
    let out = faultline(&["count", "-f", patterns.to_str().unwrap(), "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("{}: line 2:", patterns.display())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_names_the_release_and_the_commit() {
    let out = faultline(&["--version"]);
    assert!(out.status.success());
    let version = text(&out.stdout);
    let version = version.trim();
    let rest = version
        .strip_prefix(&format!("faultline {} (commit ", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version:?}"));
    assert!(
        rest == "unknown" || (rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_hexdigit())),
        "{version:?}"
    );
}
