//! A fake WFP filter engine: the `fwpmk.h` management calls, `FwpsCalloutRegister2` /
//! `FwpsCalloutUnregisterById0` and `NdisGetDataBuffer`, with `fwpkclnt.sys`'s and
//! `ndis.sys`'s C signatures (the rest of `fake_wfp::table()`).
//!
//! It records every call, keeps the engine's objects (sessions, the transaction, provider,
//! sublayers, callouts, filters, run-time callouts) and notes every broken rule as a
//! *violation* instead of panicking inside an `extern "system"` function: a filter must name
//! a callout added for its layer and a known sublayer, objects are added inside a transaction,
//! a callout is neither deleted nor unregistered while a filter names it, the session is
//! closed only after every run-time callout is gone. A failure can be injected at any call.
//!
//! The test plays the engine's classify: [`classify`] finds the committed filters of a layer,
//! the run-time callout each names, and calls its `classifyFn` with incoming values, metadata
//! and a `NET_BUFFER_LIST` built here.

use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};

use ferry_core::status::NtStatus;
use ferry_platform_wdk::ffi::base::{GUID, HANDLE};
use ferry_platform_wdk::ffi::fwpm::{
    FWPM_CALLOUT0, FWPM_FILTER0, FWPM_LAYER_EGRESS_VSWITCH_ETHERNET,
    FWPM_LAYER_INGRESS_VSWITCH_ETHERNET, FWPM_PROVIDER0, FWPM_SESSION_FLAG_DYNAMIC, FWPM_SESSION0,
    FWPM_SUBLAYER0,
};
use ferry_platform_wdk::ffi::fwps::{
    FWP_ACTION_CALLOUT_INSPECTION, FWP_EMPTY, FWP_UINT16, FWP_VALUE0, FWP_VALUE0_UNION,
    FWPS_CALLOUT2, FWPS_CLASSIFY_OUT0, FWPS_INCOMING_METADATA_VALUES0, FWPS_INCOMING_VALUE0,
    FWPS_INCOMING_VALUES0, FWPS_L2_METADATA_FIELD_VSWITCH_DESTINATION_PORT_ID,
    FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_PORT_ID, FWPS_LAYER_EGRESS_VSWITCH_ETHERNET,
    FWPS_LAYER_INGRESS_VSWITCH_ETHERNET, STATUS_DEVICE_BUSY,
};
use ferry_platform_wdk::ffi::nbl::{NET_BUFFER, NET_BUFFER_LIST};

/// One call ferry made, with what identifies its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `FwpmEngineOpen0`.
    EngineOpen,
    /// `FwpmEngineClose0`.
    EngineClose,
    /// `FwpmTransactionBegin0`.
    TransactionBegin,
    /// `FwpmTransactionCommit0`.
    TransactionCommit,
    /// `FwpmTransactionAbort0`.
    TransactionAbort,
    /// `FwpmProviderAdd0`.
    ProviderAdd,
    /// `FwpmSubLayerAdd0`.
    SubLayerAdd,
    /// The callout's applicable layer.
    CalloutAdd(GUID),
    /// `FwpmCalloutDeleteById0` of this id.
    CalloutDelete(u32),
    /// The filter's layer.
    FilterAdd(GUID),
    /// `FwpmFilterDeleteById0` of this id.
    FilterDelete(u64),
    /// The run-time callout's key.
    CalloutRegister(GUID),
    /// `FwpsCalloutUnregisterById0` of this id.
    CalloutUnregister(u32),
}

/// A call into which a failure can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `FwpmEngineOpen0`.
    EngineOpen,
    /// `FwpsCalloutRegister2`.
    CalloutRegister,
    /// `FwpmTransactionBegin0`.
    TransactionBegin,
    /// `FwpmProviderAdd0`.
    ProviderAdd,
    /// `FwpmSubLayerAdd0`.
    SubLayerAdd,
    /// `FwpmCalloutAdd0`.
    CalloutAdd,
    /// `FwpmFilterAdd0`.
    FilterAdd,
    /// `FwpmTransactionCommit0`.
    TransactionCommit,
}

