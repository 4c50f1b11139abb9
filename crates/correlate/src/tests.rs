use std::collections::BTreeMap;

use faultline_core::{Class, Severity};

use super::*;

const INVENTORY: &[u8] = br#"{"apiVersion":"v1","kind":"List","items":[
  {"kind":"Pod","metadata":{"name":"db-1","namespace":"app","labels":{"cnpg.io/cluster":"db","cnpg.io/instanceRole":"primary"}},
   "spec":{"nodeName":"n1","volumes":[{"name":"pgdata","persistentVolumeClaim":{"claimName":"db-1"}}]}},
  {"kind":"Pod","metadata":{"name":"db-2","namespace":"app","labels":{"cnpg.io/cluster":"db","cnpg.io/instanceRole":"replica"}},
   "spec":{"nodeName":"n1","volumes":[{"name":"pgdata","persistentVolumeClaim":{"claimName":"db-2"}}]}},
  {"kind":"Pod","metadata":{"name":"loki-0","namespace":"monitoring","ownerReferences":[{"kind":"StatefulSet","name":"loki","controller":true}]},
   "spec":{"nodeName":"n1","volumes":[{"name":"storage","persistentVolumeClaim":{"claimName":"storage-loki-0"}}]}}]}"#;

const MINUTE: i64 = 60_000_000_000;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn observe(
    c: &mut Correlator,
    ts: i64,
    signature: &str,
    class: Class,
    severity: Severity,
    l: &BTreeMap<String, String>,
) {
    c.observe(&Observation {
        ts,
        signature,
        class,
        severity,
        labels: l,
        captures: &[],
        summary: "first summary",
        remediation: "signature remediation",
        evidence: "evidence",
    });
    assert_neighbourhoods_tell_the_whole_story(c);
}

/// Each incident's report built from its neighbourhood alone (what
/// [`Correlator::changes`] uses) is the one built from every incident.
fn assert_neighbourhoods_tell_the_whole_story(c: &Correlator) {
    for whole in c.reports() {
        let near = c.reports_of(&std::collections::BTreeSet::from([whole.key.clone()]));
        let [near] = &near[..] else {
            panic!(
                "{}: {} reports from its neighbourhood",
                whole.key,
                near.len()
            );
        };
        let facts = |r: &Report| {
            (
                r.key.clone(),
                r.summary.clone(),
                r.remediation.clone(),
                r.incident.related.clone(),
                r.incident.state,
                r.incident.fired_count,
                r.incident.severity,
                r.incident.hits,
            )
        };
        assert_eq!(facts(near), facts(&whole));
    }
}

/// The built-in incident rules.
fn rules() -> Vec<Rule> {
    faultline_signatures::Library::builtin()
        .expect("the built-in library loads")
        .rules()
        .to_vec()
}

fn correlator() -> Correlator {
    let mut inventory = Inventory::default();
    inventory.add_json(INVENTORY).unwrap();
    Correlator::new(inventory, &rules())
}

fn report<'a>(reports: &'a [Report], key: &str) -> &'a Report {
    reports.iter().find(|r| r.key == key).unwrap_or_else(|| {
        panic!(
            "no {key} in {:?}",
            reports.iter().map(|r| &r.key).collect::<Vec<_>>()
        )
    })
}

