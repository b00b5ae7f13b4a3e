//! The packet-path and classify inner loops, run `ITERATIONS` times for an instruction
//! counter (`cargo xtask bench --instructions` runs this under callgrind twice with different
//! iteration counts and divides the difference).
//!
//! Usage: `instructions <workload> <iterations>`; workloads: `packet-ferry-<size>`,
//! `packet-minimal-<size>` (size in 64, 1024, 8192), `classify-hit`, `classify-miss`,
//! `classify-evict`, and for profiling the codec `codec-transactions-encode`,
//! `codec-transactions-decode` (4,096 transactions per iteration), `codec-ports-encode`,
//! `codec-ports-decode` (256 ports × 1,024 flows per iteration). The packet workloads also
//! assert that the loop made no heap allocation (counting global allocator).

// Bench binaries run on the host with megabytes of stack; the kernel stack-frame lint is noise.
#![allow(clippy::large_stack_frames)]

use std::hint::black_box;
use std::process::ExitCode;

use ferry_core::protocol::MAX_MESSAGE_LEN;

#[path = "support/alloc_count.rs"]
mod alloc_count;
#[path = "support/classify.rs"]
#[allow(dead_code)] // shared with other benches, which use the rest
mod classify;
#[path = "support/codec.rs"]
#[allow(dead_code)] // shared with other benches, which use the rest
mod codec;
#[path = "support/packet.rs"]
#[allow(dead_code)] // shared with other benches, which use the rest
mod packet;

#[global_allocator]
static ALLOCATOR: alloc_count::CountingAllocator = alloc_count::CountingAllocator::new();

fn packet_loop(ferry: bool, size: usize, iterations: u64) -> u64 {
    let channel = packet::running_channel();
    let request = packet::ping_request(size);
    packet::assert_same_response(&channel, &request);
    let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
    let ((), allocations) = ALLOCATOR.count(|| {
        for _ in 0..iterations {
            if ferry {
                packet::ferry_once(&channel, black_box(&request), &mut scratch);
            } else {
                packet::minimal_handler(black_box(&request), &mut scratch);
            }
        }
    });
    allocations
}

fn run(workload: &str, iterations: u64) -> Result<(), String> {
    if let Some(rest) = workload.strip_prefix("packet-") {
        let (who, size) = rest
            .rsplit_once('-')
            .ok_or_else(|| format!("bad workload {workload}"))?;
        let size: usize = size
            .parse()
            .map_err(|_| format!("bad size in {workload}"))?;
        let allocations = match who {
            "ferry" => packet_loop(true, size, iterations),
            "minimal" => packet_loop(false, size, iterations),
            _ => return Err(format!("bad workload {workload}")),
        };
        if allocations != 0 {
            return Err(format!(
                "{workload}: {allocations} heap allocations in the loop"
            ));
        }
        println!("{workload}: {iterations} iterations, 0 heap allocations");
        return Ok(());
    }
    match workload {
        "classify-hit" => {
            let mut hit = classify::Hit::new();
            for _ in 0..iterations {
                hit.once();
            }
        }
        "classify-miss" => {
            let mut miss = classify::Miss::new();
            for _ in 0..iterations {
                miss.once();
            }
        }
        "classify-evict" => {
            let mut evict = classify::Evict::new();
            for _ in 0..iterations {
                evict.once();
            }
        }
        "codec-transactions-encode" | "codec-transactions-decode" => {
            let txs = codec::transactions(4096);
            let mut blobs = vec![0u8; 4096 * 128];
            let mut spans = Vec::with_capacity(4096);
            let mut restored = Vec::with_capacity(4096);
            codec::ferry_save_transactions(&txs, &mut blobs, &mut spans);
            for _ in 0..iterations {
                if workload.ends_with("encode") {
                    codec::ferry_save_transactions(&txs, &mut blobs, &mut spans);
                } else {
                    codec::ferry_restore_transactions(&blobs, &spans, &mut restored);
                }
            }
        }
        "codec-ports-encode" | "codec-ports-decode" => {
            let source = codec::source_table(1024);
            let destination = codec::destination_table();
            let mut blobs = vec![0u8; codec::ports_saved_len(&source)];
            let mut spans = Vec::with_capacity(codec::PORTS);
            codec::ferry_save_ports(&source, &mut blobs, &mut spans);
            for _ in 0..iterations {
                if workload.ends_with("encode") {
                    codec::ferry_save_ports(&source, &mut blobs, &mut spans);
                } else {
                    codec::ferry_restore_ports(&destination, &blobs, &spans);
                }
            }
        }
        _ => return Err(format!("unknown workload {workload}")),
    }
    println!("{workload}: {iterations} iterations");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workload, iterations] = args.as_slice() else {
        eprintln!("usage: instructions <workload> <iterations>");
        return ExitCode::from(2);
    };
    let Ok(iterations) = iterations.parse() else {
        eprintln!("iterations must be a number");
        return ExitCode::from(2);
    };
    match run(workload, iterations) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
