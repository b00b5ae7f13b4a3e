//! The server-side KMCL channel life cycle as a pure, table-driven state machine.
//!
//! Source of the semantics: `shared/reference/kmcl.md` §2.2 and the `EvtVmbChannelSuspend` page
//! (`shared/seeds/003_*`). A channel is allocated (`Initializing`), offered by
//! `VmbChannelEnable` (`Offered`), opened by the guest (`EvtChannelOpened`, `Opened`), runs
//! once it is both open and locally started (`EvtChannelStarted` → `Started`, then
//! `EvtChannelPostStarted` → `Active`), and leaves the running states only through
//! `EvtChannelSuspend` (`Suspended`) — whether the cause is `VmbChannelPause`,
//! `VmbChannelDisable`, a guest close or a guest crash. `EvtChannelClosed` then ends the guest's
//! session (`Closed`, reopenable) or, when a disable is in progress, the channel (`Disabled`).
//!
//! Two orthogonal axes exist in KMCL: open/closed (guest) and started/paused (local). The local
//! axis is kept as a flag ([`ChannelMachine::run_requested`]) set by the driver's
//! `VmbChannelStart`/`VmbChannelPause` requests; it guards the `Started` transition.
//!
//! Every transition is a row of [`RULES`]; [`ChannelMachine::apply`] looks the event up there, so
//! the table is both the implementation and the source of the generated diagram. Anything not in
//! the table is a [`StateError`], never a panic and never silently accepted.

use core::fmt;

/// Where a channel is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelState {
    /// Allocated (`VmbChannelAllocate`); `VmbChannelInit*` calls are legal; not offered.
    Initializing,
    /// Offered to the guest (`VmbChannelEnable`); the guest has not opened it.
    Offered,
    /// Opened by the guest (`EvtChannelOpened` accepted), not running.
    Opened,
    /// `EvtChannelStarted` returned: sends may be queued; KMCL starts the incoming queue, so
    /// `EvtVmbChannelProcessPacket` may arrive before `EvtChannelPostStarted` (`kmcl.md` §2.2).
    Started,
    /// `EvtChannelPostStarted` returned: fully running.
    Active,
    /// `EvtChannelSuspend` ran: no packet delivery until the next `EvtChannelStarted`; every
    /// outstanding incoming packet has been retired; sending has stopped.
    Suspended,
    /// `EvtChannelClosed` after a guest close: the offer remains and may be reopened.
    Closed,
    /// `VmbChannelDisable` finished: the offer is revoked; only `VmbChannelCleanup` remains.
    Disabled,
}

impl ChannelState {
    /// Every state, in life-cycle order.
    pub const ALL: [Self; 8] = [
        Self::Initializing,
        Self::Offered,
        Self::Opened,
        Self::Started,
        Self::Active,
        Self::Suspended,
        Self::Closed,
        Self::Disabled,
    ];

    /// The state's name as written in docs and diagrams.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Initializing => "Initializing",
            Self::Offered => "Offered",
            Self::Opened => "Opened",
            Self::Started => "Started",
            Self::Active => "Active",
            Self::Suspended => "Suspended",
            Self::Closed => "Closed",
            Self::Disabled => "Disabled",
        }
    }

    /// Whether `operation` is legal in this state.
    ///
    /// The save/restore rows are a contained guess: which channel state KMCL requires for
    /// `VmbChannelSaveBegin` and `VmbChannelRestoreFromBuffer` is unconfirmed (`kmcl.md` §2.5,
    /// §4). ferry saves only a paused channel (guest open, no traffic) and restores only into a
    /// channel that carries no traffic yet. If a real host disagrees, this table is the one
    /// place to change, and `channel::state::tests::save_and_restore_states_are_the_documented_guess`
    /// documents the assumption.
    #[inline]
    #[must_use]
    pub const fn permits(self, operation: Operation) -> bool {
        use ChannelState as S;
        match operation {
            Operation::ProcessPacket => matches!(self, S::Started | S::Active),
            // A batch's ProcessingComplete may trail the Suspend that ended delivery.
            Operation::ProcessingComplete => matches!(self, S::Started | S::Active | S::Suspended),
            Operation::Send => matches!(self, S::Started | S::Active),
            Operation::SavePacket => matches!(self, S::Opened | S::Suspended),
            Operation::RestorePacket => matches!(self, S::Initializing | S::Offered | S::Opened),
        }
    }
}

