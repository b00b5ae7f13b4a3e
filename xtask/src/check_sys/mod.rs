//! `cargo xtask check-sys [PATH]`: static checks on a built `ferry.sys`.
//!
//! Nothing here loads the driver; each check reads the PE file (with the `object` crate) for a
//! property without which Windows would refuse or mis-load a kernel driver:
//!
//! | check | passes when |
//! |---|---|
//! | format | PE32+ |
//! | machine | AMD64 |
//! | subsystem | NATIVE (1) |
//! | entry point | the entry point is the exported `DriverEntry` |
//! | relocations | a non-empty base-relocation directory, relocations not stripped |
//! | checksum | the stored PE checksum is set and equals the one computed here |
//! | imports | every imported module is on the allow list (none from `ntdll`/`msvcrt`) |
//!
//! It prints one line per check and fails (exit 1) if any check fails.

mod checksum;
mod imports;

use std::fmt::Write as _;
use std::path::PathBuf;

use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ExportTarget, ImageNtHeaders, ImageOptionalHeader, Import, PeFile64};

use crate::workspace;

/// Options of `check-sys`.
#[derive(clap::Args)]
pub struct Args {
    /// The image to check (default: target/ferry/ferry.sys, where build-sys puts it).
    path: Option<PathBuf>,
}

/// Runs `check-sys`.
pub fn run(args: &Args) -> Result<(), String> {
    let path = args.path.clone().unwrap_or_else(workspace::sys_image);
    let shown = workspace::display(&path);
    let image = std::fs::read(&path).map_err(|e| {
        format!("cannot read {shown}: {e} (build it with `cargo xtask build-sys --release`)")
    })?;
    println!("check-sys: {shown} ({} bytes)", image.len());
    let checks = check_image(&image)?;
    for check in &checks {
        let mark = if check.passed { "ok  " } else { "FAIL" };
        println!("  {mark}  {:<12} {}", check.name, check.detail);
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    if failed == 0 {
        println!("check-sys: all {} checks passed", checks.len());
        Ok(())
    } else {
        Err(format!("{failed} of {} checks failed", checks.len()))
    }
}

/// The outcome of one check.
#[derive(Debug)]
pub struct Check {
    /// Short name.
    pub name: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, passed: bool, detail: String) -> Self {
        Self {
            name,
            passed,
            detail,
        }
    }
}

/// Runs every check on `image`.
///
/// # Errors
///
/// When `image` is not a 64-bit PE file at all, so that no other check can run.
pub fn check_image(image: &[u8]) -> Result<Vec<Check>, String> {
    match object::FileKind::parse(image) {
        Ok(object::FileKind::Pe64) => {}
        Ok(object::FileKind::Pe32) => return Err("a PE32 (32-bit) image, not PE32+".into()),
        Ok(other) => return Err(format!("not a PE image ({other:?})")),
        Err(e) => return Err(format!("not a PE image ({e})")),
    }
    let pe = PeFile64::parse(image).map_err(|e| format!("malformed PE32+ image: {e}"))?;
    let nt = pe.nt_headers();
    let optional = nt.optional_header();

    let mut checks = vec![Check::new("format", true, "PE32+".into())];

    let machine = nt.file_header().machine.get(LE);
    checks.push(Check::new(
        "machine",
        machine == pe::IMAGE_FILE_MACHINE_AMD64,
        named(machine.0, pe::IMAGE_FILE_MACHINE_AMD64.0, "AMD64"),
    ));

    let subsystem = optional.subsystem();
    checks.push(Check::new(
        "subsystem",
        subsystem == pe::IMAGE_SUBSYSTEM_NATIVE,
        named(subsystem.0, pe::IMAGE_SUBSYSTEM_NATIVE.0, "NATIVE"),
    ));

    checks.push(entry_point_check(&pe, optional.address_of_entry_point()));
    checks.push(relocations_check(&pe));

    let field_offset = checksum_field_offset(&pe);
    let stored = optional.check_sum();
    let computed = checksum::pe_checksum(image, field_offset);
    let detail = format!("stored {stored:#010x}, computed {computed:#010x}");
    checks.push(if stored == 0 {
        Check::new(
            "checksum",
            false,
            format!("{detail}: not set (link with /RELEASE)"),
        )
    } else {
        Check::new("checksum", stored == computed, detail)
    });

    checks.push(imports_check(&pe));
    Ok(checks)
}

/// The entry point must be the address exported as `DriverEntry`.
fn entry_point_check(pe: &PeFile64<'_>, entry: u32) -> Check {
    let exports = match pe.export_table() {
        Ok(Some(table)) => table.exports(),
        Ok(None) => {
            return Check::new("entry point", false, format!("{entry:#x}; no export table"));
        }
        Err(e) => return Check::new("entry point", false, format!("bad export table: {e}")),
    };
    let exports = match exports {
        Ok(exports) => exports,
        Err(e) => return Check::new("entry point", false, format!("bad export table: {e}")),
    };
    let names: Vec<String> = exports
        .iter()
        .map(|e| e.name.map_or_else(|| format!("#{}", e.ordinal.0), lossy))
        .collect();
    let driver_entry = exports.iter().find_map(|e| match (e.name, e.target) {
        (Some(b"DriverEntry"), ExportTarget::Address(address)) => Some(address),
        _ => None,
    });
    let listed = names.join(", ");
    match driver_entry {
        Some(address) if address == entry => Check::new(
            "entry point",
            true,
            format!("{entry:#x} = exported DriverEntry (exports: {listed})"),
        ),
        Some(address) => Check::new(
            "entry point",
            false,
            format!("{entry:#x}, but DriverEntry is exported at {address:#x}"),
        ),
        None => Check::new(
            "entry point",
            false,
            format!("{entry:#x}; no DriverEntry export (exports: {listed})"),
        ),
    }
}

