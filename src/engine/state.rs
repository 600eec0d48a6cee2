//! What the engine remembers between inputs, serialisable so the shell can checkpoint it and
//! restore it after a crash or a rebalance: the correlation state, what was last published of
//! every incident and RFC, the clock, the raw-input positions applied, silences and suppressed
//! alerts, the security incidents, problems, and RFC runs awaiting verification.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::correlate;
use crate::model::{IncidentStatus, Priority, Rfc};
use crate::suppress::{InhibitState, Silence, SuppressReason};

/// Most suppressed alerts remembered per engine (the oldest go first).
pub const MAX_SUPPRESSED: usize = 10_000;

/// An alert whose events were suppressed: kept so that suppression stays visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuppressedAlert {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub reason: SuppressReason,
    /// The silence id, maintenance window name or inhibiting rule and alert.
    pub by: String,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// Everything the engine remembers; serialisable so it can be checkpointed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EngineState {
    pub correlation: correlate::State,
    /// What was last published of every incident still remembered.
    pub published: BTreeMap<String, Published>,
    /// Ids of RFCs already raised per incident, so each is raised once.
    pub rfcs: BTreeMap<String, BTreeSet<String>>,
    /// The latest event or tick time seen: the engine's notion of "now".
    pub clock: Option<DateTime<Utc>>,
    /// Per raw-topic partition, the position of the last event applied: events at or before it
    /// are redeliveries (after a restart of the ingest stage) and are skipped.
    pub origins: BTreeMap<i32, (i64, u32)>,
    /// Alerts whose events were suppressed, by fingerprint (at most [`MAX_SUPPRESSED`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suppressed: BTreeMap<String, SuppressedAlert>,
    /// Firing alerts that may inhibit others (see `[[suppression.inhibit]]`), as of the last
    /// [`Engine::checkpoint_state`].
    #[serde(default)]
    pub inhibit: InhibitState,
    /// Silences added at run time (`POST /api/v1/silences`), by id, so a restored engine has
    /// them again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub silences: BTreeMap<String, Silence>,
    /// The last published version of every RFC in `rfcs`, by RFC id, so a decision on it
    /// (`POST /api/v1/changes/{id}/decision`) can publish its next version. Forgotten with its
    /// incident.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, Rfc>,
    /// Security incidents (`correlate::security`); absent from older checkpoints.
    #[serde(default, skip_serializing_if = "correlate::security::State::is_empty")]
    pub security: correlate::security::State,
    /// Incidents whose next version waits (`correlation.group_wait` before the first,
    /// `group_interval` after), by id; absent from older checkpoints.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending: BTreeMap<String, Pending>,
    /// The revenue-at-risk account of every incident built (published or not), by id, so its
    /// cost does not depend on which versions were published.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, Account>,
    /// Problems, incidents counted toward them, and links (`problem`); absent from older
    /// checkpoints. Bounded by `[problem]` (see `problem`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub problems: crate::problem::State,
    /// Implemented RFCs awaiting verification and escalated incidents; absent from older
    /// checkpoints.
    #[serde(default, skip_serializing_if = "super::RunState::is_empty")]
    pub runs: super::RunState,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// An incident's next version, held back until it is due (see `engine::settle`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// When the engine first built the incident (event time): the group wait's cap counts
    /// from it.
    pub since: DateTime<Utc>,
    /// Before the first version: the root-cause service of the latest build, and since when
    /// (event time) it has been the root cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    pub root_since: DateTime<Utc>,
    /// When the version is due: the time of its `Timer::Publish`, if one is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
}

/// Revenue at risk per minute since `since`, and the cost accumulated before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub at_risk: f64,
    pub cost: f64,
    pub since: DateTime<Utc>,
}

/// The last published version of an incident, as much as the engine needs of it: the version,
/// what the gauges count, and hashes of its substance to tell whether a new version is due and
/// what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub version: u32,
    pub status: IncidentStatus,
    pub priority: Priority,
    pub capabilities: Vec<String>,
    pub substance: u64,
    /// Whether that version was acknowledged.
    #[serde(default)]
    pub acknowledged: bool,
    /// Revenue at risk per minute from that version on, and the cost accumulated up to it
    /// (`cost_at`), so the next version adds what the risk cost in between.
    #[serde(default)]
    pub at_risk: f64,
    #[serde(default)]
    pub cost: f64,
    #[serde(default)]
    pub cost_at: Option<DateTime<Utc>>,
    /// The hash of each aspect of that version (`engine::aspects`), to list what the next one
    /// changes; empty in older checkpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aspects: Vec<u64>,
    /// When that version was published (the engine's clock): the next waits for
    /// `correlation.group_interval` after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
}

/// Where an event came from: its raw record's partition and offset, and its index among the
/// events of that record (one Alertmanager payload carries many).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub partition: i32,
    pub offset: i64,
    pub index: u32,
}
