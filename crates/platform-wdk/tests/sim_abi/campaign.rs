//! Seeded random scenarios through the C tables: every seed's scenario (VMs, NICs, traffic,
//! a suspend, up to three live migrations with random pended port saves and damaged
//! transfers, hostile requests, guest crashes, unload) must end without a finding. A failing
//! seed replays with `Config::random(seed)`.

use crate::world::{Config, Summary, World};

/// Seeds run by `cargo test` (`SIM_ABI_SEEDS` overrides, e.g. for a longer run).
fn seeds() -> u64 {
    std::env::var("SIM_ABI_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

#[test]
fn random_scenarios_keep_every_invariant() {
    let mut failures = Vec::new();
    let mut total = Summary::default();
    for seed in 0..seeds() {
        let config = Config::random(seed);
        let summary = World::new(config.clone()).run();
        total.migrations += summary.migrations;
        total.refused += summary.refused;
        total.pended_port_saves += summary.pended_port_saves;
        total.restored += summary.restored;
        total.crashes += summary.crashes;
        total.malformed_refused += summary.malformed_refused;
        if !summary.findings.is_empty() {
            failures.push((config, summary.findings));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing seeds, first: {:#?}",
        failures.len(),
        failures.first()
    );
    eprintln!("sim_abi campaign, {} seeds: {total:?}", seeds());
    // The campaign exercised what it claims to.
    assert!(
        total.migrations > 0
            && total.refused > 0
            && total.pended_port_saves > 0
            && total.restored > 0
            && total.crashes > 0
            && total.malformed_refused > 0,
        "{total:?}"
    );
}
