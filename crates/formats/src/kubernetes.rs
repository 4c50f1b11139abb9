//! Kubernetes API documents found among logs: `kubectl get events -o json`
//! becomes a stream of dated records; any other object list (an inventory
//! snapshot) is recognised so it is not matched as if it were a log.

use serde_json::{Map, Value, json};

/// What a JSON document from the Kubernetes API is, for replay.
#[derive(Debug, PartialEq)]
pub enum Document {
    /// Events, one JSON line each: `ts`, `namespace`, `pod` (when the
    /// event is about a pod), `kind`, `object`, `type`, `reason`, `count`,
    /// `source` and `msg`, oldest first.
    Events(Vec<u8>),
    /// Objects that are not events (pods, PVCs, nodes …): not a log.
    Objects {
        /// The kinds found, sorted, e.g. `["Node", "Pod"]`.
        kinds: Vec<String>,
    },
}

/// Whether `head` (the start of a file) looks like a pretty-printed
/// Kubernetes API document rather than a log.
pub fn looks_like_document(head: &[u8]) -> bool {
    let text = head.trim_ascii_start();
    text.starts_with(b"{")
        && memchr::memchr(b'\n', text).is_some_and(|end| text[..end].trim_ascii_end() == b"{")
        && memchr::memmem::find(head, b"\"apiVersion\"").is_some()
}

/// Reads a Kubernetes API document: a single object or a `…List` of them.
/// `None` when `bytes` is not such a document.
pub fn document(bytes: &[u8]) -> Option<Document> {
    let Value::Object(root) = serde_json::from_slice::<Value>(bytes).ok()? else {
        return None;
    };
    let items: Vec<Map<String, Value>> = match root.get("items") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_object().cloned())
            .collect(),
        _ => vec![root.clone()],
    };
    let kind_of =
        |item: &Map<String, Value>| item.get("kind").and_then(Value::as_str).map(str::to_string);
    let list_kind = root.get("kind").and_then(Value::as_str).unwrap_or_default();
    let all_events = !items.is_empty()
        && items
            .iter()
            .all(|i| kind_of(i).map_or(list_kind == "EventList", |k| k == "Event"));
    if !all_events {
        let mut kinds: Vec<String> = items.iter().filter_map(kind_of).collect();
        kinds.sort();
        kinds.dedup();
        return root
            .contains_key("apiVersion")
            .then_some(Document::Objects { kinds });
    }
    let records: Vec<(String, Value)> = items.iter().map(event_record).collect();
    Some(Document::Events(crate::json_lines(records)))
}

fn text<'a>(map: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut node = map;
    for key in parents {
        node = node.get(*key)?.as_object()?;
    }
    node.get(*last)?.as_str().filter(|s| !s.is_empty())
}

