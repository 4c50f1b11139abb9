//! The replay path end to end, minus printing: read files from disk,
//! detect formats, match, date and label the hits, order them.
//!
//! `cargo bench -p faultline --bench replay`

// The matcher bench's corpus generator; its pattern sets are not used here.
#[path = "../../matcher/benches/corpus/mod.rs"]
#[allow(dead_code)]
mod corpus;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faultline::replay::{Options, replay};
use faultline_correlate::Correlator;
use faultline_matcher::Matcher;
use faultline_signatures::Library;

const FILE_BYTES: usize = 16 << 20;

fn replay_tree(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Four files of a pod-log tree, as kubelet lays them out.
    for i in 0..4 {
        let pod = dir.path().join(format!("var/log/pods/ns_pod-{i}_uid/app"));
        std::fs::create_dir_all(&pod).expect("creating the tree");
        std::fs::write(pod.join("0.log"), corpus::generate(FILE_BYTES, 10_000, i))
            .expect("writing a log");
    }
    let library = Library::builtin().expect("built-in library loads");
    let matcher = Matcher::new(library.signatures()).expect("built-in library compiles");
    let paths = vec![dir.path().to_path_buf()];
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Bytes(4 * FILE_BYTES as u64));
    group.sample_size(10);
    for threads in [1, 2] {
        let options = Options {
            year: Some(2026),
            threads,
            ..Options::default()
        };
        group.bench_function(format!("pod-log-tree-{threads}-threads"), |b| {
            b.iter(|| {
                replay(
                    &matcher,
                    &paths,
                    &options,
                    Correlator::new(Default::default(), library.rules()),
                    |_| Ok(()),
                )
                .expect("inputs exist")
                .hits
            })
        });
    }
    group.finish();
}

criterion_group!(benches, replay_tree);
criterion_main!(benches);