struct ManagementCallout {
    id: u32,
    key: GUID,
    layer: GUID,
    committed: bool,
}

struct Filter {
    id: u64,
    layer: GUID,
    callout: GUID,
    committed: bool,
}

struct RuntimeCallout {
    id: u32,
    callout: FWPS_CALLOUT2,
}

#[derive(Default)]
struct Engine {
    calls: Vec<Call>,
    violations: Vec<String>,
    /// Open session handles (addresses of boxes owned here).
    sessions: Vec<usize>,
    in_transaction: bool,
    providers: Vec<(GUID, bool)>,
    sublayers: Vec<(GUID, bool)>,
    callouts: Vec<ManagementCallout>,
    filters: Vec<Filter>,
    runtime: Vec<RuntimeCallout>,
    next_id: u32,
    /// `(op, calls of it still to succeed, status)`.
    fail: Option<(Op, u32, NtStatus)>,
    busy_answers: u32,
    data_buffer_calls: u32,
}

static ENGINE: Mutex<Engine> = Mutex::new(Engine {
    calls: Vec::new(),
    violations: Vec::new(),
    sessions: Vec::new(),
    in_transaction: false,
    providers: Vec::new(),
    sublayers: Vec::new(),
    callouts: Vec::new(),
    filters: Vec::new(),
    runtime: Vec::new(),
    next_id: 1,
    fail: None,
    busy_answers: 0,
    data_buffer_calls: 0,
});

fn engine() -> MutexGuard<'static, Engine> {
    ENGINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The status injected failures return.
pub const INJECTED: NtStatus = NtStatus(0xC022_0001_u32.cast_signed());

impl Engine {
    fn violation(&mut self, text: String) {
        self.violations.push(text);
    }

    fn session(&mut self, handle: HANDLE, call: &str) {
        if !self.sessions.contains(&(handle as usize)) {
            self.violation(format!("{call} on a handle that is not an open session"));
        }
    }

    fn in_txn(&mut self, call: &str) {
        if !self.in_transaction {
            self.violation(format!("{call} outside a transaction"));
        }
    }

    /// The injected status if `op` is to fail now.
    fn injected(&mut self, op: Op) -> Option<NtStatus> {
        match &mut self.fail {
            Some((failing, 0, status)) if *failing == op => {
                let status = *status;
                self.fail = None;
                Some(status)
            }
            Some((failing, left, _)) if *failing == op => {
                *left -= 1;
                None
            }
            _ => None,
        }
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn filter_names(&self, callout: &GUID) -> bool {
        self.filters.iter().any(|f| f.callout == *callout)
    }
}

/// Clears the call log and violations (not the objects: tests leave none).
pub fn reset() {
    let mut e = engine();
    e.calls.clear();
    e.violations.clear();
    e.fail = None;
    e.busy_answers = 0;
    e.data_buffer_calls = 0;
}

/// Makes the `nth` (0-based) next call of `op` fail with [`INJECTED`].
pub fn fail(op: Op, nth: u32) {
    engine().fail = Some((op, nth, INJECTED));
}

/// Makes the next `n` run-time unregistrations answer `STATUS_DEVICE_BUSY`.
pub fn busy(n: u32) {
    engine().busy_answers = n;
}

/// The calls since [`reset`].
pub fn calls() -> Vec<Call> {
    engine().calls.clone()
}

/// How often `NdisGetDataBuffer` was called since [`reset`].
pub fn data_buffer_calls() -> u32 {
    engine().data_buffer_calls
}

/// Committed filters at `layer`, as `(filter id, callout key)`.
pub fn filters_at(layer: GUID) -> Vec<(u64, GUID)> {
    engine()
        .filters
        .iter()
        .filter(|f| f.committed && f.layer == layer)
        .map(|f| (f.id, f.callout))
        .collect()
}

/// Asserts that no rule was broken and nothing is left: no session, object or run-time
/// callout.
pub fn assert_clean() {
    let e = engine();
    assert!(e.violations.is_empty(), "violations: {:?}", e.violations);
    assert!(e.sessions.is_empty(), "session left open");
    assert!(!e.in_transaction, "transaction left open");
    assert!(e.runtime.is_empty(), "run-time callout left registered");
    assert!(
        e.providers.is_empty()
            && e.sublayers.is_empty()
            && e.callouts.is_empty()
            && e.filters.is_empty(),
        "engine objects left"
    );
}

/// `FwpmEngineOpen0` (`fwpmk.h`).
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn engine_open(
    server: *const u16,
    authn: u32,
    identity: *mut c_void,
    session: *const FWPM_SESSION0,
    handle_out: *mut HANDLE,
) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::EngineOpen);
    if !server.is_null() || !identity.is_null() || authn != 10 {
        e.violation("FwpmEngineOpen0: not a local kernel session".into());
    }
    // SAFETY: ferry passes a readable session (or NULL).
    match unsafe { session.as_ref() } {
        Some(s) if s.flags & FWPM_SESSION_FLAG_DYNAMIC != 0 => {}
        _ => e.violation("FwpmEngineOpen0: not a dynamic session".into()),
    }
    if let Some(status) = e.injected(Op::EngineOpen) {
        return status;
    }
    let handle = Box::into_raw(Box::new(0x5E55_1011_u64));
    e.sessions.push(handle as usize);
    // SAFETY: a writable out-pointer.
    unsafe { handle_out.write(handle.cast()) };
    NtStatus::SUCCESS
}

