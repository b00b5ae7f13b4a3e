//! A fake WFP vSwitch event API: the three functions with `fwpkclnt.sys`'s C signatures
//! (the filter engine's functions are in `fake_engine`),
//! recording subscriptions and `FwpsvSwitchNotifyComplete0` calls. The test plays the
//! switch's part by calling the dispatch table's callbacks with the subscribed
//! `notifyContext`.

use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use ferry_core::status::NtStatus;
use ferry_platform_wdk::ffi::base::GUID;
use ferry_platform_wdk::ffi::ndis::{NDIS_SWITCH_PARAMETERS, NDIS_SWITCH_PORT_PARAMETERS};
use ferry_platform_wdk::ffi::wfp::{FWPS_VSWITCH_EVENT_DISPATCH_TABLE0, FWPS_VSWITCH_EVENT_TYPE};
use ferry_platform_wdk::tables::WfpTable;

struct Subscribed {
    id: u32,
    provider: GUID,
    context: usize,
    table: FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
}

static SUBSCRIPTIONS: Mutex<Vec<Subscribed>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU32 = AtomicU32::new(1);
static COMPLETED: Mutex<Vec<(usize, NtStatus)>> = Mutex::new(Vec::new());

unsafe extern "system" fn subscribe(
    provider: *const GUID,
    context: *mut c_void,
    flags: u32,
    reserved: *mut c_void,
    table: *const FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
    id_out: *mut u32,
) -> NtStatus {
    assert_eq!(flags, 0);
    assert!(reserved.is_null());
    let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    // SAFETY: ferry passes readable provider and table pointers.
    let provider = unsafe { *provider };
    // SAFETY: as above.
    let table = unsafe { *table };
    SUBSCRIPTIONS.lock().unwrap().push(Subscribed {
        id,
        provider,
        context: context as usize,
        table,
    });
    // SAFETY: a writable out-pointer.
    unsafe { id_out.write(id) };
    NtStatus::SUCCESS
}

unsafe extern "system" fn unsubscribe(id: u32, flags: u32, reserved: *mut c_void) {
    assert_eq!(flags, 0);
    assert!(reserved.is_null());
    let mut subscriptions = SUBSCRIPTIONS.lock().unwrap();
    let before = subscriptions.len();
    subscriptions.retain(|s| s.id != id);
    assert_eq!(
        subscriptions.len() + 1,
        before,
        "unsubscribe of unknown id {id}"
    );
}

unsafe extern "system" fn notify_complete(
    context: *mut c_void,
    status: NtStatus,
    flags: u32,
    reserved: *mut c_void,
) {
    assert_eq!(flags, 0);
    assert!(reserved.is_null());
    COMPLETED.lock().unwrap().push((context as usize, status));
}

/// The table ferry's platform is built with: the vSwitch-event functions above and the
/// filter engine of `fake_engine`.
pub fn table() -> WfpTable {
    use crate::fake_engine as engine;
    WfpTable {
        events_subscribe: subscribe,
        events_unsubscribe: unsubscribe,
        notify_complete,
        engine_open: engine::engine_open,
        engine_close: engine::engine_close,
        transaction_begin: engine::transaction_begin,
        transaction_commit: engine::transaction_commit,
        transaction_abort: engine::transaction_abort,
        provider_add: engine::provider_add,
        sublayer_add: engine::sublayer_add,
        callout_add: engine::callout_add,
        callout_delete_by_id: engine::callout_delete_by_id,
        filter_add: engine::filter_add,
        filter_delete_by_id: engine::filter_delete_by_id,
        callout_register: engine::callout_register,
        callout_unregister_by_id: engine::callout_unregister_by_id,
        get_data_buffer: engine::get_data_buffer,
    }
}

/// The switch side of one subscription.
pub struct Switch {
    context: *mut c_void,
    table: FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
    /// Never read by ferry; zeroed, like a switch in its initial state.
    parameters: Box<NDIS_SWITCH_PARAMETERS>,
}

/// The subscription made with `provider`, if any.
pub fn switch_for(provider: GUID) -> Option<Switch> {
    let subscriptions = SUBSCRIPTIONS.lock().unwrap();
    let found = subscriptions.iter().find(|s| s.provider == provider)?;
    Some(Switch {
        context: found.context as *mut c_void,
        table: found.table,
        // SAFETY: NDIS_SWITCH_PARAMETERS is integers and arrays of integers: all-zero is valid.
        parameters: Box::new(unsafe { std::mem::zeroed() }),
    })
}

