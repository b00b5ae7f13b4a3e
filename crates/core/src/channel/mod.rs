//! The KMCL server channel.

pub mod incoming;
pub mod outgoing;
pub mod slab;
pub mod state;
