//! Host event sequences: the input becomes a world (`Setup`: VMs, NICs, flows, ack habits,
//! seed) and a sequence of KMCL and vSwitch events, guest actions, faults and migrations
//! (`world::steps::Action` of `ferry-platform-mock`), applied one by one to the simulated
//! host. After every step the invariants of `ferry-sim`'s report that hold at any instant are
//! checked; at the end the world settles (every guest open, every channel started, everything
//! in flight finished) and all nine are checked. A violation is a crash naming the step.
//!
//! With `FERRY_FUZZ_TRACE` set, each run prints the decoded sequence.

#![no_main]

use ferry_fuzz::host_sequence::decode;
use ferry_platform_mock::world::steps::run_sequence;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (setup, actions) = decode(data);
    if std::env::var_os("FERRY_FUZZ_TRACE").is_some() {
        eprintln!("{setup:?}");
        for (index, action) in actions.iter().enumerate() {
            eprintln!("{index:3}: {action:?}");
        }
    }
    if let Some((step, violations)) = run_sequence(&setup, &actions) {
        let action = actions
            .get(step)
            .map_or_else(|| "the final settle".to_string(), |a| format!("{a:?}"));
        panic!("step {step} ({action}) broke an invariant:\n{violations:#?}");
    }
});