#[test]
fn an_empty_replica_gets_its_pvc_recreated_and_a_read_only_primary_only_a_pod_bounce() {
    let mut c = correlator();
    let replica = labels(&[("namespace", "app"), ("pod", "db-2")]);
    let primary = labels(&[("namespace", "app"), ("pod", "db-1")]);
    observe(
        &mut c,
        0,
        "cnpg-pg-controldata-failed",
        Class::PgControldata,
        Severity::Critical,
        &replica,
    );
    observe(
        &mut c,
        MINUTE,
        "cnpg-pgdata-read-only",
        Class::VolumeReadOnly,
        Severity::Critical,
        &primary,
    );
    observe(
        &mut c,
        2 * MINUTE,
        "kubelet-crashloop-backoff",
        Class::RestartLoop,
        Severity::Warning,
        &replica,
    );
    let reports = c.reports();
    let empty = report(&reports, "pvc/app/db-2");
    assert_eq!(
        (
            empty.incident.state,
            empty.incident.fired_at,
            empty.incident.hits
        ),
        (State::Firing, Some(0), 2)
    );
    assert!(
        empty
            .remediation
            .contains("kubectl delete pod db-2 -n app && kubectl delete pvc db-2 -n app"),
        "{}",
        empty.remediation
    );
    let ro = report(&reports, "pvc/app/db-1");
    assert!(
        ro.remediation.contains("kubectl delete pod db-1 -n app"),
        "{}",
        ro.remediation
    );
    assert!(
        ro.remediation.contains("Do not delete PVC db-1"),
        "{}",
        ro.remediation
    );
    assert!(
        ro.summary.contains("read-only") && ro.summary.contains("node n1"),
        "{}",
        ro.summary
    );
    let rollup = report(&reports, "cnpg/app/db");
    assert_eq!(rollup.incident.state, State::Firing);
    assert!(
        rollup
            .summary
            .contains("1 of 2 instances on read-only volumes"),
        "{}",
        rollup.summary
    );
    assert!(
        rollup.summary.contains("primary affected"),
        "{}",
        rollup.summary
    );
    assert!(
        rollup.incident.related.contains("pvc/app/db-1")
            && rollup.incident.related.contains("pvc/app/db-2")
    );
    assert!(
        empty.incident.related.contains("cnpg/app/db"),
        "links go both ways"
    );
}

#[test]
fn lokis_volume_and_the_failing_pushes_are_one_story() {
    let mut c = correlator();
    let loki = labels(&[("namespace", "monitoring"), ("pod", "loki-0")]);
    let promtail = labels(&[("namespace", "monitoring"), ("pod", "promtail-abcde")]);
    observe(
        &mut c,
        0,
        "loki-wal-read-only",
        Class::VolumeReadOnly,
        Severity::Critical,
        &loki,
    );
    observe(
        &mut c,
        MINUTE,
        "promtail-push-batch-dropped",
        Class::LogPushFailure,
        Severity::Critical,
        &promtail,
    );
    let reports = c.reports();
    let pipeline = report(&reports, "pipeline/loki");
    assert!(
        pipeline
            .incident
            .related
            .contains("pvc/monitoring/storage-loki-0")
    );
    assert!(
        pipeline
            .summary
            .contains("cause: pvc/monitoring/storage-loki-0"),
        "{}",
        pipeline.summary
    );
    assert!(
        pipeline
            .remediation
            .contains("kubectl delete pod loki-0 -n monitoring"),
        "{}",
        pipeline.remediation
    );
}

#[test]
fn a_probe_kill_loop_gets_a_startup_probe_remediation() {
    let mut c = Correlator::new(Inventory::default(), &rules());
    let ml = labels(&[
        ("namespace", "immich"),
        ("pod", "immich-machine-learning-7d4b9c6f58-6rtdn"),
    ]);
    for i in 0..3 {
        observe(
            &mut c,
            i * 6 * MINUTE / 2,
            "kubelet-probe-kill",
            Class::ProbeKill,
            Severity::Warning,
            &ml,
        );
    }
    let reports = c.reports();
    let workload = report(
        &reports,
        "workload/immich/Deployment/immich-machine-learning",
    );
    assert_eq!(workload.incident.state, State::Firing);
    assert!(
        workload.remediation.contains("startupProbe"),
        "{}",
        workload.remediation
    );
    assert!(workload.summary.contains("3 kills"), "{}", workload.summary);
}

#[test]
fn time_comes_from_the_hits_and_quiet_incidents_resolve() {
    let mut c = correlator();
    let node = labels(&[("node", "n1")]);
    observe(
        &mut c,
        0,
        "kernel-ext4-remount-read-only",
        Class::VolumeReadOnly,
        Severity::Critical,
        &node,
    );
    c.advance(2 * 60 * MINUTE);
    let reports = c.reports();
    let n = report(&reports, "node/n1");
    assert_eq!(
        (n.incident.state, n.incident.resolved_at),
        (State::Resolved, Some(60 * MINUTE))
    );
}

