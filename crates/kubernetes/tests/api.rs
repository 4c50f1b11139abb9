//! The Kubernetes API source against a test API server that follows the
//! documented API: pod logs followed and the dead run read once per
//! restart, Events as records, the inventory from watches, and the
//! watches surviving 410 Gone and throttling — with no more than the
//! least-privilege role allows.

use std::sync::Arc;
use std::time::Duration;

use faultline_kubernetes::{InventoryChange, KubeConfig, Outputs, Stats, StreamSelector};
use faultline_sources::Batch;
use faultline_sources::overlap::Marks;
use faultline_testkit::kubernetes::{TestKubernetes, pod};
use serde_json::json;
use tokio::sync::{mpsc, watch};

const SECOND: i64 = 1_000_000_000;

/// The role faultline's manifests grant.
const ROLE: [(&str, &str); 9] = [
    ("list", "pods"),
    ("watch", "pods"),
    ("get", "pods/log"),
    ("list", "events"),
    ("watch", "events"),
    ("list", "persistentvolumeclaims"),
    ("watch", "persistentvolumeclaims"),
    ("list", "persistentvolumes"),
    ("watch", "persistentvolumes"),
];

fn now() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap()
}

struct Source {
    batches: mpsc::Receiver<Batch>,
    inventory: mpsc::Receiver<InventoryChange>,
    errors: mpsc::Receiver<String>,
    streaming: watch::Sender<Option<i64>>,
    stop: watch::Sender<bool>,
    stats: Arc<Stats>,
    _dir: tempfile::TempDir,
}

async fn start(url: &str, config: KubeConfig, streaming: Option<i64>) -> Source {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = TestKubernetes::kubeconfig(url, dir.path());
    let client = faultline_kubernetes::client(Some(&kubeconfig))
        .await
        .unwrap();
    let (batches_tx, batches) = mpsc::channel(64);
    let (inventory_tx, inventory) = mpsc::channel(64);
    let (errors_tx, errors) = mpsc::channel(64);
    let (streaming_tx, streaming_rx) = watch::channel(streaming);
    let (stop, stop_rx) = watch::channel(false);
    let stats = Arc::new(Stats::default());
    let outputs = Outputs {
        batches: batches_tx,
        inventory: inventory_tx,
        errors: errors_tx,
        marks: Marks::default(),
        stats: stats.clone(),
    };
    tokio::spawn(faultline_kubernetes::run(
        client,
        config,
        outputs,
        streaming_rx,
        stop_rx,
    ));
    Source {
        batches,
        inventory,
        errors,
        streaming: streaming_tx,
        stop,
        stats,
        _dir: dir,
    }
}

/// The next `count` lines, as (origin, line).
async fn lines(source: &mut Source, count: usize) -> Vec<(String, String)> {
    let mut got = Vec::new();
    while got.len() < count {
        let batch = tokio::time::timeout(Duration::from_secs(20), source.batches.recv())
            .await
            .unwrap_or_else(|_| {
                let errors: Vec<String> =
                    std::iter::from_fn(|| source.errors.try_recv().ok()).collect();
                panic!("only {got:?} arrived; errors: {errors:?}")
            })
            .unwrap();
        for line in String::from_utf8(batch.lines).unwrap().lines() {
            got.push((batch.stream.origin.clone(), line.to_string()));
        }
    }
    got
}

/// Inventory changes until one satisfies `wanted`.
async fn inventory_until(source: &mut Source, wanted: impl Fn(&InventoryChange) -> bool) {
    loop {
        let change = tokio::time::timeout(Duration::from_secs(20), source.inventory.recv())
            .await
            .expect("the inventory change in time")
            .unwrap();
        if wanted(&change) {
            return;
        }
    }
}

