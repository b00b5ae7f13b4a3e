//! The vocabulary of the port table: port ids and identities, flow keys, frames, verdicts and
//! the per-port configuration.

/// A Hyper-V extensible-switch port id (`NDIS_SWITCH_PORT_ID`, a `UINT32`).
///
/// Valid only on the host that assigned it: after a live migration the same VM NIC sits on a
/// port with a different id, so saved state never keys on it (`wfp-vswitch.md` §2.6, §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SwitchPortId(pub u32);

/// The stable identity of the VM NIC a port serves, supplied by the driver at port create
/// (for example a digest of the VM id and the NIC name).
///
/// Unlike [`SwitchPortId`] it is the same on every host, so a saved blob carries it and a
/// restore checks it: a blob saved for another VM's NIC is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortIdentity(pub [u8; 16]);

/// Which way a frame crosses the port, seen from the switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Entering the switch through this port: sent by the VM NIC.
    Ingress,
    /// Leaving the switch through this port: delivered to the VM NIC.
    Egress,
}

/// IPv4 or IPv6, as carried in a [`FlowKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AddressFamily {
    /// IPv4: the addresses use the low 32 bits of the `u128` fields.
    V4 = 4,
    /// IPv6: the addresses use all 128 bits.
    V6 = 6,
}

/// An IPv4 or IPv6 5-tuple: source and destination address and port, and the IP protocol.
///
/// Compact (addresses as big-endian `u128`, both ports in one `u32`) so that comparing two
/// keys is a handful of integer compares and hashing needs no byte loop. The caller decides
/// orientation: the two directions of one connection are two keys unless the caller
/// normalises them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    source: u128,
    destination: u128,
    /// Source port in the high 16 bits, destination port in the low 16 bits.
    ports: u32,
    protocol: u8,
    family: AddressFamily,
}

impl FlowKey {
    /// An IPv4 5-tuple (addresses in network byte order, as they appear in the header).
    #[must_use]
    pub const fn v4(
        source: [u8; 4],
        destination: [u8; 4],
        source_port: u16,
        destination_port: u16,
        protocol: u8,
    ) -> Self {
        Self {
            source: u32::from_be_bytes(source) as u128,
            destination: u32::from_be_bytes(destination) as u128,
            ports: pack_ports(source_port, destination_port),
            protocol,
            family: AddressFamily::V4,
        }
    }

    /// An IPv6 5-tuple (addresses in network byte order, as they appear in the header).
    #[must_use]
    pub const fn v6(
        source: [u8; 16],
        destination: [u8; 16],
        source_port: u16,
        destination_port: u16,
        protocol: u8,
    ) -> Self {
        Self {
            source: u128::from_be_bytes(source),
            destination: u128::from_be_bytes(destination),
            ports: pack_ports(source_port, destination_port),
            protocol,
            family: AddressFamily::V6,
        }
    }

    /// Rebuilds a key from its parts, refusing an IPv4 key whose addresses do not fit in 32
    /// bits (used when decoding saved state, where the parts are untrusted).
    #[must_use]
    pub const fn from_parts(
        family: AddressFamily,
        source: u128,
        destination: u128,
        source_port: u16,
        destination_port: u16,
        protocol: u8,
    ) -> Option<Self> {
        if matches!(family, AddressFamily::V4)
            && (source > u32::MAX as u128 || destination > u32::MAX as u128)
        {
            return None;
        }
        Some(Self {
            source,
            destination,
            ports: pack_ports(source_port, destination_port),
            protocol,
            family,
        })
    }

    /// IPv4 or IPv6.
    #[must_use]
    pub const fn family(&self) -> AddressFamily {
        self.family
    }

    /// The source address as a big-endian integer (IPv4 in the low 32 bits).
    #[must_use]
    pub const fn source(&self) -> u128 {
        self.source
    }

    /// The destination address as a big-endian integer (IPv4 in the low 32 bits).
    #[must_use]
    pub const fn destination(&self) -> u128 {
        self.destination
    }

    /// The source transport port.
    #[must_use]
    pub const fn source_port(&self) -> u16 {
        (self.ports >> 16) as u16
    }

    /// The destination transport port.
    #[must_use]
    pub const fn destination_port(&self) -> u16 {
        self.ports as u16
    }

    /// The IP protocol number (6 TCP, 17 UDP, ...).
    #[must_use]
    pub const fn protocol(&self) -> u8 {
        self.protocol
    }

    /// A cheap 64-bit hash of the key: xor-folds the fields into one word, then a
    /// multiply/xor-shift finaliser spreads every input bit over the high bits. No loops, no
    /// division; about twenty instructions.
    #[must_use]
    #[inline]
    pub const fn hash(&self) -> u64 {
        // Odd constants with well-mixed bits (the 64-bit golden ratio and two of its relatives).
        const K1: u64 = 0x9E37_79B9_7F4A_7C15;
        const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;
        const K3: u64 = 0x1656_67B1_9E37_79F9;
        let source = (self.source as u64) ^ ((self.source >> 64) as u64).rotate_left(23);
        let destination =
            (self.destination as u64) ^ ((self.destination >> 64) as u64).rotate_left(41);
        let rest = ((self.ports as u64) << 16) | ((self.protocol as u64) << 8) | self.family as u64;
        let mut h = source.wrapping_mul(K1) ^ destination.rotate_left(31) ^ rest.wrapping_mul(K2);
        h ^= h >> 29;
        h = h.wrapping_mul(K3);
        h ^= h >> 32;
        h
    }
}

