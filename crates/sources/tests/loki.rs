//! Following a Loki that follows the documented HTTP API — a test server
//! here, with the failure modes a real one shows: HTTP 500 with a text
//! body on every request, and answers slower than the client's timeout.

use std::time::Duration;

use faultline_sources::Batch;
use faultline_sources::loki::{self, Health, LokiConfig};
use faultline_testkit::loki::{Mode, READ_ONLY_WAL, TestLoki};
use tokio::sync::{mpsc, watch};

/// Following the monitoring namespace on the test Loki, quickly.
fn config(url: String, state_dir: Option<std::path::PathBuf>) -> LokiConfig {
    LokiConfig {
        url,
        selector: r#"{namespace="monitoring"}"#.into(),
        org_id: Some("tenant-1".into()),
        auth: None,
        poll: Duration::from_millis(10),
        limit: 100,
        timeout: Duration::from_millis(500),
        start_ns: 0,
        late: Duration::ZERO,
        state_dir,
        max_lag: None,
        marks: Default::default(),
        position: Default::default(),
        tail: false,
        watermark: Default::default(),
    }
}

async fn receive(rx: &mut mpsc::Receiver<Batch>, count: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while lines.len() < count {
        let batch = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {lines:?} arrived"))
            .unwrap();
        lines.extend(
            String::from_utf8(batch.lines)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    lines
}

async fn health_becomes(health: &mut watch::Receiver<Health>, wanted: impl Fn(&Health) -> bool) {
    tokio::time::timeout(Duration::from_secs(20), health.wait_for(|h| wanted(h)))
        .await
        .expect("health changes in time")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_is_followed_through_an_outage_without_loss_or_repeats() {
    let (loki, url) = TestLoki::start(Some("tenant-1")).await;
    let monitoring = [("namespace", "monitoring"), ("pod", "loki-0")];
    let other = [("namespace", "kube-system"), ("pod", "coredns-1")];
    for i in 0..7 {
        loki.add(&monitoring, 1_000 + i, &format!("line {i}"));
    }
    loki.add(&other, 1_003, "not selected");
    let (tx, mut rx) = mpsc::channel(8);
    let (health_tx, mut health) = watch::channel(Health::Healthy);
    let (stop_tx, stop) = watch::channel(false);
    // Pages of 3: the seven entries take three pages.
    let config = LokiConfig {
        limit: 3,
        ..config(url, None)
    };
    let task = tokio::spawn(loki::follow(config, tx, health_tx, stop));
    let got = receive(&mut rx, 7).await;
    let texts: Vec<&str> = got.iter().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(
        texts,
        (0..7).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );

    // HTTP 500 on every request: unhealthy, with Loki's own reason.
    loki.set_mode(Mode::Failing);
    health_becomes(&mut health, |h| matches!(h, Health::Unhealthy(_))).await;
    let Health::Unhealthy(reason) = health.borrow().clone() else {
        unreachable!()
    };
    assert_eq!(reason, format!("HTTP 500: {READ_ONLY_WAL}"));
    // Written during the outage; read once Loki answers again.
    let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap();
    loki.add(&monitoring, now - 1_000_000, "during the outage");
    loki.set_mode(Mode::Healthy);
    health_becomes(&mut health, |h| *h == Health::Healthy).await;
    let got = receive(&mut rx, 1).await;
    assert!(got[0].ends_with(" during the outage"), "{got:?}");

    // Slower than the timeout: unhealthy too.
    loki.set_mode(Mode::Slow);
    health_becomes(
        &mut health,
        |h| matches!(h, Health::Unhealthy(r) if r == "timed out"),
    )
    .await;
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    assert!(rx.try_recv().is_err(), "nothing repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_catches_up_from_the_saved_cursor() {
    let (loki, url) = TestLoki::start(Some("tenant-1")).await;
    let labels = [("namespace", "monitoring"), ("pod", "loki-0")];
    for i in 0..3 {
        loki.add(&labels, 1_000 + i, &format!("before {i}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(url, Some(dir.path().to_path_buf()));
    let run = |config: LokiConfig| {
        let (tx, rx) = mpsc::channel(8);
        let (health_tx, _) = watch::channel(Health::Healthy);
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(loki::follow(config, tx, health_tx, stop));
        (rx, stop_tx, task)
    };
    let (mut rx, stop_tx, task) = run(config.clone());
    assert_eq!(receive(&mut rx, 3).await.len(), 3);
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    // Written while faultline was down.
    loki.add(&labels, 2_000, "while down");
    let (saved, warning) = loki::saved_start(dir.path()).unwrap();
    assert_eq!((saved, warning), (Some(1_002), None));
    let (mut rx, stop_tx, task) = run(LokiConfig {
        start_ns: saved.unwrap(),
        ..config
    });
    let got = receive(&mut rx, 2).await;
    // The entry at the saved timestamp is read again; nothing older is.
    assert!(got[0].ends_with(" before 2"), "{got:?}");
    assert!(got[1].ends_with(" while down"), "{got:?}");
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loki_that_answers_but_gets_nothing_new_is_unhealthy() {
    let (loki, url) = TestLoki::start(Some("tenant-1")).await;
    let (tx, mut rx) = mpsc::channel(8);
    let (health_tx, mut health) = watch::channel(Health::Healthy);
    let (stop_tx, stop) = watch::channel(false);
    let config = LokiConfig {
        max_lag: Some(Duration::from_millis(300)),
        start_ns: i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap(),
        ..config(url, None)
    };
    let task = tokio::spawn(loki::follow(config, tx, health_tx, stop));
    health_becomes(
        &mut health,
        |h| matches!(h, Health::Unhealthy(r) if r.contains("not ingesting")),
    )
    .await;
    // Entries arrive again: healthy.
    let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap();
    loki.add(&[("namespace", "monitoring")], now, "ingesting again");
    health_becomes(&mut health, |h| *h == Health::Healthy).await;
    assert!(receive(&mut rx, 1).await[0].ends_with(" ingesting again"));
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_follows_and_a_closed_or_dropped_tail_is_caught_up_without_repeats() {
    let (loki, url) = TestLoki::start(Some("tenant-1")).await;
    let labels = [("namespace", "monitoring"), ("pod", "loki-0")];
    let now = || i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap();
    loki.add(&labels, now(), "history 1");
    loki.add(&labels, now(), "history 2");
    let (tx, mut rx) = mpsc::channel(8);
    let (health_tx, mut health) = watch::channel(Health::Healthy);
    let (stop_tx, stop) = watch::channel(false);
    let config = LokiConfig {
        tail: true,
        start_ns: now() - 60_000_000_000,
        ..config(url, None)
    };
    let task = tokio::spawn(loki::follow(config, tx, health_tx, stop));
    assert_eq!(receive(&mut rx, 2).await.len(), 2);
    // Caught up: the tail is open, and new entries come through it.
    while loki.tails() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    loki.add(&labels, now(), "tailed");
    assert!(receive(&mut rx, 1).await[0].ends_with(" tailed"));

    // Loki fails: the tail is closed with its error, queries fail too.
    loki.set_mode(Mode::Failing);
    health_becomes(&mut health, |h| matches!(h, Health::Unhealthy(_))).await;
    loki.add(&labels, now(), "during the outage");
    loki.set_mode(Mode::Healthy);
    health_becomes(&mut health, |h| *h == Health::Healthy).await;
    assert!(receive(&mut rx, 1).await[0].ends_with(" during the outage"));

    // Tails dropped without a close frame: what comes meanwhile is read
    // once, by the next catch-up or tail.
    let tails = loki.tails();
    loki.set_mode(Mode::Disconnecting);
    for i in 0..3 {
        loki.add(&labels, now(), &format!("while dropping {i}"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let got = receive(&mut rx, 3).await;
    for (i, line) in got.iter().enumerate() {
        assert!(line.ends_with(&format!(" while dropping {i}")), "{got:?}");
    }
    assert!(loki.tails() > tails + 1, "the tail was opened again");
    loki.set_mode(Mode::Healthy);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    assert!(rx.try_recv().is_err(), "nothing repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_reach_a_gateway_in_front_of_loki() {
    let (loki, url) = TestLoki::start(Some("tenant-1")).await;
    loki.require_basic_auth("faultline", "hunter2");
    loki.add(&[("namespace", "monitoring")], 1_000, "behind the gateway");
    let follow = |password: &str| {
        let (tx, rx) = mpsc::channel(8);
        let (health_tx, health) = watch::channel(Health::Healthy);
        let (stop_tx, stop) = watch::channel(false);
        let config = LokiConfig {
            auth: Some(loki::Auth::Basic {
                user: "faultline".into(),
                password: password.into(),
            }),
            ..config(url.clone(), None)
        };
        let task = tokio::spawn(loki::follow(config, tx, health_tx, stop));
        (rx, health, stop_tx, task)
    };
    let (mut rx, _, stop_tx, task) = follow("hunter2");
    assert!(receive(&mut rx, 1).await[0].ends_with(" behind the gateway"));
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let (_, mut health, stop_tx, task) = follow("wrong");
    health_becomes(
        &mut health,
        |h| matches!(h, Health::Unhealthy(r) if r.starts_with("HTTP 401")),
    )
    .await;
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

/// Six streams written together but reaching Loki 0 to 2.5 s late, each
/// by its own delay (shippers batch and retry, nodes are not in step), so
/// Loki receives their entries out of time order: with a lateness of 3 s,
/// every entry is read exactly once, polling and tailing.
async fn late_streams_are_read_whole_and_once(tail: bool) {
    let (loki, url) = TestLoki::start(Some("tenant-1")).await;
    let now = || i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let (health_tx, _health) = watch::channel(Health::Healthy);
    let (stop_tx, stop) = watch::channel(false);
    let config = LokiConfig {
        tail,
        late: Duration::from_secs(3),
        start_ns: now(),
        poll: Duration::from_millis(50),
        ..config(url, None)
    };
    let task = tokio::spawn(loki::follow(config, tx, health_tx, stop));
    let delays_ms = [0, 2_500, 400, 1_700, 900, 2_100];
    let mut waiting = Vec::new();
    let mut expected = std::collections::BTreeSet::new();
    for step in 0..30 {
        let written = now();
        for (stream, delay) in delays_ms.iter().enumerate() {
            let line = format!("stream {stream} entry {step}");
            expected.insert(line.clone());
            waiting.push((written + delay * 1_000_000, stream, written, line));
        }
        ship(&loki, &mut waiting, now());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while !waiting.is_empty() {
        ship(&loki, &mut waiting, now());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receive(&mut rx, expected.len()).await;
    let texts: Vec<String> = got
        .iter()
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect();
    let unique: std::collections::BTreeSet<String> = texts.iter().cloned().collect();
    assert_eq!(unique, expected, "every entry is read");
    assert_eq!(texts.len(), expected.len(), "none twice");
    // Passes go on reading the window again: still nothing twice.
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    assert!(rx.try_recv().is_err(), "nothing repeated");
}

/// Adds the entries due by `now` to Loki, as their shippers push them.
fn ship(loki: &TestLoki, waiting: &mut Vec<(i64, usize, i64, String)>, now: i64) {
    waiting.retain(|(due, stream, ts, line)| {
        if *due > now {
            return true;
        }
        let pod = format!("app-{stream}");
        loki.add(&[("namespace", "monitoring"), ("pod", &pod)], *ts, line);
        false
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_out_of_order_entries_are_polled_whole_and_once() {
    late_streams_are_read_whole_and_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_out_of_order_entries_are_tailed_whole_and_once() {
    late_streams_are_read_whole_and_once(true).await;
}
