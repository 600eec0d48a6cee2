//! Output: every record d2c publishes, tagged by `type`. The same JSON goes to Kafka and to
//! `d2c replay`'s standard output, so a scenario can be checked offline and online alike.

use serde::{Deserialize, Serialize};

use super::{Incident, Problem, Rfc};

/// A raw payload that could not become an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlqRecord {
    /// Machine-readable reason. From ingest: `malformed_json`, `oversize`, `missing_field`,
    /// `unknown_format`, `invalid_value`, `not_utf8`, `too_many_events`, `time_out_of_range`,
    /// `clock_ahead`, `expansion_limit`, `internal_error`; from the engine:
    /// `time_out_of_range`, `clock_behind`, `internal_error`, `invalid_transition`, and a refused
    /// silence's reason.
    pub reason: String,
    /// A sentence saying what was wrong, for the person reading the DLQ.
    pub detail: String,
    /// The original payload (lossy UTF-8 for display; Kafka keeps the exact bytes).
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
// `allow`, not `expect`: whether the lint fires depends on how far Incident outgrows Rfc,
// which changes as either gains fields.
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every output is an incident; boxing it would add an allocation to each"
)]
pub enum Output {
    Incident(Incident),
    Change(Rfc),
    Problem(Problem),
    Dlq(DlqRecord),
}

impl Output {
    /// The record as one line of JSON, without the trailing newline.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string keys, no floats
        // that are NaN (revenue is a sum of configured finite numbers).
        serde_json::to_string(self).expect("output records always serialise")
    }
}
