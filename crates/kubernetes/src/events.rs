//! Events (`events.k8s.io/v1`) as a stream of records.
//!
//! Each new observation of an Event — a new Event, or one whose series
//! counted again — is one JSON record, in the shape replay gives
//! `kubectl get events -o json` (docs/output.md): `ts`, `namespace`,
//! `pod`, `kind`, `object`, `type`, `reason`, `count`, `source`, `node`,
//! `msg`. Events from before the start are not reported.

use std::collections::HashMap;
use std::sync::Arc;

use faultline_sources::{Batch, Stream};
use futures_util::StreamExt;
use k8s_openapi::api::events::v1::Event;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::Outputs;
use crate::objects::{Relist, Seen, watch_objects};

/// Sends the events of `api` observed from `since_ns` on, until `stop`.
pub(crate) async fn follow(
    api: kube::Api<Event>,
    since_ns: i64,
    outputs: Outputs,
    mut stop: watch::Receiver<bool>,
) {
    let stream = Arc::new(Stream {
        source: crate::SOURCE,
        origin: "kubernetes/events".to_string(),
        path: None,
        labels: Vec::new(),
    });
    let events = watch_objects(api, watcher::Config::default(), outputs.errors.clone());
    let mut events = std::pin::pin!(events);
    let mut relist = Relist::new();
    // Event UID → the newest observation reported.
    let mut reported: HashMap<String, i64> = HashMap::new();
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = crate::stopped(&mut stop) => None,
        };
        let Some(event) = event else { return };
        let mut lines = Vec::new();
        for seen in relist.step(event) {
            match seen {
                Seen::Applied(event) => {
                    let Some((uid, ts, record)) = record(&event) else {
                        continue;
                    };
                    if ts < since_ns || reported.get(&uid).is_some_and(|&last| last >= ts) {
                        continue;
                    }
                    reported.insert(uid, ts);
                    lines.extend_from_slice(record.as_bytes());
                    lines.push(b'\n');
                }
                Seen::Deleted(event) => {
                    if let Some(uid) = &event.metadata.uid {
                        reported.remove(uid);
                    }
                }
            }
        }
        if lines.is_empty() {
            continue;
        }
        let batch = Batch {
            stream: stream.clone(),
            lines,
            checkpoint: None,
            truncated: false,
            late: 0,
        };
        if outputs.batches.send(batch).await.is_err() {
            return;
        }
    }
}

/// (UID, time of the observation, JSON record) of an Event.
fn record(event: &Event) -> Option<(String, i64, String)> {
    let json = serde_json::to_value(event).ok()?;
    let record = faultline_formats::kubernetes::event_record(json.as_object()?).1;
    let ts = crate::nanos(record.get("ts")?.as_str()?)?;
    let uid = event.metadata.uid.clone().or_else(|| {
        Some(format!(
            "{}/{}",
            event.metadata.namespace.as_deref().unwrap_or_default(),
            event.metadata.name.as_deref()?
        ))
    })?;
    Some((uid, ts, record.to_string()))
}
