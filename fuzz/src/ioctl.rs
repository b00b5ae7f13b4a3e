//! The `ioctl_request` target's framing and its oracle: a second reading of the control
//! device's input layouts, written from the tables in the docs of
//! `ferry_platform_wdk::control::request` (not from its code), that the fuzz target holds
//! `parse_request` to.

use ferry_platform_wdk::control::request::{
    ControlRequest, IOCTL_CODES, IOCTL_FERRY_OFFER_CHANNEL, IOCTL_FERRY_OFFER_LOOPBACK,
    IOCTL_FERRY_READ_PORT_STATS, IOCTL_FERRY_RESTORE_CHANNEL,
};

/// One fuzz input as an IOCTL: byte 0 picks one of ferry's eight codes, or (value 8 modulo 9)
/// takes the code from the next four bytes; the rest is the input buffer.
pub fn split(data: &[u8]) -> Option<(u32, &[u8])> {
    let (&selector, rest) = data.split_first()?;
    match IOCTL_CODES.get(usize::from(selector % 9)) {
        Some(&code) => Some((code, rest)),
        None => {
            let (code, input) = rest.split_first_chunk::<4>()?;
            Some((u32::from_le_bytes(*code), input))
        }
    }
}

/// What the documented layouts say a request must be read as; `None`: refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Expected {
    /// An offer (both codes).
    Offer {
        /// The flags word.
        flags: u32,
        /// The handle (`None` for loopback).
        handle: Option<u64>,
        /// Interface type, instance, NIC identity (`None` when all zero).
        guids: ([u8; 16], [u8; 16], Option<[u8; 16]>),
        /// The maximum packet size.
        maximum_packet_size: u32,
    },
    /// Port statistics of a NIC.
    Stats([u8; 16]),
    /// Save, close, pause or resume of a channel id.
    Channel(u32),
    /// A restore chunk: channel id, last, the session and KMCL parts as byte counts.
    Restore {
        /// The channel id.
        channel_id: u32,
        /// The last-chunk flag.
        last: bool,
        /// Bytes of session blob (`None` without the session flag).
        session_len: Option<usize>,
        /// Bytes of KMCL stream.
        kmcl_len: usize,
    },
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn guid_at(bytes: &[u8], at: usize) -> [u8; 16] {
    bytes[at..at + 16].try_into().unwrap()
}

/// The documented reading of IOCTL `code` with `input`.
pub fn expected(code: u32, input: &[u8]) -> Option<Expected> {
    // Every layout starts with the version, which must be 1.
    if input.len() < 4 || u32_at(input, 0) != 1 {
        return None;
    }
    let offer = code == IOCTL_FERRY_OFFER_CHANNEL || code == IOCTL_FERRY_OFFER_LOOPBACK;
    if offer {
        // 72 bytes: version, flags, handle u64, three GUIDs, max packet size, reserved.
        if input.len() != 72 || u32_at(input, 68) != 0 {
            return None;
        }
        let flags = u32_at(input, 4);
        if flags & !0x3 != 0 {
            return None;
        }
        let handle = u64::from_le_bytes(input[8..16].try_into().unwrap());
        let loopback = code == IOCTL_FERRY_OFFER_LOOPBACK;
        if loopback != (handle == 0) {
            return None;
        }
        let (interface_type, interface_instance) = (guid_at(input, 16), guid_at(input, 32));
        if interface_type == [0; 16] || interface_instance == [0; 16] {
            return None;
        }
        let nic = guid_at(input, 48);
        let maximum_packet_size = u32_at(input, 64);
        // From the service protocol's header length (16 bytes) up to 64 KiB.
        if !(16..=64 * 1024).contains(&maximum_packet_size) {
            return None;
        }
        return Some(Expected::Offer {
            flags,
            handle: (!loopback).then_some(handle),
            guids: (
                interface_type,
                interface_instance,
                (nic != [0; 16]).then_some(nic),
            ),
            maximum_packet_size,
        });
    }
    if code == IOCTL_FERRY_READ_PORT_STATS {
        // 24 bytes: version, reserved, NIC identity.
        return (input.len() == 24 && u32_at(input, 4) == 0)
            .then(|| Expected::Stats(guid_at(input, 8)));
    }
    if code == IOCTL_FERRY_RESTORE_CHANNEL {
        // 16-byte header (version, channel id, flags, session_len), then at most 1 MiB.
        if input.len() < 16 {
            return None;
        }
        let (channel_id, flags) = (u32_at(input, 4), u32_at(input, 8));
        let session_len = u32_at(input, 12) as usize;
        let chunk = input.len() - 16;
        if flags & !0x3 != 0 || chunk > 1024 * 1024 {
            return None;
        }
        let session_len = if flags & 0x1 != 0 {
            if session_len == 0 || session_len > chunk {
                return None;
            }
            Some(session_len)
        } else if session_len != 0 {
            return None;
        } else {
            None
        };
        return Some(Expected::Restore {
            channel_id,
            last: flags & 0x2 != 0,
            session_len,
            kmcl_len: chunk - session_len.unwrap_or(0),
        });
    }
    if IOCTL_CODES.contains(&code) {
        // Save, close, pause, resume: 8 bytes, version and channel id.
        return (input.len() == 8).then(|| Expected::Channel(u32_at(input, 4)));
    }
    None
}

