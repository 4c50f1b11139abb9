use super::*;
use faultline_signatures::{Library, SourceFile};

fn library(yaml: &str) -> Vec<Signature> {
    Library::from_sources(
        &[SourceFile {
            name: "t.yaml".into(),
            text: yaml.into(),
        }],
        &[],
    )
    .unwrap_or_else(|p| panic!("{p}"))
    .signatures()
    .to_vec()
}

const SIGS: &str = r#"signatures:
  - id: pg-ro
    class: volume-read-only
    severity: critical
    title: ro
    match: 'could not (?P<op>open|write to) file "(?P<path>[^"]+)": Read-only file system'
    unless: 'quoted by'
    summary: '{path}'
    remediation: 'x'
    examples:
      match:
        - line: 'could not open file "a": Read-only file system'
  - id: kernel-remount
    class: volume-read-only
    severity: critical
    title: remount
    match: 'EXT4-fs \((?P<device>[a-z0-9-]+)\): Remounting filesystem read-only'
    scope: [kernel]
    summary: '{device}'
    remediation: 'x'
    examples:
      match:
        - line: 'EXT4-fs (sdb): Remounting filesystem read-only'
"#;

/// (signature id, line offset, captures) of each hit.
type Found = Vec<(String, usize, Vec<(String, String)>)>;

fn hits(matcher: &Matcher, buf: &[u8], source: Option<SourceKind>) -> Found {
    let mut scratch = matcher.scratch();
    let mut out = Vec::new();
    matcher.scan(
        buf,
        |_| source,
        &mut scratch,
        |hit| {
            let caps = hit
                .captures()
                .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            out.push((hit.signature().id.clone(), hit.line_start(), caps));
        },
    );
    out
}

#[test]
fn finds_hits_in_plain_and_json_encoded_lines_with_captures() {
    let matcher = Matcher::new(&library(SIGS)).unwrap();
    let buf = concat!(
        "healthy\n",
        "2026-02-19 03:04:05 UTC [25] FATAL:  could not open file \"pg_wal/0001\": Read-only file system\n",
        r#"{"record":{"message":"could not write to file \"base/1/2\": Read-only file system"}}"#,
        "\r\nnoise\n",
        "[ 12.5] EXT4-fs (dm-3): Remounting filesystem read-only",
    );
    let found = hits(&matcher, buf.as_bytes(), None);
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        found,
        vec![
            (
                "pg-ro".into(),
                8,
                vec![pair("op", "open"), pair("path", "pg_wal/0001")]
            ),
            (
                "pg-ro".into(),
                102,
                vec![pair("op", "write to"), pair("path", "base/1/2")]
            ),
            ("kernel-remount".into(), 194, vec![pair("device", "dm-3")]),
        ]
    );
}

#[test]
fn unless_and_scope_veto_hits() {
    let matcher = Matcher::new(&library(SIGS)).unwrap();
    let quoted = b"alert text quoted by rule: could not open file \"x\": Read-only file system\n";
    assert!(hits(&matcher, quoted, None).is_empty());
    let kernel = b"EXT4-fs (sdb): Remounting filesystem read-only\n";
    assert_eq!(hits(&matcher, kernel, Some(SourceKind::Kernel)).len(), 1);
    assert_eq!(
        hits(&matcher, kernel, None).len(),
        1,
        "unknown source: every signature applies"
    );
    assert!(hits(&matcher, kernel, Some(SourceKind::Pod)).is_empty());
}

#[test]
fn a_signature_without_literal_still_matches_every_line_it_should() {
    let sigs = SIGS.replace(
        r"'EXT4-fs \((?P<device>[a-z0-9-]+)\): Remounting filesystem read-only'",
        r"'(?P<device>[a-z]+[0-9])'",
    );
    let sigs = sigs.replace("'EXT4-fs (sdb): Remounting filesystem read-only'", "'sdb1'");
    let matcher = Matcher::new(&library(&sigs)).unwrap();
    assert_eq!(matcher.signatures_without_literal(), &[1]);
    let found = hits(&matcher, b"none here\nxx abc7\n", None);
    assert_eq!(
        found,
        vec![(
            "kernel-remount".into(),
            10,
            vec![("device".into(), "abc7".into())]
        )]
    );
}

/// Counts the way grep does it: every pattern on every line.
fn naive_count(patterns: &[&str], buf: &[u8]) -> u64 {
    let regexes: Vec<regex::bytes::Regex> = patterns
        .iter()
        .map(|p| regex::bytes::Regex::new(p).unwrap())
        .collect();
    buf.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(i, line)| !(line.is_empty() && *i == buf.split(|&b| b == b'\n').count() - 1))
        .filter(|(_, line)| regexes.iter().any(|r| r.is_match(line)))
        .count() as u64
}

