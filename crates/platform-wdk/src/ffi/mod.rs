//! Hand-written `#[repr(C)]` declarations of the Windows kernel APIs ferry uses.
//!
//! The C names are kept so that each item can be looked up in the WDK headers and in
//! `shared/reference/`. Every size and every offset that ferry depends on is pinned with
//! `static_assertions`, citing the reference section the figure comes from; the pins are
//! evaluated on every build, the Linux host's included. `ULONG` is written `u32`, never
//! `c_long` (which is 8 bytes on Linux).
//!
//! Imports use `raw-dylib` on Windows targets (no import library needed) with the exact module
//! file name (`+verbatim`). On other targets the same declarations compile as plain undefined
//! symbols: host tests must never call them.
//!
//! | module | header |
//! |---|---|
//! | [`base`] | `ntdef.h`, `guiddef.h`: `NTSTATUS`, `GUID`, `UNICODE_STRING`, opaque handles |
//! | [`kmcl`] | `vmbuskernelmodeclientlibapi.h` (`vmbkmclr.sys`) |
//! | [`wfp`] | `fwpsk.h`, vSwitch events (`fwpkclnt.sys`) |
//! | [`fwps`] | `fwpsk.h` / `fwpstypes.h` / `fwptypes.h`: classify structures, the vSwitch ethernet layers, `FWPS_CALLOUT2` (`fwpkclnt.sys`) |
//! | [`fwpm`] | `fwpmk.h` / `fwpmtypes.h`: engine session, transactions, provider, sublayer, callouts, filters (`fwpkclnt.sys`) |
//! | [`nbl`] | `ndis.h`: the leading members of `NET_BUFFER_LIST` / `NET_BUFFER`, `NdisGetDataBuffer` (`ndis.sys`) |
//! | [`ndis`] | `ntddndis.h` / `ndis.h`, extensible-switch structures |
//! | [`ntoskrnl`] | `wdm.h`: pool, spin locks, interrupt time, `DbgPrintEx`, `DRIVER_OBJECT` |
//! | [`io`] | `wdm.h`: `IRP`, `IO_STACK_LOCATION`, device objects and symbolic links (the control device) |

pub mod base;
pub mod fwpm;
pub mod fwps;
pub mod io;
pub mod kmcl;
pub mod nbl;
pub mod ndis;
pub mod ntoskrnl;
pub mod wfp;
