//! Loki API responses saved to a file (`curl …/loki/api/v1/query_range`):
//! each entry of each stream becomes one record in logcli's `jsonl` shape.

use serde_json::{Value, json};

/// Whether `head` (the start of a file) is a Loki `streams` response.
pub fn looks_like_response(head: &[u8]) -> bool {
    let compact: Vec<u8> = head
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .take(200)
        .collect();
    memchr::memmem::find(&compact, br#""resultType":"streams""#).is_some()
        && memchr::memmem::find(&compact, br#""status":"#).is_some()
}

/// The entries of a `query_range` / `query` response with `resultType`
/// `streams`, as JSON lines `{"labels":{…},"line":"…","timestamp":"…"}`
/// sorted by time (ties keep response order). Entries may have a third
/// element (structured metadata); its keys join the labels. `None` when
/// `bytes` is not such a response.
pub fn response(bytes: &[u8]) -> Option<Vec<u8>> {
    let root: Value = serde_json::from_slice(bytes).ok()?;
    let result = root.get("data")?.get("result")?.as_array()?;
    let mut entries: Vec<(i64, Value)> = Vec::new();
    for stream in result {
        let labels = stream.get("stream").cloned().unwrap_or_else(|| json!({}));
        for value in stream.get("values")?.as_array()? {
            let ns: i64 = value.get(0)?.as_str()?.parse().ok()?;
            let line = value.get(1)?.as_str()?;
            let mut labels = labels.clone();
            if let (Some(Value::Object(extra)), Some(map)) = (value.get(2), labels.as_object_mut())
            {
                for group in extra.values().filter_map(Value::as_object) {
                    map.extend(group.clone());
                }
            }
            let ts = jiff::Timestamp::from_nanosecond(i128::from(ns)).ok()?;
            entries.push((
                ns,
                json!({"labels": labels, "line": line, "timestamp": format!("{ts:.9}")}),
            ));
        }
    }
    Some(crate::json_lines(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_time_ordered_records() {
        let body = br#"{"status":"success","data":{"resultType":"streams","result":[
          {"stream":{"namespace":"monitoring","pod":"loki-0"},"values":[["1772013600000000002","level=error msg=\"failed to flush\" err=\"write /var/loki/wal/00001449: read-only file system\""]]},
          {"stream":{"namespace":"monitoring","pod":"promtail-cqcqm"},"values":[["1772013600000000001","msg=x",{"structuredMetadata":{"node_name":"talos-519-vmy"}}]]}
        ],"stats":{}}}"#;
        assert!(looks_like_response(body));
        let lines = String::from_utf8(response(body).unwrap()).unwrap();
        let records: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records[0]["labels"]["pod"], "promtail-cqcqm");
        assert_eq!(records[0]["labels"]["node_name"], "talos-519-vmy");
        assert_eq!(records[0]["timestamp"], "2026-02-25T10:00:00.000000001Z");
        assert!(
            records[1]["line"]
                .as_str()
                .unwrap()
                .contains("read-only file system")
        );
        assert!(!looks_like_response(br#"{"level":"info"}"#));
        assert_eq!(response(b"{}"), None);
    }
}
