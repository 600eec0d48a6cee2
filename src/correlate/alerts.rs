//! Dedup of events into alerts, the first step of correlation: the fingerprint of an event, an
//! alert's status, severity and flapping, and its resolve timeout. A new or re-firing alert is
//! handed to grouping; a change event to change correlation.

use std::sync::Arc;

use super::Outcome;
use super::changes::record_change;
use super::grouping::attach;
use super::intern::Interner;
use super::lifecycle::resolve_if_done;
use super::members::{Kept, View};
use super::state::member_changed;
use super::state::{AlertState, State, Timer};
use super::stored::StoredAlert;
use crate::config::CorrelationConfig;
use crate::model::{Category, Event, IncidentStatus, Labels, StableHasher, Status, later, span};
use crate::topology::{Resolution, Topology};

/// The fingerprint the engine uses for `ev`: the configured fields of its source
/// (`[correlation.sources.<source>] fingerprint`), or the one it came with.
pub fn fingerprint_for<'a>(cfg: &CorrelationConfig, ev: &'a Event) -> std::borrow::Cow<'a, str> {
    let Some(fields) = cfg.source(&ev.source).and_then(|r| r.fingerprint.as_ref()) else {
        return std::borrow::Cow::Borrowed(&ev.fingerprint);
    };
    let mut h = StableHasher::default();
    h.part("fields").part(&ev.source);
    for f in fields {
        let value = match f.as_str() {
            "alertname" => Some(ev.name.as_str()),
            "ci" => ev.ci.as_deref(),
            label => ev.labels.get(label).map(String::as_str),
        };
        h.part_of(&[f, "=", value.unwrap_or("")]);
    }
    std::borrow::Cow::Owned(h.hex())
}

