//! End-to-end live migration on the simulated host (issue 7, part 4): the set of 4,096
//! in-flight transactions and 256 ports × 1,024 flows saved on a source host (KMCL
//! SaveBegin/SaveContinue/SaveEnd with SavePacket per transaction, the switch's runtime-state
//! save per port), transferred (every byte copied into one buffer) and restored on a
//! destination host (ports created and restored through the switch, RestoreFromBuffer with
//! RestorePacket per transaction) — against `memcpy` of the same total bytes. Building the two
//! hosts is setup, outside the timing.
//!
//! `FERRY_BENCH_QUICK=1` (set by `cargo xtask bench --quick`) runs a quarter of the set.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ferry_platform_mock::bench_support::{MigrationSet, PreparedMigration};

fn set() -> MigrationSet {
    if std::env::var_os("FERRY_BENCH_QUICK").is_some() {
        MigrationSet {
            transactions: 1024,
            ports: 64,
            flows_per_port: 1024,
        }
    } else {
        MigrationSet::ISSUE_7
    }
}

/// The `memcpy` baseline's buffers, their page offsets half a page apart (see
/// `crates/core/benches/support/codec.rs`: a 16-byte offset difference slows glibc's copy
/// tenfold on this kind of machine).
struct CopyBuffers {
    source: Vec<u8>,
    destination: Vec<u8>,
    at: (usize, usize),
    len: usize,
}

const PAGE: usize = 4096;

impl CopyBuffers {
    fn new(len: usize) -> Self {
        let source: Vec<u8> = (0..len + PAGE).map(|i| (i * 7) as u8).collect();
        let destination = vec![0u8; len + PAGE];
        let offset =
            |buffer: &[u8], target: usize| (target + PAGE - buffer.as_ptr() as usize % PAGE) % PAGE;
        let at = (offset(&source, 0), offset(&destination, PAGE / 2));
        Self {
            source,
            destination,
            at,
            len,
        }
    }

    #[inline(never)]
    fn copy(&mut self) {
        let (from, to) = self.at;
        let source = &self.source[from..from + self.len];
        self.destination[to..to + self.len].copy_from_slice(black_box(source));
        black_box(&mut self.destination);
    }
}

fn migration(c: &mut Criterion) {
    let set = set();
    let outcome = PreparedMigration::new(set).run().expect("migration");
    assert_eq!(outcome.transactions_restored, set.transactions);
    assert_eq!(outcome.flows_restored, set.ports * set.flows_per_port);
    let bytes = outcome.bytes;
    let flows = (set.ports * set.flows_per_port) as f64;
    println!(
        "sim_migration: {} B in total; {:.1} B per transaction; {:.1} B of KMCL stream per \
         transaction; {:.2} B per flow (port blobs, headers and counters included)",
        bytes.total(),
        bytes.transaction_blobs as f64 / set.transactions as f64,
        bytes.kmcl_stream as f64 / set.transactions as f64,
        bytes.port_blobs as f64 / flows,
    );

    let mut copy = CopyBuffers::new(bytes.total());
    let mut group = c.benchmark_group("sim_migration");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes.total() as u64));
    group.bench_function("ferry", |b| {
        b.iter_batched_ref(
            || PreparedMigration::new(set),
            |migration| migration.run().expect("migration"),
            BatchSize::PerIteration,
        );
    });
    group.bench_function("memcpy", |b| b.iter(|| copy.copy()));
    group.finish();
}

criterion_group!(benches, migration);
criterion_main!(benches);
