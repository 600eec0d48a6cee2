//! Control inputs: what people (or their tools) decide about incidents, changes and problems,
//! and what the automation stage reports about the runs of RFCs. They reach the engine as
//! control records on the events topic (or control lines in a replay), so every instance can
//! take them and replay reproduces them. Silences are `suppress::Silence`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Decision, DecisionStatus, Priority, RunOutcome};

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

/// A person's (or their tool's) action on problems: open one by hand, mark one a known error
/// with its workaround, or resolve one. The id of a problem opened by hand is given by whoever
/// writes the record (the HTTP endpoint derives it), so every copy names the same problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProblemAction {
    Open {
        /// The new problem's id (`PRB-…`).
        problem: String,
        title: String,
        /// The root-cause service of the incidents it stands for.
        service: String,
        /// Alert names of that service that match (any of them); empty: any.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        alert_names: Vec<String>,
        /// Incidents to link at once (those the owning engine still remembers).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        incidents: Vec<String>,
        #[serde(default = "default_priority")]
        priority: Priority,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        #[serde(deserialize_with = "super::deserialize_time")]
        time: DateTime<Utc>,
    },
    KnownError {
        problem: String,
        /// What to do when it recurs, given to every later incident that matches.
        workaround: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        #[serde(deserialize_with = "super::deserialize_time")]
        time: DateTime<Utc>,
    },
    Resolve {
        problem: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        #[serde(deserialize_with = "super::deserialize_time")]
        time: DateTime<Utc>,
    },
}

fn default_priority() -> Priority {
    Priority::P3
}

impl ProblemAction {
    /// The problem the action is about.
    pub fn problem(&self) -> &str {
        match self {
            ProblemAction::Open { problem, .. }
            | ProblemAction::KnownError { problem, .. }
            | ProblemAction::Resolve { problem, .. } => problem,
        }
    }

    pub fn time(&self) -> DateTime<Utc> {
        match self {
            ProblemAction::Open { time, .. }
            | ProblemAction::KnownError { time, .. }
            | ProblemAction::Resolve { time, .. } => *time,
        }
    }
}

/// What the automation stage reports about the run of an RFC. The engine that raised the RFC
/// publishes its next version from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    /// The RFC id.
    pub change: String,
    pub outcome: RunOutcome,
    /// What was called (or would have been, in a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// The tool's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Why it failed or was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(deserialize_with = "super::deserialize_time")]
    pub time: DateTime<Utc>,
}