/// (sort key, record) of one core/v1 or events.k8s.io/v1 Event. The time
/// is the newest observation's: `lastTimestamp` (core/v1),
/// `series.lastObservedTime` or `deprecatedLastTimestamp`
/// (events.k8s.io/v1), else when it was first seen.
pub fn event_record(event: &Map<String, Value>) -> (String, Value) {
    let object = event
        .get("involvedObject")
        .or_else(|| event.get("regarding"))
        .and_then(Value::as_object);
    let about = |key: &str| {
        object
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let ts = text(event, &["lastTimestamp"])
        .or_else(|| text(event, &["series", "lastObservedTime"]))
        .or_else(|| text(event, &["deprecatedLastTimestamp"]))
        .or_else(|| {
            ["eventTime", "firstTimestamp", "deprecatedFirstTimestamp"]
                .iter()
                .find_map(|k| text(event, &[k]))
        })
        .or_else(|| text(event, &["metadata", "creationTimestamp"]))
        .unwrap_or_default()
        .to_string();
    let mut record = json!({
        "ts": ts,
        "namespace": about("namespace"),
        "kind": about("kind"),
        "object": about("name"),
        "type": text(event, &["type"]).unwrap_or_default(),
        "reason": text(event, &["reason"]).unwrap_or_default(),
        "count": event
            .get("count")
            .or_else(|| event.get("series").and_then(|s| s.get("count")))
            .or_else(|| event.get("deprecatedCount"))
            .cloned()
            .unwrap_or(Value::Null),
        "source": text(event, &["source", "component"]).or_else(|| text(event, &["reportingController"])).unwrap_or_default(),
        "msg": text(event, &["message"]).or_else(|| text(event, &["note"])).unwrap_or_default(),
    });
    if about("kind") == "Pod"
        && let Some(map) = record.as_object_mut()
    {
        map.insert("pod".into(), Value::String(about("name").to_string()));
    }
    let host = text(event, &["source", "host"])
        .or_else(|| text(event, &["deprecatedSource", "host"]))
        .or_else(|| {
            // The kubelet reports as itself on its node.
            (text(event, &["reportingController"]) == Some("kubelet"))
                .then(|| text(event, &["reportingInstance"]))
                .flatten()
        });
    if let Some(host) = host
        && let Some(map) = record.as_object_mut()
    {
        map.insert("node".into(), Value::String(host.to_string()));
    }
    (ts, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &str = r#"{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "count": 2334,
            "firstTimestamp": "2026-02-19T04:00:00Z",
            "involvedObject": {"kind": "Pod", "name": "promtail-cqcqm", "namespace": "monitoring"},
            "kind": "Event",
            "lastTimestamp": "2026-02-27T23:59:00Z",
            "message": "Readiness probe failed: HTTP probe failed with statuscode: 500",
            "metadata": {"name": "promtail-cqcqm.17f", "namespace": "monitoring"},
            "reason": "Unhealthy",
            "source": {"component": "kubelet", "host": "talos-519-vmy"},
            "type": "Warning"
        },
        {
            "apiVersion": "events.k8s.io/v1",
            "deprecatedCount": 40,
            "eventTime": "2026-02-25T10:06:00.000000Z",
            "kind": "Event",
            "note": "Container immich-machine-learning failed liveness probe, will be restarted",
            "reason": "Killing",
            "regarding": {"kind": "Pod", "name": "immich-machine-learning-7d9f-abcde", "namespace": "immich-prod"},
            "reportingController": "kubelet",
            "type": "Normal"
        }
    ],
    "kind": "List",
    "metadata": {"resourceVersion": ""}
}"#;

    #[test]
    fn events_become_dated_json_records_oldest_first() {
        assert!(looks_like_document(EVENTS.as_bytes()));
        let Some(Document::Events(lines)) = document(EVENTS.as_bytes()) else {
            panic!("an event list")
        };
        let lines: Vec<Value> = String::from_utf8(lines)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["ts"], "2026-02-25T10:06:00.000000Z");
        assert_eq!(lines[0]["pod"], "immich-machine-learning-7d9f-abcde");
        assert_eq!(lines[0]["namespace"], "immich-prod");
        assert_eq!(lines[0]["count"], 40);
        assert_eq!(
            lines[0]["msg"],
            "Container immich-machine-learning failed liveness probe, will be restarted"
        );
        assert_eq!(lines[1]["reason"], "Unhealthy");
        assert_eq!(lines[1]["node"], "talos-519-vmy");
        assert_eq!(lines[1]["count"], 2334);
    }

    #[test]
    fn an_inventory_is_recognised_as_not_a_log() {
        let inventory = r#"{
    "apiVersion": "v1",
    "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}},
              {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "y"}}],
    "kind": "List"
}"#;
        assert!(looks_like_document(inventory.as_bytes()));
        assert_eq!(
            document(inventory.as_bytes()),
            Some(Document::Objects {
                kinds: vec!["PersistentVolumeClaim".into(), "Pod".into()]
            })
        );
        assert!(!looks_like_document(
            br#"{"level":"info","msg":"a JSON log line"}"#
        ));
        assert_eq!(document(b"{not json"), None);
    }
}

/// Whether `head` (the start of a file) is the table `kubectl get events`
/// prints (with or without `-A`'s NAMESPACE column).
pub fn looks_like_events_table(head: &[u8]) -> bool {
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let words: Vec<&[u8]> = first
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .collect();
    let start = usize::from(words.first() == Some(&&b"NAMESPACE"[..]));
    words.get(start..start + 6)
        == Some(
            &[
                &b"LAST"[..],
                b"SEEN",
                b"TYPE",
                b"REASON",
                b"OBJECT",
                b"MESSAGE",
            ][..],
        )
}

