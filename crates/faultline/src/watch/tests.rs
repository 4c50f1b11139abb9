use std::sync::Arc;

use faultline_correlate::Inventory;
use faultline_signatures::Library;
use faultline_sources::Stream;
use serde_json::Value;

use super::reload::restart_only_changes;
use super::*;
use faultline_matcher::Matcher;

fn records(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A processor printing JSON into memory, with the built-in library.
fn processor(library: &Library, silence: Vec<SilenceRule>) -> Processor<Vec<u8>> {
    let matcher = Matcher::new(library.signatures()).unwrap();
    Processor {
        scratch: matcher.scratch(),
        matcher: Arc::new(matcher),
        correlator: Correlator::new(Inventory::default(), library.rules()),
        streams: HashMap::new(),
        max_streams: MAX_STREAMS,
        color: false,
        format: WatchFormat::Json,
        out: Vec::new(),
        checkpoints: Checkpoints::default(),
        metrics: Arc::new(metrics::Metrics::new()),
        alert_counts: Vec::new(),
        unsent: Default::default(),
        silence,
        extra_labels: Default::default(),
        alerting: None,
        held: Default::default(),
        clock: i64::MIN,
        observed_to: i64::MIN,
    }
}

fn batch(path: &str, lines: &str) -> Batch {
    Batch {
        stream: Arc::new(Stream {
            source: "file",
            origin: path.to_string(),
            path: Some(path.into()),
            labels: Vec::new(),
        }),
        lines: lines.as_bytes().to_vec(),
        checkpoint: None,
        truncated: false,
        late: 0,
    }
}

/// `ns` as a CRI log line's time.
fn stamp(ns: i64) -> String {
    format!(
        "{:.9}",
        jiff::Timestamp::from_nanosecond(i128::from(ns)).unwrap()
    )
}

const POD: &str = "/var/log/pods/vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres/0.log";

/// A healthy line and PostgreSQL finding its data read-only, at `ns`.
fn read_only_at(ns: i64) -> Batch {
    let at = stamp(ns);
    batch(
        POD,
        &format!(
            "{at} stdout F healthy\n\
             {at} stderr F 2026-02-19 03:04:07.123 UTC [25] FATAL:  could not open file \"global/pg_control\": Read-only file system\n"
        ),
    )
}

fn states(seen: &[Value]) -> Vec<(&str, &str)> {
    seen.iter()
        .filter(|r| r["type"] == "incident")
        .map(|r| (r["key"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect()
}

const SECOND: i64 = 1_000_000_000;

#[tokio::test(start_paused = true)]
async fn hits_wait_for_the_event_clock_and_incidents_fire_and_resolve_on_it() {
    let library = Library::builtin().unwrap();
    let mut processor = processor(&library, Vec::new());
    let clock = Clock::start();
    let written = clock.now();
    processor
        .batch(&read_only_at(written), clock.now())
        .unwrap();
    processor.tick(written - SECOND, clock.now()).unwrap();
    assert!(
        processor.out.is_empty(),
        "a source has not delivered up to it yet"
    );
    processor.tick(written, clock.now()).unwrap();
    let seen = records(&processor.out);
    assert_eq!(seen[0]["type"], "hit");
    assert_eq!(seen[0]["ts"], stamp(written), "the line's own time");
    assert_eq!(seen[0]["labels"]["pod"], "vitals-db-production-cnpg-v1-2");
    // The PVC and its CloudNativePG cluster page at once, each once.
    assert_eq!(
        states(&seen),
        [
            ("cnpg/vitals-prod/vitals-db-production-cnpg-v1", "firing"),
            ("pvc/vitals-prod/vitals-db-production-cnpg-v1-2", "firing")
        ]
    );
    assert_eq!(seen[2]["fired_count"], 1);
    processor.out.clear();

    // Fifty-nine quiet minutes of event time: nothing to say.
    processor
        .tick(written + 59 * 60 * SECOND, clock.now())
        .unwrap();
    assert!(processor.out.is_empty());
    // The hour is up: resolved, once — whatever the wall clock says.
    processor
        .tick(written + 60 * 60 * SECOND, clock.now())
        .unwrap();
    processor
        .tick(written + 61 * 60 * SECOND, clock.now())
        .unwrap();
    assert_eq!(
        states(&records(&processor.out)),
        [
            ("cnpg/vitals-prod/vitals-db-production-cnpg-v1", "resolved"),
            ("pvc/vitals-prod/vitals-db-production-cnpg-v1-2", "resolved")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_backlog_read_late_pages_nothing_that_is_long_over() {
    let library = Library::builtin().unwrap();
    let mut processor = processor(&library, Vec::new());
    let clock = Clock::start();
    // Written three hours ago, read now (faultline was down).
    processor
        .batch(&read_only_at(clock.now() - 3 * 3600 * SECOND), clock.now())
        .unwrap();
    processor.tick(clock.now(), clock.now()).unwrap();
    let seen = records(&processor.out);
    assert_eq!(seen[0]["type"], "hit", "the hit is reported");
    // The timeline shows what happened then, and that it is over.
    assert_eq!(
        states(&seen),
        [
            ("cnpg/vitals-prod/vitals-db-production-cnpg-v1", "firing"),
            ("pvc/vitals-prod/vitals-db-production-cnpg-v1-2", "firing"),
            ("cnpg/vitals-prod/vitals-db-production-cnpg-v1", "resolved"),
            ("pvc/vitals-prod/vitals-db-production-cnpg-v1-2", "resolved")
        ]
    );
    let written = clock.now() - 3 * 3600 * SECOND;
    assert_eq!(
        seen.last().unwrap()["resolved_at"],
        stamp(written + 3600 * SECOND),
        "resolved an hour after the line, in event time"
    );
    // What an alert would carry is the incident as it is now: resolved,
    // so nothing pages for what was over before it was read.
    assert!(
        processor
            .correlator
            .reports()
            .iter()
            .all(|r| r.incident.state == faultline_correlate::State::Resolved)
    );
}

#[tokio::test(start_paused = true)]
async fn a_hit_later_than_the_clock_is_correlated_now_not_lost() {
    let library = Library::builtin().unwrap();
    let mut processor = processor(&library, Vec::new());
    let clock = Clock::start();
    let now = clock.now();
    processor.tick(now, now).unwrap();
    // Stamped a minute before the clock, delivered after it passed.
    processor
        .batch(&read_only_at(now - 60 * SECOND), now)
        .unwrap();
    processor.tick(now, now).unwrap();
    let seen = records(&processor.out);
    assert_eq!(
        seen[0]["ts"],
        stamp(now - 60 * SECOND),
        "its own time is kept"
    );
    assert_eq!(
        states(&seen),
        [
            ("cnpg/vitals-prod/vitals-db-production-cnpg-v1", "firing"),
            ("pvc/vitals-prod/vitals-db-production-cnpg-v1-2", "firing")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_quiet_past_its_limit_pages_and_resolves_when_it_speaks() {
    let library = Library::builtin().unwrap();
    let mut processor = processor(&library, vec!["5m@namespace=monitoring".parse().unwrap()]);
    let clock = Clock::start();
    let loki = "/var/log/pods/monitoring_loki-0_9f1e/loki/0.log";
    let other = "/var/log/pods/shop_api-0_1a2b/api/0.log";
    let line = "2026-02-19T03:04:06.000000000Z stdout F level=info msg=ok\n";
    processor.batch(&batch(loki, line), clock.now()).unwrap();
    processor.batch(&batch(other, line), clock.now()).unwrap();
    tokio::time::advance(Duration::from_secs(4 * 60)).await;
    processor.tick(clock.now(), clock.now()).unwrap();
    assert!(processor.out.is_empty(), "not quiet long enough");
    tokio::time::advance(Duration::from_secs(2 * 60)).await;
    processor.tick(clock.now(), clock.now()).unwrap();
    let seen = records(&processor.out);
    assert_eq!(seen.len(), 1, "only the watched stream: {seen:?}");
    assert_eq!(seen[0]["key"], "stream/monitoring/loki-0/loki");
    assert_eq!(seen[0]["state"], "firing");
    processor.out.clear();
    processor.batch(&batch(loki, line), clock.now()).unwrap();
    processor.tick(clock.now(), clock.now()).unwrap();
    let seen = records(&processor.out);
    assert_eq!(seen[0]["key"], "stream/monitoring/loki-0/loki");
    assert_eq!(seen[0]["state"], "resolved");
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_loki_is_the_pipeline_incident_until_it_answers_again() {
    let library = Library::builtin().unwrap();
    let mut processor = processor(&library, Vec::new());
    let clock = Clock::start();
    processor
        .loki_health(
            &Health::Unhealthy("HTTP 500: no space left on device".into()),
            clock.now(),
        )
        .unwrap();
    let seen = records(&processor.out);
    assert_eq!(seen[0]["key"], "pipeline/loki");
    assert_eq!(seen[0]["state"], "firing");
    assert!(
        seen[0]["summary"]
            .as_str()
            .unwrap()
            .contains("HTTP 500: no space left on device")
    );
    processor.out.clear();
    // Down for two hours: still firing, nothing new to say.
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    processor.tick(clock.now(), clock.now()).unwrap();
    assert!(processor.out.is_empty());
    processor
        .loki_health(&Health::Healthy, clock.now())
        .unwrap();
    let seen = records(&processor.out);
    assert_eq!(seen[0]["state"], "resolved");
}

#[tokio::test(start_paused = true)]
async fn streams_are_bounded_and_the_least_recently_active_go_first() {
    let library = Library::builtin().unwrap();
    let mut processor = processor(&library, Vec::new());
    processor.max_streams = 10;
    let clock = Clock::start();
    let line = "2026-02-19T03:04:06.000000000Z stdout F ok\n";
    for i in 0..15 {
        tokio::time::advance(Duration::from_secs(1)).await;
        let path = format!("/var/log/pods/ns_pod-{i}_uid/c/0.log");
        processor.batch(&batch(&path, line), clock.now()).unwrap();
    }
    assert!(processor.streams.len() <= 10);
    assert_eq!(processor.metrics.streams_evicted.get(), 5);
    // The newest stayed.
    assert!(
        processor
            .streams
            .contains_key("/var/log/pods/ns_pod-14_uid/c/0.log")
    );
    assert!(
        !processor
            .streams
            .contains_key("/var/log/pods/ns_pod-0_uid/c/0.log")
    );
}

#[test]
fn every_flag_is_a_config_setting() {
    let command = <WatchCommand as clap::CommandFactory>::command();
    let missing: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .filter(|long| *long != "config" && *long != "help")
        .map(|long| long.replace('-', "_"))
        .filter(|name| !config::is_setting(name))
        .collect();
    assert!(
        missing.is_empty(),
        "flags without a config setting: {missing:?}"
    );
}

#[test]
fn a_reload_names_the_changes_it_cannot_apply() {
    let parse = |argv: &[&str]| {
        let mut full = vec!["faultline watch"];
        full.extend_from_slice(argv);
        <WatchCommand as clap::Parser>::parse_from(full).args
    };
    let old = parse(&["--files", "/a/*.log", "--silence", "10m"]);
    let new = parse(&["--files", "/b/*.log", "--silence", "5m", "--loki-tail"]);
    assert_eq!(restart_only_changes(&old, &new), ["files", "loki_tail"]);
    assert!(restart_only_changes(&old, &old).is_empty());
}

/// The streams of the interleaving property: two database pods and Loki.
const STREAMS: [&str; 3] = [
    POD,
    "/var/log/pods/linkding-prod_linkding-db-production-cnpg-v1-2_753c/postgres/3387.log",
    "/var/log/pods/monitoring_loki-0_cf8a/loki/0.log",
];

/// Line `kind` of stream `stream` at `ns`, as a CRI line.
fn line_of(stream: usize, kind: u8, ns: i64) -> String {
    let at = stamp(ns);
    let text = match (stream, kind) {
        (_, 0) => "healthy".to_string(),
        (2, _) => "level=error caller=wal.go:106 msg=\"error writing to WAL\" err=\"write /var/loki/wal/00001449: read-only file system\"".to_string(),
        _ => "2026-02-19 03:04:07.123 UTC [25] FATAL:  could not open file \"global/pg_control\": Read-only file system".to_string(),
    };
    format!("{at} stderr F {text}\n")
}

/// The incidents as they stand, as comparable text.
fn incidents_of(processor: &Processor<Vec<u8>>) -> Vec<String> {
    processor
        .correlator
        .reports()
        .iter()
        .map(|r| {
            let i = &r.incident;
            format!(
                "{} {:?} fired {} hits {} seen {}..{} resolved {:?}: {} / {}",
                r.key,
                i.state,
                i.fired_count,
                i.hits,
                i.first_seen,
                i.last_seen,
                i.resolved_at,
                r.summary,
                r.remediation
            )
        })
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]
    /// However the same lines are cut into batches and interleaved across
    /// sources — each source in its own order, the event clock at the
    /// lowest of what they delivered — the incidents are the same.
    #[test]
    fn any_interleaving_of_the_same_lines_gives_the_same_incidents(
        // (stream, minute, kind): three hours of two databases and Loki.
        entries in proptest::collection::vec((0usize..3, 0i64..180, 0u8..3), 1..60),
        cuts in proptest::collection::vec(0usize..8, 1..60),
        order in proptest::collection::vec(0usize..3, 1..200),
    ) {
        let library = Library::builtin().unwrap();
        let start: i64 = 1_790_000_000 * SECOND;
        // Each stream's lines, in its own order, at distinct times.
        let mut streams: Vec<Vec<(i64, String)>> = vec![Vec::new(); 3];
        for (stream, minute, kind) in &entries {
            let ns = start + minute * 60 * SECOND + *stream as i64;
            streams[*stream].push((ns, line_of(*stream, *kind, ns)));
        }
        for lines in &mut streams {
            lines.sort();
            lines.dedup_by_key(|(ns, _)| *ns);
        }
        let end = start + 6 * 3600 * SECOND;

        // In time order, in one go.
        let mut reference = processor(&library, Vec::new());
        let mut all: Vec<(i64, usize, &String)> = streams
            .iter()
            .enumerate()
            .flat_map(|(s, lines)| lines.iter().map(move |(ns, l)| (*ns, s, l)))
            .collect();
        all.sort();
        for (ns, s, line) in &all {
            reference.batch(&batch(STREAMS[*s], line), *ns).unwrap();
        }
        reference.tick(end, end).unwrap();

        // Cut into batches and interleaved; the clock ticks at the lowest
        // watermark of the three sources as they go.
        let mut fed = processor(&library, Vec::new());
        let mut next = [0usize; 3];
        let mut delivered = [i64::MIN; 3];
        let mut cuts = cuts.iter().cycle();
        let mut order = order.iter().cycle();
        while (0..3).any(|s| next[s] < streams[s].len()) {
            // The chosen source, or the next one that has lines left.
            let chosen = *order.next().unwrap();
            let Some(s) = (0..3)
                .map(|i| (chosen + i) % 3)
                .find(|&s| next[s] < streams[s].len())
            else {
                break;
            };
            let take = (cuts.next().unwrap() + 1).min(streams[s].len() - next[s]);
            let chunk = &streams[s][next[s]..next[s] + take];
            let text: String = chunk.iter().map(|(_, l)| l.as_str()).collect();
            let arrived = chunk[take - 1].0;
            fed.batch(&batch(STREAMS[s], &text), arrived).unwrap();
            next[s] += take;
            delivered[s] = if next[s] == streams[s].len() { i64::MAX } else { arrived };
            let watermark = (0..3).map(|s| delivered[s]).min().unwrap();
            if watermark < i64::MAX {
                fed.tick(watermark, arrived).unwrap();
            }
        }
        fed.tick(end, end).unwrap();
        proptest::prop_assert_eq!(incidents_of(&fed), incidents_of(&reference));
    }
}
