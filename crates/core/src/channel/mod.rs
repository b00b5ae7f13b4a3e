//! The KMCL server channel.

pub mod state;