#[test]
fn the_number_of_incidents_is_bounded_and_evictions_are_counted() {
    let mut c = Correlator::new(Inventory::default(), &rules()).with_max_incidents(10);
    for i in 0..100 {
        let l = labels(&[("node", &format!("n{i}"))]);
        observe(
            &mut c,
            i,
            "kernel-hung-task",
            Class::KernelHang,
            Severity::Info,
            &l,
        );
    }
    assert_eq!(c.reports().len(), 10);
    assert_eq!(c.evicted, 90);
}

#[test]
fn a_probe_kill_loop_names_the_probe_budget_and_the_kill_rhythm() {
    let mut inventory = Inventory::default();
    inventory
        .add_json(br#"{"kind":"Pod","metadata":{"name":"ml-7d4b9c6f58-6rtdn","namespace":"immich",
          "ownerReferences":[{"kind":"ReplicaSet","name":"ml-7d4b9c6f58","controller":true}]},
          "spec":{"containers":[{"name":"ml","livenessProbe":{"initialDelaySeconds":300,"failureThreshold":6,"periodSeconds":10}}]}}"#)
        .unwrap();
    let mut c = Correlator::new(inventory, &rules());
    let l = labels(&[
        ("namespace", "immich"),
        ("pod", "ml-7d4b9c6f58-6rtdn"),
        ("container", "ml"),
    ]);
    for i in 0..4 {
        observe(
            &mut c,
            i * 6 * MINUTE,
            "kubelet-probe-kill",
            Class::ProbeKill,
            Severity::Warning,
            &l,
        );
    }
    let reports = c.reports();
    let ml = report(&reports, "workload/immich/Deployment/ml");
    assert!(
        ml.summary.contains("4 kills, as often as every 6m0s"),
        "{}",
        ml.summary
    );
    assert!(ml.remediation.contains("allows 360 s of start-up (initialDelaySeconds 300 + failureThreshold 6 × periodSeconds 10)"), "{}", ml.remediation);
    assert!(
        ml.remediation.contains("failureThreshold 72 (720 s)"),
        "{}",
        ml.remediation
    );
}

#[test]
fn a_path_in_the_message_finds_the_claim_mounted_there() {
    let mut inventory = Inventory::default();
    inventory
        .add_json(
            br#"{"kind":"Pod","metadata":{"name":"pg-0","namespace":"app"},
          "spec":{"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data-pg-0"}},
                             {"name":"wal","persistentVolumeClaim":{"claimName":"wal-pg-0"}},
                             {"name":"tmp","emptyDir":{}}],
                  "containers":[{"name":"postgres","volumeMounts":[
                      {"name":"data","mountPath":"/var/lib/postgresql/data"},
                      {"name":"wal","mountPath":"/var/lib/postgresql/data/pg_wal"},
                      {"name":"tmp","mountPath":"/tmp"}]}]}}"#,
        )
        .unwrap();
    let mut c = Correlator::new(inventory, &rules());
    let l = labels(&[
        ("namespace", "app"),
        ("pod", "pg-0"),
        ("container", "postgres"),
    ]);
    let observe_path = |c: &mut Correlator, path: &str| {
        c.observe(&Observation {
            ts: 0,
            signature: "postgres-read-only-file-system",
            class: Class::VolumeReadOnly,
            severity: Severity::Critical,
            labels: &l,
            captures: &[("path".to_string(), path.to_string())],
            summary: "s",
            remediation: "r",
            evidence: "e",
        })
    };
    // The longest mount path that contains the path wins.
    assert_eq!(
        observe_path(&mut c, "/var/lib/postgresql/data/pg_wal/xlogtemp.72"),
        "pvc/app/wal-pg-0"
    );
    assert_eq!(
        observe_path(&mut c, "/var/lib/postgresql/data/base/1/1259"),
        "pvc/app/data-pg-0"
    );
    // Not under any claim's mount (nor a prefix of a longer name): the
    // pod's first claim, as without a path.
    assert_eq!(
        observe_path(&mut c, "/var/lib/postgresql/database"),
        "pvc/app/data-pg-0"
    );
}

