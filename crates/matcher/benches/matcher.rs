//! Matcher throughput: the built-in library over a mixed Kubernetes corpus,
//! and how the grep-mode set scales from 10 to 40 to 400 patterns.
//!
//! `cargo bench -p faultline-matcher`

mod corpus;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faultline_matcher::{GrepSet, Matcher};
use faultline_signatures::Library;

const CORPUS_BYTES: usize = 32 << 20;

fn builtin_library(c: &mut Criterion) {
    let buf = corpus::generate(CORPUS_BYTES, 10_000, 20260216);
    let library = Library::builtin().expect("built-in library loads");
    let matcher = Matcher::new(library.signatures()).expect("built-in library compiles");
    let mut scratch = matcher.scratch();
    let mut group = c.benchmark_group("builtin-library");
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.sample_size(20);
    group.bench_function("scan-mixed-corpus", |b| {
        b.iter(|| {
            let mut hits = 0u64;
            matcher.scan(&buf, |_| None, &mut scratch, |_| hits += 1);
            hits
        })
    });
    let dense = corpus::generate(CORPUS_BYTES, 100, 7);
    group.bench_function("scan-1-percent-failures", |b| {
        b.iter(|| {
            let mut hits = 0u64;
            matcher.scan(&dense, |_| None, &mut scratch, |_| hits += 1);
            hits
        })
    });
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let buf = corpus::generate(CORPUS_BYTES, 10_000, 20260216);
    let mut group = c.benchmark_group("grep-set-scaling");
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.sample_size(20);
    for n in [10, 40, 400] {
        let patterns = corpus::patterns(n);
        let set = GrepSet::new(&patterns).expect("patterns compile");
        let mut cache = set.cache();
        group.bench_function(format!("{n}-patterns"), |b| {
            b.iter(|| set.count_lines(&buf, &mut cache))
        });
    }
    group.finish();
}

criterion_group!(benches, builtin_library, scaling);
criterion_main!(benches);