/// `FwpmEngineClose0`: a dynamic session's objects go with it.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn engine_close(handle: HANDLE) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::EngineClose);
    e.session(handle, "FwpmEngineClose0");
    if e.in_transaction {
        e.violation("FwpmEngineClose0 with a transaction open".into());
        e.in_transaction = false;
    }
    if !e.runtime.is_empty() {
        e.violation("FwpmEngineClose0 while run-time callouts are registered".into());
    }
    e.sessions.retain(|&s| s != handle as usize);
    // SAFETY: the box engine_open leaked for this handle (checked above), freed once.
    drop(unsafe { Box::from_raw(handle.cast::<u64>()) });
    // A dynamic session's objects go with it.
    e.providers.clear();
    e.sublayers.clear();
    e.callouts.clear();
    e.filters.clear();
    NtStatus::SUCCESS
}

/// `FwpmTransactionBegin0`.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn transaction_begin(handle: HANDLE, flags: u32) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::TransactionBegin);
    e.session(handle, "FwpmTransactionBegin0");
    if flags != 0 || e.in_transaction {
        e.violation("FwpmTransactionBegin0: read-only or nested".into());
    }
    if let Some(status) = e.injected(Op::TransactionBegin) {
        return status;
    }
    e.in_transaction = true;
    NtStatus::SUCCESS
}

fn rollback(e: &mut Engine) {
    e.in_transaction = false;
    e.providers.retain(|p| p.1);
    e.sublayers.retain(|s| s.1);
    e.callouts.retain(|c| c.committed);
    e.filters.retain(|f| f.committed);
}

/// `FwpmTransactionCommit0`.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn transaction_commit(handle: HANDLE) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::TransactionCommit);
    e.session(handle, "FwpmTransactionCommit0");
    e.in_txn("FwpmTransactionCommit0");
    if let Some(status) = e.injected(Op::TransactionCommit) {
        // A failed commit rolls the transaction back.
        rollback(&mut e);
        return status;
    }
    e.in_transaction = false;
    e.providers.iter_mut().for_each(|p| p.1 = true);
    e.sublayers.iter_mut().for_each(|s| s.1 = true);
    e.callouts.iter_mut().for_each(|c| c.committed = true);
    e.filters.iter_mut().for_each(|f| f.committed = true);
    NtStatus::SUCCESS
}

