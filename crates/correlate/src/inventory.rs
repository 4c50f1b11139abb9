//! What the cluster looked like: pods, their PVCs and nodes, owners, from
//! `kubectl get pods,pvc,pv,nodes -A -o json` (a `v1 List`).

use std::collections::HashMap;

use serde_json::Value;

/// A liveness probe's timing: a container that has not answered it after
/// `initial_delay_s + failure_threshold × period_s` seconds is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// `initialDelaySeconds` (default 0).
    pub initial_delay_s: u32,
    /// `periodSeconds` (default 10).
    pub period_s: u32,
    /// `failureThreshold` (default 3).
    pub failure_threshold: u32,
}

impl Probe {
    /// Seconds of start-up the probe allows before it kills the container.
    pub fn allows_s(&self) -> u32 {
        self.initial_delay_s + self.failure_threshold * self.period_s
    }

    fn from_json(probe: &Value) -> Probe {
        let field = |k: &str, default: u32| {
            probe
                .get(k)
                .and_then(Value::as_u64)
                .map_or(default, |v| v as u32)
        };
        Probe {
            initial_delay_s: field("initialDelaySeconds", 0),
            period_s: field("periodSeconds", 10),
            failure_threshold: field("failureThreshold", 3),
        }
    }
}

/// One pod, as far as correlation cares.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pod {
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// PVC names of its volumes, in `spec.volumes` order.
    pub claims: Vec<String>,
    /// The controlling owner: (kind, name), e.g. `("ReplicaSet", "x-7d4b")`.
    pub owner: Option<(String, String)>,
    /// `cnpg.io/cluster` when the pod is a CloudNativePG instance.
    pub cnpg_cluster: Option<String>,
    /// CloudNativePG's `cnpg.io/instanceRole` (or legacy `role`) is `primary`.
    pub primary: bool,
    /// Liveness probes by container name.
    pub liveness: std::collections::BTreeMap<String, Probe>,
    /// Volumes backed by a PVC: (volume name, claim name).
    pub volume_claims: Vec<(String, String)>,
    /// Volume mounts backed by a PVC: (container, mount path, claim name).
    pub claim_mounts: Vec<(String, String, String)>,
    /// How each container last ended (`status.containerStatuses[].lastState.terminated`).
    pub last_termination: std::collections::BTreeMap<String, Termination>,
}

/// How a container run ended, as the pod's status reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    /// `reason`: `Error`, `OOMKilled`, `Completed` …
    pub reason: String,
    /// `exitCode`.
    pub exit_code: i64,
}

/// One run of a container, as its own log file shows it (kubelet writes
/// one file per run: `<container>/<restart count>.log`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRun {
    /// Time of its first dated line.
    pub started: i64,
    /// Time of its last dated line.
    pub ended: i64,
    /// Its last few lines: (time, message), oldest first.
    pub tail: Vec<(i64, String)>,
}

/// Runs remembered per container.
const RUNS_KEPT: usize = 32;

