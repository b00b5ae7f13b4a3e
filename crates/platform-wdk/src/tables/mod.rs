//! The function tables through which ferry reaches KMCL and WFP.
//!
//! Each table is a struct of non-null `extern "system"` function pointers with Rust names. In
//! `ferry.sys` the tables are filled from the real imports; in host tests from a fake
//! (`tests/abi/`) or from the simulated host's C-ABI functions (`tests/sim_abi/`). The code that calls through a table is the same
//! in both, which is the point: the ABI the driver uses is the ABI the tests exercise.

mod kmcl;
mod wfp;

pub use kmcl::{KmclTable, MissingKmclFunction};
pub use wfp::WfpTable;
