//! Which broken thing a hit is about: its entity key.
//!
//! In order of trust: the inventory (pod → PVC, node, owner), then naming
//! conventions (a CloudNativePG instance pod `<cluster>-<n>` uses PVC
//! `<cluster>-<n>`; a ReplicaSet pod `<deployment>-<hash>-<id>` belongs to
//! Deployment `<deployment>`), then the record's own labels (pod, node).

use faultline_core::Class;

use crate::Observation;
use crate::inventory::Inventory;

/// The entity a hit is about, with what is known of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A PersistentVolumeClaim and the pod that uses it.
    Pvc {
        namespace: String,
        name: String,
        pod: String,
        node: Option<String>,
        cnpg: Option<String>,
        primary: bool,
    },
    /// A node (kernel and node-service failures).
    Node { name: String },
    /// The log pipeline.
    Pipeline { name: String },
    /// A log stream (a pod's container, or an input) that went silent.
    Stream { name: String },
    /// A workload (Deployment, StatefulSet, DaemonSet …) and its pod.
    Workload {
        namespace: String,
        kind: String,
        name: String,
        pod: String,
        /// The container the hit is about, if known.
        container: Option<String>,
        /// The liveness probe of the container the hit is about, if known.
        liveness: Option<crate::inventory::Probe>,
    },
    /// A CloudNativePG cluster.
    Cnpg { namespace: String, cluster: String },
    /// A pod no better owner is known for.
    Pod { namespace: String, name: String },
    /// Nothing known: the signature itself.
    Unknown { signature: String },
}

impl Subject {
    /// The stable key: `pvc/<ns>/<name>`, `node/<name>`, `pipeline/<name>`,
    /// `workload/<ns>/<kind>/<name>`, `cnpg/<ns>/<cluster>`, `pod/<ns>/<name>`
    /// or `signature/<id>`.
    pub fn key(&self) -> String {
        match self {
            Subject::Pvc {
                namespace, name, ..
            } => format!("pvc/{namespace}/{name}"),
            Subject::Node { name } => format!("node/{name}"),
            Subject::Pipeline { name } => format!("pipeline/{name}"),
            Subject::Stream { name } => format!("stream/{name}"),
            Subject::Workload {
                namespace,
                kind,
                name,
                ..
            } => format!("workload/{namespace}/{kind}/{name}"),
            Subject::Cnpg { namespace, cluster } => format!("cnpg/{namespace}/{cluster}"),
            Subject::Pod { namespace, name } => format!("pod/{namespace}/{name}"),
            Subject::Unknown { signature } => format!("signature/{signature}"),
        }
    }

    /// Keys of the other things this one is part of (its node, its
    /// CloudNativePG cluster, the log pipeline).
    pub fn related(&self, signature: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Subject::Pvc {
            namespace,
            node,
            cnpg,
            ..
        } = self
        {
            out.extend(node.iter().map(|n| format!("node/{n}")));
            out.extend(cnpg.iter().map(|c| format!("cnpg/{namespace}/{c}")));
        }
        if signature.starts_with("loki-") && !matches!(self, Subject::Pipeline { .. }) {
            out.push("pipeline/loki".to_string());
        }
        out
    }
}

/// Classes that are about a volume when they come from a pod's log.
fn is_storage(class: Class) -> bool {
    matches!(
        class,
        Class::VolumeReadOnly
            | Class::DiskFull
            | Class::PgControldata
            | Class::PgDataMissing
            | Class::DiskIoError
            | Class::PgWalArchive
            | Class::VolumeMount
    )
}

/// Classes a node can have on its own: its kernel's, its storage path's,
/// its resources'. A probe, a restart or a database's trouble is always a
/// pod's, even when the line that tells it names only the node.
pub fn is_node_scoped(class: Class) -> bool {
    matches!(
        class,
        Class::VolumeReadOnly
            | Class::DiskIoError
            | Class::DiskFull
            | Class::StorageTransport
            | Class::NfsFailure
            | Class::RaidDegraded
            | Class::VolumeMount
            | Class::OomKill
            | Class::NodePressure
            | Class::KernelHang
    )
}

