//! Saved state: encode and decode of (a) outgoing-transaction contexts and (b) ports with their
//! flows, ferry against postcard (serde) on the same data and against `memcpy` of as many
//! bytes as ferry's blobs take. Checksums included (ferry's envelope CRC-32C is computed on
//! save and verified on restore). Throughput is in ferry's saved bytes per second for all
//! three, so the figures compare times for the same work. A last group times the checksum
//! alone, hardware against table engine against `memcpy`.

// Bench binaries run on the host with megabytes of stack; the kernel stack-frame lint is noise.
#![allow(clippy::large_stack_frames)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferry_core::saved_state::Crc32c;

#[path = "support/codec.rs"]
mod fixture;

fn transactions(c: &mut Criterion) {
    for count in fixture::TRANSACTION_COUNTS {
        let txs = fixture::transactions(count);
        let mut spans = Vec::with_capacity(count);
        let mut blobs = vec![0u8; count * 128];
        let ferry_len = fixture::ferry_save_transactions(&txs, &mut blobs, &mut spans);
        let ferry_spans = spans.clone();
        let mut restored = Vec::with_capacity(count);
        fixture::ferry_restore_transactions(&blobs, &ferry_spans, &mut restored);
        assert_eq!(restored.len(), count);
        assert_eq!(restored[0].sequence, txs[0].sequence);

        let mirror = fixture::postcard_transactions(&txs);
        let mut postcard = vec![0u8; count * 128];
        let postcard_len = fixture::postcard_encode(&mirror, &mut postcard, &mut spans);
        let postcard_spans = spans.clone();
        let mut decoded = Vec::with_capacity(count);
        fixture::postcard_decode::<fixture::PostcardTx>(&postcard, &postcard_spans, &mut decoded);
        assert_eq!(decoded, mirror);
        println!("transactions/{count}: ferry {ferry_len} B, postcard {postcard_len} B");

        let source = blobs[..ferry_len].to_vec();
        let mut copy = fixture::CopyBuffers::new(&source);
        for (direction, ferry_name) in [("encode", "ferry"), ("decode", "ferry")] {
            let mut group = c.benchmark_group(format!("transactions_{direction}"));
            group.throughput(Throughput::Bytes(ferry_len as u64));
            if direction == "encode" {
                group.bench_function(BenchmarkId::new(ferry_name, count), |b| {
                    b.iter(|| fixture::ferry_save_transactions(&txs, &mut blobs, &mut spans));
                });
                group.bench_function(BenchmarkId::new("postcard", count), |b| {
                    b.iter(|| fixture::postcard_encode(&mirror, &mut postcard, &mut spans));
                });
            } else {
                group.bench_function(BenchmarkId::new(ferry_name, count), |b| {
                    b.iter(|| {
                        fixture::ferry_restore_transactions(&source, &ferry_spans, &mut restored)
                    });
                });
                group.bench_function(BenchmarkId::new("postcard", count), |b| {
                    b.iter(|| fixture::postcard_decode(&postcard, &postcard_spans, &mut decoded));
                });
            }
            group.bench_function(BenchmarkId::new("memcpy", count), |b| {
                b.iter(|| copy.copy());
            });
            group.finish();
        }
    }
}

fn ports(c: &mut Criterion) {
    let destination = fixture::destination_table();
    for flows in fixture::FLOW_COUNTS {
        let source = fixture::source_table(flows);
        let total = fixture::ports_saved_len(&source);
        let mut blobs = vec![0u8; total];
        let mut spans = Vec::with_capacity(fixture::PORTS);
        let ferry_len = fixture::ferry_save_ports(&source, &mut blobs, &mut spans);
        assert_eq!(ferry_len, total);
        let ferry_spans = spans.clone();
        fixture::ferry_restore_ports(&destination, &blobs, &ferry_spans);
        fixture::assert_restored(&source, &destination);

        let mirror = fixture::postcard_ports(&source);
        let mut postcard = vec![0u8; total * 2];
        let postcard_len = fixture::postcard_encode(&mirror, &mut postcard, &mut spans);
        let postcard_spans = spans.clone();
        let mut decoded = Vec::with_capacity(fixture::PORTS);
        fixture::postcard_decode::<fixture::PostcardPort>(&postcard, &postcard_spans, &mut decoded);
        assert_eq!(decoded, mirror);
        println!(
            "ports/{flows}: {} ports, ferry {ferry_len} B, postcard {postcard_len} B",
            fixture::PORTS
        );

        let copy_source = blobs.clone();
        let mut copy = fixture::CopyBuffers::new(&copy_source);
        for direction in ["encode", "decode"] {
            let mut group = c.benchmark_group(format!("ports_{direction}"));
            group.sample_size(10);
            group.throughput(Throughput::Bytes(ferry_len as u64));
            if direction == "encode" {
                group.bench_function(BenchmarkId::new("ferry", flows), |b| {
                    b.iter(|| fixture::ferry_save_ports(&source, &mut blobs, &mut spans));
                });
                group.bench_function(BenchmarkId::new("postcard", flows), |b| {
                    b.iter(|| fixture::postcard_encode(&mirror, &mut postcard, &mut spans));
                });
            } else {
                group.bench_function(BenchmarkId::new("ferry", flows), |b| {
                    b.iter(|| {
                        fixture::ferry_restore_ports(&destination, &copy_source, &ferry_spans)
                    });
                });
                group.bench_function(BenchmarkId::new("postcard", flows), |b| {
                    b.iter(|| fixture::postcard_decode(&postcard, &postcard_spans, &mut decoded));
                });
            }
            group.bench_function(BenchmarkId::new("memcpy", flows), |b| {
                b.iter(|| copy.copy());
            });
            group.finish();
        }
    }
}

/// The envelope checksum alone: hardware (SSE 4.2, when the processor has it) against the
/// table engine and the `crc` crate's slice-by-16, next to `memcpy` of the same bytes.
fn checksum(c: &mut Criterion) {
    for size in [64 << 10, 16 << 20] {
        let bytes: Vec<u8> = (0..size as u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
            .collect();
        let mut copy = fixture::CopyBuffers::new(&bytes);
        let hardware = Crc32c::new();
        assert_eq!(
            checksum_with(hardware.clone(), &bytes),
            checksum_with(Crc32c::software(), &bytes)
        );
        let mut group = c.benchmark_group("checksum");
        group.throughput(Throughput::Bytes(size as u64));
        if hardware.is_hardware() {
            group.bench_function(BenchmarkId::new("hardware", size), |b| {
                b.iter(|| checksum_with(hardware.clone(), black_box(&bytes)));
            });
        }
        group.bench_function(BenchmarkId::new("software", size), |b| {
            b.iter(|| checksum_with(Crc32c::software(), black_box(&bytes)));
        });
        // The `crc` crate's slice-by-16, which the software engine replaced (it left a panic
        // path in the kernel image): the cost of that choice, side by side.
        let crate_slice16 = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);
        assert_eq!(
            crate_slice16.checksum(&bytes),
            checksum_with(Crc32c::software(), &bytes)
        );
        group.bench_function(BenchmarkId::new("crc-crate-slice16", size), |b| {
            b.iter(|| crate_slice16.checksum(black_box(&bytes)));
        });
        group.bench_function(BenchmarkId::new("memcpy", size), |b| {
            b.iter(|| copy.copy());
        });
        group.finish();
    }
}

fn checksum_with(mut crc: Crc32c, bytes: &[u8]) -> u32 {
    crc.update(bytes);
    crc.finish()
}

criterion_group!(benches, transactions, ports, checksum);
criterion_main!(benches);
