//! The vSwitch callouts through the C ABI: registration and its rollback at every step,
//! classify of real frame bytes through `classifyFn`, and the unload order, against
//! `fake_engine`.

use ferry_core::port::{Direction, FlowKey, PortConfig, SwitchPortId};
use ferry_platform_wdk::ffi::base::{DEVICE_OBJECT, GUID};
use ferry_platform_wdk::ffi::fwpm::{
    FWPM_LAYER_EGRESS_VSWITCH_ETHERNET, FWPM_LAYER_INGRESS_VSWITCH_ETHERNET,
};
use ferry_platform_wdk::ffi::fwps::{
    FWP_ACTION_BLOCK, FWP_ACTION_CONTINUE, FWPS_LAYER_EGRESS_VSWITCH_ETHERNET,
    FWPS_LAYER_INGRESS_VSWITCH_ETHERNET, FWPS_RIGHT_ACTION_WRITE,
};
use ferry_platform_wdk::host::callout::{CalloutHost, ClassifyCounts};
use ferry_platform_wdk::host::filters::{
    CalloutKeys, Registration, RegistrationError, RegistrationStep, register,
};

use crate::fake_engine::{self, Call, Metadata, Op, udp_frame};
use crate::kernel::{self, TestKernel};
use crate::{PORTS, TestHost, fake_wfp, serial};

const fn key(n: u32) -> GUID {
    GUID {
        Data1: 0xFE44_0000 | n,
        Data2: 0x0C0D,
        Data3: 0x4A11,
        Data4: [0xAB; 8],
    }
}

const KEYS: CalloutKeys = CalloutKeys {
    provider: key(1),
    sublayer: key(2),
    ingress_callout: key(3),
    egress_callout: key(4),
    ingress_filter: key(5),
    egress_filter: key(6),
};

/// A stand-in device object: the fake only checks it is not NULL.
fn device() -> *mut DEVICE_OBJECT {
    std::ptr::NonNull::<u64>::dangling().as_ptr().cast()
}

fn start() -> Result<Registration, RegistrationError> {
    register::<TestHost>(&fake_wfp::table(), device(), &KEYS)
}

fn counts() -> ClassifyCounts {
    TestHost::callouts().counts()
}

fn delta(after: ClassifyCounts, before: ClassifyCounts) -> ClassifyCounts {
    ClassifyCounts {
        classified: after.classified - before.classified,
        not_keyed: after.not_keyed - before.not_keyed,
        unknown_port: after.unknown_port - before.unknown_port,
        no_port: after.no_port - before.no_port,
        drops_not_enforced: after.drops_not_enforced - before.drops_not_enforced,
    }
}

fn ingress(port: u32, ether_type: Option<u16>) -> Metadata {
    Metadata {
        source_port: Some(port),
        destination_port: None,
        ether_type,
        rights: FWPS_RIGHT_ACTION_WRITE,
    }
}

#[test]
fn registration_is_one_transaction_and_unload_undoes_it_filters_first() {
    let serial = serial();
    fake_engine::reset();
    let registration = start().unwrap();
    assert_eq!(
        fake_engine::calls(),
        [
            Call::EngineOpen,
            Call::CalloutRegister(KEYS.ingress_callout),
            Call::CalloutRegister(KEYS.egress_callout),
            Call::TransactionBegin,
            Call::ProviderAdd,
            Call::SubLayerAdd,
            Call::CalloutAdd(FWPM_LAYER_INGRESS_VSWITCH_ETHERNET),
            Call::CalloutAdd(FWPM_LAYER_EGRESS_VSWITCH_ETHERNET),
            Call::FilterAdd(FWPM_LAYER_INGRESS_VSWITCH_ETHERNET),
            Call::FilterAdd(FWPM_LAYER_EGRESS_VSWITCH_ETHERNET),
            Call::TransactionCommit,
        ]
    );
    // Each layer's committed filter reaches that layer's callout.
    let (ingress, egress) = (registration.ingress(), registration.egress());
    assert_eq!(
        fake_engine::filters_at(FWPM_LAYER_INGRESS_VSWITCH_ETHERNET),
        [(ingress.filter, KEYS.ingress_callout)]
    );
    assert_eq!(
        fake_engine::filters_at(FWPM_LAYER_EGRESS_VSWITCH_ETHERNET),
        [(egress.filter, KEYS.egress_callout)]
    );

    fake_engine::reset();
    registration.unregister::<TestKernel>(&fake_wfp::table());
    assert_eq!(
        fake_engine::calls(),
        [
            Call::FilterDelete(ingress.filter),
            Call::FilterDelete(egress.filter),
            Call::CalloutDelete(ingress.callout),
            Call::CalloutDelete(egress.callout),
            Call::CalloutUnregister(ingress.runtime_callout),
            Call::CalloutUnregister(egress.runtime_callout),
            Call::EngineClose,
        ]
    );
    fake_engine::assert_clean();
    serial.assert_clean();
}

