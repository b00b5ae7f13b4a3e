//! [`WfpTable`]: the WFP vSwitch functions ferry calls.

use crate::ffi::wfp::{
    FN_FWPSV_SWITCH_EVENTS_SUBSCRIBE0, FN_FWPSV_SWITCH_EVENTS_UNSUBSCRIBE0,
    FN_FWPSV_SWITCH_NOTIFY_COMPLETE0,
};

/// The three vSwitch-event functions of `fwpkclnt.sys` (wfp-vswitch.md §1.5).
///
/// WFP has no interface table, so there is no C struct to fill this from:
///
/// * In `ferry.sys`: `WfpTable::from_imports` (Windows targets).
/// * In host tests (`tests/abi/`): a fake host defines three `extern "system"` functions
///   with exactly these signatures and the test builds the table with a struct literal.
///
/// Callout registration (`FwpsCalloutRegister3`, filters) is not bound yet.
#[derive(Clone, Copy, Debug)]
pub struct WfpTable {
    /// `FwpsvSwitchEventsSubscribe0`.
    pub events_subscribe: FN_FWPSV_SWITCH_EVENTS_SUBSCRIBE0,
    /// `FwpsvSwitchEventsUnsubscribe0`.
    pub events_unsubscribe: FN_FWPSV_SWITCH_EVENTS_UNSUBSCRIBE0,
    /// `FwpsvSwitchNotifyComplete0`.
    pub notify_complete: FN_FWPSV_SWITCH_NOTIFY_COMPLETE0,
}

impl WfpTable {
    /// The table over the direct imports from `fwpkclnt.sys` (Windows targets only).
    #[cfg(target_os = "windows")]
    #[must_use]
    pub const fn from_imports() -> Self {
        use crate::ffi::wfp::imports as w;
        Self {
            events_subscribe: w::FwpsvSwitchEventsSubscribe0,
            events_unsubscribe: w::FwpsvSwitchEventsUnsubscribe0,
            notify_complete: w::FwpsvSwitchNotifyComplete0,
        }
    }
}
