//! The flow key of an Ethernet frame: the IPv4/IPv6 5-tuple core's port table counts flows
//! by, read from the frame's first bytes. The bytes are the guest's: hostile, possibly
//! truncated, possibly not IP at all. Every read is bounds-checked and any frame ferry cannot
//! key is a typed [`FrameError`] (the callout counts it and lets it through).
//!
//! What is parsed:
//!
//! * Ethernet II header; one 802.1Q / 802.1ad tag is skipped (the Hyper-V switch normally
//!   carries the VLAN out of band, but a trunk port may pass tagged frames).
//! * IPv4 (any header length 20..=60); IPv6 fixed header. No IPv6 extension-header walk: a
//!   packet whose next header is not TCP/UDP is keyed with ports 0 under that next header.
//! * TCP and UDP ports. Other protocols (ICMP, ...) and non-first IPv4 fragments get ports 0.

use ferry_core::port::FlowKey;

/// Bytes of a frame the parser may look at: Ethernet (14) + one VLAN tag (4) + the longest
/// IPv4 header (60) + the two ports (4) = 82, rounded up. The classify path asks
/// `NdisGetDataBuffer` for at most this many bytes.
pub const FRAME_PREFIX: usize = 96;

const ETHERNET_HEADER: usize = 14;
const ETHER_TYPE_IPV4: u16 = 0x0800;
const ETHER_TYPE_IPV6: u16 = 0x86DD;
const ETHER_TYPE_VLAN: u16 = 0x8100;
const ETHER_TYPE_QINQ: u16 = 0x88A8;
const IPV6_HEADER: usize = 40;
const PROTOCOL_TCP: u8 = 6;
const PROTOCOL_UDP: u8 = 17;

/// Why a frame has no flow key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the headers it announces.
    Truncated,
    /// An Ethernet type ferry does not key (ARP, LLDP, ...): the value.
    NotIp(u16),
    /// An IP header whose version or header length is impossible.
    BadIpHeader,
}

/// The 5-tuple of the frame whose first bytes are `frame` (at most [`FRAME_PREFIX`] are
/// looked at).
///
/// # Errors
///
/// [`FrameError`] for a frame that is not IPv4/IPv6 or whose headers do not fit.
pub fn flow_key(frame: &[u8]) -> Result<FlowKey, FrameError> {
    let (ether_type, ip) = ethernet_payload(frame)?;
    match ether_type {
        ETHER_TYPE_IPV4 => ipv4_key(ip),
        ETHER_TYPE_IPV6 => ipv6_key(ip),
        other => Err(FrameError::NotIp(other)),
    }
}

