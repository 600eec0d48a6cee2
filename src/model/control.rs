//! Control inputs: what people (or their tools) decide about incidents and changes. They reach
//! the engine as control records on the events topic (or control lines in a replay), so every
//! instance can take them and replay reproduces them. Silences, the third kind, are
//! `suppress::Silence`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Decision, DecisionStatus};

/// Someone acknowledged an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub incident: String,
    pub by: String,
    #[serde(deserialize_with = "super::deserialize_time")]
    pub time: DateTime<Utc>,
}

/// A change authority approved or rejected an RFC (e.g. in the ITSM tool).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeDecision {
    /// The RFC id.
    pub change: String,
    pub decision: DecisionStatus,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(deserialize_with = "super::deserialize_time")]
    pub time: DateTime<Utc>,
}

impl ChangeDecision {
    /// The decision as the RFC carries it.
    pub fn to_decision(&self) -> Decision {
        Decision {
            status: self.decision,
            by: self.by.clone(),
            at: self.time,
            comment: self.comment.clone(),
        }
    }
}