/// `3m`, `2d4h`, `45s`, `90m` → seconds.
fn age_seconds(age: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut number = String::new();
    for c in age.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'y' => 365 * 86_400,
            _ => return None,
        };
    }
    number.is_empty().then_some(total)
}

/// The rows of a `kubectl get events` table as JSON records (the shape
/// [`document`] gives events), oldest first. The table only says how long
/// ago each event was last seen, so `now_ns` — when the table was printed
/// (the file's modification time) — dates them. A row whose age cannot be
/// read keeps `ts` empty. `None` when `text` is not such a table.
pub fn events_table(text: &str, now_ns: Option<i64>) -> Option<Vec<u8>> {
    let mut lines = text.lines();
    let header = lines.next()?;
    if !looks_like_events_table(header.as_bytes()) {
        return None;
    }
    // Columns start where the header's words start.
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header.as_bytes()[i - 1] == b' '))
        .map(|(i, _)| i)
        .collect();
    let with_namespace = header.starts_with("NAMESPACE");
    // "LAST SEEN" is one column of two words.
    let mut columns: Vec<usize> = starts.clone();
    let seen = usize::from(with_namespace);
    columns.remove(seen + 1);
    let mut records = Vec::new();
    for row in lines.filter(|l| !l.trim().is_empty()) {
        let cell = |k: usize| {
            let from = (*columns.get(k)?).min(row.len());
            let to = columns.get(k + 1).map_or(row.len(), |&t| t.min(row.len()));
            row.get(from..to).map(str::trim)
        };
        let namespace = if with_namespace { cell(0) } else { None };
        let (age, kind, reason, object, message) = (
            cell(seen)?,
            cell(seen + 1)?,
            cell(seen + 2)?,
            cell(seen + 3)?,
            row.get(columns[seen + 4].min(row.len())..)?.trim(),
        );
        let ts = match (now_ns, age_seconds(age)) {
            (Some(now), Some(ago)) => {
                jiff::Timestamp::from_nanosecond(i128::from(now - ago * 1_000_000_000))
                    .map(|t| format!("{t:.0}"))
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        let (object_kind, name) = object.split_once('/').unwrap_or(("", object));
        let mut record = json!({
            "ts": ts, "type": kind, "reason": reason, "kind": object_kind, "object": name, "msg": message,
        });
        if let Some(map) = record.as_object_mut() {
            if let Some(ns) = namespace {
                map.insert("namespace".into(), Value::String(ns.to_string()));
            }
            if object_kind == "pod" {
                map.insert("pod".into(), Value::String(name.to_string()));
            }
        }
        records.push((ts, record));
    }
    Some(crate::json_lines(records))
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn table_rows_become_records_dated_from_when_the_table_was_printed() {
        let table = "\
NAMESPACE      LAST SEEN   TYPE      REASON      OBJECT                                           MESSAGE
immich-prod    3m          Warning   Unhealthy   pod/immich-machine-learning-7d4b9c6f58-6rtdn     Liveness probe failed: Get \"http://10.244.1.5:3003/ping\": context deadline exceeded
monitoring     2d4h        Warning   BackOff     pod/promtail-cqcqm                               Back-off restarting failed container promtail in pod promtail-cqcqm_monitoring(1)
";
        assert!(looks_like_events_table(table.as_bytes()));
        let now = 1_772_236_800_000_000_000; // 2026-02-28T00:00:00Z
        let lines = String::from_utf8(events_table(table, Some(now)).unwrap()).unwrap();
        let records: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records[0]["ts"], "2026-02-25T20:00:00Z");
        assert_eq!(records[0]["pod"], "promtail-cqcqm");
        assert_eq!(records[1]["namespace"], "immich-prod");
        assert_eq!(records[1]["reason"], "Unhealthy");
        assert!(
            records[1]["msg"]
                .as_str()
                .unwrap()
                .starts_with("Liveness probe failed: Get")
        );
        assert_eq!(age_seconds("2d4h"), Some(187_200));
        assert_eq!(age_seconds("<unknown>"), None);
        assert!(!looks_like_events_table(b"LAST SEEN like a sentence"));
    }
}
