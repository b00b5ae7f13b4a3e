//! The port runtime-state blob (saved-state kind 2, [`BlobKind::PortRuntimeState`]): saving one
//! port and restoring it onto a port that may have another id.
//!
//! The payload is specified in `docs/saved-state/port-runtime-state.md`. It never carries the
//! switch port id or a raw [`Ticks`] value: the port is identified by its [`PortIdentity`],
//! and times are ages relative to the save (`now - last_seen`), turned back into this host's
//! clock on restore (`last_seen = now - age`, saturating at tick 0).
//!
//! Restore is atomic: [`PortTable::restore_port`] decodes and checks the whole blob — envelope,
//! checksum, every field, every flow record, the flow count against the table's capacity,
//! the identity against the port's — without any lock and without touching the port; only a
//! blob that passed everything is installed, under the port's slot lock, by code that cannot
//! fail.

use core::fmt;

use super::PortError;
use super::counters::{DirectionCounters, PortCounters, TrafficCounters};
use super::flow::{FlowEntry, FlowTable};
use super::rate::{BucketSnapshot, BucketSnapshotError, TokenBucket};
use super::state::PortState;
use super::table::PortTable;
use super::types::{AddressFamily, Direction, FlowKey, PortIdentity, RateLimit, SwitchPortId};
use crate::lock::RawLock;
use crate::platform::Ticks;
use crate::saved_state::Record;
use crate::saved_state::{
    self, BlobKind, DecodeError, EncodeError, FieldReader, FieldWriter, Records, SavedState, Tag,
    field_len, records_field_len,
};
use crate::status::NtStatus;

/// Field tags of the kind-2 payload (see the specification). All fields but the identity are
/// required in format 1.0.
pub mod tags {
    use crate::saved_state::Tag;

    /// The VM NIC's identity, 16 bytes; absent when the port has none.
    pub const IDENTITY: Tag = Tag::new(1);
    /// First of the eleven required `u64` counter fields, numbered consecutively (2..=12) in the order
    /// of [`super::COUNTER_FIELDS`].
    pub const FIRST_COUNTER: u16 = 2;
    /// First of the five `u64` ingress rate-limit fields (16..=20): rate, burst, tokens,
    /// remainder, refill age.
    pub const FIRST_INGRESS_BUCKET: u16 = 16;
    /// First of the five `u64` egress rate-limit fields (21..=25), same order.
    pub const FIRST_EGRESS_BUCKET: u16 = 21;
    /// The flow records.
    pub const FLOWS: Tag = Tag::new(32);
}

/// Names of the counter fields, in tag order from [`tags::FIRST_COUNTER`].
pub const COUNTER_FIELDS: [&str; 11] = [
    "ingress.permitted.frames",
    "ingress.permitted.bytes",
    "ingress.dropped_rate_limited.frames",
    "ingress.dropped_rate_limited.bytes",
    "egress.permitted.frames",
    "egress.permitted.bytes",
    "egress.dropped_rate_limited.frames",
    "egress.dropped_rate_limited.bytes",
    "flows_created",
    "flows_evicted",
    "flow_table_full",
];

/// Bytes per flow record (see the specification for its layout).
pub const FLOW_RECORD_LEN: u16 = 62;
/// [`FLOW_RECORD_LEN`] as an array length.
const FLOW_RECORD_BYTES: usize = FLOW_RECORD_LEN as usize;

const COUNTER_COUNT: usize = COUNTER_FIELDS.len();
const BUCKET_FIELD_COUNT: usize = 5;
const U64_FIELD_LEN: usize = 8;
const IDENTITY_LEN: usize = 16;

/// Why a blob was not restored. The port it was meant for is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The blob does not decode: damaged envelope or checksum, malformed or invalid field,
    /// more flow records than the port's flow table holds
    /// ([`TooManyRecords`](crate::saved_state::DecodeErrorKind::TooManyRecords)).
    Decode(DecodeError),
    /// The blob was saved for another VM NIC (or carries no identity) while the destination
    /// port was created with an identity.
    IdentityMismatch {
        /// The destination port's identity.
        expected: PortIdentity,
        /// The identity in the blob.
        found: Option<PortIdentity>,
    },
    /// A direction's rate-limit fields are inconsistent (tokens above the burst, a rate with
    /// no burst, a fraction of a token that is a whole token).
    InvalidRateLimit {
        /// The direction whose fields are inconsistent.
        direction: Direction,
        /// What is wrong.
        error: BucketSnapshotError,
    },
}