/// A driver is loaded at an address chosen by the kernel: it needs base relocations.
fn relocations_check(pe: &PeFile64<'_>) -> Check {
    let stripped = pe.nt_headers().file_header().characteristics.get(LE).0
        & pe::IMAGE_FILE_RELOCS_STRIPPED.0
        != 0;
    let size = pe
        .data_directory(pe::IMAGE_DIRECTORY_ENTRY_BASERELOC)
        .map_or(0, |d| d.size.get(LE));
    let entries = count_relocations(pe);
    let detail = format!(
        "{entries} entries, directory {size} bytes{}",
        if stripped {
            ", RELOCS_STRIPPED set"
        } else {
            ""
        }
    );
    Check::new("relocations", size > 0 && entries > 0 && !stripped, detail)
}

fn count_relocations(pe: &PeFile64<'_>) -> usize {
    let sections = pe.section_table();
    let Ok(Some(mut blocks)) = pe
        .data_directories()
        .relocation_blocks(pe.data(), &sections)
    else {
        return 0;
    };
    let mut count = 0;
    while let Ok(Some(block)) = blocks.next() {
        // Type-0 (IMAGE_REL_BASED_ABSOLUTE) entries are padding.
        count += block
            .filter(|r| r.typ != pe::IMAGE_REL_BASED_ABSOLUTE)
            .count();
    }
    count
}

/// Byte offset of `OptionalHeader.CheckSum` in the file.
fn checksum_field_offset(pe: &PeFile64<'_>) -> usize {
    let nt_headers = pe.dos_header().nt_headers_offset() as usize;
    nt_headers
        + size_of::<u32>() // "PE\0\0"
        + pe::IMAGE_SIZEOF_FILE_HEADER
        + std::mem::offset_of!(pe::ImageOptionalHeader64, check_sum)
}

/// Every imported module must be on the allow list.
fn imports_check(pe: &PeFile64<'_>) -> Check {
    let table = match pe.import_table() {
        Ok(Some(table)) => table,
        Ok(None) => return Check::new("imports", true, "none".into()),
        Err(e) => return Check::new("imports", false, format!("bad import table: {e}")),
    };
    let descriptors = match table.descriptors() {
        Ok(descriptors) => descriptors,
        Err(e) => return Check::new("imports", false, format!("bad import table: {e}")),
    };
    let mut passed = true;
    let mut detail = String::new();
    for descriptor in descriptors {
        let descriptor = match descriptor {
            Ok(descriptor) => descriptor,
            Err(e) => return Check::new("imports", false, format!("bad import descriptor: {e}")),
        };
        let module = match table.name(descriptor.name.get(LE)) {
            Ok(name) => lossy(name),
            Err(e) => return Check::new("imports", false, format!("bad module name: {e}")),
        };
        let functions = imported_functions(&table, descriptor).join(", ");
        let verdict = match imports::classify(&module) {
            imports::Verdict::Allowed => "",
            imports::Verdict::UserMode => " <- user-mode library: the driver would not load",
            imports::Verdict::NotAllowed => " <- not on the allow list",
        };
        passed &= verdict.is_empty();
        let _ = write!(detail, "\n{:20}{module}: {functions}{verdict}", "");
    }
    Check::new("imports", passed, detail.trim_start().to_string())
}

fn imported_functions(
    table: &object::read::pe::ImportTable<'_>,
    descriptor: &pe::ImageImportDescriptor,
) -> Vec<String> {
    let Ok(mut thunks) = table.thunks(descriptor.original_first_thunk.get(LE)) else {
        return vec!["<unreadable>".into()];
    };
    let mut names = Vec::new();
    while let Ok(Some(thunk)) = thunks.next::<pe::ImageNtHeaders64>() {
        names.push(match table.import::<pe::ImageNtHeaders64>(thunk) {
            Ok(Import::Name(_, name)) => lossy(name),
            Ok(Import::Ordinal(ordinal)) => format!("#{ordinal}"),
            Err(_) => "<unreadable>".into(),
        });
    }
    names
}

/// `"NAME (0xVALUE)"` when `value` is the expected one, else just the value.
fn named(value: u16, expected: u16, name: &str) -> String {
    if value == expected {
        format!("{name} ({value:#x})")
    } else {
        format!("{value:#x} (expected {name}, {expected:#x})")
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::check_image;

    #[test]
    fn a_file_that_is_not_pe_is_refused_up_front() {
        let error = check_image(b"\x7fELF\x02\x01\x01\0not a driver").unwrap_err();
        assert!(error.contains("not a PE image"), "{error}");
        assert!(check_image(b"").is_err());
    }
}
