//! Packet path: a ping request through ferry's channel and reference service over a null
//! platform, against a hand-written minimal handler, side by side in one group per size.
//! Before measuring, a counting allocator proves the ferry loop makes no heap allocation.

// Bench binaries run on the host with megabytes of stack; the kernel stack-frame lint is noise.
#![allow(clippy::large_stack_frames)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferry_core::protocol::MAX_MESSAGE_LEN;

#[path = "support/alloc_count.rs"]
mod alloc_count;
#[path = "support/packet.rs"]
mod fixture;

#[global_allocator]
static ALLOCATOR: alloc_count::CountingAllocator = alloc_count::CountingAllocator::new();

fn packet_path(c: &mut Criterion) {
    let channel = fixture::running_channel();
    let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
    let mut group = c.benchmark_group("packet");
    for size in fixture::REQUEST_SIZES {
        let request = fixture::ping_request(size);
        fixture::assert_same_response(&channel, &request);
        let ((), allocations) = ALLOCATOR.count(|| {
            for _ in 0..10_000 {
                fixture::ferry_once(&channel, black_box(&request), &mut scratch);
            }
        });
        assert_eq!(allocations, 0, "the packet path allocated");
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("ferry", size), &request, |b, request| {
            b.iter(|| fixture::ferry_once(&channel, black_box(request), &mut scratch));
        });
        group.bench_with_input(BenchmarkId::new("minimal", size), &request, |b, request| {
            b.iter(|| fixture::minimal_handler(black_box(request), &mut scratch));
        });
    }
    group.finish();
}

criterion_group!(benches, packet_path);
criterion_main!(benches);
