//! faultline's knowledge of log line formats.
//!
//! The matcher looks at raw bytes and never needs a line decoded to decide
//! whether it is a failure. What it cannot know from bytes alone is *when*
//! a line was written and *who* wrote it. This crate answers those two
//! questions, for the few lines that matched:
//!
//! * [`Format::detect`] recognises a file's format from its first lines;
//! * [`Decoder::timestamp`] reads a line's time as UTC nanoseconds;
//! * [`path_labels`] reads namespace, pod, container and node from where a
//!   file sits (the kubelet's `/var/log/pods` layout and friends);
//! * [`line_labels`] reads the few labels a line carries itself (a syslog
//!   host, CloudNativePG's `logging_pod`, kubelet's `pod`);
//! * [`LineView`] reads one line on its own terms when it is not in its
//!   file's format (a kernel line in a CRI file, `kubectl logs --prefix`);
//! * [`kubernetes::document`] turns `kubectl get events -o json` into
//!   dated records and recognises other API object lists as not logs;
//! * [`loki::response`] turns a saved Loki `query_range` response into
//!   records in logcli's `jsonl` shape.
//!
//! Lines without a time of their own inherit the previous line's time; the
//! caller does that, because it knows what "previous" means for its input.

mod detect;
pub mod kubernetes;
mod labels;
pub mod loki;
mod time;
mod view;

pub use detect::{Format, strip_node_prefix};
pub use labels::{Labels, line_labels, path_labels};
pub use time::{Decoder, parse_rfc3339};
pub use view::LineView;

/// `records` as JSON lines, ordered by their keys (a stable sort: equal
/// keys keep their order). Documents that are not line-based (event lists,
/// Loki responses, event tables) become such lines before matching.
pub(crate) fn json_lines<K: Ord>(mut records: Vec<(K, serde_json::Value)>) -> Vec<u8> {
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (_, record) in records {
        out.extend_from_slice(record.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}