/// Applies one event to `state`, with the alert identified by `fingerprint` (see
/// [`fingerprint_for`]). Returns what happened and the incidents it touched (the one it joined
/// or changed first, then any merged into it).
pub fn observe(
    state: &mut State,
    topo: &Topology,
    cfg: &CorrelationConfig,
    ev: &Event,
    fingerprint: &str,
    res: &Resolution<'_>,
) -> (Outcome, Vec<Arc<str>>) {
    if ev.category == Category::Change {
        return (Outcome::Change, record_change(state, topo, cfg, ev, res));
    }
    let Some(a) = state.alerts.get_mut(fingerprint) else {
        let resolved = ev.status == Status::Resolved;
        let key: Arc<str> = Arc::from(fingerprint);
        let alert = new_alert(ev, &key, res, &mut state.names);
        state.alerts.insert(
            key,
            Box::new(AlertState {
                alert,
                status_time: ev.time,
                incident: None,
                changes: Vec::new(),
                timeout_due: None,
            }),
        );
        if resolved {
            // Remembered so that its firing, if it arrives late (from another raw partition),
            // is recognised as stale instead of opening an incident that never resolves.
            state.schedule(
                later(ev.time, cfg.retention),
                Timer::ForgetAlert(fingerprint.to_string()),
            );
            return (Outcome::UnmatchedResolve, Vec::new());
        }
        schedule_timeout(state, cfg, fingerprint);
        return attach(state, topo, cfg, fingerprint, ev.time);
    };

    a.alert.count += 1;
    a.alert.last_seen = a.alert.last_seen.max(ev.time);
    let group_id = a.incident.clone();
    if let Some(id) = group_id.as_ref()
        && let Some(g) = state.groups.get_mut(&**id)
    {
        g.event_count += 1;
        g.last_event_at = g.last_event_at.max(ev.time);
        let last_event = g.last_event_at;
        state.recent.touch(id, last_event);
    }
    let touched: Vec<Arc<str>> = group_id.iter().cloned().collect();
    if ev.time < a.status_time {
        return (Outcome::Stale, touched);
    }
    let was = a.alert.status;
    let was_view = View::of(&a.alert);
    let severity_changed = ev.status == Status::Firing && a.alert.severity != ev.severity;
    a.status_time = ev.time;
    a.alert.status = ev.status;
    if ev.status == Status::Firing {
        a.alert.severity = ev.severity;
        a.alert.auto_resolved = false;
    }
    let mut started_flapping = false;
    if was != ev.status && cfg.flap_threshold > 0 {
        let window = span(cfg.flap_window);
        a.changes.retain(|t| ev.time - *t < window);
        a.changes.push(ev.time);
        if !a.alert.flapping && a.changes.len() >= cfg.flap_threshold as usize {
            a.alert.flapping = true;
            started_flapping = true;
        }
    }
    member_changed(&mut state.groups, group_id.as_deref(), &a.alert, was_view);
    if started_flapping {
        state.schedule(
            later(ev.time, cfg.flap_window),
            Timer::Flap(fingerprint.to_string()),
        );
    }
    if ev.status == Status::Firing {
        schedule_timeout(state, cfg, fingerprint);
    }
    let group = group_id.as_ref().and_then(|id| state.groups.get(&**id));
    let group_status = group.map(|g| g.status);
    match (was, ev.status) {
        (Status::Firing, Status::Firing) if severity_changed => (Outcome::SeverityChanged, touched),
        (Status::Firing, Status::Firing) => (Outcome::Deduplicated, touched),
        (Status::Firing, Status::Resolved) => {
            if let Some(id) = &group_id {
                resolve_if_done(state, cfg, id, ev.time);
            }
            (Outcome::AlertResolved, touched)
        }
        (Status::Resolved, Status::Resolved) => (Outcome::Deduplicated, touched),
        (Status::Resolved, Status::Firing) if group_status == Some(IncidentStatus::Open) => {
            if let Some(g) = group_id.as_ref().and_then(|id| state.groups.get_mut(&**id)) {
                g.resolving_since = None;
            }
            (Outcome::Joined, touched)
        }
        (Status::Resolved, Status::Firing)
            if group_status == Some(IncidentStatus::Resolved)
                && group.is_some_and(|g| {
                    g.resolved_at
                        .is_some_and(|r| ev.time - r <= span(cfg.reopen_window))
                }) =>
        {
            let id = group_id.expect("a group status implies a group");
            let g = state.groups.get_mut(&*id).expect("checked above");
            g.status = IncidentStatus::Open;
            g.resolved_at = None;
            g.resolving_since = None;
            g.reopened += 1;
            let (domain, last_event) = (g.domain.clone(), g.last_event_at);
            state.open_index(&domain, &id, last_event);
            (Outcome::Reopened, vec![id])
        }
        (Status::Resolved, Status::Firing) => {
            // The alert's old incident is over: it fires anew, exactly as if it had never been
            // seen (so forgetting old state early or late gives the same result).
            if let Some(key) = state
                .alerts
                .get_key_value(fingerprint)
                .map(|(k, _)| k.clone())
            {
                let fresh = new_alert(ev, &key, res, &mut state.names);
                let a = state.alerts.get_mut(fingerprint).expect("found above");
                let flapping = a.alert.flapping;
                a.incident = None;
                a.alert = fresh;
                a.alert.flapping = flapping;
            }
            if let Some(g) = group_id.and_then(|id| state.groups.get_mut(&*id)) {
                g.alerts.retain(|f| &**f != fingerprint);
                g.members = Kept(None);
            }
            attach(state, topo, cfg, fingerprint, ev.time)
        }
    }
}

fn new_alert(
    ev: &Event,
    key: &Arc<str>,
    res: &Resolution<'_>,
    names: &mut Interner,
) -> StoredAlert {
    StoredAlert {
        fingerprint: key.clone(),
        name: names.get(&ev.name),
        // The model's copies when it has them: no lookup of its own for either.
        ci: res.ci.map(|ci| ci.shared(|n| names.get(n))),
        service: res.service.map(|s| s.shared(|n| names.get(n))),
        source: names.get(&ev.source),
        severity: ev.severity,
        status: ev.status,
        first_seen: ev.time,
        last_seen: ev.time,
        count: 1,
        labels: Labels::from_map(&ev.labels),
        annotations: super::annotations::annotations(&ev.attributes),
        flapping: false,
        auto_resolved: false,
    }
}

/// Schedules the resolve timeout of a firing alert, unless one is pending already (it is moved
/// on when it fires; see [`run_timers`](super::run_timers)).
fn schedule_timeout(state: &mut State, cfg: &CorrelationConfig, fingerprint: &str) {
    let Some(a) = state.alerts.get_mut(fingerprint) else {
        return;
    };
    let Some(timeout) = cfg.resolve_timeout_for(&a.alert.source) else {
        return;
    };
    if a.timeout_due.is_none() {
        let due = later(a.alert.last_seen, timeout);
        a.timeout_due = Some(due);
        state.schedule(due, Timer::ResolveTimeout(fingerprint.to_string()));
    }
}
