//! The run of an RFC: which runbook implements it, on what, and the record of what happened
//! (who approved it, what was called, the tool's answer, how verification went). Carried on the
//! RFC (`automation`), each step a new version of the RFC on `topics.changes`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Priority;

/// What a runbook acts on, resolved from the service model when the RFC is raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The RFC's service: the incident's root cause, or its first failing service.
    pub service: String,
    /// The Kubernetes namespace and Deployment of that service (topology `kubernetes`, or the
    /// Backstage annotations `backstage.io/kubernetes-namespace` and `-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
}

/// The automation of an RFC and the record of its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The runbook (`[[automation.runbooks]]` `name`) the policy rule names.
    pub runbook: String,
    /// Seconds after implementation within which the incident must resolve for the RFC to be
    /// `successful` (the rule's `verify_within`).
    pub verify_within_seconds: u64,
    pub target: Target,
    /// Who approved the run: the change authority's `by`, or `pre-approved` for a pre-approved
    /// rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Set when d2c ran in `automation.dry_run`: `call` says what would have been called.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// What was called, e.g. `PATCH /apis/apps/v1/namespaces/shop/deployments/payments-api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// The tool's answer (shortened to 2 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Why the run failed, was refused, or the RFC is unsuccessful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the tool reported the change done (or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When verification ended: the incident resolved (`successful`) or `verify_within` passed
    /// without (`unsuccessful`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    /// The priority the incident was escalated to when the RFC turned out unsuccessful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_to: Option<Priority>,
}

/// What the automation stage reports about a run (`RunReport::outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// About to call the tool.
    Implementing,
    /// The tool did it.
    Implemented,
    /// The tool refused or failed, or the run was refused (rate limit, no target).
    Failed,
    /// `automation.dry_run`: nothing was called; `call` says what would have been.
    DryRun,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Implementing => "implementing",
            RunOutcome::Implemented => "implemented",
            RunOutcome::Failed => "failed",
            RunOutcome::DryRun => "dry_run",
        }
    }
}
