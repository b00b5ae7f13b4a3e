//! The driver's side of every KMCL and WFP callback: recover the context, call core once,
//! report the result in the form the C caller expects.
//!
//! | module | job |
//! |---|---|
//! | [`channel`] | a channel's pool-resident context, offer/close, and the KMCL trampolines |
//! | [`vswitch`] | [`VSwitch`](vswitch::VSwitch) and the WFP vSwitch callbacks |
//! | [`runtime_state`] | the runtime-state blobs handed to WFP, and who owns them |
//! | [`callout`] | the vSwitch callouts' classify path: [`Callouts`](callout::Callouts) and the `classifyFn`s |
//! | [`filters`] | engine session, callout registration and filters at load; their removal at unload |
//! | [`frame`] | the flow key of an Ethernet frame (hostile bytes) |
//!
//! KMCL's packet completion routine receives only the packet, so the KMCL table must be
//! reachable without a context: [`FerryHost`] names the driver's `static` platform and port
//! table, and every KMCL trampoline is generic over it. WFP callbacks get their context from
//! `notifyContext` instead and are generic only over the kernel services.

pub mod callout;
pub mod channel;
pub mod filters;
pub mod frame;
pub mod runtime_state;
pub mod vswitch;

use ferry_core::port::PortTable;

use crate::kernel::services::KernelServices;
use crate::platform::WdkPlatform;

/// The transaction quota of every channel (`VmbChannelSetTransactionQuota`; core's incoming
/// ledger capacity).
pub const QUOTA: usize = 16;
/// Host→guest transactions in flight per channel.
pub const OUTGOING: usize = 16;
/// Ports the vSwitch callout tracks.
pub const PORTS: usize = 64;
/// Flows tracked per port.
pub const FLOWS: usize = 128;
/// Runtime-state saves that may be pending at once.
pub const PENDING_SAVES: usize = 16;

/// The port table of the real platform.
pub type WdkPortTable<K> = PortTable<<K as KernelServices>::Lock, PORTS, FLOWS>;

/// The driver's global state, as the trampolines reach it: a type with two functions
/// returning `'static` references (in `ferry.sys`, to `static` items).
pub trait FerryHost: 'static {
    /// The kernel services.
    type Kernel: KernelServices;

    /// The platform (KMCL and WFP tables).
    fn platform() -> &'static WdkPlatform<Self::Kernel>;

    /// The port table the channels' services report on.
    fn ports() -> &'static WdkPortTable<Self::Kernel>;
}