fn pod_with_last_run(reason: &str, exit_code: i64) -> Inventory {
    let mut inventory = Inventory::default();
    inventory
        .add_json(
            format!(
                r#"{{"kind":"Pod","metadata":{{"name":"api-5d9f8b7c6d-x2x4q","namespace":"shop",
                  "ownerReferences":[{{"kind":"ReplicaSet","name":"api-5d9f8b7c6d","controller":true}}]}},
                  "spec":{{"containers":[{{"name":"api"}}]}},
                  "status":{{"containerStatuses":[{{"name":"api","restartCount":7,
                    "lastState":{{"terminated":{{"exitCode":{exit_code},"reason":"{reason}"}}}}}}]}}}}"#
            )
            .as_bytes(),
        )
        .unwrap();
    inventory
}

fn back_off(c: &mut Correlator) {
    let l = labels(&[
        ("namespace", "shop"),
        ("pod", "api-5d9f8b7c6d-x2x4q"),
        ("container", "api"),
    ]);
    observe(
        c,
        0,
        "kubelet-crashloop-backoff",
        Class::RestartLoop,
        Severity::Warning,
        &l,
    );
}

#[test]
fn a_crash_loop_is_told_apart_from_a_probe_kill_and_an_oom_kill() {
    let mut c = Correlator::new(pod_with_last_run("Error", 1), &rules());
    back_off(&mut c);
    let reports = c.reports();
    let api = report(&reports, "workload/shop/Deployment/api");
    assert_eq!(api.incident.state, State::Firing);
    assert!(
        api.summary
            .contains("crashes and restarts in a loop: its last run exited with code 1 (Error)"),
        "{}",
        api.summary
    );
    assert!(
        api.remediation
            .contains("kubectl logs -n shop api-5d9f8b7c6d-x2x4q -c api --previous"),
        "{}",
        api.remediation
    );
    assert!(!api.remediation.contains("startupProbe"));

    let mut c = Correlator::new(pod_with_last_run("OOMKilled", 137), &rules());
    back_off(&mut c);
    let reports = c.reports();
    let api = report(&reports, "workload/shop/Deployment/api");
    assert!(
        api.summary.contains("is killed for memory"),
        "{}",
        api.summary
    );
}

#[test]
fn probe_kills_are_measured_against_the_runs_in_the_containers_own_log() {
    let mut inventory = Inventory::default();
    inventory
        .add_json(br#"{"kind":"Pod","metadata":{"name":"ml-7d4b9c6f58-6rtdn","namespace":"immich",
          "ownerReferences":[{"kind":"ReplicaSet","name":"ml-7d4b9c6f58","controller":true}]},
          "spec":{"containers":[{"name":"ml","livenessProbe":{"initialDelaySeconds":300,"failureThreshold":6,"periodSeconds":10}}]}}"#)
        .unwrap();
    let s = 1_000_000_000;
    // Two runs, each killed about 360 s after it started.
    for start in [0, 400] {
        inventory.add_run(
            "immich",
            "ml-7d4b9c6f58-6rtdn",
            "ml",
            inventory::ContainerRun {
                started: start * s,
                ended: (start + 359) * s,
                tail: vec![
                    ((start + 8) * s, "Loading visual model to memory".into()),
                    ((start + 359) * s, "Handling signal: term".into()),
                ],
            },
        );
    }
    let mut c = Correlator::new(inventory, &rules());
    let l = labels(&[
        ("namespace", "immich"),
        ("pod", "ml-7d4b9c6f58-6rtdn"),
        ("container", "ml"),
    ]);
    for kill in [360, 760] {
        observe(
            &mut c,
            kill * s,
            "kubelet-probe-kill",
            Class::ProbeKill,
            Severity::Warning,
            &l,
        );
    }
    let reports = c.reports();
    let ml = report(&reports, "workload/immich/Deployment/ml");
    assert!(
        ml.summary
            .contains("each about 360 s after the container started"),
        "{}",
        ml.summary
    );
    assert!(
        ml.remediation.contains(
            "the kills come about 360 s after the container starts, which is that allowance"
        ),
        "{}",
        ml.remediation
    );
    assert!(
        ml.remediation
            .contains("+8 s «Loading visual model to memory», +359 s «Handling signal: term»"),
        "{}",
        ml.remediation
    );
}

