//! RFC: the change request proposed to correct an incident.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Priority, Run};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RfcCategory {
    Emergency,
    Standard,
    Normal,
}

impl RfcCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            RfcCategory::Emergency => "emergency",
            RfcCategory::Standard => "standard",
            RfcCategory::Normal => "normal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Pre-approved (a standard change): may be carried out at once.
    PreApproved,
    /// Waits for a change authority.
    Required,
}

/// A change request. Its id is stable for a given incident and policy rule, so a re-run of the
/// same input gives the same RFC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rfc {
    pub id: String,
    pub version: u32,
    pub incident_id: String,
    /// The policy rule that raised it.
    pub rule: String,
    pub category: RfcCategory,
    pub action: String,
    /// The service the action is for: the incident's root cause when the RFC was raised (the
    /// RFC is withdrawn when the root cause moves elsewhere). Absent on containment RFCs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub cis: Vec<String>,
    pub services: Vec<String>,
    pub risk: Risk,
    pub approval: Approval,
    /// Where the RFC stands in its lifecycle (see [`RfcStatus`]); each step is a new version.
    /// Records written before d2c tracked it read as `proposed`.
    #[serde(default = "RfcStatus::proposed")]
    pub status: RfcStatus,
    /// Why it reached its status when d2c moved it there: why it was withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub priority: Priority,
    pub created_at: DateTime<Utc>,
    /// When the status last changed (absent while it is the status it was raised with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// The change authority's decision, once it was given (`POST /api/v1/changes/{id}/decision`,
    /// e.g. from the ITSM tool); published as a new version of the RFC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Box<Decision>>,
    /// Set on containment RFCs of security incidents: what to contain and which entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<Containment>,
    /// Set when the policy rule names an `automation`: the runbook that implements the RFC once
    /// approved, and the record of its run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation: Option<Box<Run>>,
}

/// Where an RFC stands in its lifecycle (IT4IT Change): proposed → approved | rejected →
/// implementing → implemented | failed → successful | unsuccessful (verified by the incident
/// resolving, or not), or withdrawn when its incident no longer needs it. Each step is a new
/// version of the RFC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RfcStatus {
    #[default]
    Proposed,
    Approved,
    Rejected,
    Implementing,
    Implemented,
    Failed,
    Successful,
    Unsuccessful,
    Withdrawn,
}

impl RfcStatus {
    /// The status of a new RFC (the serde default of records written before statuses).
    pub fn proposed() -> RfcStatus {
        RfcStatus::Proposed
    }

    pub const ALL: [RfcStatus; 9] = [
        RfcStatus::Proposed,
        RfcStatus::Approved,
        RfcStatus::Rejected,
        RfcStatus::Implementing,
        RfcStatus::Implemented,
        RfcStatus::Failed,
        RfcStatus::Successful,
        RfcStatus::Unsuccessful,
        RfcStatus::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RfcStatus::Proposed => "proposed",
            RfcStatus::Approved => "approved",
            RfcStatus::Rejected => "rejected",
            RfcStatus::Implementing => "implementing",
            RfcStatus::Implemented => "implemented",
            RfcStatus::Failed => "failed",
            RfcStatus::Successful => "successful",
            RfcStatus::Unsuccessful => "unsuccessful",
            RfcStatus::Withdrawn => "withdrawn",
        }
    }

    /// Whether nothing more happens to an RFC in this status.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RfcStatus::Rejected
                | RfcStatus::Failed
                | RfcStatus::Successful
                | RfcStatus::Unsuccessful
                | RfcStatus::Withdrawn
        )
    }
}

/// Approved or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionStatus {
    Approved,
    Rejected,
}

impl DecisionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionStatus::Approved => "approved",
            DecisionStatus::Rejected => "rejected",
        }
    }
}

/// A change authority's decision on an RFC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub status: DecisionStatus,
    /// Who decided.
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A containment action on the entities of a security incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainmentAction {
    /// Cut the incident's hosts off the network (`targets`: host names).
    IsolateHost,
    /// Block the addresses the attack came from (`targets`: source addresses).
    BlockIp,
    /// Disable the accounts the attack used (`targets`: user names).
    DisableUser,
    /// Stop the containers the attack ran in (`targets`: container names or ids).
    KillContainer,
}

impl ContainmentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainmentAction::IsolateHost => "isolate_host",
            ContainmentAction::BlockIp => "block_ip",
            ContainmentAction::DisableUser => "disable_user",
            ContainmentAction::KillContainer => "kill_container",
        }
    }
}

/// What a containment RFC asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Containment {
    pub action: ContainmentAction,
    /// The entities to act on, taken from the incident's `security.entities`.
    pub targets: Vec<String>,
}