#[test]
fn a_failure_at_any_step_undoes_everything_before_it() {
    let serial = serial();
    let steps = [
        (Op::EngineOpen, 0, RegistrationStep::EngineOpen),
        (
            Op::CalloutRegister,
            0,
            RegistrationStep::CalloutRegister(Direction::Ingress),
        ),
        (
            Op::CalloutRegister,
            1,
            RegistrationStep::CalloutRegister(Direction::Egress),
        ),
        (Op::TransactionBegin, 0, RegistrationStep::TransactionBegin),
        (Op::ProviderAdd, 0, RegistrationStep::ProviderAdd),
        (Op::SubLayerAdd, 0, RegistrationStep::SubLayerAdd),
        (
            Op::CalloutAdd,
            0,
            RegistrationStep::CalloutAdd(Direction::Ingress),
        ),
        (
            Op::CalloutAdd,
            1,
            RegistrationStep::CalloutAdd(Direction::Egress),
        ),
        (
            Op::FilterAdd,
            0,
            RegistrationStep::FilterAdd(Direction::Ingress),
        ),
        (
            Op::FilterAdd,
            1,
            RegistrationStep::FilterAdd(Direction::Egress),
        ),
        (
            Op::TransactionCommit,
            0,
            RegistrationStep::TransactionCommit,
        ),
    ];
    for (op, nth, step) in steps {
        fake_engine::reset();
        fake_engine::fail(op, nth);
        let error = start().unwrap_err();
        assert_eq!(
            error,
            RegistrationError {
                step,
                status: fake_engine::INJECTED
            }
        );
        let calls = fake_engine::calls();
        // Inside the transaction a failure aborts it.
        let began = calls.contains(&Call::TransactionBegin);
        let in_transaction = began && !matches!(step, RegistrationStep::TransactionBegin);
        assert_eq!(
            calls.contains(&Call::TransactionAbort),
            in_transaction,
            "{step:?}"
        );
        // Every registered run-time callout is unregistered, then the session closes.
        let registered = calls
            .iter()
            .filter(|c| matches!(c, Call::CalloutRegister(_)))
            .count()
            - usize::from(matches!(step, RegistrationStep::CalloutRegister(_)));
        let unregistered = calls
            .iter()
            .filter(|c| matches!(c, Call::CalloutUnregister(_)))
            .count();
        assert_eq!(unregistered, registered, "{step:?}");
        if step != RegistrationStep::EngineOpen {
            assert_eq!(calls.last(), Some(&Call::EngineClose), "{step:?}");
        }
        fake_engine::assert_clean();
    }
    serial.assert_clean();
}

