//! ABI-level tests: platform-wdk's trampolines driven on Linux through their C signatures by
//! a fake KMCL and a fake WFP made of `extern "system"` functions (`fake_kmcl`, `fake_wfp`),
//! over test kernel services (`kernel`). The platform under test is built exactly as in the
//! driver: `KmclTable::from_server_interface` on a `KMCL_SERVER_INTERFACE_V1`, a `WfpTable`
//! of three functions, `packet_completion::<Host>` as the completion routine.
//!
//! The tests share the fake's globals and the static port tables, so they run one at a time
//! (`serial()`); each cleans up after itself and checks that no block, packet or channel
//! leaked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// `VSwitch::new` builds a 2.4 KiB value inside `OnceLock::get_or_init` here; the driver builds
// it at compile time in a `static`. Test threads have megabytes of stack.
#![allow(clippy::large_stack_frames)]

mod callout;
mod channel;
mod control;
mod fake_kmcl;
mod fake_wfp;
mod kernel;
mod vswitch;

use std::sync::{Mutex, MutexGuard, OnceLock};

use ferry_core::port::PortTable;
use ferry_platform_wdk::host::callout::{CalloutHost, Callouts};
use ferry_platform_wdk::host::channel::packet_completion;
use ferry_platform_wdk::host::vswitch::VSwitch;
use ferry_platform_wdk::host::{FerryHost, WdkPortTable};
use ferry_platform_wdk::platform::WdkPlatform;
use ferry_platform_wdk::tables::KmclTable;

use ferry_sim_abi::fake_engine;
use kernel::TestKernel;

/// The test driver's global state, as `ferry.sys` keeps it in `static`s.
pub enum TestHost {}

static PLATFORM: OnceLock<WdkPlatform<TestKernel>> = OnceLock::new();
static PORTS: WdkPortTable<TestKernel> = PortTable::new();
static DESTINATION_PORTS: WdkPortTable<TestKernel> = PortTable::new();
static SOURCE_SWITCH: OnceLock<VSwitch<TestKernel>> = OnceLock::new();
static DESTINATION_SWITCH: OnceLock<VSwitch<TestKernel>> = OnceLock::new();

impl FerryHost for TestHost {
    type Kernel = TestKernel;

    fn platform() -> &'static WdkPlatform<TestKernel> {
        PLATFORM.get_or_init(|| {
            let kmcl = KmclTable::from_server_interface(&fake_kmcl::interface())
                .expect("the fake fills every member ferry needs");
            WdkPlatform::new(kmcl, fake_wfp::table(), Some(packet_completion::<TestHost>))
        })
    }

    fn ports() -> &'static WdkPortTable<TestKernel> {
        &PORTS
    }
}

static CALLOUTS: OnceLock<Callouts<TestKernel>> = OnceLock::new();

impl CalloutHost for TestHost {
    type Kernel = TestKernel;

    fn callouts() -> &'static Callouts<TestKernel> {
        CALLOUTS.get_or_init(|| Callouts::new(TestHost::platform(), &PORTS))
    }
}

/// The source host's vSwitch state (over [`PORTS`]).
fn source_switch() -> &'static VSwitch<TestKernel> {
    SOURCE_SWITCH.get_or_init(|| VSwitch::new(TestHost::platform(), &PORTS))
}

/// The destination host's vSwitch state (over its own port table).
fn destination_switch() -> &'static VSwitch<TestKernel> {
    DESTINATION_SWITCH.get_or_init(|| VSwitch::new(TestHost::platform(), &DESTINATION_PORTS))
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs tests one at a time, and checks on drop that the test left nothing behind.
struct Serial {
    _guard: MutexGuard<'static, ()>,
    blocks_before: i64,
    packets_before: i64,
}

fn serial() -> Serial {
    let guard = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    kernel::take_log();
    Serial {
        _guard: guard,
        blocks_before: kernel::live_blocks(),
        packets_before: fake_kmcl::live_packets(),
    }
}

impl Serial {
    /// Asserts that every block and packet allocated since `serial()` was freed and every
    /// channel cleaned up.
    fn assert_clean(&self) {
        assert_eq!(
            kernel::live_blocks(),
            self.blocks_before,
            "kernel blocks leaked"
        );
        assert_eq!(
            fake_kmcl::live_packets(),
            self.packets_before,
            "packets leaked"
        );
        assert_eq!(
            fake_kmcl::free_cleaned_channels(),
            0,
            "channels not cleaned up"
        );
    }
}