#[test]
fn a_silent_stream_fires_at_its_limit_and_resolves_when_it_speaks_again() {
    let mut c = correlator();
    let key = c.stream_silent("monitoring/loki-0/loki", 10 * MINUTE, 15 * MINUTE);
    assert_eq!(key, "stream/monitoring/loki-0/loki");
    // Hits elsewhere (and time passing) do not resolve a silence.
    let node = labels(&[("node", "n1")]);
    observe(
        &mut c,
        300 * MINUTE,
        "kernel-hung-task",
        Class::KernelHang,
        Severity::Info,
        &node,
    );
    let reports = c.reports();
    let silent = report(&reports, &key);
    assert_eq!(
        (silent.incident.state, silent.incident.fired_at),
        (State::Firing, Some(25 * MINUTE))
    );
    assert!(
        silent
            .remediation
            .contains("kubectl logs -n monitoring loki-0 -c loki --since=15m"),
        "{}",
        silent.remediation
    );
    assert_eq!(
        silent.incident.evidence().next().unwrap(),
        "no line from monitoring/loki-0/loki since 1970-01-01T00:10:00Z (limit 900 s)"
    );
    c.stream_resumed("monitoring/loki-0/loki", 301 * MINUTE);
    let reports = c.reports();
    let silent = report(&reports, &key);
    assert_eq!(
        (silent.incident.state, silent.incident.resolved_at),
        (State::Resolved, Some(301 * MINUTE))
    );
    assert!(
        silent.summary.contains("it spoke again at"),
        "{}",
        silent.summary
    );
}

#[test]
fn an_iscsi_session_error_stays_the_nodes_and_links_the_volume_behind_it() {
    let mut inventory = Inventory::default();
    inventory
        .add_json(br#"{"kind":"List","items":[
          {"kind":"Pod","metadata":{"name":"db-1","namespace":"app","uid":"7fce4bee"},
           "spec":{"nodeName":"n1","volumes":[{"name":"pgdata","persistentVolumeClaim":{"claimName":"db-1"}}]}},
          {"kind":"PersistentVolumeClaim","metadata":{"name":"db-1","namespace":"app"},"spec":{"volumeName":"pvc-13ea"}}]}"#)
        .unwrap();
    inventory.add_mounts(
        "n1",
        "60 36 8:32 / /var/lib/kubelet/pods/7fce4bee/volumes/kubernetes.io~csi/pvc-13ea/mount rw,relatime shared:19 - ext4 /dev/sdc rw\n",
    );
    inventory.add_iscsi_disk("n1", 3, "sdc");
    let mut c = Correlator::new(inventory, &rules());
    let node = labels(&[("node", "n1")]);
    fn hit<'a>(
        signature: &'a str,
        class: Class,
        severity: Severity,
        labels: &'a BTreeMap<String, String>,
        captures: &'a [(String, String)],
    ) -> Observation<'a> {
        Observation {
            ts: 0,
            signature,
            class,
            severity,
            labels,
            captures,
            summary: "s",
            remediation: "r",
            evidence: "e",
        }
    }
    let session = [("session".to_string(), "3".to_string())];
    let key = c.observe(&hit(
        "kernel-iscsi-connection-error",
        Class::StorageTransport,
        Severity::Warning,
        &node,
        &session,
    ));
    assert_eq!(key, "node/n1");
    // The disk's own I/O error is the volume's.
    let device = [("device".to_string(), "sdc".to_string())];
    let key = c.observe(&hit(
        "kernel-ext4-remount-read-only",
        Class::VolumeReadOnly,
        Severity::Critical,
        &node,
        &device,
    ));
    assert_eq!(key, "pvc/app/db-1");
    let reports = c.reports();
    let n1 = report(&reports, "node/n1");
    assert!(n1.incident.related.contains("pvc/app/db-1"), "{n1:?}");
    assert!(
        n1.summary.contains("iSCSI sessions failing: 3"),
        "{}",
        n1.summary
    );
    let pvc = report(&reports, "pvc/app/db-1");
    assert!(pvc.incident.related.contains("node/n1"));
}

