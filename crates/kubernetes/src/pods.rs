//! The pod watch: the inventory of pods, and which containers' logs are
//! read while streaming is on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::logs::{self, Container, Sink};
use crate::objects::{Relist, Seen, change, watch_objects};
use crate::{KubeConfig, Outputs};
use faultline_sources::overlap::ContainerKey;

/// A container whose log is being read.
struct Reading {
    /// The run being read (`status.containerID`).
    container_id: String,
    task: AbortHandle,
}

/// What the pod watch keeps.
struct Pods {
    client: kube::Client,
    config: KubeConfig,
    outputs: Outputs,
    turns: Arc<tokio::sync::Semaphore>,
    /// The pods as last seen, by (namespace, name).
    known: HashMap<(String, String), Pod>,
    reading: HashMap<ContainerKey, Reading>,
    /// (pod UID, container, restart count) whose dead run was read.
    previous_read: HashSet<(String, String, i32)>,
}

/// Watches pods until `stop`: sends their inventory changes, and reads
/// their containers' logs while `streaming` holds a start time.
pub(crate) async fn follow(
    api: kube::Api<Pod>,
    config: KubeConfig,
    outputs: Outputs,
    mut streaming: watch::Receiver<Option<i64>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &config.pod_selector {
        watch_config = watch_config.labels(selector);
    }
    let events = watch_objects(api.clone(), watch_config, outputs.errors.clone());
    let mut events = std::pin::pin!(events);
    let mut pods = Pods {
        client: api.clone().into_client(),
        turns: Arc::new(tokio::sync::Semaphore::new(config.max_streams.max(1))),
        config,
        outputs,
        known: HashMap::new(),
        reading: HashMap::new(),
        previous_read: HashSet::new(),
    };
    let mut relist = Relist::new();
    let mut since = *streaming.borrow_and_update();
    if pods.config.inventory_only {
        since = None;
    }
    let mut streaming_open = true;
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { break };
                for seen in relist.step(event) {
                    if let Some(change) = change(&seen)
                        && pods.outputs.inventory.send(change).await.is_err()
                    {
                        return;
                    }
                    match seen {
                        Seen::Applied(pod) => {
                            if let Some(since) = since {
                                pods.read(&pod, since);
                            }
                            pods.known.insert(key(&pod), pod);
                        }
                        Seen::Deleted(pod) => {
                            pods.known.remove(&key(&pod));
                            pods.stop_reading(|(ns, name, _)| {
                                Some(ns) == pod.metadata.namespace.as_ref()
                                    && Some(name) == pod.metadata.name.as_ref()
                            });
                        }
                    }
                }
            }
            changed = streaming.changed(), if streaming_open => {
                if changed.is_err() {
                    // Nobody switches it any more: it stays as it is.
                    streaming_open = false;
                    continue;
                }
                since = streaming.borrow_and_update().filter(|_| !pods.config.inventory_only);
                match since {
                    Some(since) => {
                        let known: Vec<Pod> = pods.known.values().cloned().collect();
                        for pod in &known {
                            pods.read(pod, since);
                        }
                    }
                    None => pods.stop_reading(|_| true),
                }
            }
            _ = crate::stopped(&mut stop) => break,
        }
    }
    pods.stop_reading(|_| true);
}

fn key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

impl Pods {
    /// Starts reading the selected running containers of `pod` that are
    /// not read yet, or whose run changed (a restart).
    fn read(&mut self, pod: &Pod, since: i64) {
        let (namespace, name) = key(pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for status in statuses.into_iter().flatten() {
            let labels = labels(pod, &namespace, &name, &status.name, node.as_deref());
            let selected = self.config.streams.as_ref().is_none_or(|selector| {
                selector.matches(&|label| {
                    labels
                        .iter()
                        .find(|(k, _)| k == label)
                        .map(|(_, v)| v.clone())
                })
            });
            let running = status.state.as_ref().and_then(|s| s.running.as_ref());
            let container_key = (namespace.clone(), name.clone(), status.name.clone());
            if !selected || running.is_none() {
                // A container that no longer runs gives up its turn; its
                // last lines are read from its dead run when it restarts.
                if let Some(reading) = self.reading.remove(&container_key) {
                    reading.task.abort();
                }
                continue;
            }
            let container_id = status.container_id.clone().unwrap_or_default();
            if self
                .reading
                .get(&container_key)
                .is_some_and(|r| r.container_id == container_id)
            {
                continue;
            }
            let previous = died_since(status, since)
                && self.previous_read.insert((
                    uid.clone(),
                    status.name.clone(),
                    status.restart_count,
                ));
            let container = Container {
                // A pod's log is a subresource of its namespace.
                api: kube::Api::namespaced(self.client.clone(), &namespace),
                key: container_key.clone(),
                labels,
                since_ns: since,
                previous,
            };
            let sink = Sink {
                batches: self.outputs.batches.clone(),
                errors: self.outputs.errors.clone(),
                marks: self.outputs.marks.clone(),
                stats: self.outputs.stats.clone(),
            };
            let task = tokio::spawn(logs::read(container, sink, self.turns.clone()));
            if let Some(old) = self.reading.insert(
                container_key,
                Reading {
                    container_id,
                    task: task.abort_handle(),
                },
            ) {
                old.task.abort();
            }
        }
    }

    /// Stops reading the containers `which` chooses.
    fn stop_reading(&mut self, which: impl Fn(&ContainerKey) -> bool) {
        self.reading.retain(|key, reading| {
            let stop = which(key);
            if stop {
                reading.task.abort();
            }
            !stop
        });
    }
}

/// Whether the container's last run ended at or after `since` (UTC ns):
/// its log holds lines not read yet.
fn died_since(status: &ContainerStatus, since: i64) -> bool {
    let finished = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.as_ref());
    match finished {
        // finishedAt counts whole seconds.
        Some(at) => i64::try_from(at.0.as_nanosecond()).unwrap_or(i64::MAX) + 1_000_000_000 > since,
        None => false,
    }
}

/// A container stream's labels, as log agents give them: namespace, pod,
/// container, node_name and node, then the pod's own labels.
fn labels(
    pod: &Pod,
    namespace: &str,
    name: &str,
    container: &str,
    node: Option<&str>,
) -> Vec<(String, String)> {
    let mut labels = vec![
        ("namespace".to_string(), namespace.to_string()),
        ("pod".to_string(), name.to_string()),
        ("container".to_string(), container.to_string()),
    ];
    if let Some(node) = node {
        labels.push(("node_name".to_string(), node.to_string()));
    }
    for (key, value) in pod.metadata.labels.iter().flatten() {
        if !labels.iter().any(|(k, _)| k == key) {
            labels.push((key.clone(), value.clone()));
        }
    }
    labels
}