#[test]
fn frames_classified_through_the_c_signature_count_on_their_port_and_flow() {
    let serial = serial();
    fake_engine::reset();
    PORTS
        .create_port(SwitchPortId(501), None, PortConfig::UNLIMITED)
        .unwrap();
    PORTS
        .create_port(SwitchPortId(502), None, PortConfig::UNLIMITED)
        .unwrap();
    let registration = start().unwrap();
    let before = counts();

    // Three frames in one list from port 501: two of one flow (one even-length, read in
    // place; one odd, copied), one of another.
    let a = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 64);
    let a_odd = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 101);
    let b = udp_frame([10, 0, 0, 1], [10, 0, 0, 3], 4001, 53, 80);
    let out = fake_engine::classify(
        FWPS_LAYER_INGRESS_VSWITCH_ETHERNET,
        ingress(501, Some(0x0800)),
        &[a, a_odd, b],
    );
    assert_eq!(out.len(), 1, "the ingress filter reached ferry's callout");
    assert_eq!(out[0].actionType, FWP_ACTION_CONTINUE);
    assert_eq!(out[0].rights, FWPS_RIGHT_ACTION_WRITE, "rights untouched");

    // One frame delivered to port 502.
    let c = udp_frame([10, 0, 0, 9], [10, 0, 0, 2], 53, 4000, 90);
    let out = fake_engine::classify(
        FWPS_LAYER_EGRESS_VSWITCH_ETHERNET,
        Metadata {
            source_port: Some(501),
            destination_port: Some(502),
            ether_type: Some(0x0800),
            rights: FWPS_RIGHT_ACTION_WRITE,
        },
        &[c],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].actionType, FWP_ACTION_CONTINUE);

    let sent = PORTS.counters(SwitchPortId(501)).unwrap();
    assert_eq!(sent.ingress.permitted.frames, 3);
    assert_eq!(sent.ingress.permitted.bytes, 64 + 101 + 80);
    assert_eq!(sent.egress.permitted.frames, 0);
    assert_eq!(sent.flows_created, 2);
    let flow = FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], 4000, 53, 17);
    let entry = PORTS
        .with_port(SwitchPortId(501), |s| s.flows().get(&flow))
        .unwrap()
        .expect("the flow is in the port's table");
    assert_eq!(entry.counters.frames, 2);
    assert_eq!(entry.counters.bytes, 64 + 101);
    let received = PORTS.counters(SwitchPortId(502)).unwrap();
    assert_eq!(received.egress.permitted.frames, 1);
    assert_eq!(received.ingress.permitted.frames, 0);
    assert_eq!(
        delta(counts(), before),
        ClassifyCounts {
            classified: 4,
            ..ClassifyCounts::default()
        }
    );

    registration.unregister::<TestKernel>(&fake_wfp::table());
    PORTS.delete_port(SwitchPortId(501)).unwrap();
    PORTS.delete_port(SwitchPortId(502)).unwrap();
    fake_engine::assert_clean();
    serial.assert_clean();
}

#[test]
fn frames_ferry_cannot_use_are_counted_and_never_blocked() {
    let serial = serial();
    fake_engine::reset();
    PORTS
        .create_port(SwitchPortId(601), None, PortConfig::UNLIMITED)
        .unwrap();
    let registration = start().unwrap();
    let before = counts();
    let good = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 60);

    // ARP, announced by the layer's ETHER_TYPE field: skipped without reading the bytes.
    let reads = fake_engine::data_buffer_calls();
    let out = fake_engine::classify(
        FWPS_LAYER_INGRESS_VSWITCH_ETHERNET,
        ingress(601, Some(0x0806)),
        &[vec![0u8; 60]],
    );
    assert_eq!(out[0].actionType, FWP_ACTION_CONTINUE);
    assert_eq!(fake_engine::data_buffer_calls(), reads);
    // No ETHER_TYPE field: the bytes decide (ARP again, then a truncated IPv4 header, then
    // an empty frame).
    let mut arp = vec![0u8; 60];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let truncated = good[..30].to_vec();
    fake_engine::classify(
        FWPS_LAYER_INGRESS_VSWITCH_ETHERNET,
        ingress(601, None),
        &[arp, truncated, Vec::new()],
    );
    // A port the table does not know, and a frame without port metadata.
    fake_engine::classify(
        FWPS_LAYER_INGRESS_VSWITCH_ETHERNET,
        ingress(999, None),
        std::slice::from_ref(&good),
    );
    fake_engine::classify(
        FWPS_LAYER_EGRESS_VSWITCH_ETHERNET,
        Metadata {
            source_port: Some(601),
            destination_port: None,
            ether_type: None,
            rights: FWPS_RIGHT_ACTION_WRITE,
        },
        std::slice::from_ref(&good),
    );
    // NULL everything.
    fake_engine::classify_with_nulls(FWPS_LAYER_INGRESS_VSWITCH_ETHERNET);
    assert_eq!(
        delta(counts(), before),
        ClassifyCounts {
            classified: 0,
            not_keyed: 4,
            unknown_port: 1,
            no_port: 2,
            drops_not_enforced: 0,
        }
    );
    assert_eq!(
        PORTS.counters(SwitchPortId(601)).unwrap(),
        ferry_core::port::PortCounters::ZERO,
        "nothing was counted on the port"
    );

    // Without the right to write the action, a good frame is counted and the action left as
    // the higher-priority filter set it.
    let mut withheld = ingress(601, Some(0x0800));
    withheld.rights = 0;
    let out = fake_engine::classify(
        FWPS_LAYER_INGRESS_VSWITCH_ETHERNET,
        withheld,
        std::slice::from_ref(&good),
    );
    assert_eq!(out[0].actionType, 0);
    assert_ne!(out[0].actionType, FWP_ACTION_BLOCK);
    assert_eq!(
        PORTS
            .counters(SwitchPortId(601))
            .unwrap()
            .ingress
            .permitted
            .frames,
        1
    );

    registration.unregister::<TestKernel>(&fake_wfp::table());
    PORTS.delete_port(SwitchPortId(601)).unwrap();
    fake_engine::assert_clean();
    serial.assert_clean();
}

