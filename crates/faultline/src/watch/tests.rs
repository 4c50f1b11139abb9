use std::sync::Arc;

use faultline_sources::Stream;
use serde_json::Value;

use super::*;

fn records(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn batch(path: &str, lines: &str) -> Batch {
    Batch {
        stream: Arc::new(Stream {
            origin: path.to_string(),
            path: Some(path.into()),
            labels: Vec::new(),
        }),
        lines: lines.as_bytes().to_vec(),
        checkpoint: None,
        truncated: false,
    }
}

#[tokio::test(start_paused = true)]
async fn hits_page_as_they_arrive_and_quiet_incidents_resolve_as_time_passes() {
    let library = Library::builtin().unwrap();
    let matcher = Matcher::new(library.signatures()).unwrap();
    let mut processor = Processor {
        matcher: &matcher,
        scratch: matcher.scratch(),
        correlator: Correlator::new(Inventory::default(), library.rules()),
        streams: HashMap::new(),
        records: RecordWriter::new(&matcher, false),
        format: WatchFormat::Json,
        out: Vec::new(),
        checkpoints: Checkpoints::default(),
    };
    let clock = Clock::start();
    let pod = "/var/log/pods/vitals-prod_vitals-db-production-cnpg-v1-2_0b7c/postgres/0.log";
    processor
        .batch(
            &batch(
                pod,
                "2026-02-19T03:04:06.000000000Z stdout F healthy\n\
                 2026-02-19T03:04:07.000000000Z stderr F 2026-02-19 03:04:07.123 UTC [25] FATAL:  could not open file \"global/pg_control\": Read-only file system\n",
            ),
            clock.now(),
        )
        .unwrap();
    let seen = records(&processor.out);
    assert_eq!(seen[0]["type"], "hit");
    assert_eq!(
        seen[0]["ts"], "2026-02-19T03:04:07.000000000Z",
        "the line's own time"
    );
    assert_eq!(seen[0]["labels"]["pod"], "vitals-db-production-cnpg-v1-2");
    // The PVC and its CloudNativePG cluster page at once, each once.
    let paged: Vec<(&str, &str)> = seen[1..]
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        paged,
        [
            ("cnpg/vitals-prod/vitals-db-production-cnpg-v1", "firing"),
            ("pvc/vitals-prod/vitals-db-production-cnpg-v1-2", "firing")
        ]
    );
    assert_eq!(seen[2]["fired_count"], 1);
    processor.out.clear();

    // Fifty-nine quiet minutes: nothing to say.
    tokio::time::advance(Duration::from_secs(59 * 60)).await;
    processor.tick(clock.now()).unwrap();
    assert!(processor.out.is_empty());
    // The hour is up: resolved, once.
    tokio::time::advance(Duration::from_secs(60)).await;
    processor.tick(clock.now()).unwrap();
    processor.tick(clock.now()).unwrap();
    let seen = records(&processor.out);
    let resolved: Vec<(&str, &str)> = seen
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        resolved,
        [
            ("cnpg/vitals-prod/vitals-db-production-cnpg-v1", "resolved"),
            ("pvc/vitals-prod/vitals-db-production-cnpg-v1-2", "resolved")
        ]
    );
}
