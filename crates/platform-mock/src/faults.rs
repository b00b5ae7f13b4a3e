//! The faults a scenario can inject, by name (`--faults a,b,c` or `--faults all`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Fault {
    /// Guests send malformed packets (truncated, bad length, unknown type, wrong direction).
    Malformed,
    /// Guests send packets larger than the protocol's largest message.
    Oversized,
    /// Guests flood deferred requests past the transaction quota.
    Flood,
    /// A guest crashes mid-transaction and reboots later.
    Crash,
    /// The first Opened of a VM refuses.
    RefuseOpen,
    /// Guests ack notifications late (possibly after a migration).
    LateAck,
    /// Guests never ack some notifications.
    NoAck,
    /// SaveContinue is first given a buffer that is too short.
    ShortBuffer,
    /// SavePacket fails during a migration (the migration is aborted).
    SavePacketFail,
    /// A port's runtime-state save fails (the migration is aborted).
    PortSaveFail,
    /// A pended port save never completes (detected by timeout; the migration is aborted).
    PortSaveHang,
    /// A blob is truncated in transfer (the destination must refuse it).
    Truncate,
    /// A bit of a blob is flipped in transfer (the destination must refuse it).
    BitFlip,
    /// A blob of another VM (or another kind) arrives (the destination must refuse it).
    Foreign,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Self; 14] = [
        Self::Malformed,
        Self::Oversized,
        Self::Flood,
        Self::Crash,
        Self::RefuseOpen,
        Self::LateAck,
        Self::NoAck,
        Self::ShortBuffer,
        Self::SavePacketFail,
        Self::PortSaveFail,
        Self::PortSaveHang,
        Self::Truncate,
        Self::BitFlip,
        Self::Foreign,
    ];

    /// The fault's command-line name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Oversized => "oversized",
            Self::Flood => "flood",
            Self::Crash => "crash",
            Self::RefuseOpen => "refuse-open",
            Self::LateAck => "late-ack",
            Self::NoAck => "no-ack",
            Self::ShortBuffer => "short-buffer",
            Self::SavePacketFail => "save-packet-fail",
            Self::PortSaveFail => "port-save-fail",
            Self::PortSaveHang => "port-save-hang",
            Self::Truncate => "truncate",
            Self::BitFlip => "bit-flip",
            Self::Foreign => "foreign",
        }
    }

    /// Whether the fault corrupts migration bytes.
    #[must_use]
    pub const fn corrupts_blobs(self) -> bool {
        matches!(self, Self::Truncate | Self::BitFlip | Self::Foreign)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of faults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultSet(pub BTreeSet<Fault>);

impl FaultSet {
    /// No faults.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Every fault.
    #[must_use]
    pub fn all() -> Self {
        Self(Fault::ALL.into_iter().collect())
    }

    /// Whether `fault` is in the set.
    #[must_use]
    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// The names, comma-separated (`none` when empty).
    #[must_use]
    pub fn names(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromStr for FaultSet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "all" => set.extend(Fault::ALL),
                "none" => {}
                _ => {
                    let fault = Fault::ALL
                        .into_iter()
                        .find(|f| f.name() == name)
                        .ok_or_else(|| {
                            let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                            format!(
                                "unknown fault `{name}` (known: all, none, {})",
                                known.join(", ")
                            )
                        })?;
                    set.insert(fault);
                }
            }
        }
        Ok(Self(set))
    }
}

#[cfg(test)]
mod tests {
    use super::{Fault, FaultSet};

    #[test]
    fn names_parse_back_and_unknown_names_are_refused() {
        for fault in Fault::ALL {
            let set: FaultSet = fault.name().parse().unwrap();
            assert!(set.has(fault));
            assert_eq!(set.0.len(), 1);
        }
        assert_eq!("all".parse::<FaultSet>().unwrap(), FaultSet::all());
        assert!("crash,nonsense".parse::<FaultSet>().is_err());
        assert_eq!(
            FaultSet::all().names().parse::<FaultSet>().unwrap(),
            FaultSet::all()
        );
    }
}
