//! One blob's report: envelope, checksum verdict, fields, and the restore verdict.

use std::fmt::Write as _;

use ferry_core::channel::TransactionState;
use ferry_core::platform::Ticks;
use ferry_core::port::RestoreError;
use ferry_core::port::saved::{check_blob, tags};
use ferry_core::saved_state::{
    BlobKind, Crc32c, DecodeError, DecodeErrorKind, Fields, HEADER_LEN, MAGIC, Version, open_any,
};
use ferry_core::service::{NotificationTx, SavedSession};
use ferry_core::status::NtStatus;
use serde_json::{Value, json};

use super::REFERENCE_FLOW_CAPACITY;
use super::catalog::{self, FieldSpec};
use super::value::{self, Shown};

/// The envelope header as found (before any check): shown even for a rejected blob, so
/// the engineer sees what the header claims.
#[derive(Debug)]
pub struct Header {
    magic: [u8; 4],
    version: Version,
    kind: u16,
    flags: u16,
    payload_len: u32,
    stored_checksum: u32,
}

/// Whether the CRC-32C over header and payload matches the stored one.
#[derive(Debug, PartialEq, Eq)]
pub enum ChecksumVerdict {
    /// It matches.
    Ok(u32),
    /// It does not.
    Mismatch {
        /// In the header.
        stored: u32,
        /// Of the bytes.
        computed: u32,
    },
    /// It cannot be computed: the blob is shorter than its header or its payload length
    /// differs from the bytes present.
    NotChecked(&'static str),
}

/// One field as found.
#[derive(Debug)]
pub struct FieldLine {
    number: u16,
    critical: bool,
    offset: usize,
    length: usize,
    spec: Option<FieldSpec>,
    shown: Shown,
}

/// Why a blob was rejected.
#[derive(Debug)]
pub struct Rejection {
    /// The error's variant name (`ChecksumMismatch`, `InvalidRateLimit`, ...).
    pub error: String,
    /// What went wrong.
    pub message: String,
    /// The byte offset in the blob where decoding stopped.
    pub offset: usize,
    /// The `NTSTATUS` the restore callback would return.
    pub status: NtStatus,
}

/// Everything `inspect` says about one blob.
#[derive(Debug)]
pub struct Report {
    /// The blob's name as given.
    pub name: String,
    /// Its size in bytes.
    pub size: usize,
    /// The header as found, when the blob has one.
    pub header: Option<Header>,
    /// The checksum verdict.
    pub checksum: ChecksumVerdict,
    /// The kind, when the envelope is valid.
    pub kind: Option<BlobKind>,
    /// Every field, when the envelope is valid (or only its checksum is wrong).
    pub fields: Vec<FieldLine>,
    /// The fields were listed although the checksum does not match.
    pub fields_unverified: bool,
    /// Why it was rejected; `None` when accepted.
    pub rejection: Option<Rejection>,
}

impl Report {
    /// Whether the blob passed every check.
    pub fn accepted(&self) -> bool {
        self.rejection.is_none()
    }
}

/// Decodes `blob` (named `name` in the report).
pub fn inspect(name: &str, blob: &[u8]) -> Report {
    let header = read_header(blob);
    let checksum = checksum_verdict(blob, header.as_ref());
    let mut report = Report {
        name: name.to_string(),
        size: blob.len(),
        header,
        checksum,
        kind: None,
        fields: Vec::new(),
        fields_unverified: false,
        rejection: None,
    };
    match open_any(blob) {
        Err(error) => {
            // Only the checksum failed: the fields are still worth seeing, marked unverified.
            let kind = report
                .header
                .as_ref()
                .and_then(|h| BlobKind::from_u16(h.kind));
            if let (DecodeErrorKind::ChecksumMismatch { .. }, Some(kind)) = (error.kind(), kind) {
                report.kind = Some(kind);
                report.fields_unverified = true;
                report.fields = list_fields(kind, Fields::new(&blob[HEADER_LEN..], HEADER_LEN));
            }
            report.rejection = Some(decode_rejection(&error));
        }
        Ok(payload) => {
            report.kind = Some(payload.kind());
            report.fields = list_fields(payload.kind(), payload.fields());
            report.rejection = restore_check(payload.kind(), blob, &report.fields);
        }
    }
    report
}

fn read_header(blob: &[u8]) -> Option<Header> {
    let header: &[u8; HEADER_LEN] = blob.first_chunk()?;
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let u32_at = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    Some(Header {
        magic: [header[0], header[1], header[2], header[3]],
        version: Version {
            major: u16_at(4),
            minor: u16_at(6),
        },
        kind: u16_at(8),
        flags: u16_at(10),
        payload_len: u32_at(12),
        stored_checksum: u32_at(16),
    })
}

/// The checksum verdict on its own, whatever else is wrong with the blob (the envelope layout
/// is in `crates/core/src/saved_state/envelope.rs`: CRC-32C of bytes 0..16, then the payload).
fn checksum_verdict(blob: &[u8], header: Option<&Header>) -> ChecksumVerdict {
    let Some(header) = header else {
        return ChecksumVerdict::NotChecked("the blob is shorter than the 20-byte header");
    };
    let payload = &blob[HEADER_LEN..];
    if usize::try_from(header.payload_len).ok() != Some(payload.len()) {
        return ChecksumVerdict::NotChecked(
            "the header's payload length differs from the bytes present",
        );
    }
    let mut crc = Crc32c::new();
    crc.update(&blob[..16]);
    crc.update(payload);
    let computed = crc.finish();
    if computed == header.stored_checksum {
        ChecksumVerdict::Ok(computed)
    } else {
        ChecksumVerdict::Mismatch {
            stored: header.stored_checksum,
            computed,
        }
    }
}

fn decode_rejection(error: &DecodeError) -> Rejection {
    Rejection {
        error: error.kind().name().to_string(),
        message: error.kind().to_string(),
        offset: error.offset(),
        status: error.status(),
    }
}

/// Every field of a payload of `kind`, up to the first framing error.
fn list_fields(kind: BlobKind, mut fields: Fields<'_>) -> Vec<FieldLine> {
    let specs = catalog::fields_of(kind);
    let mut lines = Vec::new();
    while let Ok(Some(field)) = fields.next_field() {
        let number = field.tag().number();
        let spec = specs.iter().find(|s| s.number == number).copied();
        let shown = match spec {
            Some(spec) => value::show(&field, spec.shape),
            None => value::raw(field.bytes(), "not a field of this version of the kind"),
        };
        lines.push(FieldLine {
            number,
            critical: field.tag().is_critical(),
            offset: field.offset(),
            length: field.bytes().len(),
            spec,
            shown,
        });
    }
    lines
}

/// Runs the kind's own restore checks from ferry-core; `None` when they pass.
fn restore_check(kind: BlobKind, blob: &[u8], fields: &[FieldLine]) -> Option<Rejection> {
    match kind {
        BlobKind::OutgoingTransaction => NotificationTx::restore(blob, Ticks(0))
            .err()
            .map(|error| decode_rejection(&error.0)),
        BlobKind::ChannelSession => SavedSession::decode(blob)
            .err()
            .map(|error| decode_rejection(&error)),
        BlobKind::PortRuntimeState => match check_blob(blob, REFERENCE_FLOW_CAPACITY) {
            Ok(()) => None,
            Err(RestoreError::Decode(error)) => Some(decode_rejection(&error)),
            Err(error @ RestoreError::InvalidRateLimit { direction, .. }) => {
                // The fields decoded; the direction's five bucket fields disagree. Point at
                // the first of them.
                let first = match direction {
                    ferry_core::port::Direction::Ingress => tags::FIRST_INGRESS_BUCKET,
                    ferry_core::port::Direction::Egress => tags::FIRST_EGRESS_BUCKET,
                };
                let offset = fields
                    .iter()
                    .find(|f| f.number == first)
                    .map_or(blob.len(), |f| f.offset);
                Some(Rejection {
                    error: "InvalidRateLimit".to_string(),
                    message: error.to_string(),
                    offset,
                    status: error.status(),
                })
            }
            Err(error @ RestoreError::IdentityMismatch { .. }) => Some(Rejection {
                error: "IdentityMismatch".to_string(),
                message: error.to_string(),
                offset: HEADER_LEN,
                status: error.status(),
            }),
        },
    }
}

fn kind_name(raw: u16) -> String {
    BlobKind::from_u16(raw).map_or_else(|| format!("unknown ({raw})"), |kind| kind.to_string())
}

fn status_json(status: NtStatus) -> Value {
    json!({
        "name": status.name(),
        "value": format!("{:#010x}", status.0.cast_unsigned()),
    })
}

impl Report {
    /// The report as text, one block per blob.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}: {} bytes", self.name, self.size);
        match &self.header {
            Some(h) => {
                let magic = if h.magic == MAGIC {
                    "FRRY".to_string()
                } else {
                    format!("{:02x?} (not FRRY)", h.magic)
                };
                let _ = writeln!(
                    out,
                    "  envelope  magic {magic}, format version {}, kind {}, flags {:#06x}, payload {} bytes",
                    h.version,
                    kind_name(h.kind),
                    h.flags,
                    h.payload_len
                );
            }
            None => {
                let _ = writeln!(out, "  envelope  none: shorter than the 20-byte header");
            }
        }
        let checksum = match &self.checksum {
            ChecksumVerdict::Ok(value) => format!("ok (CRC-32C {value:#010x})"),
            ChecksumVerdict::Mismatch { stored, computed } => {
                format!("MISMATCH (stored {stored:#010x}, computed {computed:#010x})")
            }
            ChecksumVerdict::NotChecked(why) => format!("not checked: {why}"),
        };
        let _ = writeln!(out, "  checksum  {checksum}");
        if let Some(kind) = self.kind {
            let unverified = if self.fields_unverified {
                "UNVERIFIED (checksum mismatch), "
            } else {
                ""
            };
            let _ = writeln!(out, "  fields    ({unverified}{})", catalog::page_of(kind));
        }
        for field in &self.fields {
            let name = field.spec.map_or("(unknown)", |s| s.name);
            let critical = if field.critical { " critical" } else { "" };
            let _ = writeln!(
                out,
                "    {:>3}{critical} @{:<4} {name} = {}",
                field.number, field.offset, field.shown.text
            );
            if let Some(spec) = field.spec {
                let _ = writeln!(out, "               {}", spec.meaning);
            }
            for record in &field.shown.records {
                let _ = writeln!(out, "               {record}");
            }
        }
        match &self.rejection {
            None => {
                let _ = writeln!(out, "  verdict   accepted");
            }
            Some(r) => {
                let _ = writeln!(
                    out,
                    "  verdict   REJECTED: {}: {} (at byte offset {}; restore returns {})",
                    r.error, r.message, r.offset, r.status
                );
            }
        }
        out
    }