#[test]
fn a_kernel_oom_kill_finds_its_pod_by_the_uid_in_its_cgroup() {
    let mut inventory = Inventory::default();
    inventory
        .add_json(
            br#"{"kind":"Pod","metadata":{"name":"ml-7d4b9c6f58-6rtdn","namespace":"immich",
          "uid":"eded8c65-6e8e-4c6e-a889-3e427565c740",
          "ownerReferences":[{"kind":"ReplicaSet","name":"ml-7d4b9c6f58","controller":true}]},
          "spec":{"containers":[{"name":"ml"}]}}"#,
        )
        .unwrap();
    let mut c = Correlator::new(inventory, &rules());
    let node = labels(&[("node", "n1")]);
    let captures = [(
        "pod_uid".to_string(),
        "eded8c65_6e8e_4c6e_a889_3e427565c740".to_string(),
    )];
    let key = c.observe(&Observation {
        ts: 0,
        signature: "kernel-oom-kill-task",
        class: Class::OomKill,
        severity: Severity::Warning,
        labels: &node,
        captures: &captures,
        summary: "s",
        remediation: "r",
        evidence: "e",
    });
    assert_eq!(key, "workload/immich/Deployment/ml");
}

#[test]
fn a_volume_named_in_the_message_picks_that_claim_of_the_pod() {
    let mut inventory = Inventory::default();
    inventory
        .add_json(br#"{"kind":"List","items":[
          {"kind":"Pod","metadata":{"name":"ml-7d4b9c6f58-6rtdn","namespace":"immich"},
           "spec":{"volumes":[{"name":"cache","persistentVolumeClaim":{"claimName":"ml-cache"}},
                              {"name":"models","persistentVolumeClaim":{"claimName":"ml-models"}}]}},
          {"kind":"PersistentVolume","metadata":{"name":"pvc-bdbef677"},
           "spec":{"claimRef":{"namespace":"immich","name":"ml-models"}}}]}"#)
        .unwrap();
    let mut c = Correlator::new(inventory, &rules());
    let l = labels(&[("namespace", "immich"), ("pod", "ml-7d4b9c6f58-6rtdn")]);
    let mut mount_failed = |volume: &str| {
        c.observe(&Observation {
            ts: 0,
            signature: "kubelet-mount-setup-failed",
            class: Class::VolumeMount,
            severity: Severity::Warning,
            labels: &l,
            captures: &[("volume".to_string(), volume.to_string())],
            summary: "s",
            remediation: "r",
            evidence: "e",
        })
    };
    // By the pod's volume name, and by the PV bound to the claim (known
    // here only from the PV's claimRef).
    assert_eq!(mount_failed("models"), "pvc/immich/ml-models");
    assert_eq!(mount_failed("pvc-bdbef677"), "pvc/immich/ml-models");
    assert_eq!(mount_failed("cache"), "pvc/immich/ml-cache");
    assert_eq!(mount_failed("pvc-unknown"), "pvc/immich/ml-cache");
}

#[test]
fn resolution_goes_from_inventory_facts_to_conventions_to_labels() {
    let mut inventory = Inventory::default();
    inventory
        .add_json(br#"{"kind":"Pod","metadata":{"name":"db-1","namespace":"app","labels":{"cnpg.io/cluster":"db"}},
          "spec":{"nodeName":"n1",
                  "volumes":[{"name":"pgdata","persistentVolumeClaim":{"claimName":"db-1"}},
                             {"name":"pg-wal","persistentVolumeClaim":{"claimName":"db-1-wal"}}],
                  "containers":[{"name":"postgres","volumeMounts":[
                      {"name":"pgdata","mountPath":"/var/lib/postgresql/data"},
                      {"name":"pg-wal","mountPath":"/var/lib/postgresql/wal"}]}]}}"#)
        .unwrap();
    let mut c = Correlator::new(inventory, &rules());
    let mut key = |signature: &str, class, pairs: &[(&str, &str)], captures: &[(&str, &str)]| {
        let l = labels(pairs);
        let captures: Vec<(String, String)> = captures
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.observe(&Observation {
            ts: 0,
            signature,
            class,
            severity: Severity::Critical,
            labels: &l,
            captures: &captures,
            summary: "s",
            remediation: "r",
            evidence: "e",
        })
    };
    let db1 = [("namespace", "app"), ("pod", "db-1")];
    // Inventory + a path: the claim mounted there.
    assert_eq!(
        key(
            "postgres-wal-read-only",
            Class::VolumeReadOnly,
            &db1,
            &[(
                "path",
                "/var/lib/postgresql/wal/pg_wal/000000010000000000000003"
            )]
        ),
        "pvc/app/db-1-wal"
    );
    // Inventory, no path: the claim named like the pod.
    assert_eq!(
        key("postgres-io-error", Class::DiskIoError, &db1, &[]),
        "pvc/app/db-1"
    );
    // Unknown pod, CloudNativePG-like name and signature: the convention.
    assert_eq!(
        key(
            "cnpg-pgdata-empty",
            Class::PgControldata,
            &[("namespace", "app"), ("pod", "other-db-2")],
            &[]
        ),
        "pvc/app/other-db-2"
    );
    // Unknown pod, no convention: the pod itself.
    assert_eq!(
        key(
            "postgres-disk-full",
            Class::DiskFull,
            &[("namespace", "app"), ("pod", "worker")],
            &[]
        ),
        "pod/app/worker"
    );
    // No pod at all: the node.
    assert_eq!(
        key(
            "kernel-hung-task",
            Class::KernelHang,
            &[("node", "n1")],
            &[]
        ),
        "node/n1"
    );
}

