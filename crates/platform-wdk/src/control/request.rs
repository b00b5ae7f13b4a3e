//! The control device's IOCTL surface: codes, wire layouts, the validation of every input
//! buffer, which is hostile user memory (the caller is the VM worker process or a test tool,
//! but anything that can open the device can send anything), and the encoding of the outputs.
//!
//! A handler ([`super::ControlDevice`]) only ever sees a [`ControlRequest`] this module
//! produced.
//!
//! Wire rules: little-endian, fixed layouts, every request starts with a `u32` version
//! ([`IOCTL_VERSION`]) and the input must have exactly the layout's length (trailing bytes are
//! refused, not ignored); reserved fields must be zero; unknown flag bits are refused. All
//! codes use `METHOD_BUFFERED`, so the I/O manager copies the input into a system buffer
//! before the driver reads it (no double fetch from user memory).

use ferry_core::port::{DirectionCounters, PortCounters, PortIdentity, SwitchPortId};
use ferry_core::protocol::HEADER_LEN;

/// ferry's device type (vendor range: 0x8000 and above).
pub const FILE_DEVICE_FERRY: u32 = 0x8F72;
/// `METHOD_BUFFERED`.
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_READ_ACCESS`.
pub const FILE_READ_ACCESS: u32 = 1;
/// `FILE_WRITE_ACCESS`.
pub const FILE_WRITE_ACCESS: u32 = 2;

/// `CTL_CODE(DeviceType, Function, Method, Access)` (devioctl.h).
#[must_use]
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// Offer a channel to a VM (input [`OfferInput`] with a VMBus handle; output the channel id,
/// `u32`, [`OFFER_OUTPUT_LEN`] bytes).
pub const IOCTL_FERRY_OFFER_CHANNEL: u32 =
    ctl_code(FILE_DEVICE_FERRY, 0x800, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// Offer a loopback channel to the host itself (input [`OfferInput`] with handle 0).
pub const IOCTL_FERRY_OFFER_LOOPBACK: u32 =
    ctl_code(FILE_DEVICE_FERRY, 0x801, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// Read one port's statistics by NIC identity (input [`PortStatsInput`]; output
/// [`PORT_STATS_OUTPUT_LEN`] bytes, see [`encode_port_stats`]).
pub const IOCTL_FERRY_READ_PORT_STATS: u32 =
    ctl_code(FILE_DEVICE_FERRY, 0x802, METHOD_BUFFERED, FILE_READ_ACCESS);
/// Save one chunk of a paused channel's state into the output buffer (input
/// [`ChannelInput`]; output a [`SaveHeader`] and the chunk).
pub const IOCTL_FERRY_SAVE_CHANNEL: u32 = ctl_code(
    FILE_DEVICE_FERRY,
    0x803,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);
/// Restore one chunk of a channel's state (input [`RestoreInput`] header then the chunk).
pub const IOCTL_FERRY_RESTORE_CHANNEL: u32 =
    ctl_code(FILE_DEVICE_FERRY, 0x804, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// Revoke an offer and free the channel (input [`ChannelInput`]).
pub const IOCTL_FERRY_CLOSE_CHANNEL: u32 =
    ctl_code(FILE_DEVICE_FERRY, 0x805, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// Pause a running channel before a save (`VmbChannelPause`; input [`ChannelInput`]).
pub const IOCTL_FERRY_PAUSE_CHANNEL: u32 =
    ctl_code(FILE_DEVICE_FERRY, 0x806, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// Start a paused or restored channel (`VmbChannelStart`; input [`ChannelInput`]); ends an
/// unfinished save.
pub const IOCTL_FERRY_RESUME_CHANNEL: u32 =
    ctl_code(FILE_DEVICE_FERRY, 0x807, METHOD_BUFFERED, FILE_WRITE_ACCESS);

/// Every code the control device answers.
pub const IOCTL_CODES: [u32; 8] = [
    IOCTL_FERRY_OFFER_CHANNEL,
    IOCTL_FERRY_OFFER_LOOPBACK,
    IOCTL_FERRY_READ_PORT_STATS,
    IOCTL_FERRY_SAVE_CHANNEL,
    IOCTL_FERRY_RESTORE_CHANNEL,
    IOCTL_FERRY_CLOSE_CHANNEL,
    IOCTL_FERRY_PAUSE_CHANNEL,
    IOCTL_FERRY_RESUME_CHANNEL,
];

/// The only layout version.
pub const IOCTL_VERSION: u32 = 1;
/// Largest `maximum_packet_size` an offer may ask for (64 KiB).
pub const MAX_PACKET_SIZE_LIMIT: u32 = 64 * 1024;
/// Largest restore chunk accepted in one call (1 MiB).
pub const MAX_RESTORE_CHUNK: usize = 1024 * 1024;
/// Offer flag: the service answers `GetPortStats` later (`ServiceConfig::defer_port_stats`).
pub const OFFER_FLAG_DEFER_PORT_STATS: u32 = 0x1;
/// Offer flag: leave the channel paused after the offer (a migration destination, restored
/// before [`IOCTL_FERRY_RESUME_CHANNEL`] starts it). Without it the offer is started at once.
pub const OFFER_FLAG_START_PAUSED: u32 = 0x2;
/// Every offer flag.
pub const OFFER_FLAGS: u32 = OFFER_FLAG_DEFER_PORT_STATS | OFFER_FLAG_START_PAUSED;
/// Restore flag: this chunk starts with the session blob (`restore_session`), the rest is
/// KMCL's stream.
pub const RESTORE_FLAG_SESSION: u32 = 0x1;
/// Restore flag: the last chunk; the channel then records `Restored`.
pub const RESTORE_FLAG_LAST: u32 = 0x2;

/// A GUID as its 16 bytes in Windows memory order.
pub type GuidBytes = [u8; 16];

/// `IOCTL_FERRY_OFFER_*` input: 72 bytes.
///
/// | offset | field |
/// |---|---|
/// | 0 | `version: u32` |
/// | 4 | `flags: u32` (`OFFER_FLAG_*`) |
/// | 8 | `vmbus_handle: u64` (the worker process's VMBus handle; 0 for loopback) |
/// | 16 | `interface_type: [u8; 16]` |
/// | 32 | `interface_instance: [u8; 16]` |
/// | 48 | `nic_identity: [u8; 16]` (all zero: none) |
/// | 64 | `maximum_packet_size: u32` |
/// | 68 | `reserved: u32` (zero) |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfferInput {
    /// `OFFER_FLAG_*`.
    pub flags: u32,
    /// The VMBus handle from the worker process (converted with
    /// `VmbConvertVmbusHandleToKernelHandle` in the caller's context); `None` for loopback.
    pub vmbus_handle: Option<u64>,
    /// Interface type GUID (never all zero).
    pub interface_type: GuidBytes,
    /// Interface instance GUID (never all zero).
    pub interface_instance: GuidBytes,
    /// The VM NIC this channel reports on.
    pub nic_identity: Option<PortIdentity>,
    /// `VmbChannelInitSetMaximumPacketSize`, in `HEADER_LEN..=MAX_PACKET_SIZE_LIMIT`.
    pub maximum_packet_size: u32,
}

/// Length of [`OfferInput`] on the wire.
pub const OFFER_INPUT_LEN: usize = 72;

/// `IOCTL_FERRY_READ_PORT_STATS` input: `version: u32`, `reserved: u32`, `nic_identity:
/// [u8; 16]` — 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatsInput {
    /// The NIC whose port is read.
    pub nic_identity: PortIdentity,
}

