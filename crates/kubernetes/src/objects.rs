//! Watching a kind of object: what is applied and what is gone, and the
//! inventory changes that follow.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;

use futures_util::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::Value;
use tokio::sync::watch;

use crate::{InventoryChange, Outputs};

/// An object seen by a watch.
pub(crate) enum Seen<K> {
    Applied(K),
    Deleted(K),
}

/// Turns a watcher's events into applied and deleted objects. After a
/// list that starts over (a new watch, 410 Gone), an object not listed
/// again is deleted: it went while nobody watched.
pub(crate) struct Relist<K> {
    known: HashMap<(String, String), K>,
    listed: Option<HashSet<(String, String)>>,
}

fn key<K: ResourceExt>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

impl<K: ResourceExt + Clone> Relist<K> {
    pub(crate) fn new() -> Relist<K> {
        Relist {
            known: HashMap::new(),
            listed: None,
        }
    }

    pub(crate) fn step(&mut self, event: watcher::Event<K>) -> Vec<Seen<K>> {
        match event {
            watcher::Event::Init => {
                self.listed = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(object) | watcher::Event::Apply(object) => {
                let key = key(&object);
                if let Some(listed) = &mut self.listed {
                    listed.insert(key.clone());
                }
                self.known.insert(key, object.clone());
                vec![Seen::Applied(object)]
            }
            watcher::Event::Delete(object) => {
                self.known.remove(&key(&object));
                vec![Seen::Deleted(object)]
            }
            watcher::Event::InitDone => {
                let listed = self.listed.take().unwrap_or_default();
                let gone: Vec<(String, String)> = self
                    .known
                    .keys()
                    .filter(|k| !listed.contains(*k))
                    .cloned()
                    .collect();
                gone.into_iter()
                    .filter_map(|k| self.known.remove(&k))
                    .map(Seen::Deleted)
                    .collect()
            }
        }
    }
}

/// The watch of `api`'s objects, retried with backoff; errors are told
/// on `errors` once each time watching starts to fail.
pub(crate) fn watch_objects<K>(
    api: kube::Api<K>,
    config: watcher::Config,
    errors: tokio::sync::mpsc::Sender<String>,
) -> impl futures_util::Stream<Item = watcher::Event<K>> + Send
where
    K: Resource + Clone + serde::de::DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
{
    let kind = K::plural(&Default::default()).to_string();
    let mut failing = false;
    watcher(api, config)
        .default_backoff()
        .filter_map(move |event| {
            let report = match &event {
                // The watch is too old (410 Gone): listing again is how
                // watching goes on, not a problem.
                Err(watcher::Error::WatchError(status)) if status.code == 410 => None,
                Err(err) if !failing => {
                    failing = true;
                    Some(format!("kubernetes: watching {kind}: {err}"))
                }
                Err(_) => None,
                Ok(_) => {
                    failing = false;
                    None
                }
            };
            let errors = errors.clone();
            async move {
                if let Some(report) = report {
                    let _ = errors.send(report).await;
                }
                event.ok()
            }
        })
}

/// The inventory change an object's state makes.
pub(crate) fn change<K>(seen: &Seen<K>) -> Option<InventoryChange>
where
    K: Resource + serde::Serialize,
    K::DynamicType: Default,
{
    match seen {
        Seen::Applied(object) => {
            let mut json = serde_json::to_value(object).ok()?;
            // The kind is in the JSON of a typed object; make sure of it.
            if json.get("kind").is_none() {
                json["kind"] = Value::String(K::kind(&Default::default()).to_string());
            }
            serde_json::to_vec(&json).ok().map(InventoryChange::Applied)
        }
        Seen::Deleted(object) => Some(InventoryChange::Deleted {
            kind: kind_name(&K::kind(&Default::default())),
            namespace: object.meta().namespace.clone().unwrap_or_default(),
            name: object.meta().name.clone().unwrap_or_default(),
        }),
    }
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "Pod" => "Pod",
        "PersistentVolumeClaim" => "PersistentVolumeClaim",
        "PersistentVolume" => "PersistentVolume",
        _ => "Other",
    }
}

/// Sends the inventory changes of `api`'s objects until `stop`.
pub(crate) async fn inventory<K>(
    api: kube::Api<K>,
    outputs: Outputs,
    mut stop: watch::Receiver<bool>,
) where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + Debug + Send + 'static,
    K::DynamicType: Default,
{
    let events = watch_objects(api, watcher::Config::default(), outputs.errors.clone());
    let mut events = std::pin::pin!(events);
    let mut relist = Relist::new();
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = crate::stopped(&mut stop) => None,
        };
        let Some(event) = event else { return };
        for seen in relist.step(event) {
            if let Some(change) = change(&seen)
                && outputs.inventory.send(change).await.is_err()
            {
                return;
            }
        }
    }
}
