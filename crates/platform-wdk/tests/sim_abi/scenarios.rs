//! Named scenarios through the C tables: set-up order, traffic, suspend, live migration (with
//! a pended port save, and around three hosts), unload with VMs running.

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
        crashes: false,
        corrupt: false,
    }
}

/// Drains, checks, unloads; asserts no finding.
fn finish(mut world: World) {
    world.drain();
    world.check();
    world.unload();
    assert!(world.findings.is_empty(), "{:#?}", world.findings);
}

#[test]
fn the_offer_follows_the_real_host_set_up_order() {
    let world = World::new(config(1));
    let channel = world.vms[0].channel;
    let calls = {
        let channels = world.hosts[0].abi.channels.borrow();
        let id =
            crate::sim_host::decode(0, crate::sim_host::Tag::Channel, channel.as_raw()).unwrap();
        channels[&id].calls.clone()
    };
    let at = |name: &str| {
        calls
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("{name} not called: {calls:?}"))
    };
    assert_eq!(calls[0], "VmbChannelAllocate");
    let enable = at("VmbChannelEnable");
    // kmcl.md §1.9: every Init call between Allocate and Enable, then Enable and Start.
    for init in [
        "VmbServerChannelInitSetVmbusHandle",
        "VmbChannelInitSetMaximumPacketSize",
        "VmbChannelSetPointer",
        "VmbServerChannelInitSetTargetInterfaceId",
        "VmbChannelInitSetStateChangeCallbacks",
        "VmbChannelInitSetProcessPacketCallbacks",
        "VmbServerChannelInitSetSaveRestorePacketCallbacks",
        "VmbChannelSetTransactionQuota",
    ] {
        assert!(at(init) < enable, "{init} after Enable: {calls:?}");
    }
    assert_eq!(calls[enable + 1], "VmbChannelStart", "{calls:?}");
    // The context pointer is in place before any callback can be registered.
    assert!(at("VmbChannelSetPointer") < at("VmbChannelInitSetProcessPacketCallbacks"));
    assert!(at("VmbChannelSetPointer") < at("VmbChannelInitSetStateChangeCallbacks"));
    finish(world);
}

#[test]
fn guest_requests_are_answered_exactly_once_through_process_packet() {
    let mut world = World::new(Config {
        hostile: true,
        ..config(2)
    });
    world.traffic(300);
    world.drain();
    let counts = world.counts(0);
    let guest = &world.vms[0].guest.ledger;
    assert!(counts.process_packet > 20, "{counts:?}");
    assert_eq!(
        counts.process_packet,
        counts.packet_complete + counts.packet_fail
    );
    assert_eq!(guest.responses, guest.requests_sent);
    assert!(guest.notifications > 0 && counts.completion_routine == guest.acks_sent);
    finish(world);
}

#[test]
fn a_suspend_mid_traffic_stops_delivery_until_started_again() {
    let mut world = World::new(config(3));
    world.traffic(100);
    let before = world.counts(0).process_packet;
    world.suspend_resume(0);
    // The guest wrote while paused; those requests are delivered after Start.
    world.drain();
    assert!(world.counts(0).process_packet > before);
    finish(world);
}

#[test]
fn a_live_migration_with_a_pended_port_save_carries_transactions_and_port_state() {
    let mut world = World::new(config(4));
    world.traffic(120);
    assert!(world.migrate(0, Some(true)));
    let migration = world.migrations[0].clone();
    assert_eq!((migration.from, migration.to), (0, 1));
    assert!(migration.in_flight_at_save > 0, "{migration:?}");
    assert_eq!(migration.restored, migration.in_flight_at_save as u64);
    assert_ne!(
        migration.old_ports, migration.new_ports,
        "the destination numbers ports itself"
    );
    let (source, destination) = (world.counts(0), world.counts(1));
    // SavePacket: one size call per transaction in flight; a fill call for each with state.
    assert!(source.save_packet_size_calls >= migration.in_flight_at_save as u64);
    assert!(source.save_packet_fill_calls > 0, "{source:?}");
    assert_eq!(source.saves_pended, 2);
    assert_eq!(source.notify_complete, 2);
    assert_eq!(destination.restore_packet, migration.restored);
    assert_eq!(destination.packet_restore, migration.restored);
    assert_eq!(destination.restores, 2);
    // The guest, now on the destination, completes the restored transactions there.
    world.traffic(60);
    finish(world);
}

#[test]
fn a_vm_migrates_around_three_hosts_and_back() {
    let mut world = World::new(Config {
        vms: 2,
        ..config(5)
    });
    for _ in 0..3 {
        world.traffic(40);
        assert!(world.migrate(0, Some(false)));
    }
    assert_eq!(world.vms[0].host, 0);
    assert_eq!(
        world.migrations.iter().map(|m| m.to).collect::<Vec<_>>(),
        [1, 2, 0]
    );
    world.traffic(40);
    finish(world);
}

#[test]
fn unload_with_vms_running_revokes_their_channels_and_frees_everything() {
    let mut world = World::new(Config {
        vms: 2,
        ..config(6)
    });
    world.traffic(80);
    for vm in 0..2 {
        world.raise(vm);
    }
    let in_flight: usize = (0..2)
        .map(|vm| {
            let v = &world.vms[vm];
            world.drivers[v.host].outstanding(v.channel).unwrap().1
        })
        .sum();
    assert!(in_flight > 0);
    let routines = world.counts(0).completion_routine;
    world.unload();
    // Disable closed each channel; KMCL cancelled what was in flight through the routine.
    assert_eq!(
        world.counts(0).completion_routine,
        routines + in_flight as u64
    );
    assert!(world.findings.is_empty(), "{:#?}", world.findings);
}

#[test]
fn a_guest_crash_closes_the_channel_under_the_driver_and_the_guest_opens_it_again() {
    let mut world = World::new(config(7));
    world.traffic(80);
    world.raise(0);
    let in_flight = world.drivers[0]
        .outstanding(world.vms[0].channel)
        .unwrap()
        .1;
    assert!(in_flight > 0);
    let routines = world.counts(0).completion_routine;
    world.crash(0);
    // KMCL cancelled the transactions the dead guest held, through the completion routine.
    assert_eq!(
        world.counts(0).completion_routine,
        routines + in_flight as u64
    );
    assert_eq!(
        world.drivers[0].outstanding(world.vms[0].channel),
        Some((0, 0))
    );
    // The guest reboots and opens the same offer again; traffic resumes.
    world.drain();
    assert!(world.vms[0].guest.is_open());
    world.traffic(80);
    finish(world);
}

#[test]
fn bytes_damaged_on_the_way_are_refused_and_the_vm_resumes_on_the_source() {
    let mut world = World::new(Config {
        corrupt: true,
        ..config(8)
    });
    world.traffic(60);
    // Migrate until the transfer damaged something (40 % of migrations, seeded).
    while !world.migrations.iter().any(|m| m.refused) {
        assert!(
            world.migrations.len() < 20,
            "no damaged transfer in 20 migrations"
        );
        world.migrate(0, None);
        world.traffic(20);
    }
    let refused = world.migrations.iter().find(|m| m.refused).unwrap().clone();
    assert!(
        refused.new_ports.is_empty(),
        "nothing kept on the destination"
    );
    // The VM keeps working wherever it is, and nothing leaked on the destination.
    world.traffic(60);
    finish(world);
}
