//! What each field of each blob kind is called, holds and means: the tables of
//! `docs/saved-state/<kind>.md`, in the form `inspect` prints them. Port counter names come
//! from core (`port::saved::COUNTER_FIELDS`), so they cannot drift from the encoder's.

use ferry_core::port::saved::{COUNTER_FIELDS, tags};
use ferry_core::saved_state::BlobKind;

/// How a field's value is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A little-endian `u64` count or value.
    U64,
    /// A little-endian `u64` age in 100 ns ticks.
    Ticks,
    /// A little-endian `u32` bit set, shown in hexadecimal.
    Bits32,
    /// A little-endian `u16`.
    U16,
    /// A `u32` holding exactly one protocol event bit.
    Event,
    /// A `u32` set of protocol event bits.
    Events,
    /// 16 bytes of identity.
    Identity,
    /// The port kind's flow records.
    FlowRecords,
}

/// One documented field.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    /// The field number (tag without the critical bit).
    pub number: u16,
    /// The name used in the kind's page.
    pub name: &'static str,
    /// How the value is shown.
    pub shape: Shape,
    /// What it means (from the kind's page).
    pub meaning: &'static str,
}

const fn spec(number: u16, name: &'static str, shape: Shape, meaning: &'static str) -> FieldSpec {
    FieldSpec {
        number,
        name,
        shape,
        meaning,
    }
}

/// Kind 1, `docs/saved-state/outgoing-transaction.md`.
const OUTGOING_TRANSACTION: [FieldSpec; 3] = [
    spec(
        1,
        "sequence",
        Shape::U64,
        "sequence number of the notification (the protocol header's transaction id); never 0",
    ),
    spec(
        2,
        "event",
        Shape::Event,
        "the event it reported, as its protocol event bit: 1 = port statistics (the only value a blob may hold)",
    ),
    spec(
        3,
        "age",
        Shape::Ticks,
        "ticks (100 ns) between sending and saving; the reader sets sent_at = now - age",
    ),
];

/// Kind 3, `docs/saved-state/channel-session.md`.
const CHANNEL_SESSION: [FieldSpec; 6] = [
    spec(
        1,
        "identity",
        Shape::Identity,
        "identity of the VM NIC whose port the channel reports on (absent: unbound)",
    ),
    spec(
        2,
        "version",
        Shape::U16,
        "negotiated protocol version (absent: not negotiated)",
    ),
    spec(3, "features", Shape::Bits32, "negotiated feature bits"),
    spec(
        4,
        "subscriptions",
        Shape::Events,
        "subscribed events (protocol event bits)",
    ),
    spec(
        5,
        "pending",
        Shape::Events,
        "events raised but not yet sent",
    ),
    spec(
        6,
        "next_sequence",
        Shape::U64,
        "sequence number of the next notification; at least 1",
    ),
];

/// Meanings of the port counters, in the order of `COUNTER_FIELDS`.
const COUNTER_MEANINGS: [&str; 11] = [
    "frames sent by the VM and permitted",
    "bytes of the permitted ingress frames",
    "frames sent by the VM and dropped by the ingress rate limit",
    "bytes of the dropped ingress frames",
    "frames delivered to the VM and permitted",
    "bytes of the permitted egress frames",
    "frames to the VM dropped by the egress rate limit",
    "bytes of the dropped egress frames",
    "new flows inserted into the flow table",
    "flows replaced to make room for a new one",
    "new flows that arrived while every flow slot was occupied",
];

/// The five fields of one direction's token bucket, in tag order: (name without the
/// direction, shape, meaning).
const BUCKET_FIELDS: [(&str, Shape, &str); 5] = [
    ("bytes_per_second", Shape::U64, "rate; 0 = unlimited"),
    ("burst_bytes", Shape::U64, "bucket depth"),
    (
        "tokens",
        Shape::U64,
        "whole tokens (bytes) in the bucket at its last refill",
    ),
    (
        "remainder",
        Shape::U64,
        "fraction of a token accumulated, in byte-ticks (< 10,000,000)",
    ),
    (
        "refill_age",
        Shape::Ticks,
        "ticks between the bucket's last refill and the save",
    ),
];

