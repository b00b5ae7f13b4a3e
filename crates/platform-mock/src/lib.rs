//! ferry-platform-mock: a simulated Hyper-V host for ferry (skeleton).
//!
//! **Not built yet** (tracked by the simulated-host issue). This crate will hold a faithful,
//! deterministic simulation of the host ferry runs on: KMCL server channels (offer, guest
//! open/close, Started/PostStarted, batched ProcessPacket with ProcessingComplete, the
//! transaction quota, Pause/Disable/Suspend, the two-call SavePacket protocol, chunked channel
//! save and RestoreFromBuffer/RestorePacket), the WFP vSwitch event engine (port events,
//! runtime-state save that may pend, restore under a new port id), guest agents speaking the
//! service protocol, live migration between simulated hosts with only bytes crossing, fault
//! injection, and the `ferry-sim` binary that runs it all from a seed.
//!
//! Until then, core's own unit tests exercise core through a recording platform.
