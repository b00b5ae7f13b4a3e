//! Whole scenarios: determinism, every fault on its own, a campaign of seeds, and property
//! tests over random scenarios (each a random operation sequence from the scheduler).

use ferry_platform_mock::faults::{Fault, FaultSet};
use ferry_platform_mock::world::{ScenarioConfig, run_scenario};
use proptest::prelude::*;

fn config(seed: u64) -> ScenarioConfig {
    ScenarioConfig {
        seed,
        packets: 150,
        ..ScenarioConfig::default()
    }
}

fn failures(report: &ferry_platform_mock::report::Report) -> Vec<String> {
    report
        .invariants
        .iter()
        .flat_map(|i| i.violations.iter().map(move |v| format!("{}: {v}", i.name)))
        .collect()
}

#[test]
fn the_same_seed_gives_a_byte_identical_deterministic_report() {
    let faults = FaultSet::all();
    let a = run_scenario(
        ScenarioConfig {
            faults: faults.clone(),
            trace: true,
            ..config(11)
        },
        true,
    );
    let b = run_scenario(
        ScenarioConfig {
            faults,
            trace: true,
            ..config(11)
        },
        true,
    );
    assert_eq!(a.0.render(), b.0.render());
    assert_eq!(
        serde_json::to_string(&a.0).unwrap(),
        serde_json::to_string(&b.0).unwrap()
    );
    assert_eq!(a.1, b.1, "the event logs differ");
    let c = run_scenario(config(12), true);
    assert_ne!(a.0.render(), c.0.render());
    assert!(a.0.phases.iter().all(|p| p.real_micros.is_none()));
    let timed = run_scenario(config(11), false);
    assert!(timed.0.phases.iter().all(|p| p.real_micros.is_some()));
}

#[test]
fn migrations_move_transactions_and_ports_and_every_invariant_holds() {
    let mut restored = 0;
    let mut moved_ports = 0;
    let mut completed = 0;
    for seed in 0..8 {
        let (report, _) = run_scenario(config(seed), true);
        assert!(report.passed(), "seed {seed}: {:?}", failures(&report));
        for m in report.migrations.iter().filter(|m| m.outcome == "ok") {
            restored += m.restored;
            // A transaction may move on with the VM before the guest completes it; the
            // exactly-once invariant covers it wherever it ends.
            assert!(
                m.completed_after_restore <= m.restored,
                "seed {seed}: more completions than restored"
            );
            completed += m.completed_after_restore;
            for (old, new) in &m.ports {
                assert_ne!(old, new, "a restored port kept its id");
                moved_ports += 1;
            }
            assert!(m.saved.kind2_ports > 0 && m.saved.kind3_session > 0);
        }
    }
    assert!(
        restored > 0,
        "no transaction was ever in flight at a migration"
    );
    assert!(moved_ports > 0);
    assert!(
        completed > 0,
        "no restored transaction was completed on its destination"
    );
}

#[test]
fn each_fault_alone_is_injected_and_survived() {
    for fault in Fault::ALL {
        let mut injected = 0;
        for seed in 0..12 {
            let faults = FaultSet([fault].into_iter().collect());
            let (report, _) = run_scenario(
                ScenarioConfig {
                    faults,
                    migrations: 3,
                    ..config(seed)
                },
                true,
            );
            assert!(
                report.passed(),
                "{fault}, seed {seed}: {:?}",
                failures(&report)
            );
            injected += report
                .totals
                .faults_injected
                .get(fault.name())
                .copied()
                .unwrap_or(0);
            if fault.corrupts_blobs() {
                for m in &report.migrations {
                    if m.fault.is_some() {
                        assert!(
                            m.outcome.starts_with("aborted"),
                            "{fault}, seed {seed}: corrupted migration {}",
                            m.outcome
                        );
                    }
                }
            }
        }
        assert!(injected > 0, "{fault} was never injected");
    }
}

#[test]
fn a_campaign_of_300_seeds_finds_no_violation() {
    let mut bad = Vec::new();
    for seed in 0..300 {
        let config = ScenarioConfig::random(seed, 25);
        let (report, _) = run_scenario(config.clone(), true);
        if !report.passed() {
            bad.push((config.replay_command(), failures(&report)));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_scenarios_keep_every_invariant(
        seed in any::<u64>(),
        vms in 1u32..5,
        ports in 1u32..3,
        flows in 1u32..40,
        packets in 10u64..160,
        migrations in 0u32..4,
        fault_bits in any::<u16>(),
    ) {
        let faults = FaultSet(Fault::ALL.into_iter().enumerate().filter(|(i, _)| fault_bits & (1 << i) != 0).map(|(_, f)| f).collect());
        let config = ScenarioConfig { seed, vms, ports, flows, packets, migrations, faults, trace: false };
        let (report, _) = run_scenario(config.clone(), true);
        prop_assert!(report.passed(), "{}: {:?}", config.replay_command(), failures(&report));
    }
}