impl fmt::Display for ChannelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that happens to a channel: a KMCL callback, or a driver request to KMCL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelEvent {
    /// The driver's `VmbChannelEnable` succeeded (the offer is made).
    Enable,
    /// The driver requests `VmbChannelStart` (leave the paused axis).
    Start,
    /// The driver requests `VmbChannelPause`.
    Pause,
    /// The driver requests `VmbChannelDisable`.
    Disable,
    /// `VmbChannelRestoreFromBuffer` finished on a destination host: the channel comes back
    /// open and paused, without a new guest open (a contained guess; see [`ChannelState::permits`]).
    Restored,
    /// `EvtChannelOpened`.
    Opened,
    /// `EvtChannelStarted`.
    Started,
    /// `EvtChannelPostStarted`.
    PostStarted,
    /// `EvtChannelSuspend`.
    Suspend,
    /// `EvtChannelClosed`.
    Closed,
}

impl ChannelEvent {
    /// Every event.
    pub const ALL: [Self; 10] = [
        Self::Enable,
        Self::Start,
        Self::Pause,
        Self::Disable,
        Self::Restored,
        Self::Opened,
        Self::Started,
        Self::PostStarted,
        Self::Suspend,
        Self::Closed,
    ];

    /// The event's name as written in docs and diagrams.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Enable => "Enable",
            Self::Start => "Start",
            Self::Pause => "Pause",
            Self::Disable => "Disable",
            Self::Restored => "Restored",
            Self::Opened => "Opened",
            Self::Started => "Started",
            Self::PostStarted => "PostStarted",
            Self::Suspend => "Suspend",
            Self::Closed => "Closed",
        }
    }

    /// Whether this event is a KMCL state-change callback (as opposed to a driver request).
    #[must_use]
    pub const fn is_callback(self) -> bool {
        matches!(
            self,
            Self::Opened | Self::Started | Self::PostStarted | Self::Suspend | Self::Closed
        )
    }
}

impl fmt::Display for ChannelEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Work gated by the channel state rather than changing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `EvtVmbChannelProcessPacket`.
    ProcessPacket,
    /// `EvtVmbChannelProcessingComplete`.
    ProcessingComplete,
    /// Sending a host→guest transaction (`VmbPacketSend`).
    Send,
    /// `EvtVmbChannelSavePacket`.
    SavePacket,
    /// `EvtVmbChannelRestorePacket`.
    RestorePacket,
}

/// A condition on the machine's flags that a rule requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// No condition.
    Always,
    /// The driver has requested `VmbChannelStart` (and not paused since).
    RunRequested,
    /// A `VmbChannelDisable` is in progress.
    Disabling,
    /// No `VmbChannelDisable` is in progress.
    NotDisabling,
}

impl Guard {
    /// The guard as written in diagrams (empty for [`Guard::Always`]).
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Always => "",
            Self::RunRequested => "run requested",
            Self::Disabling => "disabling",
            Self::NotDisabling => "not disabling",
        }
    }
}

/// What the caller must do after a transition. A small set of flags.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Effects(u8);

impl Effects {
    /// Nothing to do.
    pub const NONE: Self = Self(0);
    /// Complete every outstanding incoming packet with a "cancelled" response (Suspend).
    pub const RETIRE_INCOMING: Self = Self(1 << 0);
    /// Release every outstanding host→guest transaction: the guest that owed completions is
    /// gone (Closed).
    pub const RETIRE_OUTGOING: Self = Self(1 << 1);
    /// Send the notifications that were held back while sending was stopped.
    pub const FLUSH_PENDING_SENDS: Self = Self(1 << 2);
    /// Forget the guest's session (negotiated version, subscriptions): it closed.
    pub const RESET_SESSION: Self = Self(1 << 3);

    const NAMES: [(Self, &'static str); 4] = [
        (Self::RETIRE_INCOMING, "retire incoming"),
        (Self::RETIRE_OUTGOING, "retire outgoing"),
        (Self::FLUSH_PENDING_SENDS, "flush pending sends"),
        (Self::RESET_SESSION, "reset session"),
    ];

    /// The union of two sets.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every flag of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the set flags, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(flag, _)| self.contains(*flag))
            .map(|(_, name)| name)
    }
}

impl fmt::Debug for Effects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// One row of the transition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The state the rule applies in.
    pub from: ChannelState,
    /// The event it handles.
    pub event: ChannelEvent,
    /// The condition it requires.
    pub guard: Guard,
    /// The state it leads to (equal to `from` for flag-only rules).
    pub to: ChannelState,
    /// What the caller must do.
    pub effects: Effects,
}

const fn rule(
    from: ChannelState,
    event: ChannelEvent,
    guard: Guard,
    to: ChannelState,
    effects: Effects,
) -> Rule {
    Rule {
        from,
        event,
        guard,
        to,
        effects,
    }
}

use ChannelEvent as E;
use ChannelState as S;

const CLOSE_EFFECTS: Effects = Effects::RETIRE_OUTGOING.with(Effects::RESET_SESSION);