impl RestoreError {
    /// The `NTSTATUS` the restore callback returns.
    #[must_use]
    pub const fn status(&self) -> NtStatus {
        match self {
            Self::Decode(error) => error.status(),
            Self::IdentityMismatch { .. } => NtStatus::INVALID_PARAMETER,
            Self::InvalidRateLimit { .. } => NtStatus::DATA_ERROR,
        }
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(error) => write!(f, "{error}"),
            Self::IdentityMismatch { found: Some(_), .. } => {
                f.write_str("the blob belongs to another VM NIC")
            }
            Self::IdentityMismatch { found: None, .. } => {
                f.write_str("the blob carries no NIC identity but the port has one")
            }
            Self::InvalidRateLimit { direction, error } => {
                write!(f, "inconsistent {direction:?} rate limit: {error:?}")
            }
        }
    }
}

impl From<DecodeError> for RestoreError {
    fn from(error: DecodeError) -> Self {
        Self::Decode(error)
    }
}

/// One port's state as of `now`, ready to encode.
struct PortBlob<'a, const FLOWS: usize> {
    state: &'a PortState<FLOWS>,
    now: Ticks,
}

impl<const FLOWS: usize> PortBlob<'_, FLOWS> {
    fn flow_count(&self) -> usize {
        self.state.flows().len()
    }
}

impl<const FLOWS: usize> SavedState for PortBlob<'_, FLOWS> {
    const KIND: BlobKind = BlobKind::PortRuntimeState;

    fn payload_len(&self) -> usize {
        let identity = if self.state.identity().is_some() {
            field_len(IDENTITY_LEN)
        } else {
            0
        };
        let fixed = COUNTER_COUNT
            .saturating_add(BUCKET_FIELD_COUNT.saturating_mul(2))
            .saturating_mul(field_len(U64_FIELD_LEN));
        identity
            .saturating_add(fixed)
            .saturating_add(records_field_len(self.flow_count(), FLOW_RECORD_LEN))
    }

    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
        if let Some(identity) = self.state.identity() {
            w.bytes(tags::IDENTITY, &identity.0)?;
        }
        write_u64s(
            w,
            tags::FIRST_COUNTER,
            &counter_values(self.state.counters()),
        )?;
        let ingress = bucket_values(self.state.bucket(Direction::Ingress), self.now);
        write_u64s(w, tags::FIRST_INGRESS_BUCKET, &ingress)?;
        let egress = bucket_values(self.state.bucket(Direction::Egress), self.now);
        write_u64s(w, tags::FIRST_EGRESS_BUCKET, &egress)?;
        let count = u32::try_from(self.flow_count()).map_err(|_| EncodeError::InvalidState)?;
        let slots = w
            .records(tags::FLOWS, count, FLOW_RECORD_LEN)?
            .all_records::<FLOW_RECORD_BYTES>()?;
        let mut filled = 0usize;
        for (slot, flow) in slots.iter_mut().zip(self.state.flows().iter_for_save()) {
            write_flow_record(slot, &flow, self.now);
            filled = filled.saturating_add(1);
        }
        // The table yields exactly `len()` flows; anything else would leave slots unwritten.
        if filled != slots.len() {
            return Err(EncodeError::InvalidState);
        }
        Ok(())
    }
}

/// Writes `values` as `u64` fields with consecutive tag numbers from `first`.
fn write_u64s(w: &mut FieldWriter<'_>, first: u16, values: &[u64]) -> Result<(), EncodeError> {
    for (tag, value) in number_from(first).zip(values) {
        w.u64(tag, *value)?;
    }
    Ok(())
}

/// Writes `flow`'s record (layout in the specification), its age taken at `now`, member by
/// member straight into its slot of the output.
#[inline]
fn write_flow_record(record: &mut [u8; FLOW_RECORD_BYTES], flow: &FlowEntry, now: Ticks) {
    let key = &flow.key;
    let mut rest = record.as_mut_slice();
    put(&mut rest, [key.family() as u8, key.protocol()]);
    put(&mut rest, key.source_port().to_le_bytes());
    put(&mut rest, key.destination_port().to_le_bytes());
    put(&mut rest, key.source().to_be_bytes());
    put(&mut rest, key.destination().to_be_bytes());
    put(&mut rest, flow.counters.frames.to_le_bytes());
    put(&mut rest, flow.counters.bytes.to_le_bytes());
    put(
        &mut rest,
        now.saturating_since(flow.last_seen).to_le_bytes(),
    );
}