/// Length of [`PortStatsInput`] on the wire.
pub const PORT_STATS_INPUT_LEN: usize = 24;

/// Input of `IOCTL_FERRY_SAVE_CHANNEL`, `_CLOSE_CHANNEL`, `_PAUSE_CHANNEL` and
/// `_RESUME_CHANNEL`: `version: u32`, `channel_id: u32` — 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelInput {
    /// The id the offer returned.
    pub channel_id: u32,
}

/// Length of [`ChannelInput`] on the wire.
pub const CHANNEL_INPUT_LEN: usize = 8;

/// `IOCTL_FERRY_RESTORE_CHANNEL` input header: `version: u32`, `channel_id: u32`, `flags: u32`
/// (`RESTORE_FLAG_*`), `session_len: u32` (bytes of session blob at the start of the chunk;
/// zero unless `RESTORE_FLAG_SESSION`), then the chunk — 16 bytes and the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreInput<'a> {
    /// The id the offer returned.
    pub channel_id: u32,
    /// Whether this is the last chunk.
    pub last: bool,
    /// The session blob (kind 3) if this chunk carries one.
    pub session: Option<&'a [u8]>,
    /// KMCL's stream bytes for `VmbChannelRestoreFromBuffer` (may be empty).
    pub kmcl: &'a [u8],
}