const fn pack_ports(source_port: u16, destination_port: u16) -> u32 {
    ((source_port as u32) << 16) | destination_port as u32
}

/// What the classify path needs to know about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Which way the frame crosses the port.
    pub direction: Direction,
    /// The frame's 5-tuple.
    pub flow: FlowKey,
    /// The frame's length in bytes (a `NET_BUFFER`'s `DataLength` is a `ULONG`).
    pub length: u32,
}

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The direction's token bucket held fewer tokens than the frame's length.
    RateLimited,
}

/// The classify decision for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let the frame through.
    Permit,
    /// Drop the frame.
    Drop(DropReason),
}

/// A token-bucket rate limit for one direction of a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Sustained rate in bytes per second; `0` means unlimited (the bucket is not consulted).
    pub bytes_per_second: u64,
    /// Bucket depth in bytes: the most that may pass in one burst. Must be non-zero when the
    /// rate is limited, and a frame longer than the burst never passes.
    pub burst_bytes: u64,
}

impl RateLimit {
    /// No limit.
    pub const UNLIMITED: Self = Self {
        bytes_per_second: 0,
        burst_bytes: 0,
    };

    /// Whether this limit lets everything through.
    #[must_use]
    pub const fn is_unlimited(&self) -> bool {
        self.bytes_per_second == 0
    }

    /// Whether the configuration is usable: unlimited, or a rate with a non-zero burst.
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        self.is_unlimited() || self.burst_bytes != 0
    }
}

/// A port's configuration: one rate limit per direction.
///
/// Each direction has its own token bucket, so a VM flooding out cannot starve what it
/// receives and vice versa.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortConfig {
    /// Limit on frames the VM sends ([`Direction::Ingress`]).
    pub ingress: RateLimit,
    /// Limit on frames delivered to the VM ([`Direction::Egress`]).
    pub egress: RateLimit,
}

impl PortConfig {
    /// No limits in either direction.
    pub const UNLIMITED: Self = Self {
        ingress: RateLimit::UNLIMITED,
        egress: RateLimit::UNLIMITED,
    };

    /// Whether both directions' limits are usable ([`RateLimit::is_valid`]).
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        self.ingress.is_valid() && self.egress.is_valid()
    }
}

#[cfg(test)]
mod tests {
    use super::{AddressFamily, FlowKey};

    #[test]
    fn key_parts_round_trip() {
        let key = FlowKey::v4([10, 0, 0, 1], [192, 168, 1, 2], 4321, 80, 6);
        assert_eq!(key.source(), 0x0A00_0001);
        assert_eq!(key.destination(), 0xC0A8_0102);
        assert_eq!(key.source_port(), 4321);
        assert_eq!(key.destination_port(), 80);
        assert_eq!(key.protocol(), 6);
        let rebuilt = FlowKey::from_parts(
            key.family(),
            key.source(),
            key.destination(),
            key.source_port(),
            key.destination_port(),
            key.protocol(),
        );
        assert_eq!(rebuilt, Some(key));
    }

    #[test]
    fn v4_key_with_wide_address_is_refused() {
        assert_eq!(
            FlowKey::from_parts(AddressFamily::V4, 1 << 40, 0, 1, 2, 17),
            None
        );
        assert!(FlowKey::from_parts(AddressFamily::V6, 1 << 40, 0, 1, 2, 17).is_some());
    }

    #[test]
    fn v4_and_v6_keys_with_equal_numbers_differ() {
        let v4 = FlowKey::v4([0, 0, 0, 1], [0, 0, 0, 2], 1, 2, 17);
        let mut a = [0; 16];
        let mut b = [0; 16];
        a[15] = 1;
        b[15] = 2;
        let v6 = FlowKey::v6(a, b, 1, 2, 17);
        assert_ne!(v4, v6);
        assert_ne!(v4.hash(), v6.hash());
    }

    #[test]
    fn hash_spreads_neighbouring_keys_over_low_bits() {
        // Sequential source ports must not pile into a few buckets of a 64-slot table.
        let mut seen = [false; 64];
        for port in 0..64u16 {
            let key = FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], 1000 + port, 443, 6);
            let bucket = (key.hash() & 63) as usize;
            seen[bucket] = true;
        }
        let distinct = seen.iter().filter(|&&s| s).count();
        // A uniform hash fills about 40 of 64; a broken one (identity of the port) would
        // still fill 64, so also check that the high bits matter below.
        assert!(distinct >= 30, "only {distinct} buckets used");
        let a = FlowKey::v6([1; 16], [2; 16], 1, 2, 6);
        let mut src = [1; 16];
        src[0] = 0x81;
        let b = FlowKey::v6(src, [2; 16], 1, 2, 6);
        assert_ne!(a.hash() & 0xFF, b.hash() & 0xFF);
    }
}
