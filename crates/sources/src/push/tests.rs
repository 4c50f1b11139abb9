use super::*;

fn protobuf(request: &PushRequest) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(request);
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}

#[test]
fn labels_parse_as_prometheus_writes_them() {
    assert_eq!(
        parse_labels(r#"{namespace="monitoring", pod="loki-0",msg="say \"hi\"\n"}"#).unwrap(),
        [
            ("namespace".to_string(), "monitoring".to_string()),
            ("pod".to_string(), "loki-0".to_string()),
            ("msg".to_string(), "say \"hi\"\n".to_string()),
        ]
    );
    assert_eq!(parse_labels("{}").unwrap(), []);
    for bad in [
        "namespace=\"x\"",
        "{namespace=x}",
        "{namespace=\"x}",
        "{na-me=\"x\"}",
    ] {
        assert!(parse_labels(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_snappy_protobuf_push_decodes_into_streams() {
    let request = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{namespace="monitoring", pod="loki-0", container="loki"}"#.into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp {
                    seconds: 1_771_470_247,
                    nanos: 5,
                }),
                line: "level=error msg=\"write to WAL\" err=\"read-only file system\"".into(),
                structured_metadata: Vec::new(),
                parsed: Vec::new(),
            }],
            hash: 0,
        }],
        format: String::new(),
    };
    let pushed = decode_protobuf(&protobuf(&request)).unwrap();
    assert_eq!(pushed[0].labels[1], ("pod".into(), "loki-0".into()));
    assert_eq!(pushed[0].entries[0].0, 1_771_470_247_000_000_005);
    let err = decode_protobuf(b"not snappy at all").unwrap_err();
    assert!(err.contains("not snappy-compressed"), "{err}");
    let garbage = snap::raw::Encoder::new().compress_vec(&[0xff; 20]).unwrap();
    assert!(
        decode_protobuf(&garbage)
            .unwrap_err()
            .contains("not a protobuf PushRequest")
    );
}

#[test]
fn a_json_push_decodes_and_its_mistakes_are_named() {
    let body = br#"{"streams":[{"stream":{"job":"x","node_name":"n1"},"values":[["1771470247000000005","one"],["1771470248000000000","two",{"trace_id":"a"}]]}]}"#;
    let pushed = decode_json(body, false).unwrap();
    assert_eq!(
        pushed[0].entries,
        [
            (1_771_470_247_000_000_005, "one".to_string()),
            (1_771_470_248_000_000_000, "two".to_string())
        ]
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, body).unwrap();
    assert_eq!(decode_json(&gz.finish().unwrap(), true).unwrap(), pushed);

    let numeric = br#"{"streams":[{"stream":{},"values":[[1771470247000000005,"one"]]}]}"#;
    let err = decode_json(numeric, false).unwrap_err();
    assert!(
        err.contains("streams[0].values[0]: the timestamp must be a string"),
        "{err}"
    );
    assert!(
        decode_json(b"{", false)
            .unwrap_err()
            .contains("not a JSON push")
    );
}

#[test]
fn a_pushed_stream_becomes_dated_lines_with_its_labels_and_node() {
    let batch = labelled_batch(
        "push",
        Pushed {
            labels: vec![("node_name".into(), "talos-519-vmy".into())],
            entries: vec![(1_771_470_247_000_000_005, "first\nsecond\n".into())],
        },
    );
    assert_eq!(
        String::from_utf8(batch.lines).unwrap(),
        "2026-02-19T03:04:07.000000005Z first second\n"
    );
    assert!(
        batch
            .stream
            .labels
            .contains(&("node".to_string(), "talos-519-vmy".to_string()))
    );
    assert_eq!(
        batch.stream.origin,
        r#"push{node_name="talos-519-vmy",node="talos-519-vmy"}"#
    );
}
