//! The correlator's state: deduplicated alerts, incidents (groups), the open-incident index per
//! domain, remembered changes and the timer queue. Every other file of `correlate` reads and
//! writes this; it is what the engine checkpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::topology::Topology;

use crate::model::{AlertRef, Change, IncidentStatus, RelatedChange};

/// The deduplicated state of one fingerprint and the incident it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub alert: AlertRef,
    /// Time of the event that set the current status; older events do not change it.
    pub status_time: DateTime<Utc>,
    pub incident: Option<String>,
    /// Times of its recent status changes (within the flap window).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<DateTime<Utc>>,
    /// Due time of its pending resolve-timeout timer, if one is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_due: Option<DateTime<Utc>>,
}

/// The alerts of one incident and its lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub opened_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
    #[serde(default = "open")]
    pub status: IncidentStatus,
    /// When every alert was resolved, while the resolve hold runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolving_since: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reopened: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// When and by whom the incident was acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<(DateTime<Utc>, String)>,
    /// Fingerprints of member alerts, in the order they joined.
    pub alerts: Vec<String>,
    pub event_count: u64,
    /// Correlation domain of the incident's first alert; only alerts of the same domain can
    /// join it.
    #[serde(default)]
    pub domain: String,
    /// Values of the group-by labels of its first alert; only alerts with the same values join.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group_key: String,
    /// Changes found for it so far (kept, so later versions list them even after the changes
    /// themselves are forgotten).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_changes: Vec<RelatedChange>,
}

fn open() -> IncidentStatus {
    IncidentStatus::Open
}

/// Something due later than the event that caused it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    /// The resolve hold of an incident ends.
    Resolve(String),
    /// A resolved incident's reopen window ends: it closes.
    Close(String),
    /// A closed incident's retention ends: it is forgotten.
    Forget(String),
    /// A flapping alert may have become quiet.
    Flap(String),
    /// A firing alert of a source with a resolve timeout may have gone silent.
    ResolveTimeout(String),
    /// A resolve that matched no alert is forgotten.
    ForgetAlert(String),
    /// The engine's next version of an incident is due (its group wait or group interval
    /// ended); scheduled and checked by the engine.
    Publish(String),
}

/// Everything the correlator remembers. Ordered maps so that iteration, and so every output,
/// is the same on every run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    pub alerts: BTreeMap<String, AlertState>,
    pub groups: BTreeMap<String, Group>,
    /// Open incidents per correlation domain: where a new alert looks for an incident to join,
    /// so that finding one costs the size of its domain, not of the whole state.
    #[serde(default)]
    pub open: BTreeMap<String, BTreeSet<String>>,
    /// Recent change events per correlation domain, oldest first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, Vec<Change>>,
    /// Timers by due time.
    #[serde(default)]
    pub timers: BTreeSet<(DateTime<Utc>, Timer)>,
    /// Links learned from alerts that opened and resolved together (`learned`).
    #[serde(default, skip_serializing_if = "super::learned::Learning::is_empty")]
    pub learned: super::learned::Learning,
}

impl State {
    /// Takes incident `id` out of the open index (it resolved, closed or was forgotten).
    pub(super) fn close_index(&mut self, domain: &str, id: &str) {
        if let Some(ids) = self.open.get_mut(domain) {
            ids.remove(id);
            if ids.is_empty() {
                self.open.remove(domain);
            }
        }
    }

    pub(super) fn schedule(&mut self, due: DateTime<Utc>, timer: Timer) {
        self.timers.insert((due, timer));
    }

    /// Schedules the engine's next version of incident `id` at `due`, instead of at `was` when
    /// one was scheduled.
    pub fn schedule_publish(&mut self, id: &str, was: Option<DateTime<Utc>>, due: DateTime<Utc>) {
        if let Some(was) = was {
            if was == due {
                return;
            }
            self.timers.remove(&(was, Timer::Publish(id.to_owned())));
        }
        self.timers.insert((due, Timer::Publish(id.to_owned())));
    }

    /// Cancels the engine's next version of incident `id` scheduled at `was`.
    pub fn cancel_publish(&mut self, id: &str, was: DateTime<Utc>) {
        self.timers.remove(&(was, Timer::Publish(id.to_owned())));
    }
}

/// The domain an alert correlates in: its service's; when no service claims it, that of its
/// fallback labels (`correlation.fallback_group_by`), else its CI's. `None` when it has none of
/// these (it can only ever be alone).
pub(super) fn alert_domain(
    topo: &Topology,
    service: Option<&str>,
    ci: Option<&str>,
    fallback: Option<String>,
) -> Option<String> {
    match (service, ci) {
        (Some(s), _) => topo.service_domain(s).map(str::to_string),
        _ if fallback.is_some() => fallback,
        (None, Some(ci)) => Some(format!("ci:{ci}")),
        (None, None) => None,
    }
}
