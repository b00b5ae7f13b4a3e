use super::*;
use proptest::prelude::*;
use std::vec::Vec;

/// Flags under which `guard` holds.
fn flags_for(guard: Guard) -> (bool, bool) {
    match guard {
        Guard::Always | Guard::NotDisabling | Guard::RunRequested => (true, false),
        Guard::Disabling => (true, true),
    }
}

#[test]
fn every_rule_moves_to_its_target_with_its_effects() {
    for rule in RULES {
        let (run, disabling) = flags_for(rule.guard);
        let mut machine = ChannelMachine::at(rule.from, run, disabling);
        let effects = machine
            .apply(rule.event)
            .unwrap_or_else(|e| panic!("{rule:?} refused: {e}"));
        assert_eq!(machine.state(), rule.to, "{rule:?}");
        assert_eq!(effects, rule.effects, "{rule:?}");
    }
}

#[test]
fn rules_are_unambiguous() {
    // Two rules for the same (state, event) must have mutually exclusive guards.
    for (i, a) in RULES.iter().enumerate() {
        for b in RULES.iter().skip(i + 1) {
            if a.from == b.from && a.event == b.event {
                let exclusive = matches!(
                    (a.guard, b.guard),
                    (Guard::Disabling, Guard::NotDisabling)
                        | (Guard::NotDisabling, Guard::Disabling)
                );
                assert!(exclusive, "ambiguous rules {a:?} and {b:?}");
            }
        }
    }
}

#[test]
fn every_pair_without_a_rule_is_refused_and_changes_nothing() {
    let mut refused = 0;
    for state in ChannelState::ALL {
        for event in ChannelEvent::ALL {
            if matches!(event, ChannelEvent::Start | ChannelEvent::Pause) {
                continue;
            }
            if RULES.iter().any(|r| r.from == state && r.event == event) {
                continue;
            }
            for (run, disabling) in [(false, false), (true, false), (true, true)] {
                let mut machine = ChannelMachine::at(state, run, disabling);
                let before = machine;
                let err = machine.apply(event).unwrap_err();
                assert_eq!(err, StateError::IllegalEvent { state, event });
                assert_eq!(machine, before);
            }
            refused += 1;
        }
    }
    let with_rules: std::collections::BTreeSet<_> = RULES
        .iter()
        .map(|r| (r.from.name(), r.event.name()))
        .collect();
    // 8 states x 8 table events; every pair either has a rule or was refused above.
    assert_eq!(refused + with_rules.len(), 64);
    assert!(
        refused > 40,
        "the table should refuse most pairs, refused {refused}"
    );
}

#[test]
fn a_second_opened_is_refused() {
    let mut m = ChannelMachine::at(ChannelState::Offered, false, false);
    m.apply(ChannelEvent::Opened).unwrap();
    assert_eq!(
        m.apply(ChannelEvent::Opened),
        Err(StateError::IllegalEvent {
            state: ChannelState::Opened,
            event: ChannelEvent::Opened
        })
    );
}

#[test]
fn no_packet_is_permitted_after_suspend_until_the_next_started() {
    let mut m = ChannelMachine::at(ChannelState::Active, true, false);
    assert!(m.check(Operation::ProcessPacket).is_ok());
    m.apply(ChannelEvent::Suspend).unwrap();
    assert_eq!(
        m.check(Operation::ProcessPacket),
        Err(StateError::NotPermitted {
            state: ChannelState::Suspended,
            operation: Operation::ProcessPacket
        })
    );
    assert!(m.check(Operation::Send).is_err());
    m.apply(ChannelEvent::Started).unwrap();
    assert!(m.check(Operation::ProcessPacket).is_ok());
}

#[test]
fn started_without_a_start_request_is_refused() {
    let mut m = ChannelMachine::at(ChannelState::Opened, false, false);
    assert_eq!(
        m.apply(ChannelEvent::Started),
        Err(StateError::StartedWhilePaused)
    );
    m.apply(ChannelEvent::Start).unwrap();
    assert_eq!(m.apply(ChannelEvent::Started), Ok(Effects::NONE));
    // A pause request takes the run flag away again.
    let mut m = ChannelMachine::at(ChannelState::Suspended, true, false);
    m.apply(ChannelEvent::Pause).unwrap();
    assert_eq!(
        m.apply(ChannelEvent::Started),
        Err(StateError::StartedWhilePaused)
    );
}

