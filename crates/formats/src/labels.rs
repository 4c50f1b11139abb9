//! Labels of a record: from where its file sits, and from the line itself.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Label name → value, sorted by name (namespace, pod, container, node, …).
pub type Labels = BTreeMap<String, String>;

/// Labels implied by a file's path:
///
/// * `…/pods/<namespace>_<pod>_<uid>/<container>/<n>.log[.<date>][.gz]`
///   (the kubelet's layout): `namespace`, `pod`, `pod_uid`, `container`;
/// * `…/containers/<pod>_<namespace>_<container>-<id>.log`: `namespace`,
///   `pod`, `container`;
/// * a `node/<name>/` or `nodes/<name>/` directory: `node`.
pub fn path_labels(path: &Path) -> Labels {
    let mut labels = Labels::new();
    let parts: Vec<&str> = path.iter().filter_map(|p| p.to_str()).collect();
    for (i, part) in parts.iter().enumerate() {
        let next = parts.get(i + 1).copied();
        match *part {
            "pods" => {
                if let (Some(dir), Some(container), true) =
                    (next, parts.get(i + 2), i + 3 < parts.len())
                {
                    let fields: Vec<&str> = dir.splitn(3, '_').collect();
                    if let [namespace, pod, uid] = fields[..] {
                        labels.insert("namespace".into(), namespace.into());
                        labels.insert("pod".into(), pod.into());
                        labels.insert("pod_uid".into(), uid.into());
                        labels.insert("container".into(), (*container).into());
                    }
                }
            }
            "containers" => {
                if let Some(file) = next.and_then(|f| f.strip_suffix(".log")) {
                    let fields: Vec<&str> = file.splitn(3, '_').collect();
                    if let [pod, namespace, rest] = fields[..] {
                        let container = rest.rsplit_once('-').map_or(rest, |(c, _)| c);
                        labels.insert("namespace".into(), namespace.into());
                        labels.insert("pod".into(), pod.into());
                        labels.insert("container".into(), container.into());
                    }
                }
            }
            "node" | "nodes" if i + 2 < parts.len() => {
                if let Some(name) = next {
                    labels.insert("node".into(), name.into());
                }
            }
            _ => {}
        }
    }
    labels
}

/// Labels a line carries itself. Only called for matched lines.
///
/// * syslog: the host (`node`);
/// * JSON (a whole line, or the JSON a CRI line carries): CloudNativePG's
///   `logging_pod`, kubelet's `pod` (`{"name","namespace"}` or `ns/name`),
///   and top-level `namespace`, `node`, `container`/`containerName`;
/// * klog text: kubelet's `pod="ns/name"` and `containerName="…"`.
pub fn line_labels(format: crate::Format, line: &[u8]) -> Labels {
    let mut labels = Labels::new();
    match format {
        crate::Format::Syslog => {
            let text = String::from_utf8_lossy(line);
            let mut words = text.split_whitespace();
            let host = if text.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                words.nth(1)
            } else {
                words.nth(3)
            };
            if let Some(host) = host {
                labels.insert("node".into(), host.into());
            }
        }
        crate::Format::Klog => {
            if let Some(pod) = klog_value(line, b" pod=\"") {
                insert_pod(&mut labels, &pod);
            }
            if let Some(container) = klog_value(line, b" containerName=\"") {
                labels.insert("container".into(), container);
            }
        }
        _ => {
            if let Some(start) = memchr::memchr(b'{', line)
                && let Some(Value::Object(map)) =
                    serde_json::from_slice::<Value>(&line[start..]).ok()
            {
                json_labels(&map, &mut labels);
            }
        }
    }
    labels
}

