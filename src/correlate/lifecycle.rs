//! The incident lifecycle after grouping: timers (resolve hold, close, forget, flapping, resolve
//! timeouts) run in due order, acknowledgement, and eviction when the state passes its caps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::learned::Episode;
use super::members::View;
use super::state::{State, Timer, member_changed};
use crate::config::CorrelationConfig;
use crate::model::{IncidentStatus, Status, later, span};

/// Starts the resolve hold of incident `id` if every alert is resolved and none flaps; with no
/// hold, resolves it at once.
pub(super) fn resolve_if_done(
    state: &mut State,
    cfg: &CorrelationConfig,
    id: &str,
    time: DateTime<Utc>,
) {
    let Some(g) = state.groups.get(id) else {
        return;
    };
    if g.status != IncidentStatus::Open || g.resolving_since.is_some() {
        return;
    }
    let every = || {
        g.alerts.iter().all(|f| {
            state
                .alerts
                .get(f)
                .is_none_or(|a| a.alert.status == Status::Resolved && !a.alert.flapping)
        })
    };
    // From the incident's summary when it has one: the same however many alerts it has.
    let done = match g.summary() {
        Some(m) => {
            debug_assert_eq!(m.all_resolved(), every(), "the summary of {id}");
            m.all_resolved()
        }
        _ => every(),
    };
    if !done {
        return;
    }
    if cfg.resolve_hold.is_zero() {
        resolve_now(state, cfg, id, time);
    } else {
        state.groups.get_mut(id).expect("checked").resolving_since = Some(time);
        state.schedule(
            later(time, cfg.resolve_hold),
            Timer::Resolve(id.to_string()),
        );
    }
}

fn resolve_now(state: &mut State, cfg: &CorrelationConfig, id: &str, since: DateTime<Utc>) {
    let Some(g) = state.groups.get_mut(id) else {
        return;
    };
    g.status = IncidentStatus::Resolved;
    g.resolved_at = Some(since);
    g.resolving_since = None;
    let domain = g.domain.clone();
    state.close_index(&domain, id);
    state.schedule(
        later(since, cfg.reopen_window),
        Timer::Close(id.to_string()),
    );
    learn(state, cfg, id, since);
}

/// Hands what incident `id`, resolved at `at`, says about its subjects (when each first fired
/// and last resolved in it) to the learning of links.
fn learn(state: &mut State, cfg: &CorrelationConfig, id: &str, at: DateTime<Utc>) {
    if cfg.learn_after == 0 {
        return;
    }
    let Some(g) = state.groups.get(id) else {
        return;
    };
    let mut by_subject: BTreeMap<&str, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for a in g.alerts.iter().filter_map(|f| state.alerts.get(f)) {
        let resolved = a.status_time.max(a.alert.last_seen);
        let e = by_subject
            .entry(a.alert.subject())
            .or_insert((a.alert.first_seen, resolved));
        e.0 = e.0.min(a.alert.first_seen);
        e.1 = e.1.max(resolved);
    }
    let episodes = by_subject
        .into_iter()
        .map(|(s, (opened, resolved))| Episode {
            subject: s.to_owned(),
            incident: id.to_owned(),
            opened,
            resolved,
        })
        .collect();
    state
        .learned
        .resolved(id, episodes, span(cfg.window), cfg.learn_after, at);
}

/// The incident a timer would change, if it concerns one.
fn incident_of(state: &State, timer: &Timer) -> Option<String> {
    match timer {
        Timer::Resolve(id) | Timer::Close(id) | Timer::Forget(id) => Some(id.clone()),
        Timer::Flap(f) | Timer::ResolveTimeout(f) => state
            .alerts
            .get(f.as_str())
            .and_then(|a| a.incident.as_deref().map(str::to_owned)),
        Timer::Publish(_) | Timer::ForgetAlert(_) => None,
    }
}