/// `FwpmTransactionAbort0`.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn transaction_abort(handle: HANDLE) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::TransactionAbort);
    e.session(handle, "FwpmTransactionAbort0");
    if !e.in_transaction {
        // FWP_E_NO_TXN_IN_PROGRESS: harmless, ferry ignores it.
        return NtStatus(0x8032_000D_u32.cast_signed());
    }
    rollback(&mut e);
    NtStatus::SUCCESS
}

/// `FwpmProviderAdd0`.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn provider_add(
    handle: HANDLE,
    provider: *const FWPM_PROVIDER0,
    _sd: *mut c_void,
) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::ProviderAdd);
    e.session(handle, "FwpmProviderAdd0");
    e.in_txn("FwpmProviderAdd0");
    if let Some(status) = e.injected(Op::ProviderAdd) {
        return status;
    }
    // SAFETY: ferry passes a readable provider.
    let provider = unsafe { &*provider };
    if provider.displayData.name.is_null() {
        e.violation("FwpmProviderAdd0 without a name".into());
    }
    e.providers.push((provider.providerKey, false));
    NtStatus::SUCCESS
}

fn provider_known(e: &mut Engine, key: *mut GUID, call: &str) {
    // SAFETY: ferry passes a readable provider key or NULL.
    match unsafe { key.as_ref() } {
        Some(key) if e.providers.iter().any(|p| p.0 == *key) => {}
        _ => e.violation(format!("{call}: provider missing or not added")),
    }
}

/// `FwpmSubLayerAdd0`.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn sublayer_add(
    handle: HANDLE,
    sublayer: *const FWPM_SUBLAYER0,
    _sd: *mut c_void,
) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::SubLayerAdd);
    e.session(handle, "FwpmSubLayerAdd0");
    e.in_txn("FwpmSubLayerAdd0");
    if let Some(status) = e.injected(Op::SubLayerAdd) {
        return status;
    }
    // SAFETY: ferry passes a readable sublayer.
    let sublayer = unsafe { &*sublayer };
    provider_known(&mut e, sublayer.providerKey, "FwpmSubLayerAdd0");
    e.sublayers.push((sublayer.subLayerKey, false));
    NtStatus::SUCCESS
}

/// `FwpmCalloutAdd0`.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn callout_add(
    handle: HANDLE,
    callout: *const FWPM_CALLOUT0,
    _sd: *mut c_void,
    id_out: *mut u32,
) -> NtStatus {
    let mut e = engine();
    // SAFETY: ferry passes a readable callout.
    let callout = unsafe { &*callout };
    e.calls.push(Call::CalloutAdd(callout.applicableLayer));
    e.session(handle, "FwpmCalloutAdd0");
    e.in_txn("FwpmCalloutAdd0");
    if let Some(status) = e.injected(Op::CalloutAdd) {
        return status;
    }
    provider_known(&mut e, callout.providerKey, "FwpmCalloutAdd0");
    if callout.applicableLayer != FWPM_LAYER_INGRESS_VSWITCH_ETHERNET
        && callout.applicableLayer != FWPM_LAYER_EGRESS_VSWITCH_ETHERNET
    {
        e.violation("FwpmCalloutAdd0 at another layer".into());
    }
    let id = e.id();
    e.callouts.push(ManagementCallout {
        id,
        key: callout.calloutKey,
        layer: callout.applicableLayer,
        committed: false,
    });
    // SAFETY: a writable out-pointer.
    unsafe { id_out.write(id) };
    NtStatus::SUCCESS
}

/// `FwpmCalloutDeleteById0`.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn callout_delete_by_id(handle: HANDLE, id: u32) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::CalloutDelete(id));
    e.session(handle, "FwpmCalloutDeleteById0");
    let Some(index) = e.callouts.iter().position(|c| c.id == id) else {
        e.violation(format!("FwpmCalloutDeleteById0({id}): unknown"));
        return NtStatus::NOT_FOUND;
    };
    let key = e.callouts[index].key;
    if e.filter_names(&key) {
        e.violation(format!(
            "FwpmCalloutDeleteById0({id}) while a filter names it"
        ));
    }
    e.callouts.remove(index);
    NtStatus::SUCCESS
}

