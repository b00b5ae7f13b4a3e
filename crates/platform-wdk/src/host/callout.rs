//! The vSwitch callout's classify path: [`Callouts`] (the port table it counts into and its own
//! counters) and the `extern "system"` functions registered in `FWPS_CALLOUT2`.
//!
//! `classifyFn` has no context argument (the `filter` it gets carries a `context` chosen by
//! whoever added the filter, and anyone with the right to add filters could name ferry's
//! callout in theirs: ferry does not turn that value into a pointer). The functions are
//! therefore generic over a [`CalloutHost`] whose `callouts()` is the driver's `static`.
//!
//! Per frame (`DISPATCH_LEVEL` at most; no allocation, no wait, nothing that can panic):
//!
//! 1. The layer id must be the one the function was registered for.
//! 2. The switch port: `vSwitchSourcePortId` at ingress (the frame enters the switch from that
//!    port's NIC), `vSwitchDestinationPortId` at egress (it leaves through that port), each
//!    only if its `FWPS_L2_METADATA_FIELD_*` bit says it is set.
//! 3. The layer's `ETHER_TYPE` field, when present, skips frames that cannot be IP without
//!    touching their bytes.
//! 4. Each `NET_BUFFER` of the `NET_BUFFER_LIST` in `layerData` is one frame: its first bytes
//!    (at most [`FRAME_PREFIX`], through `NdisGetDataBuffer` into a stack buffer when they are
//!    not contiguous) give the flow key ([`super::frame`]); its `DataLength` the length.
//! 5. `PortTable::classify(port, frame, now)`.
//!
//! ferry's filters are **inspection** filters (`FWP_ACTION_CALLOUT_INSPECTION`): ferry
//! observes and never blocks. The answer is `FWP_ACTION_CONTINUE`, written only when the
//! engine grants `FWPS_RIGHT_ACTION_WRITE` (without it a filter with priority has decided and
//! the action must be left alone). A frame ferry cannot key, on a port it does not know, or
//! without port metadata is counted in [`ClassifyCounts`] and continues. Core's verdict is
//! counted but not enforced: ports are created without rate limits (nothing configures one
//! yet), so it is always `Permit`; a `Drop` would be counted in
//! [`ClassifyCounts::drops_not_enforced`]. Enforcing would take a terminating filter
//! (`FWP_ACTION_CALLOUT_TERMINATING`) and `FWP_ACTION_BLOCK` here.

use core::ffi::c_void;
use core::sync::atomic::{AtomicU64, Ordering};

use ferry_core::port::{Direction, FrameInfo, SwitchPortId, Verdict};
use ferry_core::status::NtStatus;

use super::WdkPortTable;
use super::frame::{FRAME_PREFIX, flow_key};
use crate::ffi::base::GUID;
use crate::ffi::fwps::{
    FWP_ACTION_CONTINUE, FWP_UINT16, FWPS_CALLOUT_NOTIFY_TYPE, FWPS_CLASSIFY_OUT0,
    FWPS_FIELD_EGRESS_VSWITCH_ETHERNET_ETHER_TYPE, FWPS_FIELD_INGRESS_VSWITCH_ETHERNET_ETHER_TYPE,
    FWPS_FILTER2, FWPS_INCOMING_METADATA_VALUES0, FWPS_INCOMING_VALUES0,
    FWPS_L2_METADATA_FIELD_VSWITCH_DESTINATION_PORT_ID,
    FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_PORT_ID, FWPS_LAYER_EGRESS_VSWITCH_ETHERNET,
    FWPS_LAYER_INGRESS_VSWITCH_ETHERNET, FWPS_RIGHT_ACTION_WRITE,
};
use crate::ffi::nbl::{NET_BUFFER, NET_BUFFER_LIST};
use crate::kernel::services::KernelServices;
use crate::platform::WdkPlatform;

/// The most `NET_BUFFER`s of one list ferry looks at (a bound against a corrupt, cyclic
/// list; the vSwitch hands one frame per list in practice). Frames beyond it are counted in
/// [`ClassifyCounts::not_keyed`].
pub const MAX_FRAMES_PER_LIST: usize = 256;

