//! Grouping of alerts into incidents, after dedup: a new or re-firing alert joins the earliest
//! open incident of its domain within the time window, with the same group-by labels and linked
//! by topology, or opens one; incidents it links are merged into the earliest.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Outcome;
use super::changes::link_changes;
use super::learned::Learning;
use super::members::{Kept, Members};
use super::state::{Group, State, Timer, alert_domain};
use super::stored::StoredAlert;
use crate::config::CorrelationConfig;
use crate::model::{IncidentStatus, Labels, StableHasher, later, span, stable_hash};
use crate::topology::Topology;

/// The values of the group-by labels, as one string.
fn group_key(labels: &Labels, group_by: &[String]) -> String {
    if group_by.is_empty() {
        return String::new();
    }
    let mut h = StableHasher::default();
    for l in group_by {
        h.part_of(&[l, "=", labels.get(l).unwrap_or("")]);
    }
    h.hex()
}

/// Whether two alerts of one domain may share an incident: the same service, services that
/// depend on one another or whose link was learned; without services, the same CI, the same
/// fallback labels (their domain is the fallback domain) or a learned link.
fn linked(
    topo: &Topology,
    learning: &Learning,
    fallback: &Option<String>,
    a: &StoredAlert,
    b: &StoredAlert,
) -> bool {
    match (&a.service, &b.service) {
        (Some(x), Some(y)) => topo.linked(x, y) || learning.linked(x, y),
        (None, None) => {
            (a.ci.is_some() && a.ci == b.ci)
                || fallback.is_some()
                || learning.linked(a.subject(), b.subject())
        }
        _ => false,
    }
}

/// Puts a firing alert into the earliest open incident it correlates with, or opens one. When
/// it correlates with several, they are merged into the earliest: its alert links them.
pub(super) fn attach(
    state: &mut State,
    topo: &Topology,
    cfg: &CorrelationConfig,
    fingerprint: &str,
    time: DateTime<Utc>,
) -> (Outcome, Vec<Arc<str>>) {
    let alert = &state.alerts[fingerprint].alert;
    let window = span(cfg.window_for(&alert.source));
    let key = group_key(&alert.labels, cfg.group_by_for(&alert.source));
    let fallback = alert.fallback_domain(&cfg.fallback_group_by);
    let domain = alert_domain(
        topo,
        alert.service.as_deref(),
        alert.ci.as_deref(),
        fallback.clone(),
    );
    // Only incidents whose last event the window reaches can take the alert: the index of
    // recent ones spares looking at every open incident of the domain.
    let since = time
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    state.index_recent();
    let alert = &state.alerts[fingerprint].alert;
    let mut candidates: Vec<(DateTime<Utc>, Arc<str>)> = domain
        .as_deref()
        .into_iter()
        .flat_map(|d| state.recent_open(d, since))
        .filter_map(|id| state.groups.get(&**id))
        .filter(|g| time - g.last_event_at <= window && g.opened_at - time <= window)
        // An incident whose alerts all resolved is only waiting out its hold: new alerts do
        // not join it (its own alerts firing again do, through `observe`).
        .filter(|g| g.resolving_since.is_none())
        .filter(|g| g.group_key == key)
        .filter(|g| match (&alert.service, g.summary()) {
            // An alert with a service links only to members with one: their services suffice,
            // however many alerts the incident has.
            (Some(x), Some(m)) => m
                .services()
                .any(|(y, _)| topo.linked(x, y) || state.learned.linked(x, y)),
            _ => g
                .alerts
                .iter()
                .filter_map(|f| state.alerts.get(f))
                .any(|other| linked(topo, &state.learned, &fallback, alert, &other.alert)),
        })
        .map(|g| (g.opened_at, g.id.clone()))
        .collect();
    candidates.sort();
    let mut touched = Vec::new();
    let (outcome, id) = match candidates.first() {
        Some((_, id)) => (Outcome::Joined, id.clone()),
        None => {
            let id: Arc<str> = Arc::from(format!(
                "INC-{}",
                &stable_hash(&[fingerprint, &time.timestamp_millis().to_string()])[..12]
            ));
            state.groups.insert(
                id.clone(),
                Group {
                    id: id.clone(),
                    opened_at: time,
                    last_event_at: time,
                    status: IncidentStatus::Open,
                    resolving_since: None,
                    resolved_at: None,
                    closed_at: None,
                    reopened: 0,
                    merged_into: None,
                    acknowledged: None,
                    alerts: Vec::new(),
                    event_count: 0,
                    domain: domain.as_deref().unwrap_or_default().to_owned(),
                    group_key: key,
                    related_changes: Vec::new(),
                    members: Kept(Some(Members::default())),
                },
            );
            if let Some(d) = domain {
                state.open_index(&d, &id, time);
            }
            (Outcome::Opened, id)
        }
    };
    touched.push(id.clone());
    let key = state
        .alerts
        .get_key_value(fingerprint)
        .map(|(k, _)| k.clone())
        .expect("inserted by caller");
    let g = state.groups.get_mut(&*id).expect("inserted or found above");
    let a = state.alerts.get(&key).map(|a| &a.alert);
    g.join(key, a);
    g.event_count += 1;
    g.last_event_at = g.last_event_at.max(time);
    g.resolving_since = None;
    let last_event = g.last_event_at;
    state.recent.touch(&id, last_event);
    state
        .alerts
        .get_mut(fingerprint)
        .expect("inserted by caller")
        .incident = Some(id.clone());
    for (_, other) in candidates.iter().skip(1) {
        merge(state, cfg, other, &id, time);
        touched.push(other.clone());
    }
    link_changes(state, topo, cfg, &id);
    (outcome, touched)
}

/// Moves the alerts of incident `from` into `into`; `from` is closed with `merged_into` set.
fn merge(state: &mut State, cfg: &CorrelationConfig, from: &str, into: &str, time: DateTime<Utc>) {
    let Some(g) = state.groups.get_mut(from) else {
        return;
    };
    g.status = IncidentStatus::Closed;
    g.closed_at = Some(time);
    g.resolving_since = None;
    g.merged_into = Some(into.to_string());
    // Its alerts now change the other incident's summary, not this one's.
    g.members = Kept(None);
    let (moved, events, domain) = (g.alerts.clone(), g.event_count, g.domain.clone());
    state.close_index(&domain, from);
    let into_id: Arc<str> = state
        .groups
        .get(into)
        .map_or_else(|| Arc::from(into), |g| g.id.clone());
    for f in &moved {
        if let Some(a) = state.alerts.get_mut(f) {
            a.incident = Some(into_id.clone());
        }
    }
    if let Some(target) = state.groups.get_mut(into) {
        for f in moved {
            let a = state.alerts.get(&f).map(|a| &a.alert);
            target.join(f, a);
        }
        target.event_count += events;
    }
    state.schedule(later(time, cfg.retention), Timer::Forget(from.to_string()));
}
