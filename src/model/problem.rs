//! Problem and known error: the underlying cause of recurring incidents, and the workaround
//! people found for it (IT4IT Problem). Published on `topics.problems`, keyed by id, one version
//! per change, like incidents.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Priority;

/// Where a problem stands: `open` (recurring, cause being investigated) → `known_error` (the
/// cause is known and a workaround is given to every later incident) → `resolved` (fixed for
/// good; a new recurrence opens a new problem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemStatus {
    Open,
    KnownError,
    Resolved,
}

impl ProblemStatus {
    pub const ALL: [ProblemStatus; 3] = [
        ProblemStatus::Open,
        ProblemStatus::KnownError,
        ProblemStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemStatus::Open => "open",
            ProblemStatus::KnownError => "known_error",
            ProblemStatus::Resolved => "resolved",
        }
    }
}

/// A problem record. `(id, version)` identifies a record on `topics.problems`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub id: String,
    pub version: u32,
    pub status: ProblemStatus,
    pub title: String,
    /// The root-cause service its incidents share.
    pub service: String,
    /// The alert names of that service its incidents share (any of them matches); empty: any
    /// incident rooted at `service` matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_names: Vec<String>,
    /// The most urgent priority any of its incidents had.
    pub priority: Priority,
    /// Its most recent incidents, oldest first (at most `problem::MAX_LISTED`; `incident_count`
    /// counts them all).
    pub incidents: Vec<Arc<str>>,
    pub incident_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_occurrence: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_occurrence: Option<DateTime<Utc>>,
    /// Seconds its incidents were open, together.
    pub outage_seconds: i64,
    /// Revenue at risk its incidents accumulated, together.
    pub cost: f64,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `d2c` when recurrence opened it, else who opened it (`POST /api/v1/problems`).
    pub opened_by: String,
    /// The known error's workaround, given to every later incident that matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workaround: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_error_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_error_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// What people said when opening it by hand, marking it a known error or resolving it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}