/// Length of the [`RestoreInput`] header on the wire.
pub const RESTORE_HEADER_LEN: usize = 16;

/// A validated request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlRequest<'a> {
    /// `IOCTL_FERRY_OFFER_CHANNEL` or `IOCTL_FERRY_OFFER_LOOPBACK`.
    Offer(OfferInput),
    /// `IOCTL_FERRY_READ_PORT_STATS`.
    ReadPortStats(PortStatsInput),
    /// `IOCTL_FERRY_SAVE_CHANNEL`.
    Save(ChannelInput),
    /// `IOCTL_FERRY_RESTORE_CHANNEL`.
    Restore(RestoreInput<'a>),
    /// `IOCTL_FERRY_CLOSE_CHANNEL`.
    Close(ChannelInput),
    /// `IOCTL_FERRY_PAUSE_CHANNEL`.
    Pause(ChannelInput),
    /// `IOCTL_FERRY_RESUME_CHANNEL`.
    Resume(ChannelInput),
}

/// Why an input buffer was refused (each maps to the IRP's status through
/// [`IoctlError::status`]). (`Debug` is written out below, not derived: see there.)
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum IoctlError {
    /// Not one of ferry's codes.
    UnknownCode(u32),
    /// The input is not the layout's length.
    Length {
        /// What the layout needs (for restore: at least).
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// A version other than [`IOCTL_VERSION`].
    Version(u32),
    /// A reserved field or unknown flag bit is set.
    Reserved,
    /// A field is out of range (named).
    Field(&'static str),
}

/// As derived, except that the field name of [`IoctlError::Field`] is written as it is rather
/// than through `<str as Debug>`, whose escaping can panic (`char::escape_debug_ext` indexes a
/// slice): refusals are logged with `{:?}`, so a derived impl left a panic path in `ferry.sys`
/// (found by `cargo xtask check-panic-free`). Field names are plain text, so the output is the
/// derived one.
impl core::fmt::Debug for IoctlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownCode(code) => f.debug_tuple("UnknownCode").field(code).finish(),
            Self::Length { expected, found } => f
                .debug_struct("Length")
                .field("expected", expected)
                .field("found", found)
                .finish(),
            Self::Version(version) => f.debug_tuple("Version").field(version).finish(),
            Self::Reserved => f.write_str("Reserved"),
            Self::Field(name) => write!(f, "Field(\"{name}\")"),
        }
    }
}

impl IoctlError {
    /// The `NTSTATUS` to complete the IRP with.
    #[must_use]
    pub const fn status(&self) -> ferry_core::status::NtStatus {
        use ferry_core::status::NtStatus;
        match self {
            Self::UnknownCode(_) => NtStatus::NOT_SUPPORTED,
            Self::Length { .. } => NtStatus::INVALID_BUFFER_SIZE,
            Self::Version(_) => NtStatus::REVISION_MISMATCH,
            Self::Reserved | Self::Field(_) => NtStatus::INVALID_PARAMETER,
        }
    }
}

/// Reads little-endian fields from a buffer of checked length.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.bytes.split_at_checked(N).unwrap_or((&[], self.bytes));
        self.bytes = rest;
        head.try_into().unwrap_or([0; N])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }

    fn rest(self) -> &'a [u8] {
        self.bytes
    }
}

fn exact(input: &[u8], expected: usize) -> Result<Reader<'_>, IoctlError> {
    if input.len() != expected {
        return Err(IoctlError::Length {
            expected,
            found: input.len(),
        });
    }
    let mut reader = Reader { bytes: input };
    let version = reader.u32();
    if version != IOCTL_VERSION {
        return Err(IoctlError::Version(version));
    }
    Ok(reader)
}

