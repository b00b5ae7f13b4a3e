//! `port::saved::check_blob` (the port blob check for tools) agrees with
//! `PortTable::restore_port` on a port without identity: same verdict, same error, for the
//! golden blob, for every damaged copy tried, and for a flow capacity the blob exceeds.

// A port table of a few KiB is built by value, far below a test thread's stack; the lint's
// 2 KiB threshold is meant for kernel code.
#![allow(clippy::large_stack_frames)]

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_core::port::saved::check_blob;
use ferry_core::port::{PortConfig, PortError, PortTable, RateLimit, SwitchPortId};
use proptest::prelude::*;

const GOLDEN: &[u8] = include_bytes!("golden/v1.0/port-runtime-state.bin");
const FLOWS: usize = 16;
type Table = PortTable<SpinRawLock, 2, FLOWS>;

/// What restoring `blob` onto a fresh port without identity reports.
fn restore(blob: &[u8]) -> Result<(), PortError> {
    let table = Table::new();
    let unlimited = RateLimit {
        bytes_per_second: 0,
        burst_bytes: 0,
    };
    table
        .create_port(
            SwitchPortId(5),
            None,
            PortConfig {
                ingress: unlimited,
                egress: unlimited,
            },
        )
        .unwrap();
    table.restore_port(SwitchPortId(5), blob, Ticks(10 * Ticks::PER_SECOND))
}

#[test]
fn the_golden_blob_passes() {
    assert_eq!(check_blob(GOLDEN, FLOWS), Ok(()));
    assert!(restore(GOLDEN).is_ok());
}

#[test]
fn a_capacity_below_the_blobs_flow_count_is_refused() {
    // The golden blob holds two flows.
    assert!(check_blob(GOLDEN, 2).is_ok());
    let error = check_blob(GOLDEN, 1).unwrap_err();
    assert_eq!(
        error.status(),
        ferry_core::status::NtStatus::INSUFFICIENT_RESOURCES
    );
}

proptest! {
    #[test]
    fn agrees_with_restore_on_damaged_copies(
        at in 0..GOLDEN.len(),
        xor in 1u8..=255,
        cut in proptest::option::of(0..GOLDEN.len()),
    ) {
        let mut blob = GOLDEN.to_vec();
        blob[at] ^= xor;
        if let Some(len) = cut {
            blob.truncate(len);
        }
        let expected = restore(&blob).map_err(|error| match error {
            PortError::Restore(restore) => restore,
            other => panic!("unexpected {other:?}"),
        });
        prop_assert!(expected.is_err(), "a damaged copy must be refused");
        prop_assert_eq!(check_blob(&blob, FLOWS), expected);
    }
}