/// Writes `bytes` at the front of `rest` and moves `rest` past them. (Record and member sizes
/// are constants, so the length checks fold away.)
#[inline]
fn put<const N: usize>(rest: &mut &mut [u8], bytes: [u8; N]) {
    if let Some((member, tail)) = core::mem::take(rest).split_first_chunk_mut::<N>() {
        *member = bytes;
        *rest = tail;
    }
}

/// Tags `first`, `first + 1`, ...
fn number_from(first: u16) -> impl Iterator<Item = Tag> {
    (first..).map(Tag::new)
}

const fn counter_values(c: &PortCounters) -> [u64; COUNTER_COUNT] {
    [
        c.ingress.permitted.frames,
        c.ingress.permitted.bytes,
        c.ingress.dropped_rate_limited.frames,
        c.ingress.dropped_rate_limited.bytes,
        c.egress.permitted.frames,
        c.egress.permitted.bytes,
        c.egress.dropped_rate_limited.frames,
        c.egress.dropped_rate_limited.bytes,
        c.flows_created,
        c.flows_evicted,
        c.flow_table_full,
    ]
}

const fn counters_from(v: [u64; COUNTER_COUNT]) -> PortCounters {
    let [if_, ib, idf, idb, ef, eb, edf, edb, created, evicted, full] = v;
    PortCounters {
        ingress: DirectionCounters {
            permitted: TrafficCounters {
                frames: if_,
                bytes: ib,
            },
            dropped_rate_limited: TrafficCounters {
                frames: idf,
                bytes: idb,
            },
        },
        egress: DirectionCounters {
            permitted: TrafficCounters {
                frames: ef,
                bytes: eb,
            },
            dropped_rate_limited: TrafficCounters {
                frames: edf,
                bytes: edb,
            },
        },
        flows_created: created,
        flows_evicted: evicted,
        flow_table_full: full,
    }
}

const fn bucket_values(bucket: &TokenBucket, now: Ticks) -> [u64; BUCKET_FIELD_COUNT] {
    let limit = bucket.limit();
    let snapshot = bucket.snapshot(now);
    [
        limit.bytes_per_second,
        limit.burst_bytes,
        snapshot.tokens,
        snapshot.remainder,
        snapshot.refill_age,
    ]
}

/// A blob that passed every check, ready to install: nothing about it can fail any more.
struct ValidatedBlob<'a> {
    identity: Option<PortIdentity>,
    counters: [u64; COUNTER_COUNT],
    /// Bucket limits and snapshots, checked by [`TokenBucket::validate`].
    buckets: [(RateLimit, BucketSnapshot); 2],
    /// Flow records, each checked by [`decode_flow`]; `None` only in [`Self::EMPTY`].
    flows: Option<Records<'a>>,
}

impl ValidatedBlob<'_> {
    const EMPTY: Self = Self {
        identity: None,
        counters: [0; COUNTER_COUNT],
        buckets: [(
            RateLimit::UNLIMITED,
            BucketSnapshot {
                tokens: 0,
                remainder: 0,
                refill_age: 0,
            },
        ); 2],
        flows: None,
    };
}

/// Raw rate-limit fields of both directions, before the consistency check.
type RawBuckets = [[u64; BUCKET_FIELD_COUNT]; 2];

/// Decodes and checks all of `blob` for a table of `capacity` flows into `out`. (Results go
/// through `out` to keep the kernel stack frames of this chain small.)
fn validate<'a>(
    blob: &'a [u8],
    capacity: usize,
    out: &mut ValidatedBlob<'a>,
) -> Result<(), RestoreError> {
    let payload = saved_state::open(blob, BlobKind::PortRuntimeState)?;
    let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
    let mut raw_buckets: RawBuckets = [[0; BUCKET_FIELD_COUNT]; 2];
    payload.read(|f| read_fields(f, capacity, out, &mut raw_buckets))?;
    let [raw_ingress, raw_egress] = raw_buckets;
    let [ingress, egress] = &mut out.buckets;
    *ingress = validate_bucket(Direction::Ingress, raw_ingress)?;
    *egress = validate_bucket(Direction::Egress, raw_egress)?;
    Ok(())
}