/// Full names of the bucket fields per direction, in the order of `BUCKET_FIELDS`.
const INGRESS_BUCKET_NAMES: [&str; 5] = [
    "ingress.bytes_per_second",
    "ingress.burst_bytes",
    "ingress.tokens",
    "ingress.remainder",
    "ingress.refill_age",
];
const EGRESS_BUCKET_NAMES: [&str; 5] = [
    "egress.bytes_per_second",
    "egress.burst_bytes",
    "egress.tokens",
    "egress.remainder",
    "egress.refill_age",
];

/// Kind 2, `docs/saved-state/port-runtime-state.md`.
fn port_runtime_state() -> Vec<FieldSpec> {
    let mut specs = vec![spec(
        tags::IDENTITY.number(),
        "identity",
        Shape::Identity,
        "the VM NIC identity the port was created with (absent: none)",
    )];
    for ((number, name), meaning) in (tags::FIRST_COUNTER..)
        .zip(COUNTER_FIELDS)
        .zip(COUNTER_MEANINGS)
    {
        specs.push(spec(number, name, Shape::U64, meaning));
    }
    for (first, names) in [
        (tags::FIRST_INGRESS_BUCKET, INGRESS_BUCKET_NAMES),
        (tags::FIRST_EGRESS_BUCKET, EGRESS_BUCKET_NAMES),
    ] {
        for ((number, name), (field, shape, meaning)) in (first..).zip(names).zip(BUCKET_FIELDS) {
            debug_assert!(name.ends_with(field));
            specs.push(spec(number, name, shape, meaning));
        }
    }
    specs.push(spec(
        tags::FLOWS.number(),
        "flows",
        Shape::FlowRecords,
        "the flow table, one 62-byte record per flow",
    ));
    specs
}

/// Every documented field of `kind`, in tag order.
pub fn fields_of(kind: BlobKind) -> Vec<FieldSpec> {
    match kind {
        BlobKind::OutgoingTransaction => OUTGOING_TRANSACTION.to_vec(),
        BlobKind::PortRuntimeState => port_runtime_state(),
        BlobKind::ChannelSession => CHANNEL_SESSION.to_vec(),
    }
}

/// The kind's specification page, for messages.
pub fn page_of(kind: BlobKind) -> &'static str {
    match kind {
        BlobKind::OutgoingTransaction => "docs/saved-state/outgoing-transaction.md",
        BlobKind::PortRuntimeState => "docs/saved-state/port-runtime-state.md",
        BlobKind::ChannelSession => "docs/saved-state/channel-session.md",
    }
}

#[cfg(test)]
mod tests {
    use super::{fields_of, page_of};
    use ferry_core::saved_state::BlobKind;

    const KINDS: [BlobKind; 3] = [
        BlobKind::OutgoingTransaction,
        BlobKind::PortRuntimeState,
        BlobKind::ChannelSession,
    ];

    #[test]
    fn numbers_ascend_and_names_are_unique() {
        for kind in KINDS {
            let specs = fields_of(kind);
            assert!(
                specs.windows(2).all(|w| w[0].number < w[1].number),
                "{kind}"
            );
            let mut names: Vec<_> = specs.iter().map(|s| s.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), specs.len(), "{kind}");
        }
    }

    /// Every field number listed here is in the kind's page, in a row of its own or in a
    /// range row (`| 21–25 |`): a field renumbered in the docs fails this test.
    #[test]
    fn every_field_number_is_in_the_kinds_page() {
        for kind in KINDS {
            let page = std::fs::read_to_string(crate::workspace::root().join(page_of(kind)))
                .expect("the kind's page exists");
            let listed = listed_numbers(&page);
            for spec in fields_of(kind) {
                assert!(
                    listed.contains(&spec.number),
                    "{kind}: field {} ({}) is not in {}",
                    spec.number,
                    spec.name,
                    page_of(kind)
                );
            }
        }
    }

    /// Numbers in the first cell of the page's table rows (`| 7 |` or `| 21–25 |`).
    fn listed_numbers(page: &str) -> Vec<u16> {
        let mut numbers = Vec::new();
        for line in page.lines() {
            let Some(cell) = line
                .strip_prefix('|')
                .and_then(|rest| rest.split('|').next())
            else {
                continue;
            };
            let cell = cell.trim();
            let (low, high) = cell.split_once('–').unwrap_or((cell, cell));
            if let (Ok(low), Ok(high)) = (low.parse::<u16>(), high.parse::<u16>()) {
                numbers.extend(low..=high);
            }
        }
        numbers
    }
}
