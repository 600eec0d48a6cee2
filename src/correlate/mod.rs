//! Correlation: fingerprint dedup of events into alerts, grouping of alerts into incidents by
//! time window and service topology, the incident lifecycle (open → resolved), and root cause.
//! Pure and deterministic: time comes only from events and ticks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{AlertRef, Event, Labels, RootCause, Status, stable_hash};
use crate::topology::{Resolution, Topology};

/// The deduplicated state of one fingerprint and the incident it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub alert: AlertRef,
    /// Time of the event that set the current status; older events do not change it.
    pub status_time: DateTime<Utc>,
    pub incident: Option<String>,
}

/// The alerts of one incident and its lifecycle times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub opened_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Fingerprints of member alerts, in the order they joined.
    pub alerts: Vec<String>,
    pub event_count: u64,
    /// Correlation domain of the incident's first alert; only alerts of the same domain can
    /// join it.
    #[serde(default)]
    pub domain: String,
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
}

impl State {
    /// Takes incident `id` out of the open index (it resolved or was forgotten).
    fn close(&mut self, domain: &str, id: &str) {
        if let Some(ids) = self.open.get_mut(domain) {
            ids.remove(id);
            if ids.is_empty() {
                self.open.remove(domain);
            }
        }
    }
}

/// The domain an alert correlates in: its service's, or its CI's when no service claims it.
/// `None` when it has neither (it can only ever be alone).
fn alert_domain(topo: &Topology, a: &AlertRef) -> Option<String> {
    match (&a.service, &a.ci) {
        (Some(s), _) => topo.service_domain(s).map(str::to_string),
        (None, Some(ci)) => Some(format!("ci:{ci}")),
        (None, None) => None,
    }
}

/// What one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new alert opened a new incident.
    Opened,
    /// A new (or re-firing) alert joined an open incident.
    Joined,
    /// A repeat of a known alert with no change of status or severity.
    Deduplicated,
    /// A repeat of a firing alert with another severity.
    SeverityChanged,
    /// An alert of an incident resolved.
    AlertResolved,
    /// A resolve for an alert d2c never saw firing: remembered, no incident.
    UnmatchedResolve,
    /// An event older than the alert's current status; counted, status unchanged.
    Stale,
    /// An event already applied before (its raw record was read again after a restart of the
    /// ingest stage); skipped.
    Redelivered,
}

impl Outcome {
    /// Whether the incident the event touched may look different to an operator now (so the
    /// engine checks whether to publish a new version). Repeats only change counts.
    pub fn may_change_incident(self) -> bool {
        matches!(
            self,
            Outcome::Opened | Outcome::Joined | Outcome::AlertResolved | Outcome::SeverityChanged
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Opened => "opened",
            Outcome::Joined => "joined",
            Outcome::Deduplicated => "deduplicated",
            Outcome::SeverityChanged => "severity_changed",
            Outcome::AlertResolved => "alert_resolved",
            Outcome::UnmatchedResolve => "unmatched_resolve",
            Outcome::Stale => "stale",
            Outcome::Redelivered => "redelivered",
        }
    }
}