/// `parse_request`'s result in the oracle's terms, checking that the restore's parts are the
/// input's own bytes at the documented places.
pub fn observed(input: &[u8], request: &ControlRequest<'_>) -> Expected {
    match request {
        ControlRequest::Offer(offer) => Expected::Offer {
            flags: offer.flags,
            handle: offer.vmbus_handle,
            guids: (
                offer.interface_type,
                offer.interface_instance,
                offer.nic_identity.map(|nic| nic.0),
            ),
            maximum_packet_size: offer.maximum_packet_size,
        },
        ControlRequest::ReadPortStats(stats) => Expected::Stats(stats.nic_identity.0),
        ControlRequest::Save(channel)
        | ControlRequest::Close(channel)
        | ControlRequest::Pause(channel)
        | ControlRequest::Resume(channel) => Expected::Channel(channel.channel_id),
        ControlRequest::Restore(restore) => {
            let session_len = restore.session.map(<[u8]>::len);
            let start = 16 + session_len.unwrap_or(0);
            if let Some(session) = restore.session {
                assert_eq!(
                    session,
                    &input[16..start],
                    "session is not the chunk's start"
                );
            }
            assert_eq!(
                restore.kmcl,
                &input[start..],
                "KMCL part is not the chunk's rest"
            );
            Expected::Restore {
                channel_id: restore.channel_id,
                last: restore.last,
                session_len,
                kmcl_len: restore.kmcl.len(),
            }
        }
    }
}

/// Valid requests of every code, for the seed corpus and the oracle's own test.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let offer = |handle: u64| {
        let mut input = vec![0u8; 72];
        input[0] = 1;
        input[4] = 0x2;
        input[8..16].copy_from_slice(&handle.to_le_bytes());
        input[16..32].fill(0x11);
        input[32..48].fill(0x22);
        input[48..64].fill(0x33);
        input[64..68].copy_from_slice(&4096u32.to_le_bytes());
        input
    };
    let framed = |selector: u8, input: Vec<u8>| [vec![selector], input].concat();
    seeds.push(("offer".into(), framed(0, offer(0x1234))));
    seeds.push(("offer-loopback".into(), framed(1, offer(0))));
    let mut stats = vec![0u8; 24];
    stats[0] = 1;
    stats[8..24].fill(0x33);
    seeds.push(("port-stats".into(), framed(2, stats)));
    let channel = [1u8, 0, 0, 0, 7, 0, 0, 0].to_vec();
    for (selector, name) in [(3, "save"), (5, "close"), (6, "pause"), (7, "resume")] {
        seeds.push((name.into(), framed(selector, channel.clone())));
    }
    let mut restore = vec![1u8, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0];
    restore.extend_from_slice(b"sessKMCL-stream");
    seeds.push(("restore".into(), framed(4, restore)));
    let raw_code = [&[8u8][..], &0x0022_0000u32.to_le_bytes(), &channel].concat();
    seeds.push(("foreign-code".into(), raw_code));
    seeds
}

#[cfg(test)]
mod tests {
    use super::{expected, observed, seeds, split};
    use ferry_platform_wdk::control::request::parse_request;

    #[test]
    fn every_seed_is_read_alike_by_the_parser_and_the_oracle() {
        let mut accepted = 0;
        for (name, data) in seeds() {
            let (code, input) = split(&data).unwrap();
            let parsed = parse_request(code, input).ok();
            let oracle = expected(code, input);
            assert_eq!(parsed.map(|r| observed(input, &r)), oracle, "seed {name}");
            accepted += usize::from(oracle.is_some());
        }
        // All but the foreign code are valid requests.
        assert_eq!(accepted, seeds().len() - 1);
    }

    #[test]
    fn the_oracle_refuses_what_the_layout_forbids() {
        let (_, data) = seeds().into_iter().find(|(n, _)| n == "offer").unwrap();
        let (code, input) = split(&data).unwrap();
        let mut reserved = input.to_vec();
        reserved[68] = 1;
        assert_eq!(expected(code, &reserved), None);
        let mut version = input.to_vec();
        version[0] = 2;
        assert_eq!(expected(code, &version), None);
        assert_eq!(expected(code, &input[..71]), None);
    }
}