    /// The report as a JSON object.
    pub fn to_json(&self) -> Value {
        let header = self.header.as_ref().map(|h| {
            json!({
                "magic_ok": h.magic == MAGIC,
                "version": h.version.to_string(),
                "kind": h.kind,
                "kind_name": BlobKind::from_u16(h.kind).map(|k| k.to_string()),
                "flags": h.flags,
                "payload_len": h.payload_len,
                "stored_checksum": h.stored_checksum,
            })
        });
        let checksum = match &self.checksum {
            ChecksumVerdict::Ok(value) => json!({ "verdict": "ok", "computed": value }),
            ChecksumVerdict::Mismatch { stored, computed } => {
                json!({ "verdict": "mismatch", "stored": stored, "computed": computed })
            }
            ChecksumVerdict::NotChecked(why) => json!({ "verdict": "not-checked", "reason": why }),
        };
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|f| {
                json!({
                    "number": f.number,
                    "critical": f.critical,
                    "offset": f.offset,
                    "length": f.length,
                    "name": f.spec.map(|s| s.name),
                    "meaning": f.spec.map(|s| s.meaning),
                    "value": f.shown.json,
                })
            })
            .collect();
        let rejection = self.rejection.as_ref().map(|r| {
            json!({
                "error": r.error,
                "message": r.message,
                "offset": r.offset,
                "status": status_json(r.status),
            })
        });
        json!({
            "blob": self.name,
            "size": self.size,
            "envelope": header,
            "checksum": checksum,
            "kind": self.kind.map(|k| k.to_string()),
            "fields": fields,
            "fields_unverified": self.fields_unverified,
            "accepted": self.accepted(),
            "rejection": rejection,
        })
    }
}
