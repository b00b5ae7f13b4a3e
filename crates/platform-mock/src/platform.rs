//! [`SimPlatform`]: ferry-core's [`Platform`] over one simulated host's KMCL, vSwitch and
//! clock. Each method is the simulated counterpart of the KMCL/WFP/kernel call core's trait
//! names.

use std::rc::Rc;

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::{Platform, Ticks, TransactionKey};
use ferry_core::status::NtStatus;

use crate::clock::HostClock;
use crate::kmcl::{ChannelHandle, IncomingPacketHandle, Kmcl, PacketHandle};
use crate::vswitch::{PortSaveCompletion, VSwitch};

/// What one simulated host offers a driver: its KMCL, its switch and its clock.
pub struct HostServices {
    /// `vmbkmclr.sys`.
    pub kmcl: Kmcl,
    /// The extensible switch with the WFP extension.
    pub vswitch: VSwitch,
    /// `KeQueryInterruptTime`.
    pub clock: HostClock,
}

/// ferry-core's platform on a simulated host (cheap to clone: a shared reference).
#[derive(Clone)]
pub struct SimPlatform(pub Rc<HostServices>);

impl Platform for SimPlatform {
    type Channel = ChannelHandle;
    type IncomingPacket = IncomingPacketHandle;
    type OutgoingPacket = PacketHandle;
    type PortSaveCompletion = PortSaveCompletion;
    type Lock = SpinRawLock;

    fn complete_packet(&self, packet: IncomingPacketHandle, response: &[u8]) {
        self.0.kmcl.packet_complete(packet, response);
    }

    fn fail_packet(&self, packet: IncomingPacketHandle) {
        self.0.kmcl.packet_fail(packet);
    }

    fn send_transaction(
        &self,
        channel: &ChannelHandle,
        key: TransactionKey,
        payload: &[u8],
    ) -> Result<PacketHandle, NtStatus> {
        self.0.kmcl.packet_send(*channel, key.to_bits(), payload)
    }

    fn restore_transaction(
        &self,
        channel: &ChannelHandle,
        key: TransactionKey,
        library_state: &[u8],
    ) -> Result<PacketHandle, NtStatus> {
        self.0
            .kmcl
            .packet_restore(*channel, key.to_bits(), library_state)
    }

    fn complete_port_save(&self, completion: PortSaveCompletion, status: NtStatus) {
        self.0.vswitch.notify_complete(completion, status);
    }

    fn now(&self) -> Ticks {
        self.0.clock.now()
    }
}
