//! The IT4IT data objects of the Detect to Correct value stream as plain serde types (events,
//! alerts, incidents, RFCs and their runs, problems): the ground every other module stands on.
//! No I/O, no clock, no Kafka here.

pub mod attack;
mod control;
mod event;
pub mod hashing;
mod incident;
mod labels;
mod output;
mod problem;
mod rfc;
mod run;
mod security;
mod time;
pub mod tracked;

pub use control::{Ack, ChangeDecision, ProblemAction, RunReport};
pub use event::{Category, Event, Severity, Status};
pub use incident::{
    AlertRef, Aspect, CapabilityImpact, Change, Impact, Incident, IncidentStatus, Priority,
    RelatedChange, RootCause, ServiceContext, ServiceState,
};
pub use labels::Labels;
pub use output::{DlqRecord, Output};
pub use problem::{Problem, ProblemStatus};
pub use rfc::{
    Approval, Containment, ContainmentAction, Decision, DecisionStatus, Rfc, RfcCategory,
    RfcStatus, Risk,
};
pub use run::{Run, RunOutcome, Target};
pub use security::{Entities, SecurityInfo, Stage};
pub use time::{
    FIRST_YEAR, LAST_YEAR, deserialize as deserialize_time, format_rfc3339, in_range, later,
    parse_rfc3339, serialize as serialize_time, serialize_opt as serialize_time_opt, span,
};

/// The number `b` writes in decimal ASCII digits: `None` when it is empty, holds anything but
/// digits, or overflows a `u32`. Faster than `str::parse` (which also takes a sign) on the hot
/// paths that read digits d2c or the RFC 3339 shape put there: timestamps and label lengths.
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u32::from(c - b'0')))
            .flatten()
    })
}

/// A stable 64-bit hash (xxh3) rendered as 16 lowercase hex digits. Used for fingerprints and
/// output ids, so they are identical across runs, processes and Rust versions.
pub fn stable_hash(parts: &[&str]) -> String {
    let mut h = StableHasher::default();
    for p in parts {
        h.part(p);
    }
    h.hex()
}

/// [`stable_hash`] fed part by part, for callers that would otherwise build strings only to
/// hash them: `h.part_of(&[k, "=", v])` hashes exactly like the part `format!("{k}={v}")`.
#[derive(Default)]
pub struct StableHasher(xxhash_rust::xxh3::Xxh3);

impl std::fmt::Debug for StableHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StableHasher")
    }
}

impl StableHasher {
    /// Adds one part.
    pub fn part(&mut self, part: &str) -> &mut Self {
        self.part_of(&[part])
    }

    /// Adds one part made of `pieces` written one after another.
    pub fn part_of(&mut self, pieces: &[&str]) -> &mut Self {
        for p in pieces {
            self.0.update(p.as_bytes());
        }
        // A separator that cannot occur in UTF-8 text, so ("ab","c") and ("a","bc") differ.
        self.0.update(&[0xff]);
        self
    }

    /// The hash of the parts so far, as 16 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0.digest())
    }
}