/// `<cluster>-<n>` → `<cluster>`.
fn cnpg_cluster_by_name(pod: &str) -> Option<&str> {
    let (cluster, serial) = pod.rsplit_once('-')?;
    (!serial.is_empty() && serial.bytes().all(|b| b.is_ascii_digit())).then_some(cluster)
}

/// The workload of a pod from its owner, or from its name: `<d>-<hash>-<id>`
/// is Deployment `<d>`, `<s>-<n>` is StatefulSet `<s>`.
fn workload_of(pod: &str, owner: Option<&(String, String)>) -> (String, String) {
    match owner {
        Some((kind, name)) if kind == "ReplicaSet" => {
            let deployment = name.rsplit_once('-').map_or(name.as_str(), |(d, _)| d);
            ("Deployment".to_string(), deployment.to_string())
        }
        Some((kind, name)) => (kind.clone(), name.clone()),
        None => {
            let parts: Vec<&str> = pod.rsplitn(3, '-').collect();
            match parts.as_slice() {
                [id, hash, deployment] if id.len() == 5 && hash.len() >= 8 => {
                    ("Deployment".into(), deployment.to_string())
                }
                _ => match cnpg_cluster_by_name(pod) {
                    Some(set) => ("StatefulSet".into(), set.to_string()),
                    None => ("Pod".into(), pod.to_string()),
                },
            }
        }
    }
}

/// The first absolute path among the hit's captures (`path`, `datadir`,
/// …), if any.
fn absolute_path<'a>(hit: &'a Observation) -> Option<&'a str> {
    hit.captures
        .iter()
        .map(|(_, v)| v.as_str())
        .find(|v| v.starts_with('/') && v.len() > 1)
}

/// The PVC behind the iSCSI session a kernel hit names (`connection3:0`,
/// `session3`), as `pvc/<ns>/<claim>`: the session's disk, announced in the
/// node's kernel log, through the node's mount table. A session error is
/// about the node's storage path, so it stays the node's incident, linked
/// to the volumes it carries.
pub fn session_volume(hit: &Observation, inventory: &Inventory) -> Option<String> {
    let label = |k: &str| hit.labels.get(k).map(String::as_str);
    if label("pod").is_some() {
        return None;
    }
    let session = hit
        .captures
        .iter()
        .find(|(n, _)| n == "session")
        .map(|(_, v)| v.as_str())?;
    let node = label("node")?;
    let disks = inventory.iscsi_disks(node, session);
    let [disk] = disks else { return None };
    let found = inventory.device_volume(node, disk)?;
    Some(format!("pvc/{}/{}", found.namespace, found.pvc))
}