#[test]
fn grep_counts_equal_the_naive_count() {
    let patterns = [
        "Remounting filesystem read-only",
        "[Rr]ead-only file ?system",
        r"I/O error, dev [a-z0-9-]+, sector [0-9]+",
        "(Liveness|Readiness|Startup) probe failed",
        "^start",
        "end$",
        "[0-9]{4}x",
    ];
    let buf = b"start of it\nread-only filesystem\nRead-only file system twice Read-only file system\n\
no\nI/O error, dev sdb, sector 77\nthe end\nthe end\r\n1234x\nstart\nLiveness probe failed\nlast line no newline";
    let set = GrepSet::new(&patterns).unwrap();
    let mut cache = set.cache();
    assert_eq!(
        set.count_lines(buf, &mut cache),
        naive_count(&patterns, buf)
    );
    assert_eq!(set.count_lines(buf, &mut cache), 8);
}

#[test]
fn more_literals_than_one_teddy_group_are_all_found() {
    // 120 literals: split over two Teddy searchers, whose answers interleave.
    let patterns: Vec<String> = (0..120).map(|i| format!("fault{i:03}z")).collect();
    let mut buf = Vec::new();
    for i in (0..120).rev() {
        buf.extend_from_slice(format!("a fault{i:03}z here\nnothing\nfault{i:03}y\n").as_bytes());
    }
    buf.extend_from_slice(b"fault000z fault119z\n");
    let set = GrepSet::new(&patterns).unwrap();
    let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
    assert_eq!(set.count_lines(&buf, &mut set.cache()), 121);
    assert_eq!(
        set.count_lines(&buf, &mut set.cache()),
        naive_count(&refs, &buf)
    );
}

#[test]
fn a_bad_pattern_is_reported_by_its_index() {
    let err = GrepSet::new(&["fine", "(unclosed"]).unwrap_err();
    assert_eq!(err.index, 1);
    assert!(err.to_string().starts_with("pattern 2: "), "{err}");
}

#[test]
fn thousands_of_patterns_go_through_the_automaton_and_count_exactly() {
    let patterns: Vec<String> = (0..5000).map(|i| format!("error code {i:05}x")).collect();
    let set = GrepSet::new(&patterns).unwrap();
    let buf = b"error code 00042x\nerror code 99999x\nfine\nsee error code 04999x here\n";
    assert_eq!(set.count_lines(buf, &mut set.cache()), 2);
    let anchored: Vec<String> = (0..300)
        .map(|i| format!("component{i} failed hard"))
        .collect();
    let set = GrepSet::new(&anchored).unwrap();
    assert_eq!(
        set.count_lines(
            b"component7 failed hard\ncomponent7 failed\n",
            &mut set.cache()
        ),
        1
    );
}

const NET: &str = r#"
  - id: net-erofs
    class: volume-read-only
    severity: warning
    fallback: true
    title: net
    match: 'Read-only file system'
    summary: 'x'
    remediation: 'x'
    examples:
      match:
        - line: 'touch: x: Read-only file system'
"#;

#[test]
fn the_safety_net_speaks_only_where_no_specific_signature_did() {
    let matcher = Matcher::new(&library(&format!("{SIGS}{NET}"))).unwrap();
    let specific = b"could not open file \"a\": Read-only file system\n";
    let ids: Vec<String> = hits(&matcher, specific, None)
        .into_iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(ids, ["pg-ro"]);
    let unknown = b"touch: /data/x: Read-only file system\n";
    let ids: Vec<String> = hits(&matcher, unknown, None)
        .into_iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(ids, ["net-erofs"]);
    // A specific match vetoed by its `unless` leaves the line to the net.
    let vetoed = b"could not open file \"a\": Read-only file system, quoted by a rule\n";
    let ids: Vec<String> = hits(&matcher, vetoed, None)
        .into_iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(ids, ["net-erofs"]);
}

#[test]
fn each_line_is_scoped_by_its_own_source() {
    let matcher = Matcher::new(&library(SIGS)).unwrap();
    let buf = b"2026-02-16T03:04:05Z stderr F EXT4-fs (sdb): Remounting filesystem read-only\nFeb 16 03:04:05 n1 kernel: EXT4-fs (sdc): Remounting filesystem read-only\n";
    let mut scratch = matcher.scratch();
    let mut asked = 0;
    let mut devices = Vec::new();
    matcher.scan(
        buf,
        |line| {
            asked += 1;
            if line.starts_with(b"2026") {
                Some(SourceKind::Pod)
            } else {
                Some(SourceKind::Kernel)
            }
        },
        &mut scratch,
        |hit| devices.push(String::from_utf8_lossy(hit.capture("device").unwrap()).into_owned()),
    );
    assert_eq!(
        devices,
        ["sdc"],
        "the kernel-scoped signature skips the pod's line only"
    );
    assert_eq!(asked, 2, "the source is asked once per candidate line");
}
