//! A field's value as `inspect` shows it: text for people and JSON for tools, per
//! [`Shape`]. Values are shown as found; judging them is the kind's decoder's job.

use std::net::{Ipv4Addr, Ipv6Addr};

use ferry_core::platform::Ticks;
use ferry_core::port::saved::FLOW_RECORD_LEN;
use ferry_core::protocol::Event;
use ferry_core::saved_state::Field;
use serde_json::{Value, json};

use super::catalog::Shape;

/// A shown value.
#[derive(Debug)]
pub struct Shown {
    /// One line of text (flow records add lines of their own).
    pub text: String,
    /// The value for `--json`.
    pub json: Value,
    /// Flow records, one line each.
    pub records: Vec<String>,
}

impl Shown {
    fn plain(text: String, json: Value) -> Self {
        Self {
            text,
            json,
            records: Vec::new(),
        }
    }
}

/// `field` shown as `shape`; a value of the wrong length is shown as hex with a note.
pub fn show(field: &Field<'_>, shape: Shape) -> Shown {
    let shown = match shape {
        Shape::U64 => field
            .u64()
            .ok()
            .map(|v| Shown::plain(v.to_string(), json!(v))),
        Shape::Ticks => field.u64().ok().map(ticks),
        Shape::Bits32 => field
            .u32()
            .ok()
            .map(|v| Shown::plain(format!("{v:#010x}"), json!(v))),
        Shape::U16 => field
            .u16()
            .ok()
            .map(|v| Shown::plain(v.to_string(), json!(v))),
        Shape::Event => field.u32().ok().map(event),
        Shape::Events => field.u32().ok().map(events),
        Shape::Identity => field.array::<16>().ok().map(identity),
        Shape::FlowRecords => flows(field),
    };
    shown.unwrap_or_else(|| raw(field.bytes(), "wrong length for this field"))
}

/// Bytes of an unknown or malformed field.
pub fn raw(bytes: &[u8], note: &str) -> Shown {
    let hex = hex(bytes);
    Shown::plain(
        format!("{} bytes: {hex} ({note})", bytes.len()),
        json!({ "hex": hex, "note": note }),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ticks(value: u64) -> Shown {
    // Shown in seconds for people; f64 is exact enough for a display.
    #[allow(clippy::cast_precision_loss)]
    let seconds = value as f64 / Ticks::PER_SECOND as f64;
    Shown::plain(
        format!("{value} ticks ({seconds} s)"),
        json!({ "ticks": value }),
    )
}

fn event_name(bit: u32) -> Option<&'static str> {
    match Event::from_u32(bit)? {
        Event::PortStats => Some("port-statistics"),
        Event::Heartbeat => Some("heartbeat"),
    }
}

fn event(value: u32) -> Shown {
    let name = event_name(value).unwrap_or("not one known event bit");
    Shown::plain(
        format!("{value} ({name})"),
        json!({ "bits": value, "name": event_name(value) }),
    )
}

fn events(value: u32) -> Shown {
    let mut names = Vec::new();
    let mut unknown = 0u32;
    for bit in (0..32)
        .map(|shift| 1u32 << shift)
        .filter(|bit| value & bit != 0)
    {
        match event_name(bit) {
            Some(name) => names.push(name.to_string()),
            None => unknown |= bit,
        }
    }
    let mut text = format!("{value:#x}");
    if value == 0 {
        text.push_str(" (none)");
    } else {
        let mut parts = names.clone();
        if unknown != 0 {
            parts.push(format!("unknown bits {unknown:#x}"));
        }
        text.push_str(&format!(" ({})", parts.join(", ")));
    }
    Shown::plain(
        text,
        json!({ "bits": value, "names": names, "unknown_bits": unknown }),
    )
}

fn identity(bytes: &[u8; 16]) -> Shown {
    let hex = hex(bytes);
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|s| s.chars().all(|c| c.is_ascii_graphic() || c == ' '));
    let shown = match text {
        Some(text) => format!("{hex} (\"{text}\")"),
        None => hex.clone(),
    };
    Shown::plain(shown, json!({ "hex": hex, "text": text }))
}

/// The port kind's flow records; `None` when the array's framing or record length is wrong.
fn flows(field: &Field<'_>) -> Option<Shown> {
    let records = field.records(u32::MAX).ok()?;
    if records.record_len() < FLOW_RECORD_LEN && !records.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    let mut values = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let (line, value) = flow(record.bytes());
        lines.push(format!("[{index}] @{} {line}", record.offset()));
        values.push(value);
    }
    Some(Shown {
        text: format!(
            "{} records of {} bytes",
            records.count(),
            records.record_len()
        ),
        json: json!({
            "count": records.count(),
            "record_len": records.record_len(),
            "records": values,
        }),
        records: lines,
    })
}

/// One flow record (layout in `docs/saved-state/port-runtime-state.md`, "Flow records").
fn flow(bytes: &[u8]) -> (String, Value) {
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let address = |at: usize| -> [u8; 16] {
        bytes
            .get(at..at + 16)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default()
    };
    let family = bytes.first().copied().unwrap_or(0);
    let protocol = bytes.get(1).copied().unwrap_or(0);
    let (source_port, destination_port) = (u16_at(2), u16_at(4));
    let show_address = |raw: [u8; 16]| match family {
        4 => {
            let [.., a, b, c, d] = raw;
            Ipv4Addr::new(a, b, c, d).to_string()
        }
        _ => Ipv6Addr::from(raw).to_string(),
    };
    let source = show_address(address(6));
    let destination = show_address(address(22));
    let endpoint = |address: &str, port: u16| {
        if family == 4 {
            format!("{address}:{port}")
        } else {
            format!("[{address}]:{port}")
        }
    };
    let (frames, bytes_seen, age) = (u64_at(38), u64_at(46), u64_at(54));
    let family_name = match family {
        4 => "IPv4".to_string(),
        6 => "IPv6".to_string(),
        other => format!("family {other} (invalid)"),
    };
    let protocol_name = match protocol {
        6 => "TCP".to_string(),
        17 => "UDP".to_string(),
        other => format!("protocol {other}"),
    };
    let line = format!(
        "{family_name} {protocol_name} {} -> {}, {frames} frames, {bytes_seen} bytes, \
         last frame {age} ticks before the save",
        endpoint(&source, source_port),
        endpoint(&destination, destination_port),
    );
    let value = json!({
        "family": family,
        "protocol": protocol,
        "source": source,
        "source_port": source_port,
        "destination": destination,
        "destination_port": destination_port,
        "frames": frames,
        "bytes": bytes_seen,
        "age_ticks": age,
    });
    (line, value)
}