#[test]
fn requests_inside_a_state_callback_are_refused() {
    let mut m = ChannelMachine::at(ChannelState::Active, true, false);
    m.apply(ChannelEvent::Suspend).unwrap();
    m.enter_callback(ChannelEvent::Suspend).unwrap();
    for request in [
        ChannelEvent::Start,
        ChannelEvent::Pause,
        ChannelEvent::Disable,
    ] {
        assert_eq!(
            m.apply(request),
            Err(StateError::RequestInsideCallback {
                event: request,
                callback: ChannelEvent::Suspend
            })
        );
    }
    assert_eq!(
        m.apply(ChannelEvent::Closed),
        Err(StateError::OverlappingCallback {
            event: ChannelEvent::Closed,
            running: ChannelEvent::Suspend
        })
    );
    m.exit_callback();
    m.apply(ChannelEvent::Start).unwrap();
    assert!(m.run_requested());
}

#[test]
fn disable_while_running_finishes_at_closed() {
    let mut m = ChannelMachine::at(ChannelState::Active, true, false);
    m.apply(ChannelEvent::Disable).unwrap();
    assert_eq!(m.state(), ChannelState::Active);
    assert!(m.disabling());
    assert_eq!(m.apply(ChannelEvent::Suspend), Ok(Effects::RETIRE_INCOMING));
    let effects = m.apply(ChannelEvent::Closed).unwrap();
    assert_eq!(m.state(), ChannelState::Disabled);
    assert!(effects.contains(Effects::RETIRE_OUTGOING));
    assert!(effects.contains(Effects::RESET_SESSION));
    // Disabled is final.
    for event in ChannelEvent::ALL {
        assert!(m.apply(event).is_err(), "{event} left Disabled");
    }
}

#[test]
fn guest_close_and_reopen() {
    let mut m = ChannelMachine::new();
    for event in [
        ChannelEvent::Enable,
        ChannelEvent::Start,
        ChannelEvent::Opened,
        ChannelEvent::Started,
        ChannelEvent::PostStarted,
        ChannelEvent::Suspend,
        ChannelEvent::Closed,
        ChannelEvent::Opened,
        ChannelEvent::Started,
    ] {
        m.apply(event).unwrap_or_else(|e| panic!("{event}: {e}"));
    }
    assert_eq!(m.state(), ChannelState::Started);
}

#[test]
fn start_needs_an_enabled_channel_and_pause_arms_before_enable() {
    let mut m = ChannelMachine::new();
    assert!(m.apply(ChannelEvent::Start).is_err());
    // "If Pause is called while Disabled, the channel will start paused when enabled."
    m.apply(ChannelEvent::Pause).unwrap();
    assert!(!m.run_requested());
}

#[test]
fn save_and_restore_states_are_the_documented_guess() {
    use ChannelState as S;
    let save: Vec<_> = S::ALL
        .into_iter()
        .filter(|s| s.permits(Operation::SavePacket))
        .collect();
    assert_eq!(save, [S::Opened, S::Suspended]);
    let restore: Vec<_> = S::ALL
        .into_iter()
        .filter(|s| s.permits(Operation::RestorePacket))
        .collect();
    assert_eq!(restore, [S::Initializing, S::Offered, S::Opened]);
}

#[test]
fn effects_name_their_flags() {
    let both = Effects::RETIRE_OUTGOING.with(Effects::RESET_SESSION);
    let names: Vec<_> = both.names().collect();
    assert_eq!(names, ["retire outgoing", "reset session"]);
    assert!(Effects::NONE.is_empty());
}

fn any_event() -> impl Strategy<Value = ChannelEvent> {
    proptest::sample::select(ChannelEvent::ALL.to_vec())
}

proptest! {
    #[test]
    fn random_event_sequences_only_move_along_rules(
        events in proptest::collection::vec(any_event(), 0..64)
    ) {
        let mut m = ChannelMachine::new();
        for event in events {
            let before = m;
            match m.apply(event) {
                Ok(effects) => {
                    if matches!(event, ChannelEvent::Start | ChannelEvent::Pause) {
                        prop_assert_eq!(m.state(), before.state());
                    } else {
                        let rule = RULES.iter().find(|r| {
                            r.from == before.state() && r.event == event && before.guard_holds(r.guard)
                        });
                        prop_assert!(rule.is_some());
                        let rule = rule.unwrap();
                        prop_assert_eq!(m.state(), rule.to);
                        prop_assert_eq!(effects, rule.effects);
                    }
                    // Incoming packets are retired whenever delivery stops.
                    if before.state().permits(Operation::ProcessPacket)
                        && !m.state().permits(Operation::ProcessPacket)
                    {
                        prop_assert!(effects.contains(Effects::RETIRE_INCOMING));
                    }
                }
                Err(_) => prop_assert_eq!(m, before),
            }
            prop_assert!(
                before.state() != ChannelState::Disabled || m.state() == ChannelState::Disabled
            );
        }
    }
}
