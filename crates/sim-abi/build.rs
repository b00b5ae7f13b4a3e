//! Builds `c/dbgprint.c`: `DbgPrintEx` for the test binaries (see `src/nt/mod.rs`,
//! substitution 2).

fn main() {
    println!("cargo::rerun-if-changed=c/dbgprint.c");
    cc::Build::new()
        .file("c/dbgprint.c")
        .warnings(true)
        .compile("ferry_sim_abi_dbgprint");
}