/// What the classify path has seen, as a snapshot of [`Callouts`]' counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassifyCounts {
    /// Frames handed to the port table (which counted them on the port).
    pub classified: u64,
    /// Frames without a flow key: not IPv4/IPv6, truncated headers, unreadable data.
    pub not_keyed: u64,
    /// Frames for a port id the port table does not know.
    pub unknown_port: u64,
    /// Calls without the switch port in the metadata, or for another layer, or with NULL
    /// arguments.
    pub no_port: u64,
    /// `Drop` verdicts that were counted by core but let through (inspection filter).
    pub drops_not_enforced: u64,
}

#[derive(Debug, Default)]
struct Counters {
    classified: AtomicU64,
    not_keyed: AtomicU64,
    unknown_port: AtomicU64,
    no_port: AtomicU64,
    drops_not_enforced: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The callout's state: the platform (its `NdisGetDataBuffer`, the clock), the port table
/// classify counts into, and [`ClassifyCounts`].
pub struct Callouts<K: KernelServices> {
    platform: &'static WdkPlatform<K>,
    ports: &'static WdkPortTable<K>,
    counters: Counters,
}

impl<K: KernelServices> core::fmt::Debug for Callouts<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Callouts").finish_non_exhaustive()
    }
}

/// The driver's global callout state, as the classify functions reach it.
pub trait CalloutHost: 'static {
    /// The kernel services.
    type Kernel: KernelServices;

    /// The driver's `static` [`Callouts`].
    fn callouts() -> &'static Callouts<Self::Kernel>;
}

