//! Labels of a record: from where its file sits, and from the line itself.

use std::collections::BTreeMap;
use std::path::Path;

use std::sync::LazyLock;

use regex::bytes::Regex;
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
///   an Event's `involvedObject` / `regarding` pod, and top-level
///   `namespace`, `node`, `container`/`containerName`;
/// * in any format, the pod a kubelet or container runtime line names:
///   klog's `pod="ns/name"`, `podUID="…"` and `containerName="…"`, the
///   older `"name_namespace(uid)"` form, and containerd's
///   `PodSandboxMetadata{Name:…,Uid:…,Namespace:…}`.
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
        crate::Format::Klog => {}
        _ => {
            if let Some(start) = memchr::memchr(b'{', line)
                && let Some(Value::Object(map)) =
                    serde_json::from_slice::<Value>(&line[start..]).ok()
            {
                json_labels(&map, &mut labels);
            }
        }
    }
    if !labels.contains_key("pod") {
        named_pod(line, &mut labels);
    }
    labels
}

/// The pod a kubelet or container runtime line names, in any of the forms
/// they print it.
fn named_pod(line: &[u8], labels: &mut Labels) {
    if let Some(pod) = klog_value(line, b" pod=\"") {
        insert_pod(labels, &pod);
        if let Some(uid) = klog_value(line, b" podUID=\"") {
            labels.insert("pod_uid".into(), uid);
        }
        if let Some(container) = klog_value(line, b" containerName=\"") {
            labels.insert("container".into(), container);
        }
    } else if let Some(caps) = POD_NAME_NAMESPACE_UID.captures(line) {
        for (name, index) in [("pod", 1), ("namespace", 2), ("pod_uid", 3)] {
            labels.insert(
                name.into(),
                String::from_utf8_lossy(&caps[index]).into_owned(),
            );
        }
        if let Some(container) = caps.get(4) {
            labels.insert(
                "container".into(),
                String::from_utf8_lossy(container.as_bytes()).into_owned(),
            );
        }
    } else if let Some(caps) = SANDBOX_METADATA.captures(line) {
        for (name, index) in [("pod", 1), ("pod_uid", 2), ("namespace", 3)] {
            labels.insert(
                name.into(),
                String::from_utf8_lossy(&caps[index]).into_owned(),
            );
        }
    }
}

/// The kubelet's older pod naming, `"<name>_<namespace>(<uid>)"`, with the
/// container after a `:` in probe messages.
static POD_NAME_NAMESPACE_UID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"\b([a-z0-9][a-z0-9.-]*)_([a-z0-9][a-z0-9-]*)\(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)(?::([a-z0-9][a-z0-9-]*))?"#,
    )
    .expect("a valid built-in regex")
});

/// containerd's CRI plugin: `PodSandboxMetadata{Name:…,Uid:…,Namespace:…`.
static SANDBOX_METADATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"PodSandboxMetadata\{Name:([^,}]+),Uid:([^,}]+),Namespace:([^,}]+)")
        .expect("a valid built-in regex")
});

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
    // An Event (core/v1 or events.k8s.io/v1) is about its object.
    for key in ["involvedObject", "regarding"] {
        if let Some(Value::Object(object)) = map.get(key)
            && object.get("kind").and_then(Value::as_str) == Some("Pod")
        {
            for (field, label) in [
                ("name", "pod"),
                ("namespace", "namespace"),
                ("uid", "pod_uid"),
            ] {
                if let Some(Value::String(value)) = object.get(field) {
                    labels.insert(label.into(), value.clone());
                }
            }
        }
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

    #[test]
    fn kubelet_and_runtime_lines_name_their_pod_in_any_wrapping() {
        let klog = br#"I0312 10:00:00.123456    1234 prober.go:107] "Probe failed" probeType="Liveness" pod="media/immich-ml-7d4b9c6f58-6rtdn" podUID="0b7c" containerName="ml" probeResult="failure""#;
        let want = labels(&[
            ("namespace", "media"),
            ("pod", "immich-ml-7d4b9c6f58-6rtdn"),
            ("pod_uid", "0b7c"),
            ("container", "ml"),
        ]);
        assert_eq!(line_labels(Format::Klog, klog), want);
        let journald = [b"Mar 12 10:00:00 node-3 kubelet[1846]: ".as_slice(), klog].concat();
        let mut with_node = want.clone();
        with_node.insert("node".into(), "node-3".into());
        assert_eq!(line_labels(Format::Syslog, &journald), with_node);
        let old = br#"I0601 08:00:00.000000    2291 prober.go:106] Liveness probe for "web-5d8f9_shop(3f2a9c1e-1b2c-4d5e-8f90-123456789abc):nginx" failed (failure): HTTP probe failed with statuscode: 500"#;
        assert_eq!(
            line_labels(Format::Klog, old),
            labels(&[
                ("namespace", "shop"),
                ("pod", "web-5d8f9"),
                ("pod_uid", "3f2a9c1e-1b2c-4d5e-8f90-123456789abc"),
                ("container", "nginx"),
            ])
        );
        let containerd = br#"time="2024-05-01T10:00:00Z" level=error msg="RunPodSandbox for &PodSandboxMetadata{Name:pg-1,Uid:9d1e,Namespace:db,Attempt:0,} failed""#;
        assert_eq!(
            line_labels(Format::Logfmt, containerd),
            labels(&[("namespace", "db"), ("pod", "pg-1"), ("pod_uid", "9d1e")])
        );
        let event = br#"{"kind":"Event","reason":"Unhealthy","involvedObject":{"kind":"Pod","namespace":"db","name":"pg-2","uid":"u-2"},"message":"Liveness probe failed"}"#;
        assert_eq!(
            line_labels(Format::Json, event),
            labels(&[("namespace", "db"), ("pod", "pg-2"), ("pod_uid", "u-2")])
        );
    }
}
