//! Alert and Incident: the deduplicated state of one fingerprint, and a group of alerts that
//! share one cause, with the services and business capabilities it hurts.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Labels, Severity, Status};

/// The deduplicated state of one fingerprint, as listed on an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRef {
    pub fingerprint: Arc<str>,
    pub name: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Arc<str>>,
    pub source: Arc<str>,
    pub severity: Severity,
    pub status: Status,
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub first_seen: DateTime<Utc>,
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub last_seen: DateTime<Utc>,
    /// How many events this alert has absorbed (firing and resolved alike).
    pub count: u64,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// The alert's annotations as its source sent them when it fired (`summary`, `description`,
    /// `runbook_url`, `dashboard` …), text only and bounded in size (see
    /// `correlate::annotations`): links an on-call engineer can follow.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub annotations: Labels,
    /// The alert changed state often enough to count as flapping (`correlation.flap_threshold`
    /// changes within `correlation.flap_window`): while it flaps, its resolves do not resolve the
    /// incident.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flapping: bool,
    /// Resolved by d2c because its source sent nothing for the source's `resolve_timeout`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_resolved: bool,
    /// Set on incident records only: the root-cause service this alert's service depends on,
    /// so the alert is a symptom of that failure rather than a cause of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptom_of: Option<Arc<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Some alert fires (or all resolved less than `correlation.resolve_hold` ago).
    Open,
    /// Every alert resolved, and stayed so for the hold. Reopens (same id, new version) if one
    /// of its alerts fires again within `correlation.reopen_window`.
    Resolved,
    /// Final: `reopen_window` passed after resolution, or merged into another incident.
    Closed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }
}

/// A change event (deployment, configuration change), as d2c remembers it for change
/// correlation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The change event's id.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub source: String,
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub time: DateTime<Utc>,
}

/// A change seen shortly before an incident on one of its services, their dependencies or CIs:
/// a probable cause. Serialised as the change's fields plus `seconds_before_incident`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedChange {
    #[serde(flatten)]
    pub change: Change,
    /// Seconds from the change to the incident's opening.
    pub seconds_before_incident: i64,
}

/// ITIL priority, from the impact × urgency matrix. P1 is the most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    /// One step more urgent (P1 stays P1).
    pub fn escalated(self) -> Priority {
        match self {
            Priority::P1 | Priority::P2 => Priority::P1,
            Priority::P3 => Priority::P2,
            Priority::P4 => Priority::P3,
        }
    }

    /// `impact` and `urgency` are ranks 1 (highest) to 4 (lowest); the matrix is the usual ITIL
    /// one where each step down in either lowers the priority by one.
    pub fn from_matrix(impact: u8, urgency: u8) -> Priority {
        match (impact + urgency).saturating_sub(1).clamp(1, 4) {
            1 => Priority::P1,
            2 => Priority::P2,
            3 => Priority::P3,
            _ => Priority::P4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }

    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];
}

impl std::str::FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "P1" => Ok(Priority::P1),
            "P2" => Ok(Priority::P2),
            "P3" => Ok(Priority::P3),
            "P4" => Ok(Priority::P4),
            _ => Err(format!(
                "`{s}` is not a priority; expected P1, P2, P3 or P4"
            )),
        }
    }
}

/// The likely cause of an incident and why d2c thinks so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    /// The service; for alerts the model does not know, the name their labels give (`service`,
    /// `app` …) or their CI.
    pub service: String,
    pub reason: String,
    /// Set when the service model could not tell (the services are unknown to it): the cause
    /// is the earliest of the most severe alerts, a guess.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guess: bool,
}

/// Who owns a failing service and where to look when it fails, from the service model (the
/// topology file and Backstage).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceContext {
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<String>,
    /// The on-call rota or paging link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oncall: Option<String>,
}

impl ServiceContext {
    /// Whether the model knows nothing of the service's owners and links.
    pub fn is_empty(&self) -> bool {
        self.owner.is_none()
            && self.team.is_none()
            && self.runbook.is_none()
            && self.dashboard.is_none()
            && self.oncall.is_none()
    }
}

/// What changed in an incident since its previous version (the reasons a version was
/// published), listed on each version in `changed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aspect {
    /// The first version.
    Opened,
    Status,
    Priority,
    Severity,
    RootCause,
    /// Alerts joined (membership; the title follows it).
    Alerts,
    /// The failing services (those with an alert; the services affected follow from them).
    Services,
    Capabilities,
    /// The health of the incident or of a capability it hurts crossed a band (down, below 25,
    /// 50, 75, degraded, up); revenue at risk follows health.
    Impact,
    Acknowledged,
    RelatedChanges,
    Merged,
    Reopened,
    /// Security incidents: new stages, entities, techniques or tools.
    Security,
    /// Linked to a problem, or the problem's workaround changed.
    Problem,
}

