//! The IT4IT data objects of the Detect to Correct value stream as plain serde types: the ground
//! every other module stands on. No I/O, no clock, no Kafka here.

mod event;
mod incident;
mod output;
mod rfc;

pub use event::{Category, Event, Severity, Status};
pub use incident::{AlertRef, Impact, Incident, IncidentStatus, Priority, RootCause};
pub use output::{DlqRecord, Output};
pub use rfc::{Approval, Rfc, RfcCategory, Risk};

/// A stable 64-bit hash (xxh3) rendered as 16 lowercase hex digits. Used for fingerprints and
/// output ids, so they are identical across runs, processes and Rust versions.
pub fn stable_hash(parts: &[&str]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(p.as_bytes());
        // A separator that cannot occur in UTF-8 text, so ("ab","c") and ("a","bc") differ.
        h.update(&[0xff]);
    }
    format!("{:016x}", h.digest())
}