#[test]
fn changes_announce_each_firing_and_resolution_once() {
    let mut c = correlator();
    let node = labels(&[("node", "n1")]);
    let hit = |c: &mut Correlator, ts| {
        observe(
            c,
            ts,
            "kernel-ext4-remount-read-only",
            Class::VolumeReadOnly,
            Severity::Critical,
            &node,
        )
    };
    assert!(c.changes().is_empty());
    hit(&mut c, 0);
    let fired: Vec<(String, State)> = c
        .changes()
        .into_iter()
        .map(|r| (r.key, r.incident.state))
        .collect();
    assert_eq!(fired, [("node/n1".to_string(), State::Firing)]);
    hit(&mut c, MINUTE);
    assert!(c.changes().is_empty(), "still firing: no news");
    c.advance(200 * MINUTE);
    let resolved = c.changes();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].incident.state, State::Resolved);
    assert!(c.changes().is_empty());
    hit(&mut c, 300 * MINUTE);
    let again = c.changes();
    assert_eq!(
        (again[0].incident.state, again[0].incident.fired_count),
        (State::Firing, 2)
    );
}

#[test]
fn an_unhealthy_source_is_the_pipeline_incident_until_it_recovers() {
    let mut c = correlator();
    let key = c.source_unhealthy(
        "loki",
        5 * MINUTE,
        "HTTP 500: write /var/loki/wal: read-only file system",
    );
    assert_eq!(key, "pipeline/loki");
    c.advance(300 * MINUTE);
    let reports = c.reports();
    let loki = report(&reports, "pipeline/loki");
    assert_eq!(
        (loki.incident.state, loki.incident.fired_at),
        (State::Firing, Some(5 * MINUTE)),
        "stays firing while unhealthy, however long"
    );
    assert!(
        loki.summary
            .contains("its API fails faultline's reads (loki is unhealthy: HTTP 500"),
        "{}",
        loki.summary
    );
    assert!(loki.remediation.contains("/ready"), "{}", loki.remediation);
    c.source_healthy("loki", 301 * MINUTE);
    let reports = c.reports();
    let loki = report(&reports, "pipeline/loki");
    assert_eq!(loki.incident.resolved_at, Some(301 * MINUTE));
}

