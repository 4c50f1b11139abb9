use super::*;

fn file(name: &str, text: &str) -> SourceFile {
    SourceFile {
        name: name.to_string(),
        text: text.to_string(),
    }
}

const GOOD: &str = r#"signatures:
  - id: demo-read-only
    class: volume-read-only
    severity: critical
    title: Demo
    match: 'could not open file "(?P<path>[^"]+)": Read-only file system'
    unless: 'transaction'
    summary: 'cannot open {path} in {pod|the pod}'
    remediation: 'remount {path}'
    examples:
      match:
        - line: 'FATAL:  could not open file "pg_wal/1": Read-only file system'
          captures: {path: pg_wal/1}
          source: https://example.invalid/1
      no_match:
        - line: 'cannot execute INSERT in a read-only transaction'
          why: not a volume
"#;

#[test]
fn a_valid_file_loads_every_field() {
    let lib = Library::from_sources(&[file("a.yaml", GOOD)], &[]).unwrap();
    let sig = lib.get("demo-read-only").unwrap();
    assert_eq!(sig.class, Class::VolumeReadOnly);
    assert_eq!(sig.severity, Severity::Critical);
    assert_eq!(
        sig.location,
        Location {
            file: "a.yaml".into(),
            line: 2
        }
    );
    assert_eq!(
        sig.examples[0].captures,
        vec![("path".to_string(), "pg_wal/1".to_string())]
    );
    assert_eq!(sig.examples[0].location.line, 12);
    assert_eq!(sig.near_misses[0].why.as_deref(), Some("not a volume"));
    assert!(sig.unless.is_some());
    assert!(sig.scope.is_empty());
    assert!(!sig.fallback);
}

#[test]
fn a_placeholder_that_can_be_missing_must_say_what_to_show() {
    let unworded = GOOD.replace("{pod|the pod}", "{pod}");
    let err = Library::from_sources(&[file("a.yaml", &unworded)], &[]).unwrap_err();
    assert_eq!(
        err.0[0].to_string(),
        "a.yaml:8: signatures[0].summary: placeholder {pod} is a label a record may not have: give the words to show without it, as {pod|the pod}"
    );
    let optional = GOOD
        .replace(
            r#"(?P<path>[^"]+)": Read"#,
            r#"(?P<path>[^"]+)"(?: in (?P<db>\w+))?: Read"#,
        )
        .replace("remount {path}", "remount {path} of {db}");
    let err = Library::from_sources(&[file("a.yaml", &optional)], &[]).unwrap_err();
    assert!(
        err.0[0]
            .message
            .contains("placeholder {db} is a capture that does not take part in every match"),
        "{err}"
    );
    let worded = optional.replace("of {db}", "of {db|the database}");
    assert!(Library::from_sources(&[file("a.yaml", &worded)], &[]).is_ok());
}

#[test]
fn fallback_is_a_boolean() {
    let net = GOOD.replace("    unless:", "    fallback: true\n    unless:");
    let lib = Library::from_sources(&[file("a.yaml", &net)], &[]).unwrap();
    assert!(lib.get("demo-read-only").unwrap().fallback);
    let bad = GOOD.replace("    unless:", "    fallback: sometimes\n    unless:");
    let err = Library::from_sources(&[file("a.yaml", &bad)], &[]).unwrap_err();
    assert_eq!(
        err.0[0].to_string(),
        "a.yaml:7: signatures[0].fallback: must be true or false"
    );
}

#[test]
fn every_problem_is_reported_with_file_line_and_field() {
    let bad = r#"signatures:
  - id: Bad_Id
    class: read-only
    severity: critical
    title: Demo
    match: 'could not open (?P<path>[^"]+'
    summary: 'cannot open {path}'
    remediation: 'see {nowhere}'
    colour: red
    examples:
      match:
        - line: 'x'
  - id: second
    class: volume-read-only
    severity: urgent
    title: Second
    match: 'abc(?P<x>d)'
    summary: 'x'
    remediation: '{missing}'
    scope: [kernel, cloud]
    examples:
      match:
        - line: 'abcd'
          captures: {y: d}
"#;
    let err = Library::from_sources(&[file("bad.yaml", bad)], &[]).unwrap_err();
    let text: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    let expect = [
        "bad.yaml:9: signatures[0].colour: unknown field",
        "bad.yaml:2: signatures[0].id: \"Bad_Id\" must be kebab-case",
        "bad.yaml:3: signatures[0].class: unknown value \"read-only\"",
        "bad.yaml:6: signatures[0].match: invalid regular expression",
        "bad.yaml:15: signatures[1].severity: unknown value \"urgent\"",
        "bad.yaml:20: signatures[1].scope[1]: unknown value \"cloud\"",
        "bad.yaml:19: signatures[1].remediation: placeholder {missing} is neither a capture of `match` (x)",
        "bad.yaml:24: signatures[1].examples.match[0].captures.y: `match` has no capture named \"y\" (it has: x)",
    ];
    for want in expect {
        assert!(
            text.iter().any(|t| t.starts_with(want)),
            "missing {want:?} in:\n{}",
            text.join("\n")
        );
    }
    assert_eq!(
        text.len(),
        expect.len(),
        "unexpected extra problems:\n{}",
        text.join("\n")
    );
}