impl<K: KernelServices> Callouts<K> {
    /// The callout state over the driver's platform and port table (a `const fn`, for a
    /// `static`).
    #[must_use]
    pub const fn new(platform: &'static WdkPlatform<K>, ports: &'static WdkPortTable<K>) -> Self {
        Self {
            platform,
            ports,
            counters: Counters {
                classified: AtomicU64::new(0),
                not_keyed: AtomicU64::new(0),
                unknown_port: AtomicU64::new(0),
                no_port: AtomicU64::new(0),
                drops_not_enforced: AtomicU64::new(0),
            },
        }
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn counts(&self) -> ClassifyCounts {
        let c = &self.counters;
        ClassifyCounts {
            classified: c.classified.load(Ordering::Relaxed),
            not_keyed: c.not_keyed.load(Ordering::Relaxed),
            unknown_port: c.unknown_port.load(Ordering::Relaxed),
            no_port: c.no_port.load(Ordering::Relaxed),
            drops_not_enforced: c.drops_not_enforced.load(Ordering::Relaxed),
        }
    }

    /// Classifies every frame of one classify call (see the module docs), then answers.
    ///
    /// # Safety
    ///
    /// The pointers are the filter engine's classify arguments: each NULL or valid for the
    /// call, `layer_data` a `NET_BUFFER_LIST` whose buffers `NdisGetDataBuffer` accepts.
    unsafe fn classify(
        &self,
        direction: Direction,
        fixed: *const FWPS_INCOMING_VALUES0,
        meta: *const FWPS_INCOMING_METADATA_VALUES0,
        layer_data: *mut c_void,
        out: *mut FWPS_CLASSIFY_OUT0,
    ) {
        // SAFETY: the caller's contract (NULL or valid for the call).
        let fixed = unsafe { fixed.as_ref() };
        // SAFETY: as above.
        let meta = unsafe { meta.as_ref() };
        match (fixed, meta) {
            (Some(fixed), Some(meta)) if fixed.layerId == layer_of(direction) => {
                match port_of(direction, meta) {
                    // SAFETY: the caller's contract for `fixed` and `layer_data`.
                    Some(port) => unsafe { self.frames(direction, port, fixed, layer_data) },
                    None => bump(&self.counters.no_port),
                }
            }
            _ => bump(&self.counters.no_port),
        }
        // SAFETY: NULL or the engine's writable classify output.
        if let Some(out) = unsafe { out.as_mut() } {
            answer(out);
        }
    }

    /// # Safety
    ///
    /// As [`Self::classify`].
    unsafe fn frames(
        &self,
        direction: Direction,
        port: SwitchPortId,
        fixed: &FWPS_INCOMING_VALUES0,
        layer_data: *mut c_void,
    ) {
        // SAFETY: the caller's contract for `fixed`.
        let can_be_ip = unsafe { ether_type(direction, fixed) }.is_none_or(may_be_ip);
        let list = layer_data.cast::<NET_BUFFER_LIST>();
        // SAFETY: NULL or the engine's NET_BUFFER_LIST, valid for the call.
        let Some(list) = (unsafe { list.as_ref() }) else {
            bump(&self.counters.no_port);
            return;
        };
        let now = K::now();
        let mut buffer = list.FirstNetBuffer;
        let mut seen = 0usize;
        while !buffer.is_null() {
            if seen == MAX_FRAMES_PER_LIST {
                bump(&self.counters.not_keyed);
                return;
            }
            seen = seen.saturating_add(1);
            // SAFETY: a non-NULL NET_BUFFER of the engine's list, valid for the call.
            let current = unsafe { &*buffer };
            let (length, next) = (current.DataLength, current.Next);
            if can_be_ip {
                // SAFETY: as above.
                unsafe { self.frame(direction, port, buffer, length, now) };
            } else {
                bump(&self.counters.not_keyed);
            }
            buffer = next;
        }
    }

    /// # Safety
    ///
    /// `buffer` is a valid `NET_BUFFER` of `length` data bytes.
    unsafe fn frame(
        &self,
        direction: Direction,
        port: SwitchPortId,
        buffer: *mut NET_BUFFER,
        length: u32,
        now: ferry_core::platform::Ticks,
    ) {
        let mut storage = [0u8; FRAME_PREFIX];
        let wanted = usize::try_from(length).map_or(FRAME_PREFIX, |l| l.min(FRAME_PREFIX));
        // `wanted` <= FRAME_PREFIX (96): the conversion cannot fail.
        let wanted_u32 = u32::try_from(wanted).unwrap_or(0);
        if wanted_u32 == 0 {
            bump(&self.counters.not_keyed);
            return;
        }
        // SAFETY: `buffer` is valid (caller); `storage` has room for `wanted` bytes;
        // alignment multiple 1 and offset 0 ask for none.
        let data = unsafe {
            (self.platform.wfp().get_data_buffer)(
                buffer,
                wanted_u32,
                storage.as_mut_ptr().cast(),
                1,
                0,
            )
        };
        if data.is_null() {
            bump(&self.counters.not_keyed);
            return;
        }
        // SAFETY: NdisGetDataBuffer returned `wanted` contiguous readable bytes (in the
        // buffer or in `storage`), valid until the call returns; only read here.
        let bytes = unsafe { core::slice::from_raw_parts(data.cast::<u8>().cast_const(), wanted) };
        let Ok(flow) = flow_key(bytes) else {
            bump(&self.counters.not_keyed);
            return;
        };
        let frame = FrameInfo {
            direction,
            flow,
            length,
        };
        match self.ports.classify(port, &frame, now) {
            Ok(verdict) => {
                bump(&self.counters.classified);
                if matches!(verdict, Verdict::Drop(_)) {
                    bump(&self.counters.drops_not_enforced);
                }
            }
            // `classify`'s only error is `PortError::UnknownPort`.
            Err(_) => bump(&self.counters.unknown_port),
        }
    }
}

/// The run-time layer id each direction's callout is registered at.
const fn layer_of(direction: Direction) -> u16 {
    match direction {
        Direction::Ingress => FWPS_LAYER_INGRESS_VSWITCH_ETHERNET,
        Direction::Egress => FWPS_LAYER_EGRESS_VSWITCH_ETHERNET,
    }
}

/// The switch port the frame is counted on, if the metadata carries it.
fn port_of(direction: Direction, meta: &FWPS_INCOMING_METADATA_VALUES0) -> Option<SwitchPortId> {
    let (bit, id) = match direction {
        Direction::Ingress => (
            FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_PORT_ID,
            meta.vSwitchSourcePortId,
        ),
        Direction::Egress => (
            FWPS_L2_METADATA_FIELD_VSWITCH_DESTINATION_PORT_ID,
            meta.vSwitchDestinationPortId,
        ),
    };
    (meta.currentL2MetadataValues & bit == bit).then_some(SwitchPortId(id))
}

/// The layer's `ETHER_TYPE` field, if present and of the documented type.
///
/// # Safety
///
/// `fixed.incomingValue` points to `fixed.valueCount` values (or is NULL).
unsafe fn ether_type(direction: Direction, fixed: &FWPS_INCOMING_VALUES0) -> Option<u16> {
    let index = match direction {
        Direction::Ingress => FWPS_FIELD_INGRESS_VSWITCH_ETHERNET_ETHER_TYPE,
        Direction::Egress => FWPS_FIELD_EGRESS_VSWITCH_ETHERNET_ETHER_TYPE,
    };
    let count = usize::try_from(fixed.valueCount).ok()?;
    if fixed.incomingValue.is_null() || index >= count {
        return None;
    }
    // SAFETY: `index` < `valueCount`, and the engine's array holds that many values.
    let entry = unsafe { fixed.incomingValue.add(index) };
    // SAFETY: as above: a valid, initialised entry of the engine's array.
    let value = unsafe { &(*entry).value };
    if value.r#type != FWP_UINT16 {
        return None;
    }
    // SAFETY: the tag says the union holds a UINT16.
    Some(unsafe { value.value.uint16 })
}