fn parse_offer(input: &[u8], loopback: bool) -> Result<OfferInput, IoctlError> {
    let mut reader = exact(input, OFFER_INPUT_LEN)?;
    let flags = reader.u32();
    let handle = reader.u64();
    let interface_type: GuidBytes = reader.take();
    let interface_instance: GuidBytes = reader.take();
    let nic: GuidBytes = reader.take();
    let maximum_packet_size = reader.u32();
    let reserved = reader.u32();
    if reserved != 0 || flags & !OFFER_FLAGS != 0 {
        return Err(IoctlError::Reserved);
    }
    let vmbus_handle = match (loopback, handle) {
        (true, 0) => None,
        (true, _) => return Err(IoctlError::Field("vmbus_handle (must be 0 for loopback)")),
        (false, 0) => return Err(IoctlError::Field("vmbus_handle")),
        (false, handle) => Some(handle),
    };
    if interface_type == [0; 16] {
        return Err(IoctlError::Field("interface_type"));
    }
    if interface_instance == [0; 16] {
        return Err(IoctlError::Field("interface_instance"));
    }
    let header = u32::try_from(HEADER_LEN).unwrap_or(u32::MAX);
    if !(header..=MAX_PACKET_SIZE_LIMIT).contains(&maximum_packet_size) {
        return Err(IoctlError::Field("maximum_packet_size"));
    }
    Ok(OfferInput {
        flags,
        vmbus_handle,
        interface_type,
        interface_instance,
        nic_identity: (nic != [0; 16]).then_some(PortIdentity(nic)),
        maximum_packet_size,
    })
}

fn parse_channel(input: &[u8]) -> Result<ChannelInput, IoctlError> {
    let mut reader = exact(input, CHANNEL_INPUT_LEN)?;
    Ok(ChannelInput {
        channel_id: reader.u32(),
    })
}

fn parse_restore(input: &[u8]) -> Result<RestoreInput<'_>, IoctlError> {
    let header = input.get(..RESTORE_HEADER_LEN).ok_or(IoctlError::Length {
        expected: RESTORE_HEADER_LEN,
        found: input.len(),
    })?;
    let chunk = input.get(RESTORE_HEADER_LEN..).unwrap_or(&[]);
    let mut reader = exact(header, RESTORE_HEADER_LEN)?;
    let channel_id = reader.u32();
    let flags = reader.u32();
    let session_len = usize::try_from(reader.u32()).unwrap_or(usize::MAX);
    if flags & !(RESTORE_FLAG_SESSION | RESTORE_FLAG_LAST) != 0 {
        return Err(IoctlError::Reserved);
    }
    if chunk.len() > MAX_RESTORE_CHUNK {
        return Err(IoctlError::Field("chunk length"));
    }
    let carries_session = flags & RESTORE_FLAG_SESSION != 0;
    let (session, kmcl) = if carries_session {
        let (session, kmcl) = chunk
            .split_at_checked(session_len)
            .ok_or(IoctlError::Field("session_len"))?;
        if session.is_empty() {
            return Err(IoctlError::Field("session_len"));
        }
        (Some(session), kmcl)
    } else if session_len != 0 {
        return Err(IoctlError::Field("session_len"));
    } else {
        (None, chunk)
    };
    Ok(RestoreInput {
        channel_id,
        last: flags & RESTORE_FLAG_LAST != 0,
        session,
        kmcl,
    })
}

/// Validates the input buffer of IOCTL `code`.
///
/// # Errors
///
/// [`IoctlError`] for an unknown code or any deviation from the code's layout; nothing about
/// the input is trusted beyond what this returns.
pub fn parse_request(code: u32, input: &[u8]) -> Result<ControlRequest<'_>, IoctlError> {
    match code {
        IOCTL_FERRY_OFFER_CHANNEL => parse_offer(input, false).map(ControlRequest::Offer),
        IOCTL_FERRY_OFFER_LOOPBACK => parse_offer(input, true).map(ControlRequest::Offer),
        IOCTL_FERRY_READ_PORT_STATS => {
            let mut reader = exact(input, PORT_STATS_INPUT_LEN)?;
            if reader.u32() != 0 {
                return Err(IoctlError::Reserved);
            }
            let nic: GuidBytes = reader.take();
            let _ = reader.rest();
            Ok(ControlRequest::ReadPortStats(PortStatsInput {
                nic_identity: PortIdentity(nic),
            }))
        }
        IOCTL_FERRY_SAVE_CHANNEL => parse_channel(input).map(ControlRequest::Save),
        IOCTL_FERRY_RESTORE_CHANNEL => parse_restore(input).map(ControlRequest::Restore),
        IOCTL_FERRY_CLOSE_CHANNEL => parse_channel(input).map(ControlRequest::Close),
        IOCTL_FERRY_PAUSE_CHANNEL => parse_channel(input).map(ControlRequest::Pause),
        IOCTL_FERRY_RESUME_CHANNEL => parse_channel(input).map(ControlRequest::Resume),
        other => Err(IoctlError::UnknownCode(other)),
    }
}