/// Runs the timers due at or before `now`, in due order, one round: it stops before a timer
/// that would change an incident this round changed already, so the caller publishes each
/// step (a tick that jumps past an incident's resolve hold, reopen window and retention
/// publishes it resolved, then closed, then forgets it) and calls again; an empty answer
/// means no timer is due. Returns the incidents whose records may have changed, each with the
/// due time of the timer that changed it, in the order they changed (an id at most once). The
/// due time, not `now`, stamps the change, so a record does not depend on which later event or
/// tick happened to run the timer.
pub fn run_timers(
    state: &mut State,
    cfg: &CorrelationConfig,
    now: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>)> {
    let mut touched: Vec<(String, DateTime<Utc>)> = Vec::new();
    if state.timers.first().is_none_or(|(due, _)| *due > now) {
        return touched;
    }
    while let Some((due, timer)) = state.timers.first().cloned() {
        if due > now {
            break;
        }
        if let Some(id) = incident_of(state, &timer)
            && touched.iter().any(|(t, _)| *t == id)
        {
            break;
        }
        state.timers.pop_first();
        match timer {
            Timer::Resolve(id) => {
                let ready = state.groups.get(id.as_str()).and_then(|g| {
                    (g.status == IncidentStatus::Open)
                        .then_some(g.resolving_since)
                        .flatten()
                });
                if let Some(since) = ready
                    && later(since, cfg.resolve_hold) <= due
                {
                    resolve_now(state, cfg, &id, since);
                    touch(&mut touched, &id, due);
                }
            }
            Timer::Close(id) => {
                if let Some(g) = state.groups.get_mut(id.as_str())
                    && g.status == IncidentStatus::Resolved
                    && g.resolved_at
                        .is_some_and(|r| later(r, cfg.reopen_window) <= due)
                {
                    g.status = IncidentStatus::Closed;
                    g.closed_at = Some(due);
                    state.schedule(later(due, cfg.retention), Timer::Forget(id.clone()));
                    touch(&mut touched, &id, due);
                }
            }
            Timer::Forget(id) => {
                if state
                    .groups
                    .get(id.as_str())
                    .is_some_and(|g| g.status == IncidentStatus::Closed)
                {
                    forget_group(state, &id);
                    // Reported so the engine forgets what it published of it too.
                    touch(&mut touched, &id, due);
                }
            }
            Timer::Flap(f) => {
                let Some(a) = state.alerts.get_mut(f.as_str()) else {
                    continue;
                };
                let last = a.changes.last().copied().unwrap_or(due);
                if !a.alert.flapping {
                    continue;
                }
                let quiet_at = later(last, cfg.flap_window);
                if quiet_at > due {
                    state.schedule(quiet_at, Timer::Flap(f));
                    continue;
                }
                let was = View::of(&a.alert);
                a.alert.flapping = false;
                a.changes.clear();
                member_changed(&mut state.groups, a.incident.as_deref(), &a.alert, was);
                if let Some(id) = a.incident.clone() {
                    touch(&mut touched, &id, due);
                    if a.alert.status == Status::Resolved {
                        resolve_if_done(state, cfg, &id, due);
                    }
                }
            }
            Timer::ResolveTimeout(f) => {
                let Some(a) = state.alerts.get_mut(f.as_str()) else {
                    continue;
                };
                a.timeout_due = None;
                let Some(timeout) = cfg.resolve_timeout_for(&a.alert.source) else {
                    continue;
                };
                if a.alert.status != Status::Firing {
                    continue;
                }
                let silent_until = later(a.alert.last_seen.max(a.status_time), timeout);
                if silent_until > due {
                    a.timeout_due = Some(silent_until);
                    state.schedule(silent_until, Timer::ResolveTimeout(f));
                    continue;
                }
                let was = View::of(&a.alert);
                a.alert.status = Status::Resolved;
                a.alert.auto_resolved = true;
                a.status_time = due;
                member_changed(&mut state.groups, a.incident.as_deref(), &a.alert, was);
                if let Some(id) = a.incident.clone() {
                    touch(&mut touched, &id, due);
                    resolve_if_done(state, cfg, &id, due);
                }
            }
            Timer::Publish(id) => {
                if state.groups.contains_key(id.as_str()) {
                    touch(&mut touched, &id, due);
                }
            }
            Timer::ForgetAlert(f) => {
                if state
                    .alerts
                    .get(f.as_str())
                    .is_some_and(|a| a.incident.is_none() && a.alert.status == Status::Resolved)
                {
                    state.alerts.remove(f.as_str());
                }
            }
        }
    }
    touched
}

