//! The channel life cycle as a Mermaid state diagram, generated from [`RULES`] so the picture
//! in `docs/architecture.md` cannot drift from the code (a test compares them).

use core::fmt::{self, Write};

use super::state::{ChannelState, Effects, Guard, RULES};

/// Writes the `stateDiagram-v2` source for the transition table.
///
/// # Errors
///
/// Whatever `out` returns.
pub fn write_mermaid(out: &mut impl Write) -> fmt::Result {
    writeln!(out, "stateDiagram-v2")?;
    writeln!(out, "    [*] --> {}", ChannelState::Initializing.name())?;
    for rule in RULES {
        write!(out, "    {} --> {}: {}", rule.from, rule.to, rule.event)?;
        if rule.guard != Guard::Always {
            write!(out, " [{}]", rule.guard.label())?;
        }
        if rule.from == rule.to {
            write!(out, " / mark disabling")?;
        }
        write_effects(out, rule.effects)?;
        writeln!(out)?;
    }
    writeln!(out, "    {} --> [*]", ChannelState::Disabled.name())
}

fn write_effects(out: &mut impl Write, effects: Effects) -> fmt::Result {
    for (index, name) in effects.names().enumerate() {
        let separator = if index == 0 { " / " } else { ", " };
        write!(out, "{separator}{name}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_mermaid;
    use std::string::String;

    const BEGIN: &str = "<!-- channel-state-diagram:begin (generated from RULES; see channel::diagram) -->\n```mermaid\n";
    const END: &str = "```\n<!-- channel-state-diagram:end -->";

    #[test]
    fn committed_diagram_matches_the_transition_table() {
        let mut generated = String::new();
        write_mermaid(&mut generated).unwrap();
        let doc = include_str!("../../../../docs/architecture.md");
        let start = doc
            .find(BEGIN)
            .expect("diagram begin marker in docs/architecture.md")
            + BEGIN.len();
        let end = doc[start..].find(END).expect("diagram end marker") + start;
        assert_eq!(
            &doc[start..end],
            generated,
            "docs/architecture.md's channel diagram is stale; replace it with:\n{generated}"
        );
    }

    #[test]
    fn every_rule_appears_once() {
        let mut generated = String::new();
        write_mermaid(&mut generated).unwrap();
        let transitions = generated.lines().filter(|l| l.contains(": ")).count();
        assert_eq!(transitions, super::RULES.len());
    }
}
