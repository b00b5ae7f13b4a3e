//! Saves answered with `STATUS_PENDING`: finishing, refusing, timing out, and deleting the
//! port while one is pending.

// Port tables are built by value here (a few KiB; the 1024-flow one about 100 KiB), far below
// a test thread's 2 MiB stack; the lints' 2 KiB threshold is meant for kernel code.
#![allow(clippy::large_stack_frames, clippy::large_stack_arrays)]

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_core::port::pending::{PendingSaveError, Refused};
use ferry_core::port::{
    Direction, FlowKey, FrameInfo, PendingSaves, PortConfig, PortError, PortTable,
    SAVE_CANCELLED_STATUS, SwitchPortId,
};
use ferry_core::status::NtStatus;

/// A completion context that, like the real one, can be neither copied nor cloned.
#[derive(Debug, PartialEq, Eq)]
struct Completion(u32);

type Table = PortTable<SpinRawLock, 4, 8>;
type Pending = PendingSaves<SpinRawLock, Completion, 2>;

const SECOND: u64 = Ticks::PER_SECOND;

fn table_with_ports(ids: &[u32]) -> Table {
    let table = Table::new();
    for &id in ids {
        table
            .create_port(SwitchPortId(id), None, PortConfig::UNLIMITED)
            .unwrap();
        let frame = FrameInfo {
            direction: Direction::Ingress,
            flow: FlowKey::v4([1, 2, 3, 4], [5, 6, 7, 8], 9, 10, 17),
            length: 99,
        };
        table.classify(SwitchPortId(id), &frame, Ticks(1)).unwrap();
    }
    table
}

#[test]
fn a_finished_save_returns_the_blob_and_its_completion() {
    let table = table_with_ports(&[1]);
    let pending = Pending::new();
    pending
        .begin(SwitchPortId(1), Completion(11), Ticks(SECOND))
        .unwrap();
    assert!(pending.is_pending(SwitchPortId(1)));

    let now = Ticks(2 * SECOND);
    let len = table.saved_len(SwitchPortId(1), now).unwrap();
    let mut expected = vec![0; len];
    table
        .save_port(SwitchPortId(1), now, &mut expected)
        .unwrap();
    let mut out = vec![0; len];
    let finished = pending
        .finish(&table, SwitchPortId(1), now, &mut out)
        .unwrap();
    assert_eq!(finished.completion, Completion(11));
    assert_eq!(finished.status, NtStatus::SUCCESS);
    assert_eq!(finished.result, Ok(len));
    assert_eq!(out, expected);
    assert!(pending.is_empty());
    assert!(
        pending
            .finish(&table, SwitchPortId(1), now, &mut out)
            .is_none(),
        "a save finishes once"
    );
}

#[test]
fn a_save_that_cannot_be_written_still_hands_its_completion_back() {
    let table = table_with_ports(&[1]);
    let pending = Pending::new();
    pending
        .begin(SwitchPortId(1), Completion(1), Ticks(0))
        .unwrap();
    let needed = table.saved_len(SwitchPortId(1), Ticks(0)).unwrap();
    let mut short = vec![0; needed - 1];
    let finished = pending
        .finish(&table, SwitchPortId(1), Ticks(0), &mut short)
        .unwrap();
    assert_eq!(finished.completion, Completion(1));
    assert_eq!(finished.status, NtStatus::BUFFER_TOO_SMALL);
    assert_eq!(finished.result, Err(PortError::BufferTooSmall { needed }));
    assert!(pending.is_empty());
}

#[test]
fn the_list_refuses_when_full_or_duplicate_and_gives_the_completion_back() {
    let pending = Pending::new();
    pending
        .begin(SwitchPortId(1), Completion(1), Ticks(0))
        .unwrap();
    assert_eq!(
        pending.begin(SwitchPortId(1), Completion(2), Ticks(0)),
        Err(Refused {
            completion: Completion(2),
            error: PendingSaveError::AlreadyPending(SwitchPortId(1)),
        })
    );
    pending
        .begin(SwitchPortId(2), Completion(3), Ticks(0))
        .unwrap();
    assert_eq!(
        pending.begin(SwitchPortId(3), Completion(4), Ticks(0)),
        Err(Refused {
            completion: Completion(4),
            error: PendingSaveError::Full,
        })
    );
    assert_eq!(pending.len(), 2);
}

#[test]
fn a_save_that_never_finishes_is_detected_and_can_be_failed() {
    let pending = Pending::new();
    let timeout = 30 * SECOND;
    pending
        .begin(SwitchPortId(1), Completion(1), Ticks(10 * SECOND))
        .unwrap();
    pending
        .begin(SwitchPortId(2), Completion(2), Ticks(20 * SECOND))
        .unwrap();
    assert_eq!(pending.oldest_overdue(Ticks(40 * SECOND), timeout), None);
    let overdue = pending.oldest_overdue(Ticks(45 * SECOND), timeout).unwrap();
    assert_eq!(overdue.port, SwitchPortId(1));
    assert_eq!(overdue.outstanding, 35 * SECOND);
    assert_eq!(pending.len(), 2, "reporting does not remove");

    let taken = pending.take_overdue(Ticks(45 * SECOND), timeout).unwrap();
    assert_eq!(taken.port, SwitchPortId(1));
    assert_eq!(taken.completion, Completion(1));
    assert_eq!(pending.take_overdue(Ticks(45 * SECOND), timeout), None);
    assert_eq!(
        pending
            .take_overdue(Ticks(51 * SECOND), timeout)
            .map(|s| s.completion),
        Some(Completion(2))
    );
    assert!(pending.is_empty());
}

#[test]
fn deleting_a_port_cancels_its_pending_save() {
    let table = table_with_ports(&[1, 2]);
    let pending = Pending::new();
    pending
        .begin(SwitchPortId(1), Completion(1), Ticks(0))
        .unwrap();
    pending
        .begin(SwitchPortId(2), Completion(2), Ticks(0))
        .unwrap();
    let deletion = pending.delete_port(&table, SwitchPortId(1));
    assert_eq!(deletion.deleted, Ok(()));
    assert_eq!(deletion.cancelled_save, Some(Completion(1)));
    assert_eq!(SAVE_CANCELLED_STATUS, NtStatus::CANCELLED);
    assert!(!pending.is_pending(SwitchPortId(1)));
    assert!(pending.is_pending(SwitchPortId(2)), "other saves stay");
    assert!(table.counters(SwitchPortId(1)).is_err());

    // Deleting a port with nothing pending cancels nothing.
    let deletion = pending.delete_port(&table, SwitchPortId(3));
    assert_eq!(
        deletion.deleted,
        Err(PortError::UnknownPort(SwitchPortId(3)))
    );
    assert_eq!(deletion.cancelled_save, None);
}

#[test]
fn a_pending_save_of_a_port_removed_behind_its_back_finishes_with_an_error() {
    let table = table_with_ports(&[1]);
    let pending = Pending::new();
    pending
        .begin(SwitchPortId(1), Completion(1), Ticks(0))
        .unwrap();
    table.delete_port(SwitchPortId(1)).unwrap();
    let finished = pending
        .finish(&table, SwitchPortId(1), Ticks(0), &mut [0; 4096])
        .unwrap();
    assert_eq!(finished.completion, Completion(1));
    assert_eq!(finished.status, NtStatus::NOT_FOUND);
}