impl Pod {
    /// The claim mounted at the longest mount path that is a prefix of
    /// `path` (absolute), in `container` if given, else in any container.
    pub fn claim_for_path(&self, path: &str, container: Option<&str>) -> Option<&str> {
        self.claim_mounts
            .iter()
            .filter(|(c, _, _)| container.is_none_or(|want| want == c))
            .filter(|(_, mount, _)| {
                let mount = mount.trim_end_matches('/');
                path == mount
                    || path
                        .strip_prefix(mount)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|(_, mount, _)| mount.len())
            .map(|(_, _, claim)| claim.as_str())
    }
}

impl Pod {
    /// The facts correlation needs from one Pod object.
    fn from_json(item: &Value) -> Pod {
        // Volume name → claim name, for the volumes backed by a PVC.
        let volumes: Vec<(&str, &str)> = item
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .map(|volumes| {
                volumes
                    .iter()
                    .filter_map(|v| {
                        Some((
                            text(v, &["name"])?,
                            text(v, &["persistentVolumeClaim", "claimName"])?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let claims = volumes.iter().map(|(_, c)| c.to_string()).collect();
        let volume_claims = volumes
            .iter()
            .map(|(v, c)| (v.to_string(), c.to_string()))
            .collect();
        let volumes = &volumes;
        let containers: &[Value] = item
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let claim_mounts = containers
            .iter()
            .flat_map(|c| {
                let name = text(c, &["name"]).unwrap_or_default();
                c.get("volumeMounts")
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .filter_map(move |m| {
                        let volume = text(m, &["name"])?;
                        let (_, claim) = volumes.iter().find(|(v, _)| *v == volume)?;
                        Some((
                            name.to_string(),
                            text(m, &["mountPath"])?.to_string(),
                            claim.to_string(),
                        ))
                    })
            })
            .collect();
        let last_termination = item
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|status| {
                let ended = status.pointer("/lastState/terminated")?;
                Some((
                    text(status, &["name"])?.to_string(),
                    Termination {
                        reason: text(ended, &["reason"]).unwrap_or("unknown").to_string(),
                        exit_code: ended.get("exitCode").and_then(Value::as_i64)?,
                    },
                ))
            })
            .collect();
        let owner = item
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|owners| {
                owners
                    .iter()
                    .find(|o| o.get("controller") == Some(&Value::Bool(true)))
                    .or(owners.first())
            })
            .and_then(|o| {
                Some((
                    text(o, &["kind"])?.to_string(),
                    text(o, &["name"])?.to_string(),
                ))
            });
        let label = |key: &str| {
            item.pointer("/metadata/labels")
                .and_then(|l| l.get(key))
                .and_then(Value::as_str)
        };
        let liveness = containers
            .iter()
            .filter_map(|c| {
                Some((
                    text(c, &["name"])?.to_string(),
                    Probe::from_json(c.get("livenessProbe")?),
                ))
            })
            .collect();
        Pod {
            liveness,
            volume_claims,
            claim_mounts,
            last_termination,
            node: text(item, &["spec", "nodeName"]).map(str::to_string),
            claims,
            owner,
            cnpg_cluster: label("cnpg.io/cluster").map(str::to_string),
            primary: label("cnpg.io/instanceRole").or_else(|| label("role")) == Some("primary"),
        }
    }
}

/// Pods and PVCs by namespace and name, and nodes' mount tables.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pods: HashMap<(String, String), Pod>,
    /// Pod UID → (namespace, name).
    uids: HashMap<String, (String, String)>,
    /// PVC (namespace, name) → bound PV name.
    pvcs: HashMap<(String, String), Option<String>>,
    /// Node → device → the pod volume it backs.
    mounts: HashMap<String, HashMap<String, crate::mounts::VolumeMount>>,
    /// (namespace, pod, container) → its latest runs, by start.
    runs: HashMap<(String, String, String), Vec<ContainerRun>>,
    /// (node, iSCSI session) → the disks behind it.
    iscsi: HashMap<(String, String), Vec<String>>,
}

/// Where a device on a node leads: the PVC and the pod using it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceVolume {
    /// The PVC's namespace.
    pub namespace: String,
    /// The PVC's name.
    pub pvc: String,
    /// The pod it is mounted for, when the inventory knows its UID.
    pub pod: Option<String>,
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

impl Inventory {
    /// Adds the objects of one `kubectl … -o json` document (a `List` or a
    /// single object). Kinds other than Pod and PersistentVolumeClaim are
    /// ignored. The error says what is not as expected.
    pub fn add_json(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let root: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let items: Vec<&Value> = match root.get("items") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![&root],
        };
        let mut added = 0;
        for item in items {
            let (Some(kind), Some(name)) =
                (text(item, &["kind"]), text(item, &["metadata", "name"]))
            else {
                continue;
            };
            let namespace = text(item, &["metadata", "namespace"])
                .unwrap_or("default")
                .to_string();
            match kind {
                "Pod" => {
                    let pod = Pod::from_json(item);
                    if let Some(uid) = text(item, &["metadata", "uid"]) {
                        self.uids
                            .insert(uid.to_string(), (namespace.clone(), name.to_string()));
                    }
                    self.pods.insert((namespace, name.to_string()), pod);
                    added += 1;
                }
                "PersistentVolumeClaim" => {
                    let volume = text(item, &["spec", "volumeName"]).map(str::to_string);
                    self.pvcs.insert((namespace, name.to_string()), volume);
                    added += 1;
                }
                // A bound PV names its claim (`spec.claimRef`): enough to
                // map the PV to its PVC when the PVC list is missing.
                "PersistentVolume" => {
                    if let (Some(ns), Some(claim)) = (
                        text(item, &["spec", "claimRef", "namespace"]),
                        text(item, &["spec", "claimRef", "name"]),
                    ) {
                        let bound = self
                            .pvcs
                            .entry((ns.to_string(), claim.to_string()))
                            .or_insert(None);
                        bound.get_or_insert_with(|| name.to_string());
                        added += 1;
                    }
                }
                _ => {}
            }
        }
        Ok(added)
    }

    /// Forgets an object that is gone from the cluster: a Pod (and its
    /// UID), a PersistentVolumeClaim, or a PersistentVolume's binding.
    pub fn remove(&mut self, kind: &str, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        match kind {
            "Pod" => {
                self.pods.remove(&key);
                self.uids.retain(|_, pod| *pod != key);
            }
            "PersistentVolumeClaim" => {
                self.pvcs.remove(&key);
            }
            "PersistentVolume" => {
                for bound in self.pvcs.values_mut() {
                    if bound.as_deref() == Some(name) {
                        *bound = None;
                    }
                }
            }
            _ => {}
        }
    }

    /// Adds the mount table (mountinfo text) of `node`.
    pub fn add_mounts(&mut self, node: &str, mountinfo: &str) -> usize {
        let table = crate::mounts::parse_mountinfo(mountinfo);
        let count = table.len();
        self.mounts
            .entry(node.to_string())
            .or_default()
            .extend(table);
        count
    }

    /// The PVC behind `device` (`sdc`, or a partition such as `sdc1`) on
    /// `node`: mount table → PV → the PVC bound to it.
    pub fn device_volume(&self, node: &str, device: &str) -> Option<DeviceVolume> {
        let table = self.mounts.get(node)?;
        let mount = table
            .get(device)
            .or_else(|| table.get(device.trim_end_matches(|c: char| c.is_ascii_digit())))?;
        let (namespace, pvc) = self.pvc_of_pv(&mount.pv)?;
        let pod = self.uids.get(&mount.pod_uid).map(|(_, name)| name.clone());
        Some(DeviceVolume {
            namespace,
            pvc,
            pod,
        })
    }

    /// Adds one run of container `namespace/pod/container`, as its log
    /// file shows it (a run with the same start replaces the one known: it
    /// is the same run, seen further); the latest [`RUNS_KEPT`] runs are
    /// kept.
    pub fn add_run(&mut self, namespace: &str, pod: &str, container: &str, run: ContainerRun) {
        let runs = self
            .runs
            .entry((namespace.into(), pod.into(), container.into()))
            .or_default();
        // The same run seen again, longer (a log still being written):
        // replaced, not added.
        if let Some(known) = runs.iter_mut().find(|r| r.started == run.started) {
            *known = run;
            return;
        }
        let at = runs.partition_point(|r| r.started <= run.started);
        runs.insert(at, run);
        if runs.len() > RUNS_KEPT {
            runs.remove(0);
        }
    }

    /// Forgets the runs of container `namespace/pod/container` (its log is
    /// no longer followed).
    pub fn forget_runs(&mut self, namespace: &str, pod: &str, container: &str) {
        self.runs
            .remove(&(namespace.into(), pod.into(), container.into()));
    }

    /// The runs known of container `namespace/pod/container`, by start.
    pub fn runs(&self, namespace: &str, pod: &str, container: &str) -> &[ContainerRun] {
        self.runs
            .get(&(namespace.into(), pod.into(), container.into()))
            .map_or(&[], Vec::as_slice)
    }

    /// The runs of `container` of pod `namespace/pod`; with no container
    /// named, those of its only container that has any.
    pub fn container_runs(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Vec<ContainerRun> {
        if let Some(c) = container {
            return self.runs(namespace, pod, c).to_vec();
        }
        let mut of_pod = self
            .runs
            .iter()
            .filter(|((ns, p, _), _)| ns == namespace && p == pod);
        match (of_pod.next(), of_pod.next()) {
            (Some((_, runs)), None) => runs.clone(),
            _ => Vec::new(),
        }
    }

    /// Records that iSCSI session `session` on `node` is disk `disk`.
    pub fn add_iscsi_disk(&mut self, node: &str, session: u32, disk: &str) {
        let disks = self
            .iscsi
            .entry((node.to_string(), session.to_string()))
            .or_default();
        if !disks.iter().any(|d| d == disk) {
            disks.push(disk.to_string());
        }
    }

    /// The disks behind iSCSI session `session` (its number, as the
    /// kernel prints it) on `node`.
    pub fn iscsi_disks(&self, node: &str, session: &str) -> &[String] {
        self.iscsi
            .get(&(node.to_string(), session.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    /// (namespace, name) of the PVC bound to PersistentVolume `pv`.
    pub fn pvc_of_pv(&self, pv: &str) -> Option<(String, String)> {
        self.pvcs
            .iter()
            .find(|(_, volume)| volume.as_deref() == Some(pv))
            .map(|((ns, name), _)| (ns.clone(), name.clone()))
    }

    /// (namespace, name) of the pod with UID `uid`, if known.
    pub fn pod_by_uid(&self, uid: &str) -> Option<(&str, &str)> {
        self.uids
            .get(uid)
            .map(|(namespace, name)| (namespace.as_str(), name.as_str()))
    }

    /// The pod `namespace/name`, if known.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Pod> {
        self.pods.get(&(namespace.to_string(), name.to_string()))
    }

    /// The instances (pod name, is primary) of CloudNativePG cluster
    /// `namespace/cluster`, sorted by name.
    pub fn cnpg_instances(&self, namespace: &str, cluster: &str) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = self
            .pods
            .iter()
            .filter(|((ns, _), pod)| {
                ns == namespace && pod.cnpg_cluster.as_deref() == Some(cluster)
            })
            .map(|((_, name), pod)| (name.clone(), pod.primary))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_claims_owners_and_roles_are_read() {
        let list = br#"{"apiVersion":"v1","kind":"List","items":[
          {"apiVersion":"v1","kind":"Pod","metadata":{"name":"pg-1","namespace":"db",
            "labels":{"cnpg.io/cluster":"pg","cnpg.io/instanceRole":"primary"},
            "ownerReferences":[{"kind":"Cluster","name":"pg","controller":true}]},
           "spec":{"nodeName":"n1","volumes":[{"name":"pgdata","persistentVolumeClaim":{"claimName":"pg-1"}},{"name":"shm","emptyDir":{}}]}},
          {"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"pg-1","namespace":"db"},"spec":{"volumeName":"pvc-123"}},
          {"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}]}"#;
        let mut inventory = Inventory::default();
        assert_eq!(inventory.add_json(list), Ok(2));
        let pod = inventory.pod("db", "pg-1").unwrap();
        assert_eq!(pod.claims, ["pg-1"]);
        assert_eq!(pod.node.as_deref(), Some("n1"));
        assert_eq!(pod.owner, Some(("Cluster".into(), "pg".into())));
        assert_eq!(pod.cnpg_cluster.as_deref(), Some("pg"));
        assert!(pod.primary);
        assert!(pod.liveness.is_empty());
        assert!(
            inventory
                .add_json(b"[oops")
                .unwrap_err()
                .starts_with("not JSON")
        );
    }

    #[test]
    fn liveness_probes_are_read_with_kubernetes_defaults() {
        let mut inventory = Inventory::default();
        inventory
            .add_json(br#"{"kind":"Pod","metadata":{"name":"ml","namespace":"a"},"spec":{"containers":[
              {"name":"ml","livenessProbe":{"httpGet":{"path":"/ping"},"initialDelaySeconds":300,"failureThreshold":6}},
              {"name":"side"}]}}"#)
            .unwrap();
        let probe = inventory.pod("a", "ml").unwrap().liveness["ml"];
        assert_eq!(
            probe,
            Probe {
                initial_delay_s: 300,
                period_s: 10,
                failure_threshold: 6
            }
        );
        assert_eq!(probe.allows_s(), 360);
    }

    #[test]
    fn a_device_leads_through_the_mount_table_to_its_pvc_and_pod() {
        let mut inventory = Inventory::default();
        inventory
            .add_json(br#"{"kind":"List","items":[
              {"kind":"Pod","metadata":{"name":"pg-2","namespace":"db","uid":"u-2"},"spec":{"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"pg-2"}}]}},
              {"kind":"PersistentVolumeClaim","metadata":{"name":"pg-2","namespace":"db"},"spec":{"volumeName":"pvc-22"}}]}"#)
            .unwrap();
        let table = "60 36 8:32 / /var/lib/kubelet/pods/u-2/volumes/kubernetes.io~csi/pvc-22/mount rw - ext4 /dev/sdc rw\n";
        assert_eq!(inventory.add_mounts("n1", table), 1);
        let expected = DeviceVolume {
            namespace: "db".into(),
            pvc: "pg-2".into(),
            pod: Some("pg-2".into()),
        };
        assert_eq!(inventory.device_volume("n1", "sdc"), Some(expected.clone()));
        assert_eq!(
            inventory.device_volume("n1", "sdc1"),
            Some(expected),
            "a partition of the device"
        );
        assert_eq!(inventory.device_volume("n2", "sdc"), None);
        assert_eq!(inventory.device_volume("n1", "sdd"), None);
    }
}
