//! Event: one normalised monitoring or security signal, whatever tool sent it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How bad a signal is, worst first. The order of the variants is the order of badness:
/// `Critical < Major` in `Ord` means "critical is worse".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Major,
    Minor,
    Warning,
    Info,
}

impl Severity {
    /// Maps the severity words tools commonly use (Alertmanager labels, syslog levels, PagerDuty)
    /// to a `Severity`. Unknown words give `None`, so a parser can decide its own default.
    pub fn parse_loose(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "fatal" | "emergency" | "emerg" | "alert" | "disaster"
            | "page" | "p1" => Severity::Critical,
            "major" | "error" | "err" | "high" | "p2" => Severity::Major,
            "minor" | "average" | "medium" | "p3" => Severity::Minor,
            "warning" | "warn" | "low" | "p4" => Severity::Warning,
            "info" | "informational" | "information" | "notice" | "debug" | "none" | "ok"
            | "p5" => Severity::Info,
            _ => return None,
        })
    }

    /// Urgency rank used by the priority matrix: 1 (critical) to 4 (warning and info).
    pub fn urgency(self) -> u8 {
        match self {
            Severity::Critical => 1,
            Severity::Major => 2,
            Severity::Minor => 3,
            Severity::Warning | Severity::Info => 4,
        }
    }

    /// The lowercase word used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Whether the condition a signal reports is present or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

/// What kind of signal this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    #[default]
    Availability,
    Performance,
    Capacity,
    Security,
    Change,
    Other,
}

/// One normalised event. Parsers produce it from raw bytes; the engine consumes it. It is also
/// the JSON written to `d2c.events` between the ingest and the correlate stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Id of the signal in its source tool, or a stable hash when the tool has none.
    pub id: String,
    /// The tool or format the event came from (`native`, `alertmanager`, …).
    pub source: String,
    /// When the condition started (firing) or ended (resolved), as the source reported it.
    #[serde(
        deserialize_with = "super::time::deserialize",
        serialize_with = "super::time::serialize"
    )]
    pub time: DateTime<Utc>,
    /// The configuration item the signal is about, if the source named one; topology may
    /// resolve it from `labels` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    /// Short name of the condition, e.g. `HighErrorRate`.
    pub name: String,
    pub severity: Severity,
    pub status: Status,
    #[serde(default)]
    pub category: Category,
    /// Identifies the alert this event updates: events with the same fingerprint are one alert.
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form details (annotations, descriptions, links), carried but not interpreted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}
