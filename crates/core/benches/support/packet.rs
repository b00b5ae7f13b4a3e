//! The packet-path workload shared by the `packet` bench and the `instructions` runner.
//!
//! "A request of N bytes" is a whole protocol-v1 `PingRequest` message of N bytes: the 16-byte
//! header, the 8-byte nonce and N − 24 bytes of ping data (so the 64-byte request carries 24
//! data bytes). The response is the `PingResponse` echoing nonce and data: also N bytes.
//!
//! Both contenders serve the same bytes into the same scratch buffer and "complete" the packet
//! by passing the response to [`black_box`]:
//!
//! - **ferry**: [`Channel::process_packet`] over [`NullPlatform`] with the reference
//!   [`FerryService`] (lock, state check, stats, hostile-input parse, version check, encode);
//! - **minimal**: [`minimal_handler`], what a driver author would write by hand without ferry:
//!   bounds-checked header read, the same frame checks, the response written in place.

use std::hint::black_box;

use ferry_core::channel::{Channel, ChannelEvent};
use ferry_core::lock::SpinRawLock;
use ferry_core::platform::{Platform, Ticks, TransactionKey};
use ferry_core::port::PortIdentity;
use ferry_core::protocol::{
    self, MAX_MESSAGE_LEN, NegotiateRequest, PROTOCOL_VERSION_1, Ping, PortStats, Request,
    RequestBody,
};
use ferry_core::service::{FerryService, PortStatsSource, ServiceConfig};
use ferry_core::status::NtStatus;

/// Request sizes measured (whole message bytes).
pub const REQUEST_SIZES: [usize; 3] = [64, 1024, 8192];

/// Bytes of header and nonce before the ping data.
pub const PING_OVERHEAD: usize = protocol::HEADER_LEN + protocol::PING_FIXED_LEN;

/// A platform whose every effect is a [`black_box`]: what is left is core's own cost.
pub struct NullPlatform;

impl Platform for NullPlatform {
    type Channel = ();
    type IncomingPacket = u64;
    type OutgoingPacket = u64;
    type PortSaveCompletion = ();
    type Lock = SpinRawLock;

    fn complete_packet(&self, packet: u64, response: &[u8]) {
        black_box((packet, response));
    }

    fn fail_packet(&self, packet: u64) {
        black_box(packet);
    }

    fn send_transaction(
        &self,
        _channel: &(),
        key: TransactionKey,
        _payload: &[u8],
    ) -> Result<u64, NtStatus> {
        Ok(u64::from(key.to_bits()))
    }

    fn restore_transaction(
        &self,
        _channel: &(),
        key: TransactionKey,
        _library_state: &[u8],
    ) -> Result<u64, NtStatus> {
        Ok(u64::from(key.to_bits()))
    }

    fn complete_port_save(&self, completion: (), status: NtStatus) {
        black_box((completion, status));
    }

    fn now(&self) -> Ticks {
        Ticks(0)
    }
}

/// A statistics source with no port (pings never read it).
pub struct NoPorts;

impl PortStatsSource for NoPorts {
    fn port_stats(&self, _identity: &PortIdentity) -> Option<PortStats> {
        None
    }
}

/// The channel under test.
pub type BenchChannel = Channel<NullPlatform, FerryService<NoPorts>, 8, 8>;

/// A channel opened, started and negotiated, ready to serve pings.
pub fn running_channel() -> BenchChannel {
    let channel = Channel::new(
        (),
        FerryService::new(NoPorts, None, ServiceConfig::default()),
    );
    let platform = NullPlatform;
    channel.request(ChannelEvent::Enable).expect("enable");
    channel.request(ChannelEvent::Start).expect("start");
    let _ = channel.on_opened(&platform);
    channel.on_started(&platform).expect("started");
    channel.on_post_started(&platform).expect("post-started");
    let negotiate = encode(&Request {
        version: PROTOCOL_VERSION_1,
        transaction_id: 1,
        body: RequestBody::Negotiate(NegotiateRequest {
            min_version: 1,
            max_version: 1,
            features: 0,
        }),
    });
    let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
    channel
        .process_packet(&platform, 0, &negotiate, &mut scratch)
        .expect("negotiate");
    channel
}

fn encode(request: &Request<'_>) -> Vec<u8> {
    let mut out = vec![0u8; MAX_MESSAGE_LEN];
    let len = protocol::encode_request(request, &mut out).expect("encode request");
    out.truncate(len);
    out
}

/// A `PingRequest` message of exactly `size` bytes (`size` ≥ 24).
pub fn ping_request(size: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..size - PING_OVERHEAD).map(|i| i as u8).collect();
    let bytes = encode(&Request {
        version: PROTOCOL_VERSION_1,
        transaction_id: 0x1234_5678,
        body: RequestBody::Ping(Ping {
            nonce: 0xFEED_F00D,
            data: &data,
        }),
    });
    assert_eq!(bytes.len(), size);
    bytes
}

/// One request through ferry.
#[inline(never)]
pub fn ferry_once(channel: &BenchChannel, request: &[u8], scratch: &mut [u8]) {
    let outcome = channel.process_packet(&NullPlatform, 7, request, scratch);
    black_box(outcome).ok();
}

/// The hand-written handler: the same frame checks as ferry's parser for a ping (length
/// bounds, header length = packet length, version, message type, nonce present), the response
/// built in place, then "completed".
#[inline(never)]
pub fn minimal_handler(request: &[u8], scratch: &mut [u8]) {
    let len = minimal_respond(request, scratch);
    black_box((7u64, scratch.get(..len)));
}

fn minimal_respond(request: &[u8], out: &mut [u8]) -> usize {
    const PING_REQUEST: u16 = 0x0002;
    const PING_RESPONSE: u16 = 0x8002;
    if request.len() > MAX_MESSAGE_LEN || request.len() < PING_OVERHEAD {
        return 0;
    }
    let Some((header, body)) = request.split_first_chunk::<16>() else {
        return 0;
    };
    let version = u16::from_le_bytes([header[0], header[1]]);
    let message_type = u16::from_le_bytes([header[2], header[3]]);
    let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if length as usize != request.len() || version != PROTOCOL_VERSION_1 {
        return 0;
    }
    if message_type != PING_REQUEST {
        return 0;
    }
    let Some(out) = out.get_mut(..request.len()) else {
        return 0;
    };
    let Some((out_header, out_body)) = out.split_first_chunk_mut::<16>() else {
        return 0;
    };
    out_header[..2].copy_from_slice(&version.to_le_bytes());
    out_header[2..4].copy_from_slice(&PING_RESPONSE.to_le_bytes());
    out_header[4..8].copy_from_slice(&length.to_le_bytes());
    out_header[8..].copy_from_slice(&header[8..]);
    // Nonce and data are echoed unchanged.
    out_body.copy_from_slice(body);
    request.len()
}

/// Checks that both handlers produce the same response bytes for `request`.
pub fn assert_same_response(channel: &BenchChannel, request: &[u8]) {
    let mut ferry = vec![0u8; MAX_MESSAGE_LEN];
    let mut minimal = vec![0u8; MAX_MESSAGE_LEN];
    ferry_once(channel, request, &mut ferry);
    let len = minimal_respond(request, &mut minimal);
    assert_eq!(len, request.len());
    assert_eq!(ferry[..len], minimal[..len], "the handlers disagree");
    let response = protocol::parse_response(&ferry[..len]).expect("ferry's response parses");
    assert_eq!(response.transaction_id, 0x1234_5678);
}
