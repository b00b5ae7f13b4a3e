//! The inputs of the control device's IOCTLs as a caller (the VM worker process, a tool)
//! writes them: the wire layouts of `ferry_platform_wdk::control::request`, built from
//! values. For tests that send requests, through the handlers (platform-wdk's `tests/abi`) or
//! through the driver's IRP dispatch (ferry-driver's tests).

use ferry_platform_wdk::control::request::IOCTL_VERSION;

/// `IOCTL_FERRY_OFFER_CHANNEL` / `_LOOPBACK` input (`OfferInput`, 72 bytes).
#[derive(Clone, Copy, Debug)]
pub struct Offer {
    /// `OFFER_FLAG_*`.
    pub flags: u32,
    /// The worker's VMBus handle (0 for loopback).
    pub vmbus_handle: u64,
    /// Interface type GUID bytes.
    pub interface_type: [u8; 16],
    /// Interface instance GUID bytes.
    pub interface_instance: [u8; 16],
    /// The NIC the channel reports on (all zero: none).
    pub nic: [u8; 16],
    /// `maximum_packet_size`.
    pub maximum_packet_size: u32,
}

impl Offer {
    /// The 72 bytes on the wire.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = IOCTL_VERSION.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.flags.to_le_bytes());
        bytes.extend_from_slice(&self.vmbus_handle.to_le_bytes());
        bytes.extend_from_slice(&self.interface_type);
        bytes.extend_from_slice(&self.interface_instance);
        bytes.extend_from_slice(&self.nic);
        bytes.extend_from_slice(&self.maximum_packet_size.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes
    }
}

/// The input of the requests that name one channel (`ChannelInput`: save, close, pause,
/// resume).
#[must_use]
pub fn channel(id: u32) -> Vec<u8> {
    let mut bytes = IOCTL_VERSION.to_le_bytes().to_vec();
    bytes.extend_from_slice(&id.to_le_bytes());
    bytes
}

/// `IOCTL_FERRY_RESTORE_CHANNEL` input: the 16-byte header, then `data`.
#[must_use]
pub fn restore(id: u32, flags: u32, session_len: u32, data: &[u8]) -> Vec<u8> {
    let mut bytes = channel(id);
    bytes.extend_from_slice(&flags.to_le_bytes());
    bytes.extend_from_slice(&session_len.to_le_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// `IOCTL_FERRY_READ_PORT_STATS` input (`PortStatsInput`, 24 bytes).
#[must_use]
pub fn port_stats(nic: [u8; 16]) -> Vec<u8> {
    let mut bytes = IOCTL_VERSION.to_le_bytes().to_vec();
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&nic);
    bytes
}
