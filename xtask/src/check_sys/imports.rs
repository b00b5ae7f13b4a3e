//! Which modules a kernel driver may import from.

/// The kernel-mode modules ferry may link against (compared case-insensitively, as the loader
/// does): the kernel and HAL, WFP's kernel client, the host VMBus KMCL library, NDIS and
/// NETIO.
pub const ALLOWED_MODULES: [&str; 6] = [
    "ntoskrnl.exe",
    "hal.dll",
    "fwpkclnt.sys",
    "vmbkmclr.sys",
    "ndis.sys",
    "netio.sys",
];

/// User-mode libraries that crates such as `windows-sys` attribute kernel-looking functions
/// to (`DbgPrint`, `Rtl*`, `Zw*` from `ntdll.dll`): an image importing one does not load.
const USER_MODE_MODULES: [&str; 2] = ["ntdll.dll", "msvcrt.dll"];

/// What the check makes of one imported module name.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// On the allow list.
    Allowed,
    /// A user-mode library: the driver would not load.
    UserMode,
    /// Anything else (including `ntoskrnl.exe.dll`, the name rustc writes when `raw-dylib`
    /// lacks `+verbatim`).
    NotAllowed,
}

/// Classifies an imported module name.
pub fn classify(module: &str) -> Verdict {
    let is = |name: &&str| module.eq_ignore_ascii_case(name);
    if ALLOWED_MODULES.iter().any(is) {
        Verdict::Allowed
    } else if USER_MODE_MODULES.iter().any(is) {
        Verdict::UserMode
    } else {
        Verdict::NotAllowed
    }
}

#[cfg(test)]
mod tests {
    use super::{ALLOWED_MODULES, Verdict, classify};

    #[test]
    fn every_kernel_module_on_the_list_is_allowed_in_any_case() {
        for name in ALLOWED_MODULES {
            assert_eq!(classify(name), Verdict::Allowed, "{name}");
            assert_eq!(classify(&name.to_uppercase()), Verdict::Allowed, "{name}");
        }
        assert_eq!(classify("NtosKrnl.Exe"), Verdict::Allowed);
    }

    #[test]
    fn user_mode_libraries_are_singled_out() {
        assert_eq!(classify("ntdll.dll"), Verdict::UserMode);
        assert_eq!(classify("NTDLL.DLL"), Verdict::UserMode);
        assert_eq!(classify("msvcrt.dll"), Verdict::UserMode);
    }

    #[test]
    fn near_misses_are_not_allowed() {
        for name in [
            "ntoskrnl.exe.dll", // raw-dylib without +verbatim
            "ntoskrnl",
            "vmbkmcl.sys", // the guest library, not the host one
            "fwpkclnt.lib",
            "kernel32.dll",
            "",
        ] {
            assert_eq!(classify(name), Verdict::NotAllowed, "{name:?}");
        }
    }
}