impl Aspect {
    /// Whether a change of this aspect is worth a page or a chat message: people act on it.
    /// Alerts joining, affected services and related changes alone update tickets only.
    pub fn pages(self) -> bool {
        !matches!(
            self,
            Aspect::Alerts | Aspect::Services | Aspect::RelatedChanges
        )
    }
}
/// How well a service or capability works: `up` (health 100), `degraded` (between), `down`
/// (health 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Up,
    Degraded,
    Down,
}

impl ServiceState {
    /// The state of a health score 0–100.
    pub fn of(health: f64) -> ServiceState {
        if health >= 100.0 {
            ServiceState::Up
        } else if health <= 0.0 {
            ServiceState::Down
        } else {
            ServiceState::Degraded
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Up => "up",
            ServiceState::Degraded => "degraded",
            ServiceState::Down => "down",
        }
    }

    pub const ALL: [ServiceState; 3] =
        [ServiceState::Up, ServiceState::Degraded, ServiceState::Down];
}

/// What a failure costs one business capability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityImpact {
    pub capability: String,
    pub state: ServiceState,
    /// 0 (down) to 100 (up): the worst health of the services that deliver it.
    pub health: f64,
    /// The capability's users, in proportion to the health lost.
    pub users_affected: u64,
    /// The capability's revenue per minute, in proportion to the health lost.
    pub revenue_at_risk_per_minute: f64,
}

/// What the incident costs the business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// The most critical capability hurt: `high`, `medium`, `low`, or `none` when no capability
    /// is known.
    pub criticality: String,
    /// 0–100: the worst health among the capabilities hurt (or, when none is, among the
    /// services hurt); 100 when nothing is hurt.
    #[serde(default = "full_health")]
    pub health: f64,
    /// Sum of the revenue at risk of every capability hurt.
    pub revenue_at_risk_per_minute: f64,
    /// Sum of the users affected of every capability hurt.
    #[serde(default)]
    pub users_affected: u64,
    /// Seconds from opening to resolution (or to this version, while open).
    #[serde(default)]
    pub outage_seconds: i64,
    /// Revenue at risk accumulated since opening (per-minute risk × minutes, as the risk
    /// changed from version to version).
    #[serde(default)]
    pub cost: f64,
    /// Each capability hurt, worst first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<CapabilityImpact>,
}

fn full_health() -> f64 {
    100.0
}

impl Default for Impact {
    /// Nothing hurt: criticality `none`, health 100.
    fn default() -> Self {
        Impact {
            criticality: "none".into(),
            health: full_health(),
            revenue_at_risk_per_minute: 0.0,
            users_affected: 0,
            outage_seconds: 0,
            cost: 0.0,
            capabilities: Vec::new(),
        }
    }
}

/// A group of alerts that share one cause. Each change is published as a new `version`; the pair
/// `(id, version)` identifies a record on `d2c.incidents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub version: u32,
    pub status: IncidentStatus,
    pub severity: Severity,
    pub priority: Priority,
    pub title: String,
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub opened_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub updated_at: DateTime<Utc>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::model::serialize_time_opt"
    )]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::model::serialize_time_opt"
    )]
    pub closed_at: Option<DateTime<Utc>>,
    /// When someone acknowledged the incident (`POST /api/v1/incidents/{id}/ack`), and who.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::model::serialize_time_opt"
    )]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// How often the incident reopened after resolving.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reopened: u32,
    /// Set when the incident was merged into another (a later alert linked the two); this record
    /// is then the incident's last version, with status `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<RootCause>,
    /// Changes shortly before the incident on its services, their dependencies or CIs, newest
    /// first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_changes: Vec<RelatedChange>,
    /// Services with a firing or resolved alert of this incident.
    pub failing_services: Vec<String>,
    /// The failing services and every service that depends on them, directly or not.
    pub services: Vec<String>,
    /// Business capabilities delivered by any affected service.
    pub capabilities: Vec<String>,
    pub impact: Impact,
    /// Events absorbed by the incident's alerts when this version was made.
    pub event_count: u64,
    /// What changed since the previous version (`opened` on the first). Absent on records
    /// written before d2c listed it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<Aspect>,
    /// Owners and links (runbook, dashboard, on-call) of the failing services, root cause
    /// first, for the services the model has any for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<ServiceContext>,
    pub alerts: Vec<AlertRef>,
    /// How many of its alerts the record leaves out of `alerts` to fit the largest record the
    /// broker takes (the first to join are listed; see `Output::to_json_within`). Absent when
    /// it lists them all.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub alerts_omitted: u64,
    /// Set on security incidents only (see `correlate::security`): stages, entities,
    /// techniques and tools of the attack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<super::SecurityInfo>,
    /// The problem (recurring cause) this incident is one more occurrence of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The known error's workaround, when the problem is a known error: what to do now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workaround: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl Incident {
    /// Whether this version is worth a page or a chat message (Slack, PagerDuty): something
    /// people act on changed (see [`Aspect::pages`]). Records that do not say what changed
    /// count as worth it.
    pub fn worth_paging(&self) -> bool {
        self.changed.is_empty() || self.changed.iter().any(|a| a.pages())
    }
}