fn be16(bytes: &[u8], at: usize) -> Result<u16, FrameError> {
    match bytes.get(at..) {
        Some([high, low, ..]) => Ok(u16::from_be_bytes([*high, *low])),
        _ => Err(FrameError::Truncated),
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], FrameError> {
    bytes
        .get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .ok_or(FrameError::Truncated)
}

/// The (inner) Ethernet type and the bytes after the Ethernet header and its tag.
fn ethernet_payload(frame: &[u8]) -> Result<(u16, &[u8]), FrameError> {
    let ether_type = be16(frame, 12)?;
    if ether_type == ETHER_TYPE_VLAN || ether_type == ETHER_TYPE_QINQ {
        // Tag control at 14..16, the encapsulated type at 16..18.
        let inner = be16(frame, 16)?;
        let payload = frame
            .get(ETHERNET_HEADER.saturating_add(4)..)
            .ok_or(FrameError::Truncated)?;
        return Ok((inner, payload));
    }
    let payload = frame.get(ETHERNET_HEADER..).ok_or(FrameError::Truncated)?;
    Ok((ether_type, payload))
}

/// Source and destination port at the start of `l4`, for TCP and UDP; 0 and 0 otherwise.
fn ports(protocol: u8, l4: &[u8]) -> Result<(u16, u16), FrameError> {
    if protocol == PROTOCOL_TCP || protocol == PROTOCOL_UDP {
        Ok((be16(l4, 0)?, be16(l4, 2)?))
    } else {
        Ok((0, 0))
    }
}

fn ipv4_key(ip: &[u8]) -> Result<FlowKey, FrameError> {
    let first = *ip.first().ok_or(FrameError::Truncated)?;
    if first >> 4 != 4 {
        return Err(FrameError::BadIpHeader);
    }
    let header_len = usize::from(first & 0x0F).saturating_mul(4);
    if header_len < 20 {
        return Err(FrameError::BadIpHeader);
    }
    let header = ip.get(..header_len).ok_or(FrameError::Truncated)?;
    let fragment_offset = be16(header, 6)? & 0x1FFF;
    let protocol = *header.get(9).ok_or(FrameError::Truncated)?;
    let source = array::<4>(header, 12)?;
    let destination = array::<4>(header, 16)?;
    let (source_port, destination_port) = if fragment_offset == 0 {
        let l4 = ip.get(header_len..).ok_or(FrameError::Truncated)?;
        ports(protocol, l4)?
    } else {
        (0, 0)
    };
    Ok(FlowKey::v4(
        source,
        destination,
        source_port,
        destination_port,
        protocol,
    ))
}

fn ipv6_key(ip: &[u8]) -> Result<FlowKey, FrameError> {
    let first = *ip.first().ok_or(FrameError::Truncated)?;
    if first >> 4 != 6 {
        return Err(FrameError::BadIpHeader);
    }
    let next_header = *ip.get(6).ok_or(FrameError::Truncated)?;
    let source = array::<16>(ip, 8)?;
    let destination = array::<16>(ip, 24)?;
    let l4 = ip.get(IPV6_HEADER..).ok_or(FrameError::Truncated)?;
    let (source_port, destination_port) = ports(next_header, l4)?;
    Ok(FlowKey::v6(
        source,
        destination,
        source_port,
        destination_port,
        next_header,
    ))
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use ferry_core::port::{AddressFamily, FlowKey};
    use proptest::prelude::*;

    use super::{FRAME_PREFIX, FrameError, flow_key};

    fn ethernet(ether_type: u16) -> Vec<u8> {
        let mut frame = std::vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        frame.extend_from_slice(&ether_type.to_be_bytes());
        frame
    }

    fn ipv4(protocol: u8, ihl: u8, fragment: u16, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut header = std::vec![0u8; usize::from(ihl) * 4];
        header[0] = 0x40 | ihl;
        header[6..8].copy_from_slice(&fragment.to_be_bytes());
        header[9] = protocol;
        header[12..16].copy_from_slice(&src);
        header[16..20].copy_from_slice(&dst);
        header
    }

    fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
        let mut header = std::vec![0u8; 40];
        header[0] = 0x60;
        header[6] = next;
        header[8..24].copy_from_slice(&src);
        header[24..40].copy_from_slice(&dst);
        header
    }

    fn ports(source: u16, destination: u16) -> Vec<u8> {
        let mut l4 = source.to_be_bytes().to_vec();
        l4.extend_from_slice(&destination.to_be_bytes());
        l4.extend_from_slice(&[0; 16]);
        l4
    }

    #[test]
    fn tcp_over_ipv4_with_options_is_keyed_past_the_options() {
        let mut frame = ethernet(0x0800);
        frame.extend(ipv4(6, 7, 0, [10, 0, 0, 1], [10, 0, 0, 2]));
        frame.extend(ports(40000, 443));
        assert_eq!(
            flow_key(&frame),
            Ok(FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 443, 6))
        );
    }

    #[test]
    fn a_vlan_tag_is_skipped() {
        let mut frame = ethernet(0x8100);
        frame.extend_from_slice(&[0x00, 0x05, 0x86, 0xDD]);
        let (a, b) = ([1; 16], [2; 16]);
        frame.extend(ipv6(17, a, b));
        frame.extend(ports(53, 5353));
        assert_eq!(flow_key(&frame), Ok(FlowKey::v6(a, b, 53, 5353, 17)));
    }

    #[test]
    fn icmp_and_later_fragments_have_no_ports() {
        let mut icmp = ethernet(0x0800);
        icmp.extend(ipv4(1, 5, 0, [1, 1, 1, 1], [2, 2, 2, 2]));
        icmp.extend([8, 0, 0, 0]);
        assert_eq!(
            flow_key(&icmp),
            Ok(FlowKey::v4([1, 1, 1, 1], [2, 2, 2, 2], 0, 0, 1))
        );
        // A non-first fragment of a UDP datagram: its payload is not a UDP header.
        let mut fragment = ethernet(0x0800);
        fragment.extend(ipv4(17, 5, 185, [1, 1, 1, 1], [2, 2, 2, 2]));
        fragment.extend(ports(1111, 2222));
        assert_eq!(
            flow_key(&fragment),
            Ok(FlowKey::v4([1, 1, 1, 1], [2, 2, 2, 2], 0, 0, 17))
        );
    }

    #[test]
    fn non_ip_and_broken_headers_are_refused_by_kind() {
        let mut arp = ethernet(0x0806);
        arp.extend([0; 28]);
        assert_eq!(flow_key(&arp), Err(FrameError::NotIp(0x0806)));
        let mut short_ihl = ethernet(0x0800);
        short_ihl.extend(ipv4(6, 5, 0, [1; 4], [2; 4]));
        short_ihl[14] = 0x44;
        assert_eq!(flow_key(&short_ihl), Err(FrameError::BadIpHeader));
        let mut wrong_version = ethernet(0x86DD);
        wrong_version.extend(ipv4(6, 5, 0, [1; 4], [2; 4]));
        assert_eq!(flow_key(&wrong_version), Err(FrameError::BadIpHeader));
        let mut no_ports = ethernet(0x0800);
        no_ports.extend(ipv4(6, 5, 0, [1; 4], [2; 4]));
        no_ports.extend([0, 80]);
        assert_eq!(flow_key(&no_ports), Err(FrameError::Truncated));
        assert_eq!(flow_key(&[]), Err(FrameError::Truncated));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..FRAME_PREFIX)) {
            let _ = flow_key(&bytes);
        }

        #[test]
        fn every_ipv4_tcp_udp_frame_round_trips(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            sport in any::<u16>(),
            dport in any::<u16>(),
            udp in any::<bool>(),
            ihl in 5u8..=15,
        ) {
            let protocol = if udp { 17 } else { 6 };
            let mut frame = ethernet(0x0800);
            frame.extend(ipv4(protocol, ihl, 0, src, dst));
            frame.extend(ports(sport, dport));
            let key = flow_key(&frame).unwrap();
            prop_assert_eq!(key, FlowKey::v4(src, dst, sport, dport, protocol));
            prop_assert_eq!(key.family(), AddressFamily::V4);
            // Every prefix shorter than the headers is refused, never misread.
            let needed = 14 + usize::from(ihl) * 4 + 4;
            for cut in 0..needed {
                prop_assert!(flow_key(&frame[..cut]).is_err());
            }
        }
    }
}