/// `FwpmFilterAdd0`.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn filter_add(
    handle: HANDLE,
    filter: *const FWPM_FILTER0,
    _sd: *mut c_void,
    id_out: *mut u64,
) -> NtStatus {
    let mut e = engine();
    // SAFETY: ferry passes a readable filter.
    let filter = unsafe { &*filter };
    e.calls.push(Call::FilterAdd(filter.layerKey));
    e.session(handle, "FwpmFilterAdd0");
    e.in_txn("FwpmFilterAdd0");
    if let Some(status) = e.injected(Op::FilterAdd) {
        return status;
    }
    provider_known(&mut e, filter.providerKey, "FwpmFilterAdd0");
    if filter.action.r#type != FWP_ACTION_CALLOUT_INSPECTION {
        e.violation("FwpmFilterAdd0: not an inspection callout filter".into());
    }
    let callout = filter.action.calloutKey;
    if !e
        .callouts
        .iter()
        .any(|c| c.key == callout && c.layer == filter.layerKey)
    {
        e.violation("FwpmFilterAdd0: no callout added for its layer with that key".into());
    }
    if !e.sublayers.iter().any(|s| s.0 == filter.subLayerKey) {
        e.violation("FwpmFilterAdd0: unknown sublayer".into());
    }
    if filter.numFilterConditions != 0 || filter.weight.r#type != FWP_EMPTY {
        e.violation("FwpmFilterAdd0: conditions or a fixed weight".into());
    }
    let id = u64::from(e.id()) << 8;
    e.filters.push(Filter {
        id,
        layer: filter.layerKey,
        callout,
        committed: false,
    });
    // SAFETY: a writable out-pointer.
    unsafe { id_out.write(id) };
    NtStatus::SUCCESS
}

/// `FwpmFilterDeleteById0`.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn filter_delete_by_id(handle: HANDLE, id: u64) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::FilterDelete(id));
    e.session(handle, "FwpmFilterDeleteById0");
    let before = e.filters.len();
    e.filters.retain(|f| f.id != id);
    if e.filters.len() == before {
        e.violation(format!("FwpmFilterDeleteById0({id}): unknown"));
        return NtStatus::NOT_FOUND;
    }
    NtStatus::SUCCESS
}

/// `FwpsCalloutRegister2` (`fwpsk.h`).
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn callout_register(
    device: *mut c_void,
    callout: *const FWPS_CALLOUT2,
    id_out: *mut u32,
) -> NtStatus {
    let mut e = engine();
    // SAFETY: ferry passes a readable callout; the engine keeps a copy.
    let callout = unsafe { *callout };
    e.calls.push(Call::CalloutRegister(callout.calloutKey));
    if device.is_null() {
        e.violation("FwpsCalloutRegister2 without a device object".into());
    }
    if callout.classifyFn.is_none() || callout.notifyFn.is_none() {
        e.violation("FwpsCalloutRegister2 without classifyFn or notifyFn".into());
    }
    if let Some(status) = e.injected(Op::CalloutRegister) {
        return status;
    }
    let id = e.id();
    e.runtime.push(RuntimeCallout { id, callout });
    // SAFETY: a writable out-pointer.
    unsafe { id_out.write(id) };
    NtStatus::SUCCESS
}

/// `FwpsCalloutUnregisterById0`: `STATUS_DEVICE_BUSY` while [`busy`] says so.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn callout_unregister_by_id(id: u32) -> NtStatus {
    let mut e = engine();
    e.calls.push(Call::CalloutUnregister(id));
    let Some(index) = e.runtime.iter().position(|r| r.id == id) else {
        e.violation(format!("FwpsCalloutUnregisterById0({id}): unknown"));
        return NtStatus::NOT_FOUND;
    };
    let key = e.runtime[index].callout.calloutKey;
    if e.filter_names(&key) {
        e.violation(format!(
            "FwpsCalloutUnregisterById0({id}) while a filter still names it"
        ));
    }
    if e.busy_answers > 0 {
        e.busy_answers -= 1;
        return STATUS_DEVICE_BUSY;
    }
    e.runtime.remove(index);
    NtStatus::SUCCESS
}