#[test]
fn unload_asks_again_while_the_engine_answers_device_busy() {
    let serial = serial();
    fake_engine::reset();
    let registration = start().unwrap();
    let ingress = registration.ingress().runtime_callout;
    fake_engine::reset();
    fake_engine::busy(3);
    kernel::take_log();
    registration.unregister::<TestKernel>(&fake_wfp::table());
    let asked = fake_engine::calls()
        .iter()
        .filter(|c| **c == Call::CalloutUnregister(ingress))
        .count();
    assert_eq!(asked, 4, "three busy answers, then success");
    let busy_lines = kernel::take_log()
        .iter()
        .filter(|line| line.contains("busy"))
        .count();
    assert_eq!(busy_lines, 1, "the first refusal is logged, once");
    assert_eq!(fake_engine::calls().last(), Some(&Call::EngineClose));
    fake_engine::assert_clean();
    serial.assert_clean();
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(64))]

    /// Whatever the guest sends, every frame is accounted for exactly once (classified or
    /// counted as not keyed) and continues.
    #[test]
    fn hostile_frames_are_each_counted_once_and_always_continue(
        frames in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
            1..6,
        ),
        ip_prefix in proptest::prelude::any::<bool>(),
    ) {
        let serial = serial();
        fake_engine::reset();
        PORTS
            .create_port(SwitchPortId(701), None, PortConfig::UNLIMITED)
            .unwrap();
        let registration = start().unwrap();
        let frames: Vec<Vec<u8>> = frames
            .into_iter()
            .map(|mut f| {
                // Half the runs make the frames look like IPv4 so the parser goes deep.
                if ip_prefix && f.len() > 14 {
                    f[12] = 0x08;
                    f[13] = 0x00;
                    f[14] = 0x45;
                }
                f
            })
            .collect();
        let before = counts();
        let out = fake_engine::classify(
            FWPS_LAYER_INGRESS_VSWITCH_ETHERNET,
            ingress(701, None),
            &frames,
        );
        let seen = delta(counts(), before);
        registration.unregister::<TestKernel>(&fake_wfp::table());
        let port = PORTS.counters(SwitchPortId(701)).unwrap();
        PORTS.delete_port(SwitchPortId(701)).unwrap();
        fake_engine::assert_clean();
        serial.assert_clean();

        proptest::prop_assert_eq!(out.len(), 1);
        proptest::prop_assert_eq!(out[0].actionType, FWP_ACTION_CONTINUE);
        proptest::prop_assert_eq!(seen.classified + seen.not_keyed, frames.len() as u64);
        proptest::prop_assert_eq!(seen.unknown_port + seen.no_port, 0);
        proptest::prop_assert_eq!(port.ingress.permitted.frames, seen.classified);
    }
}
