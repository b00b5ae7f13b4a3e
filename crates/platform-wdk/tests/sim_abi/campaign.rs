//! Seeded random scenarios through the C tables: every seed's scenario (VMs, NICs, traffic,
//! a suspend, up to three live migrations with random pended port saves, hostile requests,
//! unload) must end without a finding. A failing seed replays with `Config::random(seed)`.

use crate::world::{Config, World};

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
    let mut migrated = 0;
    for seed in 0..seeds() {
        let config = Config::random(seed);
        let world = World::new(config.clone());
        let (findings, migrations) = world.run();
        migrated += migrations;
        if !findings.is_empty() {
            failures.push((config, findings));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing seeds, first: {:#?}",
        failures.len(),
        failures.first()
    );
    assert!(migrated > 0, "the campaign migrated nothing");
}