/// Whether a frame of this Ethernet type can carry IP (IPv4, IPv6 or a VLAN tag before one).
const fn may_be_ip(ether_type: u16) -> bool {
    matches!(ether_type, 0x0800 | 0x86DD | 0x8100 | 0x88A8)
}

/// The answer of an inspection callout: `FWP_ACTION_CONTINUE`, only with the right to write.
fn answer(out: &mut FWPS_CLASSIFY_OUT0) {
    if out.rights & FWPS_RIGHT_ACTION_WRITE != 0 {
        out.actionType = FWP_ACTION_CONTINUE;
    }
}

/// `FWPS_CALLOUT_CLASSIFY_FN2` of the ingress callout.
///
/// # Safety
///
/// Called by the filter engine with its classify arguments.
pub unsafe extern "system" fn classify_ingress<H: CalloutHost>(
    fixed: *const FWPS_INCOMING_VALUES0,
    meta: *const FWPS_INCOMING_METADATA_VALUES0,
    layer_data: *mut c_void,
    _classify_context: *const c_void,
    _filter: *const FWPS_FILTER2,
    _flow_context: u64,
    out: *mut FWPS_CLASSIFY_OUT0,
) {
    // SAFETY: the engine's arguments, forwarded unchanged.
    unsafe {
        H::callouts().classify(Direction::Ingress, fixed, meta, layer_data, out);
    }
}

/// `FWPS_CALLOUT_CLASSIFY_FN2` of the egress callout.
///
/// # Safety
///
/// Called by the filter engine with its classify arguments.
pub unsafe extern "system" fn classify_egress<H: CalloutHost>(
    fixed: *const FWPS_INCOMING_VALUES0,
    meta: *const FWPS_INCOMING_METADATA_VALUES0,
    layer_data: *mut c_void,
    _classify_context: *const c_void,
    _filter: *const FWPS_FILTER2,
    _flow_context: u64,
    out: *mut FWPS_CLASSIFY_OUT0,
) {
    // SAFETY: the engine's arguments, forwarded unchanged.
    unsafe {
        H::callouts().classify(Direction::Egress, fixed, meta, layer_data, out);
    }
}

/// `FWPS_CALLOUT_NOTIFY_FN2`: filters referencing ferry's callouts come and go; nothing to do.
///
/// # Safety
///
/// Called by the filter engine only.
pub unsafe extern "system" fn notify(
    _notify_type: FWPS_CALLOUT_NOTIFY_TYPE,
    _filter_key: *const GUID,
    _filter: *mut FWPS_FILTER2,
) -> NtStatus {
    NtStatus::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::{answer, may_be_ip};
    use crate::ffi::fwps::{FWP_ACTION_BLOCK, FWP_ACTION_CONTINUE, FWPS_CLASSIFY_OUT0};

    #[test]
    fn the_action_is_written_only_with_the_right_to() {
        let mut granted = FWPS_CLASSIFY_OUT0 {
            actionType: FWP_ACTION_BLOCK,
            rights: 1,
            ..FWPS_CLASSIFY_OUT0::default()
        };
        answer(&mut granted);
        assert_eq!(granted.actionType, FWP_ACTION_CONTINUE);
        assert_eq!(granted.rights, 1, "an inspection callout keeps the right");
        let mut withheld = FWPS_CLASSIFY_OUT0 {
            actionType: FWP_ACTION_BLOCK,
            rights: 0,
            ..FWPS_CLASSIFY_OUT0::default()
        };
        answer(&mut withheld);
        assert_eq!(withheld.actionType, FWP_ACTION_BLOCK);
    }

    #[test]
    fn only_ip_and_vlan_types_are_parsed() {
        assert!(may_be_ip(0x0800) && may_be_ip(0x86DD) && may_be_ip(0x8100));
        assert!(!may_be_ip(0x0806) && !may_be_ip(0x88CC));
    }
}