/// Completions reported for `context` so far.
pub fn completions_for(context: usize) -> Vec<NtStatus> {
    COMPLETED
        .lock()
        .unwrap()
        .iter()
        .filter(|(c, _)| *c == context)
        .map(|(_, s)| *s)
        .collect()
}

fn port_parameters(port: u32) -> Box<NDIS_SWITCH_PORT_PARAMETERS> {
    // SAFETY: integers and arrays of integers: all-zero is valid.
    let mut parameters: Box<NDIS_SWITCH_PORT_PARAMETERS> = Box::new(unsafe { std::mem::zeroed() });
    parameters.PortId = port;
    parameters
}

/// What a save callback returned, with its out-parameters as left.
pub struct SaveResult {
    pub status: NtStatus,
    pub state: *mut c_void,
    pub length: usize,
}

impl Switch {
    /// A port event (`PORT_CREATE`, `PORT_DELETE`, ...).
    pub fn port_event(&self, event: FWPS_VSWITCH_EVENT_TYPE, port: u32) -> NtStatus {
        let callback = self
            .table
            .vSwitchPortEventNotifyFn
            .expect("port events handled");
        let parameters = port_parameters(port);
        // SAFETY: ferry's callback, with its notifyContext and readable parameters.
        unsafe {
            callback(
                self.context,
                std::ptr::null_mut(),
                event,
                &raw const *self.parameters,
                &raw const *parameters,
            )
        }
    }

    /// The runtime-state save of `port`, with `completion` as the completion context. The
    /// out-parameters live in `out` (a caller-owned, heap-pinned pair), as they would in
    /// WFP's request context.
    pub fn save(&self, port: u32, completion: usize, out: &mut Box<(usize, usize)>) -> SaveResult {
        let callback = self
            .table
            .vSwitchRuntimeStateSaveNotifyFn
            .expect("save handled");
        let state_out = (&raw mut out.0).cast::<*mut c_void>();
        let length_out = &raw mut out.1;
        // SAFETY: ferry's callback with its notifyContext and writable out-parameters.
        let status = unsafe {
            callback(
                self.context,
                completion as *mut c_void,
                FWPS_VSWITCH_EVENT_TYPE::RUNTIME_STATE_SAVE,
                &raw const *self.parameters,
                port,
                state_out,
                length_out,
            )
        };
        SaveResult {
            status,
            state: out.0 as *mut c_void,
            length: out.1,
        }
    }

    /// The runtime-state restore of `blob` onto `port`.
    pub fn restore(&self, port: u32, blob: &[u8]) -> NtStatus {
        let callback = self
            .table
            .vSwitchRuntimeStateRestoreNotifyFn
            .expect("restore handled");
        // WFP's buffer: ferry must copy what it needs during the call.
        let mut copy = blob.to_vec();
        // SAFETY: ferry's callback with its notifyContext and a readable buffer.
        let status = unsafe {
            callback(
                self.context,
                std::ptr::null_mut(),
                FWPS_VSWITCH_EVENT_TYPE::RUNTIME_STATE_RESTORE,
                &raw const *self.parameters,
                port,
                copy.as_mut_ptr().cast(),
                copy.len(),
            )
        };
        // Scribble over WFP's buffer after the call: ferry must not have kept it.
        copy.fill(0xA5);
        status
    }

    /// Calls the save callback with NULL out-parameters (a hostile or broken caller).
    pub fn save_without_out_parameters(&self, port: u32) -> NtStatus {
        let callback = self
            .table
            .vSwitchRuntimeStateSaveNotifyFn
            .expect("save handled");
        // SAFETY: ferry's callback; NULL out-parameters must be refused, not written.
        unsafe {
            callback(
                self.context,
                std::ptr::null_mut(),
                FWPS_VSWITCH_EVENT_TYPE::RUNTIME_STATE_SAVE,
                &raw const *self.parameters,
                port,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        }
    }

    /// The save callback called with a NULL notifyContext.
    pub fn save_with_null_context(&self, port: u32) -> NtStatus {
        let callback = self
            .table
            .vSwitchRuntimeStateSaveNotifyFn
            .expect("save handled");
        let mut out = (0usize, 0usize);
        // SAFETY: ferry's callback; a NULL context must be refused.
        unsafe {
            callback(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                FWPS_VSWITCH_EVENT_TYPE::RUNTIME_STATE_SAVE,
                &raw const *self.parameters,
                port,
                (&raw mut out.0).cast(),
                &raw mut out.1,
            )
        }
    }
}