/// A `NET_BUFFER` followed by the frame bytes it describes (the fake's own layout).
#[repr(C)]
struct FakeNetBuffer {
    buffer: NET_BUFFER,
    data: Vec<u8>,
}

/// `NdisGetDataBuffer`: frames of even length are "contiguous" (a pointer into them), odd
/// ones are copied into `Storage`, as NDIS does for data spread over several MDLs.
///
/// # Safety
///
/// As the real function's C contract: every pointer readable (or writable, for
/// out-parameters) as the WFP headers say.
pub unsafe extern "system" fn get_data_buffer(
    buffer: *mut NET_BUFFER,
    needed: u32,
    storage: *mut c_void,
    align_multiple: u32,
    align_offset: u32,
) -> *mut c_void {
    let mut e = engine();
    e.data_buffer_calls += 1;
    if align_multiple != 1 || align_offset != 0 {
        e.violation("NdisGetDataBuffer with an alignment".into());
    }
    // SAFETY: `buffer` is the NET_BUFFER at the start of a FakeNetBuffer built by classify().
    let fake = unsafe { &mut *buffer.cast::<FakeNetBuffer>() };
    let needed = needed as usize;
    if needed > fake.data.len() {
        return std::ptr::null_mut();
    }
    if fake.data.len() % 2 == 0 {
        return fake.data.as_mut_ptr().cast();
    }
    if storage.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: ferry's storage has room for `needed` bytes (its contract with NDIS).
    unsafe { std::ptr::copy_nonoverlapping(fake.data.as_ptr(), storage.cast::<u8>(), needed) };
    storage
}

/// An Ethernet + IPv4 + UDP frame of `len` bytes (at least 42): the bytes a classify sees.
#[must_use]
pub fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut frame = vec![0u8; len];
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    frame[14] = 0x45;
    frame[23] = 17;
    frame[26..30].copy_from_slice(&src);
    frame[30..34].copy_from_slice(&dst);
    frame[34..36].copy_from_slice(&sport.to_be_bytes());
    frame[36..38].copy_from_slice(&dport.to_be_bytes());
    frame
}

/// What the switch knows about a frame besides its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Metadata {
    /// `vSwitchSourcePortId`, if set.
    pub source_port: Option<u32>,
    /// `vSwitchDestinationPortId`, if set.
    pub destination_port: Option<u32>,
    /// The layer's `ETHER_TYPE` field, if present.
    pub ether_type: Option<u16>,
    /// `classifyOut->rights`.
    pub rights: u32,
}