fn applied(kind: &str, name: &str) -> impl Fn(&InventoryChange) -> bool {
    let (kind, name) = (kind.to_string(), name.to_string());
    move |change| match change {
        InventoryChange::Applied(json) => {
            let object: serde_json::Value = serde_json::from_slice(json).unwrap();
            object["kind"] == kind.as_str() && object["metadata"]["name"] == name.as_str()
        }
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_are_read_once_across_restarts_with_least_privilege() {
    let (kube, url) = TestKubernetes::start().await;
    kube.allow_only(&ROLE);
    let (ns, name) = ("linkding-prod", "linkding-db-production-cnpg-v1-1");
    kube.apply(pod(
        ns,
        name,
        "talos-519-vmy",
        &["postgres"],
        &[("pgdata", name)],
    ));
    kube.apply(pod(
        "kube-system",
        "coredns-1",
        "talos-519-vmy",
        &["coredns"],
        &[],
    ));
    kube.apply(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"volumeName": "pvc-0b5e"}, "status": {"phase": "Bound"},
    }));
    let since = now();
    kube.log(
        ns,
        name,
        "postgres",
        since - 60 * SECOND,
        "before the start",
    );
    kube.log(ns, name, "postgres", since + SECOND, "first");
    kube.log(
        "kube-system",
        "coredns-1",
        "coredns",
        since + SECOND,
        "not selected",
    );
    let config = KubeConfig {
        streams: Some(StreamSelector::parse(r#"{namespace=~".*-prod"}"#).unwrap()),
        max_streams: 10,
        events_since_ns: since,
        ..KubeConfig::default()
    };
    let mut source = start(&url, config, Some(since)).await;
    inventory_until(&mut source, applied("PersistentVolumeClaim", name)).await;

    let got = lines(&mut source, 1).await;
    assert!(got[0].1.ends_with(" first"), "{got:?}");
    assert_eq!(
        got[0].0,
        format!(
            "kubernetes{{namespace={ns:?},pod={name:?},container=\"postgres\",node_name=\"talos-519-vmy\",app=\"linkding\",node=\"talos-519-vmy\"}}"
        )
    );
    kube.log(ns, name, "postgres", since + 2 * SECOND, "second");
    assert!(lines(&mut source, 1).await[0].1.ends_with(" second"));

    // The container writes its last words and is restarted; the new run
    // writes too. Its dead run is read, and nothing comes twice.
    kube.log(
        ns,
        name,
        "postgres",
        since + 3 * SECOND,
        "PANIC:  could not write to file \"pg_wal/xlogtemp.31\": Read-only file system",
    );
    kube.restart(ns, name, "postgres", since + 4 * SECOND, 1, "Error");
    kube.log(
        ns,
        name,
        "postgres",
        since + 5 * SECOND,
        "after the restart",
    );
    let got = lines(&mut source, 2).await;
    assert!(got[0].1.ends_with("Read-only file system"), "{got:?}");
    assert!(got[1].1.ends_with(" after the restart"), "{got:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(source.batches.try_recv().is_err(), "nothing repeated");
    assert_eq!(
        source
            .stats
            .following
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // Streaming off: no more log lines are read.
    source.streaming.send(None).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    kube.log(
        ns,
        name,
        "postgres",
        since + 6 * SECOND,
        "while not streaming",
    );
    // Back on: read from where the marks stand, so nothing is lost.
    source.streaming.send(Some(since)).unwrap();
    let got = lines(&mut source, 1).await;
    assert!(got[0].1.ends_with(" while not streaming"), "{got:?}");

    source.stop.send(true).unwrap();
    let requests = kube.requests();
    for request in &requests {
        assert!(
            ROLE.contains(&(request.0.as_str(), request.1.as_str())),
            "{request:?} is not in the role"
        );
    }
    assert!(source.errors.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_inventory_and_watches_survive_410_gone_and_throttling() {
    let (kube, url) = TestKubernetes::start().await;
    // Event times count microseconds.
    let since = now() / SECOND * SECOND;
    let event = |name: &str, at: i64, reason: &str, note: &str| {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "immich-prod", "uid": format!("{name}-uid")},
            "eventTime": jiff::Timestamp::from_nanosecond(i128::from(at)).unwrap().to_string(),
            "reason": reason, "note": note, "type": "Warning",
            "regarding": {"kind": "Pod", "namespace": "immich-prod", "name": "immich-machine-learning-7d4b9c6f58-6rtdn"},
            "reportingController": "kubelet", "reportingInstance": "talos-519-vmy",
            "action": "Killing",
        })
    };
    kube.apply(event(
        "old",
        since - 3600 * SECOND,
        "Killing",
        "from before the start",
    ));
    kube.apply(pod(
        "immich-prod",
        "immich-machine-learning-7d4b9c6f58-6rtdn",
        "talos-519-vmy",
        &["ml"],
        &[],
    ));
    let mut source = start(
        &url,
        KubeConfig {
            events_since_ns: since,
            max_streams: 1,
            ..KubeConfig::default()
        },
        None,
    )
    .await;
    inventory_until(
        &mut source,
        applied("Pod", "immich-machine-learning-7d4b9c6f58-6rtdn"),
    )
    .await;
    kube.apply(event(
        "kill",
        since + SECOND,
        "Killing",
        "Container ml failed liveness probe, will be restarted",
    ));
    let got = lines(&mut source, 1).await;
    assert_eq!(got[0].0, "kubernetes/events");
    let record: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(record["reason"], "Killing");
    assert_eq!(record["pod"], "immich-machine-learning-7d4b9c6f58-6rtdn");
    assert_eq!(record["node"], "talos-519-vmy");
    assert_eq!(
        record["msg"],
        "Container ml failed liveness probe, will be restarted"
    );

    // The API server restarts and its history is compacted: the watches
    // get 410 Gone and list again; a pod deleted meanwhile is gone.
    let lists_before = kube
        .requests()
        .iter()
        .filter(|r| r.0 == "list" && r.1 == "pods")
        .count();
    kube.expire_watches();
    kube.throttle(4);
    kube.delete(
        "Pod",
        "immich-prod",
        "immich-machine-learning-7d4b9c6f58-6rtdn",
    );
    inventory_until(&mut source, |c| matches!(c, InventoryChange::Deleted { kind: "Pod", name, .. } if name == "immich-machine-learning-7d4b9c6f58-6rtdn")).await;
    let lists_after = kube
        .requests()
        .iter()
        .filter(|r| r.0 == "list" && r.1 == "pods")
        .count();
    assert!(lists_after > lists_before, "the pods were listed again");
    // The same event observed again is not reported twice; a new
    // observation of it is.
    kube.apply(event(
        "kill",
        since + SECOND,
        "Killing",
        "Container ml failed liveness probe, will be restarted",
    ));
    kube.apply(event(
        "kill",
        since + 2 * SECOND,
        "Killing",
        "Container ml failed liveness probe, will be restarted",
    ));
    let got = lines(&mut source, 1).await;
    let record: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    let ts: jiff::Timestamp = record["ts"].as_str().unwrap().parse().unwrap();
    assert_eq!(ts.as_nanosecond(), i128::from(since + 2 * SECOND));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(source.batches.try_recv().is_err(), "nothing repeated");
    // The throttled requests were answered 429 and retried after the
    // server's Retry-After, quietly.
    assert_eq!(kube.throttled(), 4);
    assert!(source.errors.try_recv().is_err());
    source.stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_only_reads_no_logs_and_no_events() {
    let (kube, url) = TestKubernetes::start().await;
    let since = now();
    kube.apply(pod(
        "prod",
        "db-1",
        "node-1",
        &["postgres"],
        &[("pgdata", "db-1")],
    ));
    kube.log("prod", "db-1", "postgres", since + SECOND, "a line");
    let config = KubeConfig {
        inventory_only: true,
        max_streams: 10,
        events_since_ns: since,
        ..KubeConfig::default()
    };
    let mut source = start(&url, config, Some(since)).await;
    inventory_until(&mut source, applied("Pod", "db-1")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        source.batches.try_recv().is_err(),
        "no log lines, no events"
    );
    let asked: Vec<(String, String)> = kube.requests();
    assert!(
        !asked.iter().any(|(_, r)| r == "pods/log" || r == "events"),
        "{asked:?}"
    );
    source.stop.send(true).unwrap();
}