/// The life-cycle transitions. `Start` and `Pause` requests are not rows: they only set the
/// run flag and are legal in every state but `Disabled` and `Initializing` (Start) /
/// `Disabled` (Pause), outside state callbacks.
pub const RULES: &[Rule] = &[
    rule(
        S::Initializing,
        E::Enable,
        Guard::Always,
        S::Offered,
        Effects::NONE,
    ),
    rule(
        S::Initializing,
        E::Restored,
        Guard::Always,
        S::Opened,
        Effects::NONE,
    ),
    rule(
        S::Initializing,
        E::Disable,
        Guard::Always,
        S::Disabled,
        Effects::NONE,
    ),
    rule(
        S::Offered,
        E::Opened,
        Guard::Always,
        S::Opened,
        Effects::NONE,
    ),
    rule(
        S::Offered,
        E::Restored,
        Guard::Always,
        S::Opened,
        Effects::NONE,
    ),
    rule(
        S::Offered,
        E::Disable,
        Guard::Always,
        S::Disabled,
        Effects::NONE,
    ),
    rule(
        S::Opened,
        E::Started,
        Guard::RunRequested,
        S::Started,
        Effects::NONE,
    ),
    rule(
        S::Opened,
        E::Closed,
        Guard::NotDisabling,
        S::Closed,
        CLOSE_EFFECTS,
    ),
    rule(
        S::Opened,
        E::Closed,
        Guard::Disabling,
        S::Disabled,
        CLOSE_EFFECTS,
    ),
    rule(
        S::Opened,
        E::Disable,
        Guard::Always,
        S::Opened,
        Effects::NONE,
    ),
    rule(
        S::Started,
        E::PostStarted,
        Guard::Always,
        S::Active,
        Effects::FLUSH_PENDING_SENDS,
    ),
    rule(
        S::Started,
        E::Suspend,
        Guard::Always,
        S::Suspended,
        Effects::RETIRE_INCOMING,
    ),
    rule(
        S::Started,
        E::Disable,
        Guard::Always,
        S::Started,
        Effects::NONE,
    ),
    rule(
        S::Active,
        E::Suspend,
        Guard::Always,
        S::Suspended,
        Effects::RETIRE_INCOMING,
    ),
    rule(
        S::Active,
        E::Disable,
        Guard::Always,
        S::Active,
        Effects::NONE,
    ),
    rule(
        S::Suspended,
        E::Started,
        Guard::RunRequested,
        S::Started,
        Effects::NONE,
    ),
    rule(
        S::Suspended,
        E::Closed,
        Guard::NotDisabling,
        S::Closed,
        CLOSE_EFFECTS,
    ),
    rule(
        S::Suspended,
        E::Closed,
        Guard::Disabling,
        S::Disabled,
        CLOSE_EFFECTS,
    ),
    rule(
        S::Suspended,
        E::Disable,
        Guard::Always,
        S::Suspended,
        Effects::NONE,
    ),
    rule(
        S::Closed,
        E::Opened,
        Guard::Always,
        S::Opened,
        Effects::NONE,
    ),
    rule(
        S::Closed,
        E::Disable,
        Guard::Always,
        S::Disabled,
        Effects::NONE,
    ),
];

/// An event the machine refuses. The platform logs it; the machine is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateError {
    /// No rule handles `event` in `state` (a packet-era callback after Suspend, a second
    /// Opened, a Closed while running, …).
    IllegalEvent {
        /// The state the machine was in.
        state: ChannelState,
        /// The refused event.
        event: ChannelEvent,
    },
    /// `EvtChannelStarted` arrived although the driver never requested a start (or paused).
    StartedWhilePaused,
    /// A driver request (`Start`, `Pause`, `Disable`) arrived while a state-change callback was
    /// running. KMCL forbids calling `VmbChannelStart`/`VmbChannelPause` from inside one; ferry
    /// refuses all three there.
    RequestInsideCallback {
        /// The refused request.
        event: ChannelEvent,
        /// The callback that was running.
        callback: ChannelEvent,
    },
    /// A state-change callback arrived while another was still running (KMCL serialises them).
    OverlappingCallback {
        /// The refused callback.
        event: ChannelEvent,
        /// The callback that was running.
        running: ChannelEvent,
    },
    /// `operation` is not legal in `state`.
    NotPermitted {
        /// The state the machine was in.
        state: ChannelState,
        /// The refused operation.
        operation: Operation,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IllegalEvent { state, event } => {
                write!(f, "event {event} is not legal in state {state}")
            }
            Self::StartedWhilePaused => {
                f.write_str("EvtChannelStarted arrived but no VmbChannelStart was requested")
            }
            Self::RequestInsideCallback { event, callback } => write!(
                f,
                "request {event} made while the {callback} callback was running"
            ),
            Self::OverlappingCallback { event, running } => write!(
                f,
                "callback {event} arrived while the {running} callback was still running"
            ),
            Self::NotPermitted { state, operation } => {
                write!(f, "{operation:?} is not permitted in state {state}")
            }
        }
    }
}