/// Applies one event to `state`. Returns what happened and the id of the incident it touched.
pub fn observe(
    state: &mut State,
    topo: &Topology,
    window: Duration,
    ev: &Event,
    res: &Resolution,
) -> (Outcome, Option<String>) {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let existing = state.alerts.get_mut(&ev.fingerprint);
    let Some(a) = existing else {
        let resolved = ev.status == Status::Resolved;
        state.alerts.insert(
            ev.fingerprint.clone(),
            AlertState {
                alert: new_alert(ev, res),
                status_time: ev.time,
                incident: None,
            },
        );
        if resolved {
            // Remembered so that its firing, if it arrives late (from another raw partition),
            // is recognised as stale instead of opening an incident that never resolves.
            return (Outcome::UnmatchedResolve, None);
        }
        let (outcome, id) = attach(state, topo, window, &ev.fingerprint, ev.time);
        return (outcome, Some(id));
    };

    a.alert.count += 1;
    a.alert.last_seen = a.alert.last_seen.max(ev.time);
    let group_id = a.incident.clone();
    if let Some(g) = group_id.as_ref().and_then(|id| state.groups.get_mut(id)) {
        g.event_count += 1;
        g.last_event_at = g.last_event_at.max(ev.time);
    }
    if ev.time < a.status_time {
        return (Outcome::Stale, group_id);
    }
    let was = a.alert.status;
    let severity_changed = ev.status == Status::Firing && a.alert.severity != ev.severity;
    a.status_time = ev.time;
    a.alert.status = ev.status;
    if ev.status == Status::Firing {
        a.alert.severity = ev.severity;
    }
    let group_open = group_id
        .as_ref()
        .and_then(|id| state.groups.get(id))
        .is_some_and(|g| g.resolved_at.is_none());
    match (was, ev.status) {
        (Status::Firing, Status::Firing) if severity_changed => {
            (Outcome::SeverityChanged, group_id)
        }
        (Status::Firing, Status::Firing) => (Outcome::Deduplicated, group_id),
        (Status::Firing, Status::Resolved) => {
            if let Some(id) = &group_id {
                resolve_if_done(state, id, ev.time);
            }
            (Outcome::AlertResolved, group_id)
        }
        (Status::Resolved, Status::Resolved) => (Outcome::Deduplicated, group_id),
        (Status::Resolved, Status::Firing) if group_open => (Outcome::Joined, group_id),
        (Status::Resolved, Status::Firing) => {
            // The alert's old incident is over: it fires anew, exactly as if it had never been
            // seen (so forgetting old state early or late gives the same result).
            if let Some(a) = state.alerts.get_mut(&ev.fingerprint) {
                a.incident = None;
                a.alert = new_alert(ev, res);
            }
            if let Some(g) = group_id.and_then(|id| state.groups.get_mut(&id)) {
                g.alerts.retain(|f| f != &ev.fingerprint);
            }
            let (outcome, id) = attach(state, topo, window, &ev.fingerprint, ev.time);
            (outcome, Some(id))
        }
    }
}

fn new_alert(ev: &Event, res: &Resolution) -> AlertRef {
    AlertRef {
        fingerprint: ev.fingerprint.clone(),
        name: ev.name.clone(),
        ci: res.ci.clone(),
        service: res.service.clone(),
        source: ev.source.clone(),
        severity: ev.severity,
        status: ev.status,
        first_seen: ev.time,
        last_seen: ev.time,
        count: 1,
        labels: Labels::from_map(&ev.labels),
    }
}

/// Puts a firing alert into the earliest open incident it correlates with, or opens one.
fn attach(
    state: &mut State,
    topo: &Topology,
    window: chrono::Duration,
    fingerprint: &str,
    time: DateTime<Utc>,
) -> (Outcome, String) {
    let alert = &state.alerts[fingerprint].alert;
    let domain = alert_domain(topo, alert);
    let candidate = domain
        .as_ref()
        .and_then(|d| state.open.get(d))
        .into_iter()
        .flatten()
        .filter_map(|id| state.groups.get(id))
        .filter(|g| time - g.last_event_at <= window && g.opened_at - time <= window)
        .filter(|g| {
            g.alerts.iter().any(|f| {
                let other = &state.alerts[f].alert;
                match (&alert.service, &other.service) {
                    (Some(a), Some(b)) => topo.linked(a, b),
                    (None, None) => alert.ci.is_some() && alert.ci == other.ci,
                    _ => false,
                }
            })
        })
        .min_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)))
        .map(|g| g.id.clone());
    let (outcome, id) = match candidate {
        Some(id) => (Outcome::Joined, id),
        None => {
            let id = format!(
                "INC-{}",
                &stable_hash(&[fingerprint, &time.timestamp_millis().to_string()])[..12]
            );
            state.groups.insert(
                id.clone(),
                Group {
                    id: id.clone(),
                    opened_at: time,
                    last_event_at: time,
                    resolved_at: None,
                    alerts: Vec::new(),
                    event_count: 0,
                    domain: domain.clone().unwrap_or_default(),
                },
            );
            if let Some(d) = domain {
                state.open.entry(d).or_default().insert(id.clone());
            }
            (Outcome::Opened, id)
        }
    };
    let g = state.groups.get_mut(&id).expect("inserted or found above");
    g.alerts.push(fingerprint.to_string());
    g.event_count += 1;
    g.last_event_at = g.last_event_at.max(time);
    state
        .alerts
        .get_mut(fingerprint)
        .expect("inserted by caller")
        .incident = Some(id.clone());
    (outcome, id)
}

fn resolve_if_done(state: &mut State, id: &str, time: DateTime<Utc>) {
    let Some(g) = state.groups.get(id) else {
        return;
    };
    let all_resolved = g
        .alerts
        .iter()
        .all(|f| state.alerts[f].alert.status == Status::Resolved);
    if all_resolved && g.resolved_at.is_none() {
        let domain = g.domain.clone();
        state.groups.get_mut(id).expect("checked").resolved_at = Some(time);
        state.close(&domain, id);
    }
}