/// Reads every known field in tag order into `out` and `buckets`, checking each flow record.
fn read_fields<'a>(
    f: &mut FieldReader<'a>,
    capacity: u32,
    out: &mut ValidatedBlob<'a>,
    buckets: &mut RawBuckets,
) -> Result<(), DecodeError> {
    out.identity = read_identity(f)?;
    read_u64s(f, tags::FIRST_COUNTER, &mut out.counters)?;
    let [ingress, egress] = buckets;
    read_u64s(f, tags::FIRST_INGRESS_BUCKET, ingress)?;
    read_u64s(f, tags::FIRST_EGRESS_BUCKET, egress)?;
    out.flows = Some(read_flows(f, capacity)?);
    Ok(())
}

fn read_identity(f: &mut FieldReader<'_>) -> Result<Option<PortIdentity>, DecodeError> {
    match f.optional(tags::IDENTITY)? {
        Some(field) => Ok(Some(PortIdentity(*field.array::<IDENTITY_LEN>()?))),
        None => Ok(None),
    }
}

fn read_flows<'a>(f: &mut FieldReader<'a>, capacity: u32) -> Result<Records<'a>, DecodeError> {
    check_flows(f.require(tags::FLOWS)?.records(capacity)?)
}

/// Checks every flow record of `records`.
fn check_flows(records: Records<'_>) -> Result<Records<'_>, DecodeError> {
    records.require_record_len(FLOW_RECORD_LEN)?;
    for record in records.iter() {
        if !flow_record_is_valid(record.bytes()) {
            return Err(record.invalid());
        }
    }
    Ok(records)
}

/// One direction's rate-limit fields, checked for consistency.
fn validate_bucket(
    direction: Direction,
    [bytes_per_second, burst_bytes, tokens, remainder, refill_age]: [u64; BUCKET_FIELD_COUNT],
) -> Result<(RateLimit, BucketSnapshot), RestoreError> {
    let limit = RateLimit {
        bytes_per_second,
        burst_bytes,
    };
    let snapshot = BucketSnapshot {
        tokens,
        remainder,
        refill_age,
    };
    TokenBucket::validate(limit, &snapshot)
        .map_err(|error| RestoreError::InvalidRateLimit { direction, error })?;
    Ok((limit, snapshot))
}

/// Consecutive required `u64` fields from tag number `first` into `out`.
fn read_u64s(f: &mut FieldReader<'_>, first: u16, out: &mut [u64]) -> Result<(), DecodeError> {
    for (tag, value) in number_from(first).zip(out.iter_mut()) {
        *value = f.require(tag)?.u64()?;
    }
    Ok(())
}

/// Checks a kind-2 blob exactly as [`PortTable::restore_port`] would for a flow table of
/// `capacity` flows, without a port and without installing anything: for tools that judge a
/// captured blob (`cargo xtask inspect`). The identity is not compared, as there is no
/// destination port to compare it with.
///
/// # Errors
///
/// The [`RestoreError`] restore would report: [`RestoreError::Decode`] (with the byte offset)
/// or [`RestoreError::InvalidRateLimit`]; never [`RestoreError::IdentityMismatch`].
pub fn check_blob(blob: &[u8], capacity: usize) -> Result<(), RestoreError> {
    let mut validated = ValidatedBlob::EMPTY;
    validate(blob, capacity, &mut validated)
}

/// Whether [`decode_flow`] accepts `bytes`, without building the flow: the family is 4 or 6,
/// and an IPv4 record's addresses have their upper 12 bytes zero. The validation pass runs
/// this over every record; install decodes each record once.
#[inline]
fn flow_record_is_valid(bytes: &[u8]) -> bool {
    if bytes.len() < FLOW_RECORD_BYTES {
        return false;
    }
    let Some((&[family, _protocol, ..], rest)) = bytes.split_first_chunk::<ADDRESSES_AT>() else {
        return false;
    };
    let Some((source, rest)) = rest.split_first_chunk::<16>() else {
        return false;
    };
    let Some(destination) = rest.first_chunk::<16>() else {
        return false;
    };
    match family {
        6 => true,
        4 => (u128::from_be_bytes(*source) | u128::from_be_bytes(*destination)) >> 32 == 0,
        _ => false,
    }
}

/// Offset of the source address in a flow record.
const ADDRESSES_AT: usize = 6;

/// A decoded flow record.
struct DecodedFlow {
    key: FlowKey,
    counters: TrafficCounters,
    age: u64,
}

/// Splits the next `N` bytes off `bytes`.
#[inline]
fn take<const N: usize>(bytes: &mut &[u8]) -> Option<[u8; N]> {
    let (member, rest) = bytes.split_first_chunk::<N>()?;
    *bytes = rest;
    Some(*member)
}

/// One flow record (at least [`FLOW_RECORD_LEN`] bytes; members past it, a newer minor
/// version's, are ignored). `None` for an unknown address family or an IPv4 address wider
/// than 32 bits.
#[inline]
fn decode_flow(bytes: &[u8]) -> Option<DecodedFlow> {
    // One length check for the whole record; the members then lie at constant offsets of a
    // fixed-size array, so their checks fold away.
    let record = bytes.first_chunk::<FLOW_RECORD_BYTES>()?;
    let mut bytes = record.as_slice();
    let family = match take::<1>(&mut bytes)? {
        [4] => AddressFamily::V4,
        [6] => AddressFamily::V6,
        _ => return None,
    };
    let [protocol] = take::<1>(&mut bytes)?;
    let source_port = u16::from_le_bytes(take(&mut bytes)?);
    let destination_port = u16::from_le_bytes(take(&mut bytes)?);
    let source = u128::from_be_bytes(take(&mut bytes)?);
    let destination = u128::from_be_bytes(take(&mut bytes)?);
    let frames = u64::from_le_bytes(take(&mut bytes)?);
    let bytes_seen = u64::from_le_bytes(take(&mut bytes)?);
    let age = u64::from_le_bytes(take(&mut bytes)?);
    let key = FlowKey::from_parts(
        family,
        source,
        destination,
        source_port,
        destination_port,
        protocol,
    )?;
    Some(DecodedFlow {
        key,
        counters: TrafficCounters {
            frames,
            bytes: bytes_seen,
        },
        age,
    })
}

/// Installs a validated blob into `state` at `now`. Cannot fail: every check ran before.
fn install<const FLOWS: usize>(state: &mut PortState<FLOWS>, blob: &ValidatedBlob<'_>, now: Ticks) {
    if let Some(identity) = blob.identity {
        state.set_identity(Some(identity));
    }
    let (ingress, egress, counters, flows) = state.parts_mut();
    let [
        (ingress_limit, ingress_snapshot),
        (egress_limit, egress_snapshot),
    ] = blob.buckets;
    if let Ok(bucket) = TokenBucket::restore(ingress_limit, &ingress_snapshot, now) {
        *ingress = bucket;
    }
    if let Ok(bucket) = TokenBucket::restore(egress_limit, &egress_snapshot, now) {
        *egress = bucket;
    }
    *counters = counters_from(blob.counters);
    install_flows(flows, counters, blob.flows, now);
}

/// Installs the validated flow records. A table saved full comes back slot for slot; any
/// other comes back by insertion, which `FlowTable::iter_for_save`'s order makes exact when
/// the source had a free slot.
fn install_flows<const FLOWS: usize>(
    flows: &mut FlowTable<FLOWS>,
    counters: &mut PortCounters,
    saved: Option<Records<'_>>,
    now: Ticks,
) {
    let restored = |record: Record<'_>| {
        decode_flow(record.bytes()).map(|flow| FlowEntry {
            key: flow.key,
            counters: flow.counters,
            last_seen: Ticks(now.0.saturating_sub(flow.age)),
        })
    };
    let Some(saved) = saved else {
        flows.clear();
        return;
    };
    let full = usize::try_from(saved.count()).is_ok_and(|n| n == FLOWS);
    if full && flows.restore_full_layout(saved.iter().map_while(restored)) {
        return;
    }
    flows.clear();
    for record in saved.iter() {
        // Every record passed `flow_record_is_valid`, so it decodes.
        let Some(entry) = restored(record) else {
            continue;
        };
        if let super::flow::FlowOutcome::Inserted { evicted: true, .. } =
            flows.insert_restored(&entry)
        {
            counters.flows_evicted = counters.flows_evicted.saturating_add(1);
        }
    }
}

