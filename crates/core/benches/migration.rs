//! Migration at the core level — ferry's own share of a migration, without a host (the
//! end-to-end figure on the simulated host is `crates/platform-mock/benches/migration.rs`):
//! save every outgoing transaction (4,096) and every port (256 × 1,024 flows) into one stream,
//! copy the stream to the "destination" (the transfer), then restore every transaction and
//! every port into fresh destination state — against `memcpy` of the same total bytes.

// Bench binaries run on the host with megabytes of stack; the kernel stack-frame lint is noise.
#![allow(clippy::large_stack_frames)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry_core::service::NotificationTx;

#[path = "support/codec.rs"]
#[allow(dead_code)] // shared with other benches, which use the rest
mod fixture;

const TRANSACTIONS: usize = 4096;
const FLOWS: usize = 1024;

struct Migration {
    txs: Vec<NotificationTx>,
    source: Box<fixture::CodecTable>,
    destination: Box<fixture::CodecTable>,
    stream: Vec<u8>,
    received: Vec<u8>,
    tx_spans: fixture::Spans,
    port_spans: fixture::Spans,
    restored: Vec<NotificationTx>,
}

impl Migration {
    /// Save, transfer, restore; returns the stream length.
    #[inline(never)]
    fn run(&mut self) -> usize {
        let tx_len =
            fixture::ferry_save_transactions(&self.txs, &mut self.stream, &mut self.tx_spans);
        let port_len = fixture::ferry_save_ports(
            &self.source,
            &mut self.stream[tx_len..],
            &mut self.port_spans,
        );
        let total = tx_len + port_len;
        self.received[..total].copy_from_slice(&self.stream[..total]);
        fixture::ferry_restore_transactions(&self.received, &self.tx_spans, &mut self.restored);
        fixture::ferry_restore_ports(
            &self.destination,
            &self.received[tx_len..],
            &self.port_spans,
        );
        total
    }
}

fn migration(c: &mut Criterion) {
    let txs = fixture::transactions(TRANSACTIONS);
    let source = fixture::source_table(FLOWS);
    let capacity = TRANSACTIONS * 128 + fixture::ports_saved_len(&source);
    let mut migration = Migration {
        txs,
        source,
        destination: fixture::destination_table(),
        stream: vec![0u8; capacity],
        received: vec![0u8; capacity],
        tx_spans: Vec::with_capacity(TRANSACTIONS),
        port_spans: Vec::with_capacity(fixture::PORTS),
        restored: Vec::with_capacity(TRANSACTIONS),
    };
    let total = migration.run();
    fixture::assert_restored(&migration.source, &migration.destination);
    assert_eq!(migration.restored.len(), TRANSACTIONS);
    let tx_bytes: usize = migration.tx_spans.iter().map(|s| s.1).sum();
    let port_bytes: usize = migration.port_spans.iter().map(|s| s.1).sum();
    let flows = (fixture::PORTS * FLOWS) as f64;
    println!(
        "migration: {total} B in total; {:.1} B per transaction; {:.2} B per flow \
         (port blobs, headers and counters included)",
        tx_bytes as f64 / TRANSACTIONS as f64,
        port_bytes as f64 / flows
    );
    let mut copy = fixture::CopyBuffers::new(&migration.stream[..total]);

    let mut group = c.benchmark_group("migration");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("ferry", |b| b.iter(|| migration.run()));
    group.bench_function("memcpy", |b| b.iter(|| copy.copy()));
    group.finish();
}

criterion_group!(benches, migration);
criterion_main!(benches);