fn touch(touched: &mut Vec<(String, DateTime<Utc>)>, id: &str, due: DateTime<Utc>) {
    if !touched.iter().any(|(t, _)| t == id) {
        touched.push((id.to_string(), due));
    }
}

/// Marks incident `id` acknowledged at `at` by `by`. Returns whether that changed anything: an
/// incident is acknowledged once, and only while it is not closed.
pub fn acknowledge(state: &mut State, id: &str, by: &str, at: DateTime<Utc>) -> bool {
    match state.groups.get_mut(id) {
        Some(g) if g.acknowledged.is_none() && g.status != IncidentStatus::Closed => {
            g.acknowledged = Some((at, by.to_string()));
            true
        }
        _ => false,
    }
}

/// Forgets incident `id` and the alerts it still owns (not those merged into another).
/// Returns how many alerts went with it, or `None` when there was no such incident.
fn forget_group(state: &mut State, id: &str) -> Option<u64> {
    let g = state.groups.remove(id)?;
    state.close_index(&g.domain, id);
    let mut alerts = 0;
    for f in g.alerts {
        let owned = state
            .alerts
            .get(&f)
            .is_some_and(|a| a.incident.as_deref() == Some(id));
        if owned && state.alerts.remove(&f).is_some() {
            alerts += 1;
        }
    }
    Some(alerts)
}

/// What [`evict`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Incidents forgotten, resolved ones first.
    pub incidents: Vec<String>,
    /// Of those, incidents that were still open.
    pub open_incidents: u64,
    pub alerts: u64,
    /// Counted pairs of the link learning (`correlate::learned`).
    pub learned_pairs: u64,
}

/// Keeps the state within `max_alerts` alerts and `max_incidents` incidents (and the learned
/// pairs within theirs, see `correlate::learned`). When a cap is
/// passed, state is forgotten down to 90% of the cap, in this order: resolves that matched no
/// alert, then resolved incidents (oldest resolution first), then open incidents (least recently
/// active first). Deterministic: the order depends only on event times and ids.
pub fn evict(state: &mut State, max_alerts: usize, max_incidents: usize) -> Evicted {
    let mut out = Evicted {
        learned_pairs: state.learned.evict(),
        ..Evicted::default()
    };
    if state.alerts.len() <= max_alerts && state.groups.len() <= max_incidents {
        return out;
    }
    let alert_goal = max_alerts - max_alerts / 10;
    let incident_goal = max_incidents - max_incidents / 10;
    if state.alerts.len() > max_alerts {
        let mut orphans: Vec<(DateTime<Utc>, std::sync::Arc<str>)> = state
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
    let mut order: Vec<(bool, DateTime<Utc>, std::sync::Arc<str>)> = state
        .groups
        .values()
        .map(|g| match (g.status, g.resolved_at.or(g.closed_at)) {
            (IncidentStatus::Open, _) | (_, None) => (true, g.last_event_at, g.id.clone()),
            (_, Some(r)) => (false, r, g.id.clone()),
        })
        .collect();
    order.sort();
    for (open, _, id) in order {
        if !over(state) {
            break;
        }
        if let Some(alerts) = forget_group(state, &id) {
            out.alerts += alerts;
            out.open_incidents += u64::from(open);
            out.incidents.push(id.to_string());
        }
    }
    out
}