impl<L: RawLock, const PORTS: usize, const FLOWS: usize> PortTable<L, PORTS, FLOWS> {
    /// The exact length of port `id`'s blob if saved now: the size to allocate before
    /// [`save_port`](Self::save_port). (It depends on the number of flows only; `now` is
    /// taken for symmetry with `save_port`.) Traffic between the two calls may add flows, in
    /// which case `save_port` reports the new size.
    ///
    /// # Errors
    ///
    /// [`PortError::UnknownPort`] if no live port has `id`.
    pub fn saved_len(&self, id: SwitchPortId, now: Ticks) -> Result<usize, PortError> {
        self.with_port(id, |state| {
            saved_state::encoded_len(&PortBlob { state, now })
        })
    }

    /// Writes port `id`'s runtime state as of `now` as a kind-2 blob at the start of `out` and
    /// returns its length. Holds the port's slot lock while encoding (that port's classify
    /// waits; no other does).
    ///
    /// # Errors
    ///
    /// [`PortError::UnknownPort`] if no live port has `id`; [`PortError::BufferTooSmall`] with
    /// the exact size if `out` is shorter; [`PortError::Encode`] if the state cannot be encoded
    /// (a flow table too large for the format's payload limit).
    pub fn save_port(
        &self,
        id: SwitchPortId,
        now: Ticks,
        out: &mut [u8],
    ) -> Result<usize, PortError> {
        self.with_port(id, |state| {
            saved_state::encode(&PortBlob { state, now }, out)
        })?
        .map_err(|error| match error {
            EncodeError::BufferTooSmall { needed, .. } => PortError::BufferTooSmall { needed },
            other => PortError::Encode(other),
        })
    }

