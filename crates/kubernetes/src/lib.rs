//! faultline's Kubernetes API source (`watch --kubernetes`).
//!
//! From list/watch requests (which survive API server restarts, 410 Gone
//! and throttling by listing again after a backoff):
//!
//! * **Inventory**: pods, PVCs and PVs as they change, for correlation to
//!   name the PVC, node and workload of a failure ([`InventoryChange`]).
//! * **Events** (`events.k8s.io/v1`): each new observation of an Event is
//!   a record — probe failures and kills (`Unhealthy`, `Killing`),
//!   `BackOff`, `FailedMount` are seen there, not in any container's log.
//! * **Pod logs**, while streaming is switched on: each running container
//!   selected is followed (`pods/log?follow=true&timestamps=true&
//!   sinceTime=…`); when a container has restarted, the log of its dead
//!   run (`previous=true`) is read first, once per restart — the evidence
//!   of a crash is there. At most `max_streams` containers are followed at
//!   once; the rest wait their turn. Entries go through the shared
//!   [`Marks`], so what Loki already passed on is not passed on again, and
//!   a reconnect repeats nothing.
//!
//! Streaming is switched by a watch channel: always on when faultline
//! reads the API alone, on while Loki is unhealthy when it falls back.
//!
//! Permissions needed: get/list/watch on pods, events (events.k8s.io),
//! persistentvolumeclaims and persistentvolumes; get on pods/log.

mod events;
mod logs;
mod objects;
mod pods;
pub mod selector;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use faultline_sources::Batch;
use faultline_sources::overlap::Marks;
use tokio::sync::{mpsc, watch};

pub use logs::entry as log_entry;
pub use selector::StreamSelector;

/// What to read from the Kubernetes API.
#[derive(Clone, Debug, Default)]
pub struct KubeConfig {
    /// Only this namespace (all when `None`).
    pub namespace: Option<String>,
    /// Only pods with these labels (a Kubernetes label selector, e.g.
    /// `app.kubernetes.io/part-of=immich`).
    pub pod_selector: Option<String>,
    /// Only the containers this Loki stream selector chooses.
    pub streams: Option<StreamSelector>,
    /// Containers followed at once, at most.
    pub max_streams: usize,
    /// Events older than this (UTC ns) are not reported.
    pub events_since_ns: i64,
    /// Keep the inventory only: no Events, no pod logs (a DaemonSet that
    /// reads its node's log files).
    pub inventory_only: bool,
}

/// A change of the cluster's objects, for the correlation inventory.
#[derive(Clone, Debug, PartialEq)]
pub enum InventoryChange {
    /// An object as it now is: its JSON, `kind` included.
    Applied(Vec<u8>),
    /// An object is gone.
    Deleted {
        kind: &'static str,
        namespace: String,
        name: String,
    },
}

/// How the source is doing, for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Containers being followed.
    pub following: AtomicI64,
    /// Containers waiting for a turn (over `max_streams`).
    pub waiting: AtomicI64,
    /// Logs of dead runs read.
    pub previous_read: AtomicI64,
}

/// Where the source's output goes.
#[derive(Clone)]
pub struct Outputs {
    /// Log lines and event records.
    pub batches: mpsc::Sender<Batch>,
    /// Inventory changes.
    pub inventory: mpsc::Sender<InventoryChange>,
    /// Problems worth telling the user (access denied, an unreadable log).
    pub errors: mpsc::Sender<String>,
    /// Marks shared with Loki.
    pub marks: Marks,
    /// Counts for metrics.
    pub stats: Arc<Stats>,
}

/// A client for the API server: in a pod, its service account; else the
/// kubeconfig (`kubeconfig`, else `$KUBECONFIG` or `~/.kube/config`).
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|err| format!("reading the kubeconfig {}: {err}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .map_err(|err| format!("the kubeconfig {}: {err}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|err| {
            format!("no Kubernetes API: not in a pod, and no usable kubeconfig ({err})")
        })?,
    };
    kube::Client::try_from(config).map_err(|err| format!("a Kubernetes API client: {err}"))
}

/// Reads the API until `stop` turns true. Pod logs are streamed while
/// `streaming` holds a start time (UTC ns): a container is read from the
/// newest entry the marks know of it, else from that time.
pub async fn run(
    client: kube::Client,
    config: KubeConfig,
    outputs: Outputs,
    streaming: watch::Receiver<Option<i64>>,
    stop: watch::Receiver<bool>,
) {
    let namespace = config.namespace.as_deref();
    let claims: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        scoped(&client, namespace);
    let volumes = kube::Api::all(client.clone());
    let events = scoped(&client, namespace);
    let pods = scoped(&client, namespace);
    tokio::spawn(objects::inventory(claims, outputs.clone(), stop.clone()));
    tokio::spawn(objects::inventory::<
        k8s_openapi::api::core::v1::PersistentVolume,
    >(volumes, outputs.clone(), stop.clone()));
    if !config.inventory_only {
        tokio::spawn(events::follow(
            events,
            config.events_since_ns,
            outputs.clone(),
            stop.clone(),
        ));
    }
    pods::follow(pods, config, outputs, streaming, stop).await;
}

/// The objects of one namespace, or of all.
fn scoped<K>(client: &kube::Client, namespace: Option<&str>) -> kube::Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}

/// The time of an RFC 3339 text, in UTC ns.
fn nanos(text: &str) -> Option<i64> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// A path for a stream of this crate's source.
pub const SOURCE: &str = "kubernetes";

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