/// Length of the `IOCTL_FERRY_OFFER_*` output: the channel id, `u32`.
pub const OFFER_OUTPUT_LEN: usize = 4;

/// Length of the `IOCTL_FERRY_READ_PORT_STATS` output.
pub const PORT_STATS_OUTPUT_LEN: usize = 96;

/// Save flag: the chunk's data starts with the channel's session blob (`session_len` bytes);
/// the same bit as [`RESTORE_FLAG_SESSION`], so a chunk's flags are the restore's.
pub const SAVE_FLAG_SESSION: u32 = RESTORE_FLAG_SESSION;
/// Save flag: the last chunk of the channel's state; the same bit as [`RESTORE_FLAG_LAST`].
pub const SAVE_FLAG_LAST: u32 = RESTORE_FLAG_LAST;
/// Length of the [`SaveHeader`] at the start of every `IOCTL_FERRY_SAVE_CHANNEL` output.
pub const SAVE_HEADER_LEN: usize = 24;

/// The header of every `IOCTL_FERRY_SAVE_CHANNEL` output: 24 bytes, then `data_len` bytes of
/// the channel's state.
///
/// | offset | field |
/// |---|---|
/// | 0 | `version: u32` ([`IOCTL_VERSION`]) |
/// | 4 | `flags: u32` (`SAVE_FLAG_*`) |
/// | 8 | `session_len: u32` (bytes of session blob at the start of the data; zero unless `SAVE_FLAG_SESSION`) |
/// | 12 | `data_len: u32` (bytes following the header) |
/// | 16 | `required: u32` (non-zero: nothing was consumed; call again with an output buffer of at least this many bytes, header included) |
/// | 20 | `reserved: u32` (zero) |
///
/// A restore of the chunk uses the same `flags` and `session_len` and the `data_len` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveHeader {
    /// `SAVE_FLAG_*`.
    pub flags: u32,
    /// Bytes of session blob at the start of the data.
    pub session_len: u32,
    /// Bytes of data after the header.
    pub data_len: u32,
    /// The output size the next piece needs (zero when data was written).
    pub required: u32,
}

impl SaveHeader {
    /// Writes the header into the first [`SAVE_HEADER_LEN`] bytes of `out`; `None` (nothing
    /// written) if `out` is shorter.
    pub fn encode(&self, out: &mut [u8]) -> Option<()> {
        let header = out.get_mut(..SAVE_HEADER_LEN)?;
        let fields = [
            IOCTL_VERSION,
            self.flags,
            self.session_len,
            self.data_len,
            self.required,
            0,
        ];
        for (slot, field) in header.chunks_exact_mut(4).zip(fields) {
            slot.copy_from_slice(&field.to_le_bytes());
        }
        Some(())
    }

    /// Reads a header a save wrote (for tools and tests: the driver never reads one).
    ///
    /// # Errors
    ///
    /// [`IoctlError`] for a short buffer, another version or a non-zero reserved field.
    pub fn parse(bytes: &[u8]) -> Result<Self, IoctlError> {
        let header = bytes.get(..SAVE_HEADER_LEN).ok_or(IoctlError::Length {
            expected: SAVE_HEADER_LEN,
            found: bytes.len(),
        })?;
        let mut reader = exact(header, SAVE_HEADER_LEN)?;
        let header = Self {
            flags: reader.u32(),
            session_len: reader.u32(),
            data_len: reader.u32(),
            required: reader.u32(),
        };
        if reader.u32() != 0 {
            return Err(IoctlError::Reserved);
        }
        Ok(header)
    }
}