/// Forgets resolved incidents (and their alerts) resolved more than `retention` before `now`.
/// Returns the ids of the incidents forgotten.
pub fn expire(state: &mut State, now: DateTime<Utc>, retention: Duration) -> Vec<String> {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let old: Vec<String> = state
        .groups
        .values()
        .filter(|g| g.resolved_at.is_some_and(|r| now - r > retention))
        .map(|g| g.id.clone())
        .collect();
    // Resolves that never matched a firing alert are kept as long as resolved incidents.
    state.alerts.retain(|_, a| {
        a.incident.is_some() || a.alert.status == Status::Firing || now - a.status_time <= retention
    });
    for id in &old {
        if let Some(g) = state.groups.remove(id) {
            for f in g.alerts {
                if state
                    .alerts
                    .get(&f)
                    .is_some_and(|a| a.incident.as_deref() == Some(id))
                {
                    state.alerts.remove(&f);
                }
            }
        }
    }
    old
}

/// The likely root cause among the failing services of one incident: a failing service none of
/// whose own dependencies is failing (the deepest failure); ties go to the earliest alert, then
/// to the name. `failing` maps each failing service to its earliest alert time.
pub fn root_cause(topo: &Topology, failing: &BTreeMap<String, DateTime<Utc>>) -> Option<RootCause> {
    let deepest = failing
        .iter()
        .filter(|(s, _)| !failing.keys().any(|d| d != *s && topo.needs(s, d)))
        .min_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)))?;
    let symptoms: BTreeSet<&str> = failing
        .keys()
        .filter(|s| topo.needs(s, deepest.0))
        .map(String::as_str)
        .collect();
    let reason = if failing.len() == 1 {
        format!("{} is the only failing service", deepest.0)
    } else if symptoms.is_empty() {
        format!(
            "{} alerted first among failing services with no failing dependency",
            deepest.0
        )
    } else {
        let verb = if symptoms.len() == 1 {
            "depends"
        } else {
            "depend"
        };
        format!(
            "{} has no failing dependency, and {} {verb} on it",
            deepest.0,
            symptoms.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    Some(RootCause {
        service: deepest.0.clone(),
        reason,
    })
}

/// What [`evict`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Incidents forgotten, resolved ones first.
    pub incidents: Vec<String>,
    /// Of those, incidents that were still open.
    pub open_incidents: u64,
    pub alerts: u64,
}

/// Keeps the state within `max_alerts` alerts and `max_incidents` incidents. When a cap is
/// passed, state is forgotten down to 90% of the cap, in this order: resolves that matched no
/// alert, then resolved incidents (oldest resolution first), then open incidents (least recently
/// active first). Deterministic: the order depends only on event times and ids.
pub fn evict(state: &mut State, max_alerts: usize, max_incidents: usize) -> Evicted {
    let mut out = Evicted::default();
    if state.alerts.len() <= max_alerts && state.groups.len() <= max_incidents {
        return out;
    }
    let alert_goal = max_alerts - max_alerts / 10;
    let incident_goal = max_incidents - max_incidents / 10;
    if state.alerts.len() > max_alerts {
        let mut orphans: Vec<(DateTime<Utc>, String)> = state
            .alerts
            .iter()
            .filter(|(_, a)| a.incident.is_none())
            .map(|(f, a)| (a.status_time, f.clone()))
            .collect();
        orphans.sort();
        for (_, f) in orphans {
            if state.alerts.len() <= alert_goal {
                break;
            }
            state.alerts.remove(&f);
            out.alerts += 1;
        }
    }
    let over = |s: &State| s.alerts.len() > alert_goal || s.groups.len() > incident_goal;
    if !over(state) {
        return out;
    }
    let mut order: Vec<(bool, DateTime<Utc>, String)> = state
        .groups
        .values()
        .map(|g| match g.resolved_at {
            Some(r) => (false, r, g.id.clone()),
            None => (true, g.last_event_at, g.id.clone()),
        })
        .collect();
    order.sort();
    for (open, _, id) in order {
        if !over(state) {
            break;
        }
        if let Some(g) = state.groups.remove(&id) {
            state.close(&g.domain, &id);
            for f in g.alerts {
                if state.alerts.remove(&f).is_some() {
                    out.alerts += 1;
                }
            }
            out.open_incidents += u64::from(open);
            out.incidents.push(id);
        }
    }
    out
}