/// The engine's classify of one `NET_BUFFER_LIST` of `frames` at run-time layer `layer_id`:
/// every committed filter at the layer calls its callout's `classifyFn`. Returns each call's
/// classify output (empty if no filter reaches a callout).
pub fn classify(layer_id: u16, metadata: Metadata, frames: &[Vec<u8>]) -> Vec<FWPS_CLASSIFY_OUT0> {
    let layer = match layer_id {
        FWPS_LAYER_INGRESS_VSWITCH_ETHERNET => FWPM_LAYER_INGRESS_VSWITCH_ETHERNET,
        FWPS_LAYER_EGRESS_VSWITCH_ETHERNET => FWPM_LAYER_EGRESS_VSWITCH_ETHERNET,
        _ => return Vec::new(),
    };
    let targets: Vec<FWPS_CALLOUT2> = {
        let e = engine();
        e.filters
            .iter()
            .filter(|f| f.committed && f.layer == layer)
            .filter_map(|f| {
                e.runtime
                    .iter()
                    .find(|r| r.callout.calloutKey == f.callout)
                    .map(|r| r.callout)
            })
            .collect()
    };

    // Incoming values: 17 fields (the egress layer's count with COMPARTMENT_ID).
    let mut values = vec![
        FWPS_INCOMING_VALUE0 {
            value: FWP_VALUE0::EMPTY
        };
        17
    ];
    if let Some(ether_type) = metadata.ether_type {
        values[4].value = FWP_VALUE0 {
            r#type: FWP_UINT16,
            value: FWP_VALUE0_UNION { uint16: ether_type },
        };
    }
    let fixed = FWPS_INCOMING_VALUES0 {
        layerId: layer_id,
        valueCount: 17,
        incomingValue: values.as_mut_ptr(),
    };
    // SAFETY: integers and pointers: all-zero is "nothing set".
    let mut meta: Box<FWPS_INCOMING_METADATA_VALUES0> = Box::new(unsafe { std::mem::zeroed() });
    if let Some(port) = metadata.source_port {
        meta.currentL2MetadataValues |= FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_PORT_ID;
        meta.vSwitchSourcePortId = port;
    }
    if let Some(port) = metadata.destination_port {
        meta.currentL2MetadataValues |= FWPS_L2_METADATA_FIELD_VSWITCH_DESTINATION_PORT_ID;
        meta.vSwitchDestinationPortId = port;
    }

    // The list, built back to front so each buffer can point at the next.
    let mut buffers: Vec<Box<FakeNetBuffer>> = Vec::new();
    let mut next: *mut NET_BUFFER = std::ptr::null_mut();
    for frame in frames.iter().rev() {
        let mut fake = Box::new(FakeNetBuffer {
            buffer: NET_BUFFER {
                Next: next,
                CurrentMdl: std::ptr::null_mut(),
                CurrentMdlOffset: 0,
                _union_alignment: 0,
                DataLength: u32::try_from(frame.len()).unwrap(),
                _data_length_high: 0,
                MdlChain: std::ptr::null_mut(),
                DataOffset: 0,
            },
            data: frame.clone(),
        });
        next = &raw mut fake.buffer;
        buffers.push(fake);
    }
    let mut list = Box::new(NET_BUFFER_LIST {
        Next: std::ptr::null_mut(),
        FirstNetBuffer: next,
    });

    let mut outputs = Vec::new();
    for callout in targets {
        let mut out = FWPS_CLASSIFY_OUT0 {
            actionType: 0,
            rights: metadata.rights,
            ..FWPS_CLASSIFY_OUT0::default()
        };
        let classify = callout.classifyFn.expect("checked at registration");
        // SAFETY: ferry's classifyFn with the engine's arguments, all valid for the call.
        unsafe {
            classify(
                &raw const fixed,
                &raw const *meta,
                (&raw mut *list).cast(),
                std::ptr::null(),
                std::ptr::null(),
                0,
                &raw mut out,
            );
        }
        outputs.push(out);
    }
    // Scribble over the frames: ferry must not have kept a pointer into them.
    for fake in &mut buffers {
        fake.data.fill(0xA5);
    }
    outputs
}

/// Calls the callout registered for `layer_id` directly with NULL arguments (a hostile or
/// broken engine): it must not crash and must count the call.
pub fn classify_with_nulls(layer_id: u16) {
    let callout = {
        let e = engine();
        let layer = if layer_id == FWPS_LAYER_INGRESS_VSWITCH_ETHERNET {
            FWPM_LAYER_INGRESS_VSWITCH_ETHERNET
        } else {
            FWPM_LAYER_EGRESS_VSWITCH_ETHERNET
        };
        let key = e
            .filters
            .iter()
            .find(|f| f.layer == layer)
            .expect("a filter")
            .callout;
        e.runtime
            .iter()
            .find(|r| r.callout.calloutKey == key)
            .expect("registered")
            .callout
    };
    let classify = callout.classifyFn.expect("checked at registration");
    // SAFETY: ferry's classifyFn; every pointer NULL, which it must tolerate.
    unsafe {
        classify(
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
        );
    }
}