    /// Restores a kind-2 blob onto port `id` (which may differ from the port id it was saved
    /// from), with times re-based on `now`. The blob's counters, rate limits, tokens and flows
    /// replace the port's. If the port was created with an identity, the blob must carry the
    /// same one; if it was not, it adopts the blob's.
    ///
    /// Atomic: the whole blob is checked before the port is touched, and on any error the port
    /// is exactly as before. A table saved full comes back slot for slot when the destination
    /// has the same capacity; otherwise flows are re-inserted, which is exact whenever the
    /// source had a free slot and the same capacity. Flows a smaller destination cannot place
    /// are evicted by the usual policy and counted in `flows_evicted`.
    ///
    /// # Errors
    ///
    /// [`PortError::UnknownPort`] if no live port has `id` (also if it is deleted during the
    /// call); [`PortError::Restore`] for a blob that does not decode, carries too many flows,
    /// has inconsistent rate-limit fields, or belongs to another NIC.
    pub fn restore_port(&self, id: SwitchPortId, blob: &[u8], now: Ticks) -> Result<(), PortError> {
        let (slot, port_identity) = self.lookup(id)?;
        let mut validated = ValidatedBlob::EMPTY;
        validate(blob, FLOWS, &mut validated).map_err(PortError::Restore)?;
        if let Some(expected) = port_identity
            && validated.identity != Some(expected)
        {
            return Err(PortError::Restore(RestoreError::IdentityMismatch {
                expected,
                found: validated.identity,
            }));
        }
        self.with_slot(slot, |state| install(state, &validated, now))
            .ok_or(PortError::UnknownPort(id))?;
        if port_identity.is_none() && validated.identity.is_some() {
            self.set_directory_identity(slot, validated.identity);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{FLOW_RECORD_BYTES, decode_flow, flow_record_is_valid};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_validation_pass_accepts_exactly_what_install_decodes(
            family in prop_oneof![Just(4u8), Just(6u8), any::<u8>()],
            mut record in proptest::collection::vec(any::<u8>(), FLOW_RECORD_BYTES..FLOW_RECORD_BYTES + 4),
            clear_high in any::<bool>(),
            stray in 6usize..38,
        ) {
            record[0] = family;
            if clear_high {
                // An IPv4-shaped record, then perhaps one stray non-zero high byte.
                record[6..18].fill(0);
                record[22..34].fill(0);
                if stray < 18 || (22..34).contains(&stray) {
                    record[stray] |= 1;
                }
            }
            prop_assert_eq!(flow_record_is_valid(&record), decode_flow(&record).is_some());
            prop_assert!(!flow_record_is_valid(&record[..FLOW_RECORD_BYTES - 1]));
        }
    }
}