/// Writes one port's statistics, [`PORT_STATS_OUTPUT_LEN`] bytes, into the start of `out`;
/// `None` (nothing written) if `out` is shorter.
///
/// | offset | field |
/// |---|---|
/// | 0 | `version: u32` |
/// | 4 | `port_id: u32` (the switch port serving the NIC) |
/// | 8, 16 | ingress permitted: frames, bytes (`u64`) |
/// | 24, 32 | ingress dropped by the rate limit: frames, bytes |
/// | 40, 48 | egress permitted: frames, bytes |
/// | 56, 64 | egress dropped by the rate limit: frames, bytes |
/// | 72 | `flows_created: u64` |
/// | 80 | `flows_evicted: u64` |
/// | 88 | `flow_table_full: u64` |
pub fn encode_port_stats(
    port: SwitchPortId,
    counters: &PortCounters,
    out: &mut [u8],
) -> Option<usize> {
    let out = out.get_mut(..PORT_STATS_OUTPUT_LEN)?;
    let (head, tail) = out.split_at_mut_checked(8)?;
    let (version, id) = head.split_at_mut_checked(4)?;
    version.copy_from_slice(&IOCTL_VERSION.to_le_bytes());
    id.copy_from_slice(&port.0.to_le_bytes());
    let direction = |d: &DirectionCounters| {
        [
            d.permitted.frames,
            d.permitted.bytes,
            d.dropped_rate_limited.frames,
            d.dropped_rate_limited.bytes,
        ]
    };
    let [a, b, c, d] = direction(&counters.ingress);
    let [e, f, g, h] = direction(&counters.egress);
    let values = [
        a,
        b,
        c,
        d,
        e,
        f,
        g,
        h,
        counters.flows_created,
        counters.flows_evicted,
        counters.flow_table_full,
    ];
    for (slot, value) in tail.chunks_exact_mut(8).zip(values) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
    Some(PORT_STATS_OUTPUT_LEN)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    fn offer_bytes(handle: u64, packet_size: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&IOCTL_VERSION.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&handle.to_le_bytes());
        bytes.extend_from_slice(&[0x11; 16]);
        bytes.extend_from_slice(&[0x22; 16]);
        bytes.extend_from_slice(&[0x33; 16]);
        bytes.extend_from_slice(&packet_size.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes
    }

    #[test]
    fn errors_debug_print_as_derived_without_str_debug() {
        use std::format;
        assert_eq!(
            format!("{:?}", IoctlError::Field("packet_size")),
            "Field(\"packet_size\")"
        );
        assert_eq!(
            format!(
                "{:?}",
                IoctlError::Length {
                    expected: 4,
                    found: 2
                }
            ),
            "Length { expected: 4, found: 2 }"
        );
        assert_eq!(
            format!("{:?}", IoctlError::UnknownCode(7)),
            "UnknownCode(7)"
        );
        assert_eq!(format!("{:?}", IoctlError::Version(2)), "Version(2)");
        assert_eq!(format!("{:?}", IoctlError::Reserved), "Reserved");
        let wrong = crate::control::ControlError::WrongState("a save is in progress");
        assert_eq!(
            format!("{wrong:?}"),
            "WrongState(\"a save is in progress\")"
        );
        let request = crate::control::ControlError::Request(IoctlError::Reserved);
        assert_eq!(format!("{request:?}"), "Request(Reserved)");
        let small = crate::control::ControlError::OutputTooSmall { needed: 9 };
        assert_eq!(format!("{small:?}"), "OutputTooSmall { needed: 9 }");
    }

    #[test]
    fn codes_follow_ctl_code_and_are_distinct() {
        // CTL_CODE(0x8F72, 0x800, METHOD_BUFFERED, FILE_WRITE_ACCESS) computed by hand.
        assert_eq!(IOCTL_FERRY_OFFER_CHANNEL, 0x8F72_A000);
        let codes = IOCTL_CODES;
        for (i, a) in codes.iter().enumerate() {
            assert_eq!(a & 3, METHOD_BUFFERED);
            assert!(codes.iter().skip(i + 1).all(|b| a != b));
        }
    }

    #[test]
    fn a_valid_offer_is_decoded_field_by_field() {
        let bytes = offer_bytes(0xABCD, 4096);
        assert_eq!(bytes.len(), OFFER_INPUT_LEN);
        let request = parse_request(IOCTL_FERRY_OFFER_CHANNEL, &bytes).unwrap();
        assert_eq!(
            request,
            ControlRequest::Offer(OfferInput {
                flags: 0,
                vmbus_handle: Some(0xABCD),
                interface_type: [0x11; 16],
                interface_instance: [0x22; 16],
                nic_identity: Some(PortIdentity([0x33; 16])),
                maximum_packet_size: 4096,
            })
        );
    }

    #[test]
    fn offers_refuse_bad_handles_sizes_versions_and_reserved_bits() {
        let refuse = |code, bytes: &[u8]| parse_request(code, bytes).unwrap_err();
        assert_eq!(
            refuse(IOCTL_FERRY_OFFER_CHANNEL, &offer_bytes(0, 4096)),
            IoctlError::Field("vmbus_handle")
        );
        assert!(matches!(
            refuse(IOCTL_FERRY_OFFER_LOOPBACK, &offer_bytes(5, 4096)),
            IoctlError::Field(_)
        ));
        assert!(parse_request(IOCTL_FERRY_OFFER_LOOPBACK, &offer_bytes(0, 4096)).is_ok());
        assert_eq!(
            refuse(IOCTL_FERRY_OFFER_CHANNEL, &offer_bytes(1, 8)),
            IoctlError::Field("maximum_packet_size")
        );
        assert_eq!(
            refuse(
                IOCTL_FERRY_OFFER_CHANNEL,
                &offer_bytes(1, MAX_PACKET_SIZE_LIMIT + 1)
            ),
            IoctlError::Field("maximum_packet_size")
        );
        let mut bytes = offer_bytes(1, 4096);
        bytes[0] = 2;
        assert_eq!(
            refuse(IOCTL_FERRY_OFFER_CHANNEL, &bytes),
            IoctlError::Version(2)
        );
        let mut bytes = offer_bytes(1, 4096);
        bytes[4] = 0x04;
        assert_eq!(
            refuse(IOCTL_FERRY_OFFER_CHANNEL, &bytes),
            IoctlError::Reserved
        );
        let mut bytes = offer_bytes(1, 4096);
        bytes[71] = 1;
        assert_eq!(
            refuse(IOCTL_FERRY_OFFER_CHANNEL, &bytes),
            IoctlError::Reserved
        );
        let mut bytes = offer_bytes(1, 4096);
        bytes[16..32].fill(0);
        assert_eq!(
            refuse(IOCTL_FERRY_OFFER_CHANNEL, &bytes),
            IoctlError::Field("interface_type")
        );
        let mut bytes = offer_bytes(1, 4096);
        bytes.push(0);
        assert_eq!(
            refuse(IOCTL_FERRY_OFFER_CHANNEL, &bytes),
            IoctlError::Length {
                expected: OFFER_INPUT_LEN,
                found: OFFER_INPUT_LEN + 1
            }
        );
        assert_eq!(
            refuse(0x1234, &bytes).status(),
            ferry_core::status::NtStatus::NOT_SUPPORTED
        );
    }

    fn restore_bytes(flags: u32, session_len: u32, chunk: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&IOCTL_VERSION.to_le_bytes());
        bytes.extend_from_slice(&7u32.to_le_bytes());
        bytes.extend_from_slice(&flags.to_le_bytes());
        bytes.extend_from_slice(&session_len.to_le_bytes());
        bytes.extend_from_slice(chunk);
        bytes
    }

    #[test]
    fn restore_splits_the_session_from_the_kmcl_stream() {
        let chunk = [1u8, 2, 3, 4, 5, 6];
        let bytes = restore_bytes(RESTORE_FLAG_SESSION | RESTORE_FLAG_LAST, 4, &chunk);
        let ControlRequest::Restore(restore) =
            parse_request(IOCTL_FERRY_RESTORE_CHANNEL, &bytes).unwrap()
        else {
            panic!("a restore");
        };
        assert_eq!(restore.channel_id, 7);
        assert!(restore.last);
        assert_eq!(restore.session, Some(&chunk[..4]));
        assert_eq!(restore.kmcl, &chunk[4..]);
        // A session longer than the chunk, an empty session, or a length without the flag.
        for (flags, len) in [(RESTORE_FLAG_SESSION, 7), (RESTORE_FLAG_SESSION, 0), (0, 2)] {
            assert_eq!(
                parse_request(
                    IOCTL_FERRY_RESTORE_CHANNEL,
                    &restore_bytes(flags, len, &chunk)
                ),
                Err(IoctlError::Field("session_len"))
            );
        }
        assert_eq!(
            parse_request(IOCTL_FERRY_RESTORE_CHANNEL, &restore_bytes(0x4, 0, &chunk)),
            Err(IoctlError::Reserved)
        );
    }

    #[test]
    fn port_stats_are_written_field_by_field_and_never_past_the_layout() {
        let mut counters = PortCounters::ZERO;
        counters.ingress.permitted.frames = 1;
        counters.ingress.permitted.bytes = 2;
        counters.ingress.dropped_rate_limited.frames = 3;
        counters.ingress.dropped_rate_limited.bytes = 4;
        counters.egress.permitted.frames = 5;
        counters.egress.permitted.bytes = 6;
        counters.egress.dropped_rate_limited.frames = 7;
        counters.egress.dropped_rate_limited.bytes = 8;
        counters.flows_created = 9;
        counters.flows_evicted = 10;
        counters.flow_table_full = 11;
        let mut out = [0xEEu8; PORT_STATS_OUTPUT_LEN + 8];
        assert_eq!(
            encode_port_stats(SwitchPortId(42), &counters, &mut out),
            Some(PORT_STATS_OUTPUT_LEN)
        );
        assert_eq!(out[..4], IOCTL_VERSION.to_le_bytes());
        assert_eq!(out[4..8], 42u32.to_le_bytes());
        for (n, field) in out[8..PORT_STATS_OUTPUT_LEN].chunks_exact(8).enumerate() {
            assert_eq!(u64::from_le_bytes(field.try_into().unwrap()), n as u64 + 1);
        }
        assert_eq!(out[PORT_STATS_OUTPUT_LEN..], [0xEE; 8]);
        let mut short = [0xEEu8; PORT_STATS_OUTPUT_LEN - 1];
        assert_eq!(
            encode_port_stats(SwitchPortId(1), &counters, &mut short),
            None
        );
        assert!(short.iter().all(|b| *b == 0xEE), "nothing written");
    }

    #[test]
    fn a_save_header_reads_back_and_its_flags_are_the_restore_flags() {
        let header = SaveHeader {
            flags: SAVE_FLAG_SESSION | SAVE_FLAG_LAST,
            session_len: 40,
            data_len: 100,
            required: 0,
        };
        let mut out = [0xEEu8; SAVE_HEADER_LEN + 1];
        header.encode(&mut out).unwrap();
        assert_eq!(out[SAVE_HEADER_LEN], 0xEE);
        assert_eq!(SaveHeader::parse(&out), Ok(header));
        assert_eq!(header.flags, RESTORE_FLAG_SESSION | RESTORE_FLAG_LAST);
        out[20] = 1;
        assert_eq!(SaveHeader::parse(&out), Err(IoctlError::Reserved));
        assert!(header.encode(&mut [0u8; SAVE_HEADER_LEN - 1]).is_none());
    }

    proptest! {
        /// Arbitrary bytes under any of ferry's codes never panic, and whatever is accepted
        /// has exactly the layout's length (restore: at least the header).
        #[test]
        fn arbitrary_input_is_parsed_or_refused_never_misread(
            code in prop::sample::select(&IOCTL_CODES[..]),
            bytes in prop::collection::vec(any::<u8>(), 0..120),
        ) {
            if let Ok(request) = parse_request(code, &bytes) {
                let expected = match request {
                    ControlRequest::Offer(_) => Some(OFFER_INPUT_LEN),
                    ControlRequest::ReadPortStats(_) => Some(PORT_STATS_INPUT_LEN),
                    ControlRequest::Save(_)
                    | ControlRequest::Close(_)
                    | ControlRequest::Pause(_)
                    | ControlRequest::Resume(_) => Some(CHANNEL_INPUT_LEN),
                    ControlRequest::Restore(_) => None,
                };
                match expected {
                    Some(len) => prop_assert_eq!(bytes.len(), len),
                    None => prop_assert!(bytes.len() >= RESTORE_HEADER_LEN),
                }
                prop_assert_eq!(&bytes[..4], &IOCTL_VERSION.to_le_bytes()[..]);
            }
        }
    }
}