#[test]
fn invalid_yaml_names_the_line() {
    let err = Library::from_sources(
        &[file(
            "x.yaml",
            "signatures:\n  - id: a\n    title: [unclosed\n",
        )],
        &[],
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(err.0[0].to_string().starts_with("x.yaml:"), "{}", err.0[0]);
    assert!(err.0[0].message.contains("invalid YAML"), "{}", err.0[0]);
}

#[test]
fn duplicate_keys_and_ids_are_problems() {
    let twice = GOOD.replace("    unless: 'transaction'\n", "    title: Again\n");
    let err = Library::from_sources(&[file("t.yaml", &twice)], &[]).unwrap_err();
    assert!(
        err.0[0].message.contains("duplicate key `title`"),
        "{}",
        err
    );

    let err =
        Library::from_sources(&[file("a.yaml", GOOD), file("b.yaml", GOOD)], &[]).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(
        err.0[0].to_string(),
        "b.yaml:2: id: duplicate id \"demo-read-only\", first defined at a.yaml:2"
    );
}

#[test]
fn a_user_signature_replaces_the_builtin_one_with_its_id() {
    let user = GOOD.replace("severity: critical", "severity: warning");
    let extra = GOOD.replace("demo-read-only", "demo-extra");
    let lib = Library::from_sources(
        &[file("builtin.yaml", GOOD)],
        &[file("mine.yaml", &user), file("extra.yaml", &extra)],
    )
    .unwrap();
    assert_eq!(lib.signatures().len(), 2);
    assert_eq!(
        lib.get("demo-read-only").unwrap().severity,
        Severity::Warning
    );
    assert_eq!(
        lib.get("demo-read-only").unwrap().location.file,
        "mine.yaml"
    );
    assert_eq!(lib.signatures()[1].id, "demo-extra");
}

#[test]
fn user_directories_are_read_and_unreadable_ones_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.yaml"),
        GOOD.replace("demo-read-only", "user-demo"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a signature file").unwrap();
    let lib = Library::load(&[dir.path().to_path_buf()]).unwrap();
    assert!(lib.get("user-demo").is_some());
    assert!(
        lib.signatures().len() > 1,
        "built-in signatures are loaded too"
    );

    let missing = dir.path().join("absent");
    let err = Library::load(std::slice::from_ref(&missing)).unwrap_err();
    assert!(
        err.0[0]
            .to_string()
            .starts_with(&format!("{}: cannot read", missing.display())),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let err = Library::load(&[empty.path().to_path_buf()]).unwrap_err();
    assert!(err.0[0].message.contains("no *.yaml"), "{err}");
}

#[test]
fn the_builtin_library_loads() {
    let lib = Library::builtin().unwrap_or_else(|p| panic!("built-in library has problems:\n{p}"));
    assert!(!lib.signatures().is_empty());
}

/// The built-in library is compiled on first use: every pattern must
/// compile, or the first line that needs it would stop faultline.
#[test]
fn every_builtin_pattern_compiles() {
    let lib = Library::builtin().unwrap();
    for sig in lib.signatures() {
        for pattern in std::iter::once(&sig.regex).chain(&sig.unless) {
            regex::bytes::Regex::new(pattern.as_str())
                .unwrap_or_else(|err| panic!("{}: {err}", sig.id));
        }
    }
}

#[test]
fn rules_load_with_defaults_and_user_rules_come_first() {
    let builtin = "rules:\n  - severity: critical\n    fire_after: 1\n  - fire_after: never\n";
    let user = "rules:\n  - class: disk-full\n    severity: warning\n    fire_after: 5\n    window: 1h30m\n    for: 2m\n    resolve_after: 30m\n";
    let lib = Library::from_sources(&[file("b.yaml", builtin)], &[file("u.yaml", user)]).unwrap();
    let minute = 60_000_000_000;
    assert_eq!(
        lib.rules(),
        [
            Rule {
                class: Some(Class::DiskFull),
                severity: Some(Severity::Warning),
                threshold: Some(5),
                window_ns: 90 * minute,
                for_ns: 2 * minute,
                resolve_after_ns: 30 * minute,
            },
            Rule {
                class: None,
                severity: Some(Severity::Critical),
                threshold: Some(1),
                window_ns: 10 * minute,
                for_ns: 0,
                resolve_after_ns: 60 * minute,
            },
            Rule {
                class: None,
                severity: None,
                threshold: None,
                window_ns: 10 * minute,
                for_ns: 0,
                resolve_after_ns: 60 * minute,
            },
        ]
    );
    assert!(lib.signatures().is_empty());
}

#[test]
fn a_bad_rule_names_file_line_and_field() {
    let bad = "rules:\n  - class: disk-ful\n    fire_after: 0\n    window: 10 minutes please\n    resolve_afer: 1h\n";
    let err = Library::from_sources(&[file("r.yaml", bad)], &[]).unwrap_err();
    let text = err.to_string();
    for expected in [
        "r.yaml:2: rules[0].class: unknown value \"disk-ful\"",
        "r.yaml:3: rules[0].fire_after: \"0\" is not a count of hits",
        "r.yaml:4: rules[0].window: \"10 minutes please\" is not a duration",
        "r.yaml:5: rules[0].resolve_afer: unknown field",
    ] {
        assert!(text.contains(expected), "{expected} not in:\n{text}");
    }
}

#[test]
fn the_builtin_rules_cover_every_class_and_severity() {
    let lib = Library::builtin().unwrap();
    for &class in Class::ALL {
        for &severity in Severity::ALL {
            assert!(
                lib.rules().iter().any(|r| r.applies(class, severity)),
                "no rule for {class} {severity}"
            );
        }
    }
}