fn json_labels(map: &serde_json::Map<String, Value>, labels: &mut Labels) {
    // logcli `--output=jsonl` and Loki API records carry the stream's
    // labels in `labels`.
    if let Some(Value::Object(stream)) = map.get("labels") {
        for (key, label) in [
            ("namespace", "namespace"),
            ("pod", "pod"),
            ("container", "container"),
            ("node_name", "node"),
            ("node", "node"),
        ] {
            if let Some(Value::String(value)) = stream.get(key) {
                labels.insert(label.into(), value.clone());
            }
        }
    }
    if let Some(Value::String(host)) = map.get("_HOSTNAME") {
        labels.entry("node".into()).or_insert_with(|| host.clone());
    }
    match map.get("pod") {
        Some(Value::String(pod)) => insert_pod(labels, pod),
        Some(Value::Object(pod)) => {
            if let Some(Value::String(name)) = pod.get("name") {
                labels.insert("pod".into(), name.clone());
            }
            if let Some(Value::String(namespace)) = pod.get("namespace") {
                labels.insert("namespace".into(), namespace.clone());
            }
        }
        _ => {}
    }
    if let Some(Value::String(pod)) = map.get("logging_pod") {
        labels.entry("pod".into()).or_insert_with(|| pod.clone());
    }
    for (key, label) in [
        ("namespace", "namespace"),
        ("node", "node"),
        ("container", "container"),
        ("containerName", "container"),
    ] {
        if let Some(Value::String(value)) = map.get(key) {
            labels.entry(label.into()).or_insert_with(|| value.clone());
        }
    }
}

/// `pod` as `namespace/name` or a bare name.
fn insert_pod(labels: &mut Labels, pod: &str) {
    match pod.split_once('/') {
        Some((namespace, name)) => {
            labels.insert("namespace".into(), namespace.into());
            labels.insert("pod".into(), name.into());
        }
        None => {
            labels.insert("pod".into(), pod.into());
        }
    }
}

/// The quoted value after `key` (which ends with the opening quote).
fn klog_value(line: &[u8], key: &[u8]) -> Option<String> {
    let start = memchr::memmem::find(line, key)? + key.len();
    let len = memchr::memchr(b'"', &line[start..])?;
    Some(String::from_utf8_lossy(&line[start..start + len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kubelet_pod_log_paths_give_namespace_pod_and_container() {
        let path = Path::new(
            "/var/log/pods/vitals-prod_vitals-db-production-cnpg-v1-1_0b7c-11/postgres/3.log.20260219-030405.gz",
        );
        assert_eq!(
            path_labels(path),
            labels(&[
                ("namespace", "vitals-prod"),
                ("pod", "vitals-db-production-cnpg-v1-1"),
                ("pod_uid", "0b7c-11"),
                ("container", "postgres")
            ])
        );
        let link = Path::new("/var/log/containers/loki-0_monitoring_loki-4f1e9a.log");
        assert_eq!(
            path_labels(link),
            labels(&[
                ("namespace", "monitoring"),
                ("pod", "loki-0"),
                ("container", "loki")
            ])
        );
        assert_eq!(
            path_labels(Path::new("archive/node/talos-519-vmy/dmesg.log")),
            labels(&[("node", "talos-519-vmy")])
        );
        assert_eq!(path_labels(Path::new("some/file.log")), Labels::new());
    }

    #[test]
    fn lines_name_their_host_or_pod() {
        let syslog =
            b"Feb 20 13:47:05 dev-r7515-c kernel: EXT4-fs (sdk): Remounting filesystem read-only";
        assert_eq!(
            line_labels(Format::Syslog, syslog),
            labels(&[("node", "dev-r7515-c")])
        );
        let rfc = b"2024-09-26T11:32:52.301738+00:00 ubuntu kernel: x";
        assert_eq!(
            line_labels(Format::Syslog, rfc),
            labels(&[("node", "ubuntu")])
        );
        let cnpg = br#"2026-02-19T03:04:05Z stderr F {"level":"info","logging_pod":"vitals-db-production-cnpg-v1-2","msg":"record"}"#;
        assert_eq!(
            line_labels(Format::Cri, cnpg),
            labels(&[("pod", "vitals-db-production-cnpg-v1-2")])
        );
    }
}