/// Resolves the entity `hit` is about.
pub fn resolve(hit: &Observation, inventory: &Inventory) -> Subject {
    let label = |k: &str| hit.labels.get(k).map(String::as_str);
    let capture = |k: &str| {
        hit.captures
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    if matches!(hit.class, Class::LogPushFailure | Class::LogStoreFailure) {
        return Subject::Pipeline {
            name: "loki".into(),
        };
    }
    // The operator logs from its own namespace; its lines name the
    // cluster's (`"Cluster":{"name":…,"namespace":…}`).
    if hit.class == Class::PgInstanceStatus
        && let (Some(namespace), Some(cluster)) = (
            capture("cluster_namespace").or_else(|| label("namespace")),
            capture("cluster"),
        )
    {
        return Subject::Cnpg {
            namespace: namespace.into(),
            cluster: cluster.into(),
        };
    }
    // A kernel OOM kill names the pod by its UID (in the memory cgroup's
    // path, with `_` for `-` under the systemd cgroup driver).
    let by_uid = capture("pod_uid").and_then(|uid| inventory.pod_by_uid(&uid.replace('_', "-")));
    let named = match (label("namespace"), label("pod")) {
        (Some(namespace), Some(pod)) => Some((namespace, pod)),
        _ => by_uid,
    };
    let Some((namespace, pod)) = named else {
        let Some(node) = label("node").filter(|_| is_node_scoped(hit.class)) else {
            return Subject::Unknown {
                signature: hit.signature.into(),
            };
        };
        // A kernel error on a device that backs a pod volume is that
        // volume's (the node's mount table says which).
        if let Some(found) = capture("device").and_then(|d| inventory.device_volume(node, d)) {
            let known = found
                .pod
                .as_deref()
                .and_then(|p| inventory.pod(&found.namespace, p));
            return Subject::Pvc {
                namespace: found.namespace,
                name: found.pvc,
                pod: found.pod.clone().unwrap_or_default(),
                node: Some(node.to_string()),
                cnpg: known.and_then(|p| p.cnpg_cluster.clone()),
                primary: known.is_some_and(|p| p.primary),
            };
        }
        return Subject::Node { name: node.into() };
    };
    let known = inventory.pod(namespace, pod);
    let cnpg = known.and_then(|p| p.cnpg_cluster.clone()).or_else(|| {
        let by_name = hit.signature.starts_with("cnpg-") || hit.signature.starts_with("postgres-");
        by_name
            .then(|| cnpg_cluster_by_name(pod))
            .flatten()
            .map(str::to_string)
    });
    // A CloudNativePG instance's troubles (its crash loop included) are
    // its volume's; other pods' storage errors are their volume's too.
    // Which claim: the volume the message names (the pod's volume, or the
    // PV bound to one of its claims), else the one mounted where the
    // message's path points (the container's volumeMounts), else the
    // claim named like the pod (the CloudNativePG convention), else the
    // pod's first claim.
    let container = capture("container").or_else(|| label("container"));
    if is_storage(hit.class) || cnpg.is_some() {
        let by_volume = known.zip(capture("volume")).and_then(|(p, volume)| {
            p.volume_claims
                .iter()
                .find(|(v, _)| v == volume)
                .map(|(_, claim)| claim.as_str())
                .or_else(|| {
                    let (ns, claim) = inventory.pvc_of_pv(volume)?;
                    (ns == namespace)
                        .then(|| p.claims.iter().find(|c| **c == claim).map(String::as_str))
                        .flatten()
                })
        });
        let by_path = known.zip(absolute_path(hit)).and_then(|(p, path)| {
            p.claim_for_path(path, container)
                .or_else(|| p.claim_for_path(path, None))
        });
        let claim = match known {
            Some(p) => by_volume
                .or(by_path)
                .or_else(|| p.claims.iter().map(String::as_str).find(|c| *c == pod))
                .or(p.claims.first().map(String::as_str))
                .map(str::to_string),
            None => cnpg.as_ref().map(|_| pod.to_string()),
        };
        if let Some(name) = claim {
            return Subject::Pvc {
                namespace: namespace.into(),
                name,
                pod: pod.into(),
                node: known
                    .and_then(|p| p.node.clone())
                    .or_else(|| label("node").map(str::to_string)),
                cnpg,
                primary: known.is_some_and(|p| p.primary),
            };
        }
    }
    if matches!(
        hit.class,
        Class::ProbeKill | Class::ProbeFailure | Class::RestartLoop | Class::OomKill
    ) {
        let (kind, name) = workload_of(pod, known.and_then(|p| p.owner.as_ref()));
        let liveness = known.and_then(|p| match container {
            Some(c) => p.liveness.get(c).copied(),
            None => (p.liveness.len() == 1)
                .then(|| p.liveness.values().next().copied())
                .flatten(),
        });
        return Subject::Workload {
            namespace: namespace.into(),
            kind,
            name,
            pod: pod.into(),
            container: container.map(str::to_string),
            liveness,
        };
    }
    Subject::Pod {
        namespace: namespace.into(),
        name: pod.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_core::Severity;
    use std::collections::BTreeMap;

    fn hit<'a>(
        signature: &'a str,
        class: Class,
        labels: &'a BTreeMap<String, String>,
    ) -> Observation<'a> {
        Observation {
            ts: 0,
            signature,
            class,
            severity: Severity::Critical,
            labels,
            captures: &[],
            summary: "",
            remediation: "",
            evidence: "",
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_inventory_is_trusted_first() {
        let mut inventory = Inventory::default();
        inventory
            .add_json(br#"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"loki-0","namespace":"monitoring",
              "ownerReferences":[{"kind":"StatefulSet","name":"loki","controller":true}]},
              "spec":{"nodeName":"n1","volumes":[{"name":"storage","persistentVolumeClaim":{"claimName":"storage-loki-0"}}]}}]}"#)
            .unwrap();
        let l = labels(&[("namespace", "monitoring"), ("pod", "loki-0")]);
        let subject = resolve(
            &hit("loki-wal-read-only", Class::VolumeReadOnly, &l),
            &inventory,
        );
        assert_eq!(subject.key(), "pvc/monitoring/storage-loki-0");
        assert_eq!(
            subject.related("loki-wal-read-only"),
            ["node/n1", "pipeline/loki"]
        );
        let probe = resolve(
            &hit("kubelet-readiness-probe-failed", Class::ProbeFailure, &l),
            &inventory,
        );
        assert_eq!(probe.key(), "workload/monitoring/StatefulSet/loki");
    }

    #[test]
    fn a_kernel_error_on_a_mounted_device_belongs_to_its_pvc() {
        let mut inventory = Inventory::default();
        inventory
            .add_json(br#"{"kind":"List","items":[
              {"kind":"Pod","metadata":{"name":"pg-2","namespace":"db","uid":"u-2","labels":{"cnpg.io/cluster":"pg"}},"spec":{"nodeName":"n1","volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"pg-2"}}]}},
              {"kind":"PersistentVolumeClaim","metadata":{"name":"pg-2","namespace":"db"},"spec":{"volumeName":"pvc-22"}}]}"#)
            .unwrap();
        inventory.add_mounts("n1", "60 36 8:32 / /var/lib/kubelet/pods/u-2/volumes/kubernetes.io~csi/pvc-22/mount rw - ext4 /dev/sdc rw\n");
        let l = labels(&[("node", "n1")]);
        let captures = [("device".to_string(), "sdc".to_string())];
        let mut remount = hit("kernel-ext4-remount-read-only", Class::VolumeReadOnly, &l);
        remount.captures = &captures;
        let subject = resolve(&remount, &inventory);
        assert_eq!(subject.key(), "pvc/db/pg-2");
        assert_eq!(
            subject.related("kernel-ext4-remount-read-only"),
            ["node/n1", "cnpg/db/pg"]
        );
        let other = [("device".to_string(), "sdz".to_string())];
        remount.captures = &other;
        assert_eq!(
            resolve(&remount, &inventory).key(),
            "node/n1",
            "a device the mount table does not know"
        );
    }

    #[test]
    fn conventions_apply_without_an_inventory() {
        let none = Inventory::default();
        let l = labels(&[
            ("namespace", "vitals-prod"),
            ("pod", "vitals-db-production-cnpg-v1-2"),
        ]);
        assert_eq!(
            resolve(
                &hit("postgres-wal-read-only", Class::VolumeReadOnly, &l),
                &none
            )
            .key(),
            "pvc/vitals-prod/vitals-db-production-cnpg-v1-2"
        );
        let ml = labels(&[
            ("namespace", "immich-prod"),
            ("pod", "immich-machine-learning-7d4b9c6f58-6rtdn"),
        ]);
        assert_eq!(
            resolve(&hit("kubelet-probe-kill", Class::ProbeKill, &ml), &none).key(),
            "workload/immich-prod/Deployment/immich-machine-learning"
        );
        let kernel = labels(&[("node", "talos-519-vmy")]);
        assert_eq!(
            resolve(
                &hit(
                    "kernel-ext4-remount-read-only",
                    Class::VolumeReadOnly,
                    &kernel
                ),
                &none
            )
            .key(),
            "node/talos-519-vmy"
        );
        assert_eq!(
            resolve(
                &hit("promtail-push-server-error", Class::LogPushFailure, &ml),
                &none
            )
            .key(),
            "pipeline/loki"
        );
        let bare = labels(&[]);
        assert_eq!(
            resolve(&hit("x", Class::DiskFull, &bare), &none).key(),
            "signature/x"
        );
        let web = labels(&[("namespace", "web"), ("pod", "nginx")]);
        assert_eq!(
            resolve(&hit("y", Class::DiskFull, &web), &none).key(),
            "pod/web/nginx"
        );
    }
}