#[test]
fn objects_gone_from_the_cluster_leave_the_inventory() {
    let mut inventory = Inventory::default();
    inventory
        .add_json(
            br#"{"kind":"List","items":[
            {"kind":"Pod","metadata":{"name":"db-1","namespace":"prod","uid":"u-1"},"spec":{"nodeName":"n1"}},
            {"kind":"PersistentVolumeClaim","metadata":{"name":"db-1","namespace":"prod"},"spec":{"volumeName":"pv-1"}}]}"#,
        )
        .unwrap();
    assert!(inventory.pod("prod", "db-1").is_some());
    assert_eq!(
        inventory.pvc_of_pv("pv-1"),
        Some(("prod".into(), "db-1".into()))
    );
    inventory.remove("PersistentVolume", "", "pv-1");
    assert_eq!(inventory.pvc_of_pv("pv-1"), None);
    inventory.remove("Pod", "prod", "db-1");
    assert!(inventory.pod("prod", "db-1").is_none());
    assert_eq!(inventory.pod_by_uid("u-1"), None);
    inventory.remove("PersistentVolumeClaim", "prod", "db-1");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(150))]

    /// For any sequence of hits and quiet periods, with the built-in rules
    /// and rules with `for`, an incident is announced firing and resolved
    /// in turn: never resolved before it fired, never firing twice
    /// without resolving in between.
    #[test]
    fn incidents_fire_and_resolve_in_turn(
        steps in proptest::collection::vec(
            (0i64..30, 0usize..4, 0usize..3),
            1..80,
        ),
        with_for in proptest::bool::ANY,
    ) {
        let mut rules = rules();
        if with_for {
            rules.insert(0, Rule {
                class: None,
                severity: Some(Severity::Critical),
                threshold: Some(2),
                window_ns: 5 * MINUTE,
                for_ns: 2 * MINUTE,
                resolve_after_ns: 15 * MINUTE,
            });
        }
        let mut inventory = Inventory::default();
        inventory.add_json(INVENTORY).unwrap();
        let mut c = Correlator::new(inventory, &rules);
        let pods = ["db-1", "db-2", "loki-0"];
        let kinds = [
            (Class::VolumeReadOnly, Severity::Critical),
            (Class::ProbeFailure, Severity::Warning),
            (Class::DiskIoError, Severity::Info),
            (Class::RestartLoop, Severity::Warning),
        ];
        let mut now = 0;
        // The last state announced per incident.
        let mut announced: BTreeMap<String, State> = BTreeMap::new();
        for (gap_minutes, kind, pod) in steps {
            now += gap_minutes * MINUTE;
            let (class, severity) = kinds[kind];
            let namespace = if pods[pod] == "loki-0" { "monitoring" } else { "app" };
            let l = labels(&[("namespace", namespace), ("pod", pods[pod])]);
            observe(&mut c, now, "sig", class, severity, &l);
            for step in [now, now + 30 * MINUTE] {
                c.advance(step);
                for change in c.changes() {
                    let was = announced.get(&change.key).copied();
                    match change.incident.state {
                        // A CloudNativePG rollup is news again when another
                        // instance fires while it fires (same alert labels:
                        // Alertmanager updates it, nobody is paged twice).
                        State::Firing if change.key.starts_with("cnpg/") => {}
                        State::Firing => proptest::prop_assert_ne!(was, Some(State::Firing), "{} fired twice", change.key),
                        State::Resolved => proptest::prop_assert_eq!(was, Some(State::Firing), "{} resolved before firing", change.key),
                        State::Pending => proptest::prop_assert!(false, "pending is not news"),
                    }
                    announced.insert(change.key.clone(), change.incident.state);
                }
            }
            now += 30 * MINUTE;
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]

    /// However many distinct things break at once, the correlator keeps at
    /// most its cap of incidents, and counts every one it lets go (all at
    /// one time, so none leaves by ending).
    #[test]
    fn the_incident_table_stays_within_its_cap_and_counts_evictions(
        pods in proptest::collection::vec(0u32..5000, 1..300),
        cap in 1usize..50,
    ) {
        let mut c = Correlator::new(Inventory::default(), &rules()).with_max_incidents(cap);
        let mut distinct = std::collections::BTreeSet::new();
        for pod in &pods {
            let name = format!("pod-{pod}");
            let l = labels(&[("namespace", "load"), ("pod", &name)]);
            let key = c.observe(&Observation {
                ts: MINUTE,
                signature: "sig",
                class: Class::ProbeFailure,
                severity: Severity::Warning,
                labels: &l,
                captures: &[],
                summary: "s",
                remediation: "r",
                evidence: "e",
            });
            distinct.insert(key);
            proptest::prop_assert!(c.incidents.len() <= cap, "{} incidents over a cap of {cap}", c.incidents.len());
        }
        proptest::prop_assert!(
            c.evicted as usize >= distinct.len().saturating_sub(cap),
            "{} evicted of {} distinct incidents with a cap of {cap}",
            c.evicted,
            distinct.len()
        );
    }
}
