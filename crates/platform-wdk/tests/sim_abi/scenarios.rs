//! Named scenarios through the C tables.

use crate::world::{Config, World};

fn config(seed: u64) -> Config {
    Config {
        seed,
        vms: 1,
        ports: 2,
        flows: 8,
        steps: 60,
        migrations: 0,
        hostile: false,
    }
}

#[test]
fn smoke() {
    let findings = World::new(Config { migrations: 2, ..config(7) }).run();
    assert!(findings.is_empty(), "{findings:#?}");
}
