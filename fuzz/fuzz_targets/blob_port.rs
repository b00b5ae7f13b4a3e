//! Blob kind 2 (`PortRuntimeState`): arbitrary bytes → `PortTable::restore_port`.
//!
//! - A refused blob leaves the port exactly as it was (its saved form is unchanged).
//! - For every accepted blob: restore → save → restore onto a fresh port gives an equal port
//!   state (identity, limits, counters, buckets, flows), and saving it again gives the same
//!   bytes.
//!
//! Inputs are tried as given and resealed with a correct checksum.

#![no_main]

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_core::port::{
    AddressFamily, Direction, FlowKey, FrameInfo, PortConfig, PortTable, RateLimit, SwitchPortId,
};
use ferry_fuzz::reseal;
use libfuzzer_sys::fuzz_target;

/// Flows per port: small, so that "more records than the table holds" is reachable.
const FLOWS: usize = 16;
type Table = PortTable<SpinRawLock, 1, FLOWS>;

const PORT: SwitchPortId = SwitchPortId(7);
/// The destination's clock: large enough that most ages rebase without saturating.
const NOW: Ticks = Ticks(1 << 50);

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&reseal(data));
});

fn fresh_port(config: PortConfig) -> Box<Table> {
    let table = Box::new(Table::new());
    table
        .create_port(PORT, None, config)
        .expect("an empty table takes a port");
    table
}

fn save(table: &Table) -> Vec<u8> {
    let mut out = vec![0u8; table.saved_len(PORT, NOW).expect("the port exists")];
    let written = table
        .save_port(PORT, NOW, &mut out)
        .expect("saved_len is enough");
    assert_eq!(written, out.len(), "saved_len is exact");
    out
}

/// Everything observable about the port (`Debug` text: the state types are not `PartialEq`).
fn observe(table: &Table) -> String {
    table
        .with_port(PORT, |port| {
            let mut flows: Vec<_> = port.flows().iter_for_save().collect();
            flows.sort_by_key(|flow| format!("{:?}", flow.key));
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?}",
                port.identity(),
                port.config(),
                port.counters(),
                port.bucket(Direction::Ingress).snapshot(NOW),
                port.bucket(Direction::Egress).snapshot(NOW),
                flows,
            )
        })
        .expect("the port exists")
}

fn check(blob: &[u8]) {
    // A port with some life in it, so that a partial restore would show.
    let limited = RateLimit {
        bytes_per_second: 1_000,
        burst_bytes: 3_000,
    };
    let table = fresh_port(PortConfig {
        ingress: limited,
        egress: RateLimit::UNLIMITED,
    });
    let flow = FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, 6);
    for direction in [Direction::Ingress, Direction::Egress] {
        let frame = FrameInfo {
            direction,
            flow,
            length: 1_500,
        };
        table.classify(PORT, &frame, NOW).expect("the port exists");
    }
    assert_eq!(flow.family(), AddressFamily::V4);
    let before = (save(&table), observe(&table));

    if table.restore_port(PORT, blob, NOW).is_err() {
        assert_eq!(
            (save(&table), observe(&table)),
            before,
            "a refused blob changed the port"
        );
        return;
    }

    let first = save(&table);
    let state = observe(&table);
    let copy = fresh_port(PortConfig::UNLIMITED);
    copy.restore_port(PORT, &first, NOW)
        .expect("a saved port restores");
    assert_eq!(
        observe(&copy),
        state,
        "restore → save → restore changed the port"
    );
    assert_eq!(save(&copy), first, "saving is not canonical");
}
