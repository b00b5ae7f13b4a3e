//! Who may open the control device: SYSTEM and the Administrators group, nobody else.
//!
//! A device made with `IoCreateDevice` gets the I/O manager's default security descriptor,
//! which lets Everyone read and write — and so send every IOCTL. `IoCreateDeviceSecure` would
//! take an SDDL string, but it lives in `wdmsec.lib`, a static library this build (no WDK,
//! `/NODEFAULTLIB`) does not have; and the INF's `Security` setting applies to PnP devices of a
//! setup class, not to a legacy driver's control device. So the driver applies this
//! descriptor itself right after `IoCreateDevice` (`ObSetSecurityObjectByPointer` with
//! `DACL_SECURITY_INFORMATION`), before the symbolic link exists.
//!
//! The descriptor is `D:P(A;;FA;;;SY)(A;;FA;;;BA)` in SDDL, written out in its binary,
//! self-relative form (`winnt.h`: `SECURITY_DESCRIPTOR_RELATIVE`, `ACL`, `ACCESS_ALLOWED_ACE`,
//! `SID`) — standard Windows layouts, not from `shared/reference/`. VM worker processes run as
//! per-VM virtual accounts (group "NT VIRTUAL MACHINE\Virtual Machines", `S-1-5-83-0`) and are
//! therefore **not** let in: granting them is a deliberate decision for whoever integrates
//! ferry with the VM worker (add an ACE here).

/// `DACL_SECURITY_INFORMATION` (`winnt.h`).
pub const DACL_SECURITY_INFORMATION: u32 = 0x0000_0004;
/// `FILE_ALL_ACCESS` (`winnt.h`): the explicit rights, so that no generic mapping is involved.
pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;

/// Length of [`DEVICE_SECURITY_DESCRIPTOR`].
pub const DEVICE_SECURITY_DESCRIPTOR_LEN: usize = 72;

/// A self-relative security descriptor, aligned as Windows reads it (its fields are `ULONG`s).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct SecurityDescriptor(pub [u8; DEVICE_SECURITY_DESCRIPTOR_LEN]);

/// `D:P(A;;FA;;;SY)(A;;FA;;;BA)`, field by field (little-endian; a SID's 6-byte authority is
/// big-endian). The test below reads it back the way Windows does.
#[rustfmt::skip]
pub const DEVICE_SECURITY_DESCRIPTOR: SecurityDescriptor = SecurityDescriptor([
    // SECURITY_DESCRIPTOR_RELATIVE: Revision 1, Sbz1 0, Control 0x9004 =
    // SE_SELF_RELATIVE | SE_DACL_PROTECTED | SE_DACL_PRESENT.
    1, 0, 0x04, 0x90,
    // Owner, Group, Sacl: absent (offset 0).
    0, 0, 0, 0,   0, 0, 0, 0,   0, 0, 0, 0,
    // Dacl: at offset 20, right after this header.
    20, 0, 0, 0,
    // ACL: AclRevision 2, Sbz1 0, AclSize 52, AceCount 2, Sbz2 0.
    2, 0, 52, 0, 2, 0, 0, 0,
    // ACCESS_ALLOWED_ACE: AceType 0, AceFlags 0, AceSize 20, Mask FILE_ALL_ACCESS ...
    0, 0, 20, 0, 0xFF, 0x01, 0x1F, 0x00,
    // ... to S-1-5-18 (LocalSystem): Revision 1, 1 sub-authority, authority 5, RID 18.
    1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0,
    // ACCESS_ALLOWED_ACE: AceSize 24, Mask FILE_ALL_ACCESS ...
    0, 0, 24, 0, 0xFF, 0x01, 0x1F, 0x00,
    // ... to S-1-5-32-544 (BUILTIN\Administrators): 2 sub-authorities, 32 and 544.
    1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0,
]);

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;
    use std::string::String;
    use std::vec::Vec;

    use super::*;

    /// `ACL` header length: revision, sbz, size, ace count, sbz.
    const ACL_HEADER_LEN: usize = 8;

    fn u16_at(bytes: &[u8], at: usize) -> usize {
        usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    /// A SID in its string form, read the way Windows reads it.
    fn sid_string(sid: &[u8]) -> String {
        let count = usize::from(sid[1]);
        let authority = sid[2..8].iter().fold(0u64, |a, b| a << 8 | u64::from(*b));
        let mut text = format!("S-{}-{authority}", sid[0]);
        for n in 0..count {
            text.push_str(&format!("-{}", u32_at(sid, 8 + 4 * n)));
        }
        assert_eq!(sid.len(), 8 + 4 * count, "the SID fills its ACE");
        text
    }

    #[test]
    fn the_descriptor_grants_full_access_to_system_and_administrators_only() {
        let sd = &DEVICE_SECURITY_DESCRIPTOR.0;
        assert_eq!(sd[0], 1, "SECURITY_DESCRIPTOR_REVISION");
        assert_eq!(
            u16_at(sd, 2),
            0x9004,
            "DACL present, protected, self-relative"
        );
        assert_eq!((u32_at(sd, 4), u32_at(sd, 8), u32_at(sd, 12)), (0, 0, 0));
        let dacl = u32_at(sd, 16) as usize;
        let acl = &sd[dacl..];
        assert_eq!(acl[0], 2, "ACL_REVISION");
        assert_eq!(u16_at(acl, 2), acl.len(), "the ACL ends the descriptor");
        let count = u16_at(acl, 4);
        let mut at = ACL_HEADER_LEN;
        let mut grants = Vec::new();
        for _ in 0..count {
            let ace = &acl[at..at + u16_at(acl, at + 2)];
            assert_eq!(
                (ace[0], ace[1]),
                (0, 0),
                "ACCESS_ALLOWED, no inheritance flags"
            );
            grants.push((sid_string(&ace[8..]), u32_at(ace, 4)));
            at += ace.len();
        }
        assert_eq!(at, acl.len(), "the ACEs fill the ACL");
        assert_eq!(
            grants,
            [
                (String::from("S-1-5-18"), FILE_ALL_ACCESS),
                (String::from("S-1-5-32-544"), FILE_ALL_ACCESS)
            ]
        );
        assert_eq!(align_of::<SecurityDescriptor>(), 8);
    }
}