/// The machine: the state plus the flags its guards read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelMachine {
    state: ChannelState,
    run_requested: bool,
    disabling: bool,
    callback: Option<ChannelEvent>,
}

impl Default for ChannelMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl ChannelMachine {
    /// A freshly allocated channel: `Initializing`, paused, not disabling.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            state: ChannelState::Initializing,
            run_requested: false,
            disabling: false,
            callback: None,
        }
    }

    /// The current state.
    #[inline]
    #[must_use]
    pub const fn state(&self) -> ChannelState {
        self.state
    }

    /// Whether the driver has requested `VmbChannelStart` (and not paused since).
    #[must_use]
    pub const fn run_requested(&self) -> bool {
        self.run_requested
    }

    /// Whether a `VmbChannelDisable` is in progress.
    #[must_use]
    pub const fn disabling(&self) -> bool {
        self.disabling
    }

    /// The state-change callback currently running, if any.
    #[must_use]
    pub const fn running_callback(&self) -> Option<ChannelEvent> {
        self.callback
    }

    /// Checks that `operation` is legal now.
    ///
    /// # Errors
    ///
    /// [`StateError::NotPermitted`] otherwise.
    #[inline]
    pub const fn check(&self, operation: Operation) -> Result<(), StateError> {
        if self.state.permits(operation) {
            Ok(())
        } else {
            Err(StateError::NotPermitted {
                state: self.state,
                operation,
            })
        }
    }

    /// Applies `event`: the pure transition function. On success the machine has moved and the
    /// returned effects are the caller's to perform; on error nothing changed.
    ///
    /// # Errors
    ///
    /// A [`StateError`] describing why the event is impossible now.
    pub fn apply(&mut self, event: ChannelEvent) -> Result<Effects, StateError> {
        let next = self.after(event)?;
        let effects = next.1;
        *self = next.0;
        Ok(effects)
    }

    /// What `event` would do, without doing it.
    ///
    /// # Errors
    ///
    /// As [`ChannelMachine::apply`].
    pub fn after(&self, event: ChannelEvent) -> Result<(Self, Effects), StateError> {
        if let Some(callback) = self.callback {
            if event.is_callback() {
                return Err(StateError::OverlappingCallback {
                    event,
                    running: callback,
                });
            }
            if matches!(event, E::Start | E::Pause | E::Disable) {
                return Err(StateError::RequestInsideCallback { event, callback });
            }
        }
        let mut next = *self;
        match event {
            E::Start => {
                if matches!(self.state, S::Initializing | S::Disabled) {
                    return Err(self.illegal(event));
                }
                next.run_requested = true;
                return Ok((next, Effects::NONE));
            }
            E::Pause => {
                if self.state == S::Disabled {
                    return Err(self.illegal(event));
                }
                next.run_requested = false;
                return Ok((next, Effects::NONE));
            }
            _ => {}
        }
        let mut saw_guarded_rule = false;
        for rule in RULES {
            if rule.from != self.state || rule.event != event {
                continue;
            }
            if !self.guard_holds(rule.guard) {
                saw_guarded_rule = true;
                continue;
            }
            next.state = rule.to;
            if event == E::Disable {
                next.disabling = rule.to != S::Disabled;
            }
            if rule.to == S::Disabled {
                next.run_requested = false;
            }
            return Ok((next, rule.effects));
        }
        if saw_guarded_rule && event == E::Started {
            return Err(StateError::StartedWhilePaused);
        }
        Err(self.illegal(event))
    }

    /// Marks a state-change callback as running (the channel holds this across the callback so
    /// that requests made from inside it are refused).
    ///
    /// # Errors
    ///
    /// [`StateError::OverlappingCallback`] if one is already running.
    pub fn enter_callback(&mut self, event: ChannelEvent) -> Result<(), StateError> {
        match self.callback {
            Some(running) => Err(StateError::OverlappingCallback { event, running }),
            None => {
                self.callback = Some(event);
                Ok(())
            }
        }
    }

    /// Marks the running state-change callback as finished.
    pub fn exit_callback(&mut self) {
        self.callback = None;
    }

    /// A machine in an arbitrary configuration, for tests.
    #[cfg(test)]
    pub(crate) const fn at(state: ChannelState, run_requested: bool, disabling: bool) -> Self {
        Self {
            state,
            run_requested,
            disabling,
            callback: None,
        }
    }

    const fn guard_holds(&self, guard: Guard) -> bool {
        match guard {
            Guard::Always => true,
            Guard::RunRequested => self.run_requested,
            Guard::Disabling => self.disabling,
            Guard::NotDisabling => !self.disabling,
        }
    }

    const fn illegal(&self, event: ChannelEvent) -> StateError {
        StateError::IllegalEvent {
            state: self.state,
            event,
        }
    }
}

#[cfg(test)]
mod tests;
