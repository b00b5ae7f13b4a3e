//! End-to-end live migration on the simulated host (issue 7, part 4): the set of 4,096
//! in-flight transactions and 256 ports × 1,024 flows saved on a source host (KMCL
//! SaveBegin/SaveContinue/SaveEnd with SavePacket per transaction, the switch's runtime-state
//! save per port), transferred (every byte copied into one buffer) and restored on a
//! destination host (ports created and restored through the switch, RestoreFromBuffer with
//! RestorePacket per transaction) — against `memcpy` of the same total bytes. Building the two
//! hosts is setup, outside the timing.
//!
//! Two shapes of the set: as the Windows driver holds it (256 channels with 16 transactions in
//! flight each, `ferry`) and with all 4,096 on one channel (`ferry_one_channel`). The `memcpy`
//! baseline copies the bytes of the first (the second differs only by KMCL's per-stream
//! header). `FERRY_BENCH_QUICK=1` (set by `cargo xtask bench --quick`) runs a quarter of each.

// Bench binaries run on the host with megabytes of stack; the kernel stack-frame lint is noise.
#![allow(clippy::large_stack_frames)]

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use ferry_platform_mock::bench_support::{
    DRIVER_OUTGOING, MAX_TRANSACTIONS, MigrationBytes, MigrationSet, PreparedMigration,
};

/// A set shrunk to a quarter under `FERRY_BENCH_QUICK`.
fn sized(set: MigrationSet) -> MigrationSet {
    if std::env::var_os("FERRY_BENCH_QUICK").is_some() {
        MigrationSet {
            channels: set.channels.div_ceil(4),
            transactions: set.transactions / 4,
            ports: set.ports / 4,
            ..set
        }
    } else {
        set
    }
}

/// One migration of `set` outside the timing, checked whole; its bytes.
fn checked<const OUTGOING: usize>(set: MigrationSet) -> MigrationBytes {
    let outcome = PreparedMigration::<OUTGOING>::new(set)
        .run()
        .expect("migration");
    assert_eq!(outcome.transactions_restored, set.transactions);
    assert_eq!(outcome.flows_restored, set.ports * set.flows_per_port);
    outcome.bytes
}

/// Times migrations of `set`, each on freshly built hosts (the building is not timed).
fn measure<const OUTGOING: usize>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    set: MigrationSet,
) {
    group.bench_function(name, |b| {
        b.iter_batched_ref(
            || PreparedMigration::<OUTGOING>::new(set),
            |migration| migration.run().expect("migration"),
            BatchSize::PerIteration,
        );
    });
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
    let driver_shaped = sized(MigrationSet::ISSUE_7);
    let one_channel = sized(MigrationSet::ISSUE_7_ONE_CHANNEL);
    let bytes = checked::<DRIVER_OUTGOING>(driver_shaped);
    checked::<MAX_TRANSACTIONS>(one_channel);
    let flows = (driver_shaped.ports * driver_shaped.flows_per_port) as f64;
    println!(
        "sim_migration: {} B in total; {:.1} B per transaction; {:.1} B of KMCL stream per \
         transaction; {:.2} B per flow (port blobs, headers and counters included)",
        bytes.total(),
        bytes.transaction_blobs as f64 / driver_shaped.transactions as f64,
        bytes.kmcl_stream as f64 / driver_shaped.transactions as f64,
        bytes.port_blobs as f64 / flows,
    );

    let mut copy = CopyBuffers::new(bytes.total());
    let mut group = c.benchmark_group("sim_migration");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes.total() as u64));
    measure::<DRIVER_OUTGOING>(&mut group, "ferry", driver_shaped);
    measure::<MAX_TRANSACTIONS>(&mut group, "ferry_one_channel", one_channel);
    group.bench_function("memcpy", |b| b.iter(|| copy.copy()));
    group.finish();
}

criterion_group!(benches, migration);
criterion_main!(benches);
