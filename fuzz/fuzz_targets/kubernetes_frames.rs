//! What the Kubernetes API sends: watch event lines (pods and
//! events.k8s.io Events, as the watcher decodes them), an Event turned
//! into faultline's record, and timestamped pod log lines.
#![no_main]

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::core::WatchEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let _ = serde_json::from_slice::<WatchEvent<Pod>>(line);
        if let Ok(WatchEvent::Added(event) | WatchEvent::Modified(event)) =
            serde_json::from_slice::<WatchEvent<Event>>(line)
            && let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&event)
        {
            let _ = faultline_formats::kubernetes::event_record(&map);
        }
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(line) {
            let _ = faultline_formats::kubernetes::event_record(&map);
        }
        let _ = faultline_kubernetes::log_entry(line);
    }
    let _ = faultline_formats::kubernetes::document(data);
});
