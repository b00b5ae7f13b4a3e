//! Classify: one frame through `PortTable::classify` (port lookup, slot lock, token bucket,
//! flow table, counters) on a flow-table hit, a miss into a free slot, and a miss into a full
//! table that evicts.

// Bench binaries run on the host with megabytes of stack; the kernel stack-frame lint is noise.
#![allow(clippy::large_stack_frames)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/classify.rs"]
mod fixture;

fn classify(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(1));

    let mut hit = fixture::Hit::new();
    let created = hit.flows_created();
    group.bench_function("hit", |b| b.iter(|| hit.once()));
    assert_eq!(
        hit.flows_created(),
        created,
        "the hit workload inserted flows"
    );

    let mut miss = fixture::Miss::new();
    group.bench_function("miss", |b| b.iter(|| miss.once()));

    let mut evict = fixture::Evict::new();
    let before = evict.evicted();
    group.bench_function("evict", |b| b.iter(|| evict.once()));
    assert!(
        evict.evicted() > before,
        "the eviction workload never evicted"
    );
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
