use super::*;

#[test]
fn a_query_range_response_parses_with_two_and_three_element_values() {
    let body = br#"{"status":"success","data":{"resultType":"streams","result":[
      {"stream":{"namespace":"monitoring","pod":"loki-0"},"values":[["1771470247000000000","one"],["1771470248000000000","two",{"trace_id":"x"}]]}],
      "stats":{}}}"#;
    let streams = parse_query_range(body).unwrap();
    assert_eq!(streams[0].labels[1], ("pod".into(), "loki-0".into()));
    assert_eq!(
        streams[0].entries,
        [
            (1_771_470_247_000_000_000, "one".to_string()),
            (1_771_470_248_000_000_000, "two".to_string())
        ]
    );
    let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    assert!(
        parse_query_range(matrix)
            .unwrap_err()
            .contains("not a log query")
    );
    assert!(
        parse_query_range(b"<html>")
            .unwrap_err()
            .contains("not a query_range response")
    );
}

fn stream(pod: &str, entries: &[(i64, &str)]) -> Pushed {
    Pushed {
        labels: vec![("pod".into(), pod.into())],
        entries: entries.iter().map(|(t, l)| (*t, l.to_string())).collect(),
    }
}

fn lines(batches: &[Batch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            String::from_utf8(b.lines.clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn pages_that_start_at_the_newest_timestamp_repeat_nothing() {
    let mut reader = Reader::new(0, 0);
    // Page 1 ends with two entries at t=20 (one from each stream)…
    let first = fresh(
        &mut reader,
        vec![
            stream("a", &[(10, "a1"), (20, "a2")]),
            stream("b", &[(20, "b1")]),
        ],
        &Marks::default(),
        false,
    );
    assert_eq!(lines(&first).len(), 3);
    assert_eq!(reader.window.newest(), 20);
    // …page 2 starts at t=20 (inclusive) and repeats them, plus a third.
    let second = fresh(
        &mut reader,
        vec![
            stream("a", &[(20, "a2"), (30, "a3")]),
            stream("b", &[(20, "b1"), (20, "b2")]),
        ],
        &Marks::default(),
        false,
    );
    let second = lines(&second);
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(second[0].ends_with(" a3") || second[1].ends_with(" a3"));
    assert!(second.iter().any(|l| l.ends_with(" b2")));
    assert_eq!(reader.window.newest(), 30);
}

#[test]
fn entries_another_road_passed_on_are_not_repeated() {
    let mut reader = Reader::new(0, 0);
    let marks = Marks::default();
    let labels: Vec<(String, String)> = [("container", "db"), ("namespace", "n"), ("pod", "p")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let container = Marks::key(&labels).unwrap();
    // The Kubernetes API brought the container's entries up to t=20.
    assert!(marks.admit(&container, 10, "one"));
    assert!(marks.admit(&container, 20, "two"));
    // Loki, healthy again, returns them and a newer one, out of order.
    let pushed = Pushed {
        labels,
        entries: vec![(30, "three".into()), (10, "one".into()), (20, "two".into())],
    };
    let got = lines(&fresh(&mut reader, vec![pushed], &marks, false));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].ends_with(" three"));
    assert_eq!(marks.resume_from(&container), Some(30));
}

#[test]
fn credentials_never_print() {
    let auth = Auth::Bearer("s3cr3t-token".into());
    assert!(!format!("{auth:?}").contains("s3cr3t"));
    let auth = Auth::Basic {
        user: "faultline".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{auth:?}").contains("hunter2"));
}

#[test]
fn tail_frames_parse_with_their_dropped_entries() {
    let frame =
        br#"{"streams":[{"stream":{"pod":"loki-0"},"values":[["1771470247000000000","one"]]}],
        "dropped_entries":[{"labels":{"pod":"x"},"timestamp":"1771470246000000000"}]}"#;
    let (streams, dropped) = parse_tail_frame(frame).unwrap();
    assert_eq!(
        streams[0].entries,
        [(1_771_470_247_000_000_000, "one".to_string())]
    );
    assert_eq!(dropped, [1_771_470_246_000_000_000]);
    let quiet = br#"{"streams":[],"dropped_entries":null}"#;
    assert!(parse_tail_frame(quiet).unwrap().1.is_empty());
    assert!(
        parse_tail_frame(br#"{"streams":[{"values":[[1,"x"]]}]}"#)
            .unwrap_err()
            .contains("without a timestamp string")
    );
}

#[test]
fn a_containers_stdout_and_stderr_streams_are_both_passed_on() {
    let mut reader = Reader::new(0, 0);
    let marks = Marks::default();
    let labels = |stream: &str| -> Vec<(String, String)> {
        [
            ("container", "db"),
            ("namespace", "n"),
            ("pod", "p"),
            ("stream", stream),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    // stdout's newest entry is later than stderr's: stderr is not old.
    let stdout = Pushed {
        labels: labels("stdout"),
        entries: vec![(10, "out 1".into()), (100, "out 2".into())],
    };
    let stderr = Pushed {
        labels: labels("stderr"),
        entries: vec![(50, "err 1".into())],
    };
    let got = lines(&fresh(&mut reader, vec![stdout, stderr], &marks, false));
    assert_eq!(got.len(), 3, "{got:?}");
}

#[test]
fn each_pass_reads_the_window_again_and_passes_late_entries_on_once() {
    let mut reader = Reader::new(15, 0);
    let first = fresh(
        &mut reader,
        vec![stream("a", &[(10, "a1")]), stream("b", &[(20, "b1")])],
        &Marks::default(),
        false,
    );
    assert_eq!(lines(&first).len(), 2);
    // The next pass starts 15 before the newest entry…
    assert_eq!(reader.window.floor(), 5);
    // …and brings what it brought before, and an entry of stream c that
    // reached Loki after b1 although it is older.
    let second = fresh(
        &mut reader,
        vec![
            stream("a", &[(10, "a1")]),
            stream("b", &[(20, "b1")]),
            stream("c", &[(12, "c1")]),
        ],
        &Marks::default(),
        false,
    );
    let second = lines(&second);
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(second[0].ends_with(" c1"));
    // The same line in another stream is another entry.
    let other = fresh(
        &mut reader,
        vec![stream("d", &[(12, "c1")])],
        &Marks::default(),
        false,
    );
    assert_eq!(lines(&other).len(), 1);
}

#[test]
fn the_tail_passes_on_entries_later_than_the_window_and_counts_them() {
    let mut reader = Reader::new(15, 0);
    fresh(
        &mut reader,
        vec![stream("a", &[(100, "a1")])],
        &Marks::default(),
        true,
    );
    let late = fresh(
        &mut reader,
        vec![stream("b", &[(50, "b1"), (90, "b2")])],
        &Marks::default(),
        true,
    );
    assert_eq!(lines(&late).len(), 2, "nothing is lost");
    assert_eq!(late[0].late, 1, "b1 came later than the window");
}
