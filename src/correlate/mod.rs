//! Correlation: fingerprint dedup of events into alerts (with flapping and resolve timeouts),
//! grouping of alerts into incidents by time window, labels and service topology (merging
//! incidents a new alert links), the incident lifecycle (open → resolved after a hold →
//! reopened or closed), change correlation, and root cause. Security events are grouped by
//! [`security`] instead: per attacked entity, with their MITRE ATT&CK stages.
//!
//! Pure and deterministic: time comes only from events and ticks. Everything that happens later
//! than an event (the end of a resolve hold, closing, the end of flapping, resolve timeouts,
//! forgetting) is a timer in [`State::timers`], run in due-time order by [`run_timers`] when
//! the clock passes it, so the result depends only on the input, never on batch boundaries.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::CorrelationConfig;
use crate::model::{
    AlertRef, Category, Change, Event, IncidentStatus, Labels, RelatedChange, RootCause,
    StableHasher, Status, stable_hash,
};
use crate::topology::{Resolution, Topology};

pub mod security;
#[cfg(test)]
mod tests_security;

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
}

/// Most changes remembered per correlation domain; older ones go first.
pub const MAX_CHANGES_PER_DOMAIN: usize = 1000;

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
}

impl State {
    /// Takes incident `id` out of the open index (it resolved, closed or was forgotten).
    fn close_index(&mut self, domain: &str, id: &str) {
        if let Some(ids) = self.open.get_mut(domain) {
            ids.remove(id);
            if ids.is_empty() {
                self.open.remove(domain);
            }
        }
    }

    fn schedule(&mut self, due: DateTime<Utc>, timer: Timer) {
        self.timers.insert((due, timer));
    }
}

fn dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The domain an alert correlates in: its service's, or its CI's when no service claims it.
/// `None` when it has neither (it can only ever be alone).
fn alert_domain(topo: &Topology, service: Option<&str>, ci: Option<&str>) -> Option<String> {
    match (service, ci) {
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
    /// A re-firing alert reopened its resolved incident.
    Reopened,
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
    /// A change event (deployment, configuration change), remembered for change correlation.
    Change,
    /// Matched a silence, maintenance window or inhibition rule: counted by reason, not
    /// correlated.
    Suppressed,
    /// An event already applied before (its raw record was read again after a restart of the
    /// ingest stage); skipped.
    Redelivered,
    /// A security event that opens nothing: a resolve, or a detection below
    /// `correlation.security.min_severity` that shares no entity with an open security incident.
    Ignored,
}

impl Outcome {
    /// Every outcome: the label set of `d2c_events_correlated_total`.
    pub const ALL: [Outcome; 12] = [
        Outcome::Opened,
        Outcome::Joined,
        Outcome::Reopened,
        Outcome::Deduplicated,
        Outcome::SeverityChanged,
        Outcome::AlertResolved,
        Outcome::UnmatchedResolve,
        Outcome::Stale,
        Outcome::Change,
        Outcome::Suppressed,
        Outcome::Redelivered,
        Outcome::Ignored,
    ];

    /// Whether the incidents the event touched may look different to an operator now (so the
    /// engine checks whether to publish a new version). Repeats only change counts.
    pub fn may_change_incident(self) -> bool {
        matches!(
            self,
            Outcome::Opened
                | Outcome::Joined
                | Outcome::Reopened
                | Outcome::AlertResolved
                | Outcome::SeverityChanged
                | Outcome::Change
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Opened => "opened",
            Outcome::Joined => "joined",
            Outcome::Reopened => "reopened",
            Outcome::Deduplicated => "deduplicated",
            Outcome::SeverityChanged => "severity_changed",
            Outcome::AlertResolved => "alert_resolved",
            Outcome::UnmatchedResolve => "unmatched_resolve",
            Outcome::Stale => "stale",
            Outcome::Change => "change",
            Outcome::Suppressed => "suppressed",
            Outcome::Redelivered => "redelivered",
            Outcome::Ignored => "ignored",
        }
    }
}

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

/// Applies one event to `state`, with the alert identified by `fingerprint` (see
/// [`fingerprint_for`]). Returns what happened and the incidents it touched (the one it joined
/// or changed first, then any merged into it).
pub fn observe(
    state: &mut State,
    topo: &Topology,
    cfg: &CorrelationConfig,
    ev: &Event,
    fingerprint: &str,
    res: &Resolution,
) -> (Outcome, Vec<String>) {
    if ev.category == Category::Change {
        return (Outcome::Change, record_change(state, topo, cfg, ev, res));
    }
    let Some(a) = state.alerts.get_mut(fingerprint) else {
        let resolved = ev.status == Status::Resolved;
        state.alerts.insert(
            fingerprint.to_string(),
            AlertState {
                alert: new_alert(ev, fingerprint, res),
                status_time: ev.time,
                incident: None,
                changes: Vec::new(),
                timeout_due: None,
            },
        );
        if resolved {
            // Remembered so that its firing, if it arrives late (from another raw partition),
            // is recognised as stale instead of opening an incident that never resolves.
            state.schedule(
                ev.time + dur(cfg.retention),
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
    if let Some(g) = group_id.as_ref().and_then(|id| state.groups.get_mut(id)) {
        g.event_count += 1;
        g.last_event_at = g.last_event_at.max(ev.time);
    }
    let touched: Vec<String> = group_id.iter().cloned().collect();
    if ev.time < a.status_time {
        return (Outcome::Stale, touched);
    }
    let was = a.alert.status;
    let severity_changed = ev.status == Status::Firing && a.alert.severity != ev.severity;
    a.status_time = ev.time;
    a.alert.status = ev.status;
    if ev.status == Status::Firing {
        a.alert.severity = ev.severity;
        a.alert.auto_resolved = false;
    }
    if was != ev.status && cfg.flap_threshold > 0 {
        let window = dur(cfg.flap_window);
        a.changes.retain(|t| ev.time - *t < window);
        a.changes.push(ev.time);
        if !a.alert.flapping && a.changes.len() >= cfg.flap_threshold as usize {
            a.alert.flapping = true;
            state.schedule(ev.time + window, Timer::Flap(fingerprint.to_string()));
        }
    }
    if ev.status == Status::Firing {
        schedule_timeout(state, cfg, fingerprint);
    }
    let group = group_id.as_ref().and_then(|id| state.groups.get(id));
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
            if let Some(g) = group_id.as_ref().and_then(|id| state.groups.get_mut(id)) {
                g.resolving_since = None;
            }
            (Outcome::Joined, touched)
        }
        (Status::Resolved, Status::Firing)
            if group_status == Some(IncidentStatus::Resolved)
                && group.is_some_and(|g| {
                    g.resolved_at
                        .is_some_and(|r| ev.time - r <= dur(cfg.reopen_window))
                }) =>
        {
            let id = group_id.expect("a group status implies a group");
            let g = state.groups.get_mut(&id).expect("checked above");
            g.status = IncidentStatus::Open;
            g.resolved_at = None;
            g.resolving_since = None;
            g.reopened += 1;
            let domain = g.domain.clone();
            state.open.entry(domain).or_default().insert(id.clone());
            (Outcome::Reopened, vec![id])
        }
        (Status::Resolved, Status::Firing) => {
            // The alert's old incident is over: it fires anew, exactly as if it had never been
            // seen (so forgetting old state early or late gives the same result).
            if let Some(a) = state.alerts.get_mut(fingerprint) {
                let flapping = a.alert.flapping;
                a.incident = None;
                a.alert = new_alert(ev, fingerprint, res);
                a.alert.flapping = flapping;
            }
            if let Some(g) = group_id.and_then(|id| state.groups.get_mut(&id)) {
                g.alerts.retain(|f| f != fingerprint);
            }
            attach(state, topo, cfg, fingerprint, ev.time)
        }
    }
}

fn new_alert(ev: &Event, fingerprint: &str, res: &Resolution) -> AlertRef {
    AlertRef {
        fingerprint: fingerprint.to_string(),
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
        flapping: false,
        auto_resolved: false,
        symptom_of: None,
    }
}

/// Schedules the resolve timeout of a firing alert, unless one is pending already (it is moved
/// on when it fires; see [`run_timers`]).
fn schedule_timeout(state: &mut State, cfg: &CorrelationConfig, fingerprint: &str) {
    let Some(a) = state.alerts.get_mut(fingerprint) else {
        return;
    };
    let Some(timeout) = cfg.resolve_timeout_for(&a.alert.source) else {
        return;
    };
    if a.timeout_due.is_none() {
        let due = a.alert.last_seen + dur(timeout);
        a.timeout_due = Some(due);
        state.schedule(due, Timer::ResolveTimeout(fingerprint.to_string()));
    }
}

/// Whether two alerts may share an incident by topology: the same service or services that
/// depend on one another, or, without services, the same CI.
fn linked(topo: &Topology, a: &AlertRef, b: &AlertRef) -> bool {
    match (&a.service, &b.service) {
        (Some(x), Some(y)) => topo.linked(x, y),
        (None, None) => a.ci.is_some() && a.ci == b.ci,
        _ => false,
    }
}

/// Puts a firing alert into the earliest open incident it correlates with, or opens one. When
/// it correlates with several, they are merged into the earliest: its alert links them.
fn attach(
    state: &mut State,
    topo: &Topology,
    cfg: &CorrelationConfig,
    fingerprint: &str,
    time: DateTime<Utc>,
) -> (Outcome, Vec<String>) {
    let alert = &state.alerts[fingerprint].alert;
    let window = dur(cfg.window_for(&alert.source));
    let key = group_key(&alert.labels, cfg.group_by_for(&alert.source));
    let domain = alert_domain(topo, alert.service.as_deref(), alert.ci.as_deref());
    let mut candidates: Vec<(DateTime<Utc>, String)> = domain
        .as_ref()
        .and_then(|d| state.open.get(d))
        .into_iter()
        .flatten()
        .filter_map(|id| state.groups.get(id))
        .filter(|g| time - g.last_event_at <= window && g.opened_at - time <= window)
        // An incident whose alerts all resolved is only waiting out its hold: new alerts do
        // not join it (its own alerts firing again do, through `observe`).
        .filter(|g| g.resolving_since.is_none())
        .filter(|g| g.group_key == key)
        .filter(|g| {
            g.alerts
                .iter()
                .filter_map(|f| state.alerts.get(f))
                .any(|other| linked(topo, alert, &other.alert))
        })
        .map(|g| (g.opened_at, g.id.clone()))
        .collect();
    candidates.sort();
    let mut touched = Vec::new();
    let (outcome, id) = match candidates.first() {
        Some((_, id)) => (Outcome::Joined, id.clone()),
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
                    status: IncidentStatus::Open,
                    resolving_since: None,
                    resolved_at: None,
                    closed_at: None,
                    reopened: 0,
                    merged_into: None,
                    acknowledged: None,
                    alerts: Vec::new(),
                    event_count: 0,
                    domain: domain.clone().unwrap_or_default(),
                    group_key: key,
                    related_changes: Vec::new(),
                },
            );
            if let Some(d) = domain {
                state.open.entry(d).or_default().insert(id.clone());
            }
            (Outcome::Opened, id)
        }
    };
    touched.push(id.clone());
    let g = state.groups.get_mut(&id).expect("inserted or found above");
    g.alerts.push(fingerprint.to_string());
    g.event_count += 1;
    g.last_event_at = g.last_event_at.max(time);
    g.resolving_since = None;
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

/// Moves the alerts of incident `from` into `into`; `from` is closed with `merged_into` set.
fn merge(state: &mut State, cfg: &CorrelationConfig, from: &str, into: &str, time: DateTime<Utc>) {
    let Some(g) = state.groups.get_mut(from) else {
        return;
    };
    g.status = IncidentStatus::Closed;
    g.closed_at = Some(time);
    g.resolving_since = None;
    g.merged_into = Some(into.to_string());
    let (moved, events, domain) = (g.alerts.clone(), g.event_count, g.domain.clone());
    state.close_index(&domain, from);
    for f in &moved {
        if let Some(a) = state.alerts.get_mut(f) {
            a.incident = Some(into.to_string());
        }
    }
    if let Some(target) = state.groups.get_mut(into) {
        target.alerts.extend(moved);
        target.event_count += events;
    }
    state.schedule(time + dur(cfg.retention), Timer::Forget(from.to_string()));
}

/// Remembers a change event and links it to open incidents it may have caused.
fn record_change(
    state: &mut State,
    topo: &Topology,
    cfg: &CorrelationConfig,
    ev: &Event,
    res: &Resolution,
) -> Vec<String> {
    let Some(domain) = alert_domain(topo, res.service.as_deref(), res.ci.as_deref()) else {
        return Vec::new();
    };
    let change = Change {
        time: ev.time,
        id: ev.id.clone(),
        name: ev.name.clone(),
        ci: res.ci.clone(),
        service: res.service.clone(),
        source: ev.source.clone(),
    };
    let lookback = dur(cfg.change_lookback);
    let list = state.changes.entry(domain.clone()).or_default();
    if list.contains(&change) {
        return Vec::new();
    }
    // Oldest first; ties by id, so the order depends only on the changes.
    let at = list.partition_point(|c| (c.time, &c.id) < (change.time, &change.id));
    list.insert(at, change);
    let newest = list.last().map(|c| c.time).unwrap_or(ev.time);
    list.retain(|c| newest - c.time <= lookback);
    if list.len() > MAX_CHANGES_PER_DOMAIN {
        let extra = list.len() - MAX_CHANGES_PER_DOMAIN;
        list.drain(..extra);
    }
    let open: Vec<String> = state
        .open
        .get(&domain)
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let mut touched = Vec::new();
    for id in open {
        if link_changes(state, topo, cfg, &id) {
            touched.push(id);
        }
    }
    touched
}

/// Adds to incident `id` the remembered changes that may have caused it: at most
/// `change_lookback` before it opened (or up to its first alert's window after), on one of its
/// services, a service one of them needs, or one of its CIs. Returns whether any was added.
fn link_changes(state: &mut State, topo: &Topology, cfg: &CorrelationConfig, id: &str) -> bool {
    let Some(g) = state.groups.get(id) else {
        return false;
    };
    let Some(changes) = state.changes.get(&g.domain) else {
        return false;
    };
    let lookback = dur(cfg.change_lookback);
    let members: Vec<&AlertRef> = g
        .alerts
        .iter()
        .filter_map(|f| state.alerts.get(f))
        .map(|a| &a.alert)
        .collect();
    let mut found = Vec::new();
    for c in changes {
        let before = g.opened_at - c.time;
        if before > lookback || before < chrono::Duration::zero() {
            continue;
        }
        let relevant = members.iter().any(|a| {
            (c.ci.is_some() && a.ci == c.ci)
                || match (&a.service, &c.service) {
                    (Some(s), Some(cs)) => s == cs || topo.needs(s, cs),
                    _ => false,
                }
        });
        if relevant && !g.related_changes.iter().any(|r| r.change.id == c.id) {
            found.push(RelatedChange {
                change: c.clone(),
                seconds_before_incident: before.num_seconds(),
            });
        }
    }
    if found.is_empty() {
        return false;
    }
    let g = state.groups.get_mut(id).expect("checked above");
    g.related_changes.extend(found);
    // Newest first: the likeliest cause on top.
    g.related_changes
        .sort_by(|a, b| (b.change.time, &b.change.id).cmp(&(a.change.time, &a.change.id)));
    true
}

/// Starts the resolve hold of incident `id` if every alert is resolved and none flaps; with no
/// hold, resolves it at once.
fn resolve_if_done(state: &mut State, cfg: &CorrelationConfig, id: &str, time: DateTime<Utc>) {
    let Some(g) = state.groups.get(id) else {
        return;
    };
    if g.status != IncidentStatus::Open || g.resolving_since.is_some() {
        return;
    }
    let done = g.alerts.iter().all(|f| {
        state
            .alerts
            .get(f)
            .is_none_or(|a| a.alert.status == Status::Resolved && !a.alert.flapping)
    });
    if !done {
        return;
    }
    if cfg.resolve_hold.is_zero() {
        resolve_now(state, cfg, id, time);
    } else {
        state.groups.get_mut(id).expect("checked").resolving_since = Some(time);
        state.schedule(time + dur(cfg.resolve_hold), Timer::Resolve(id.to_string()));
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
    state.schedule(since + dur(cfg.reopen_window), Timer::Close(id.to_string()));
}

/// Runs every timer due at or before `now`, in due order. Returns the incidents whose records
/// may have changed, each with the due time of the timer that changed it, in the order they
/// changed (an id at most once). The due time, not `now`, stamps the change, so a record does
/// not depend on which later event or tick happened to run the timer.
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
        state.timers.pop_first();
        match timer {
            Timer::Resolve(id) => {
                let ready = state.groups.get(&id).and_then(|g| {
                    (g.status == IncidentStatus::Open)
                        .then_some(g.resolving_since)
                        .flatten()
                });
                if let Some(since) = ready
                    && since + dur(cfg.resolve_hold) <= due
                {
                    resolve_now(state, cfg, &id, since);
                    touch(&mut touched, &id, due);
                }
            }
            Timer::Close(id) => {
                if let Some(g) = state.groups.get_mut(&id)
                    && g.status == IncidentStatus::Resolved
                    && g.resolved_at
                        .is_some_and(|r| r + dur(cfg.reopen_window) <= due)
                {
                    g.status = IncidentStatus::Closed;
                    g.closed_at = Some(due);
                    state.schedule(due + dur(cfg.retention), Timer::Forget(id.clone()));
                    touch(&mut touched, &id, due);
                }
            }
            Timer::Forget(id) => {
                if state
                    .groups
                    .get(&id)
                    .is_some_and(|g| g.status == IncidentStatus::Closed)
                {
                    forget_group(state, &id);
                    // Reported so the engine forgets what it published of it too.
                    touch(&mut touched, &id, due);
                }
            }
            Timer::Flap(f) => {
                let window = dur(cfg.flap_window);
                let Some(a) = state.alerts.get_mut(&f) else {
                    continue;
                };
                let last = a.changes.last().copied().unwrap_or(due);
                if !a.alert.flapping {
                    continue;
                }
                if last + window > due {
                    state.schedule(last + window, Timer::Flap(f));
                    continue;
                }
                a.alert.flapping = false;
                a.changes.clear();
                if let Some(id) = a.incident.clone() {
                    touch(&mut touched, &id, due);
                    if a.alert.status == Status::Resolved {
                        resolve_if_done(state, cfg, &id, due);
                    }
                }
            }
            Timer::ResolveTimeout(f) => {
                let Some(a) = state.alerts.get_mut(&f) else {
                    continue;
                };
                a.timeout_due = None;
                let Some(timeout) = cfg.resolve_timeout_for(&a.alert.source) else {
                    continue;
                };
                if a.alert.status != Status::Firing {
                    continue;
                }
                let silent_until = a.alert.last_seen.max(a.status_time) + dur(timeout);
                if silent_until > due {
                    a.timeout_due = Some(silent_until);
                    state.schedule(silent_until, Timer::ResolveTimeout(f));
                    continue;
                }
                a.alert.status = Status::Resolved;
                a.alert.auto_resolved = true;
                a.status_time = due;
                if let Some(id) = a.incident.clone() {
                    touch(&mut touched, &id, due);
                    resolve_if_done(state, cfg, &id, due);
                }
            }
            Timer::ForgetAlert(f) => {
                if state
                    .alerts
                    .get(&f)
                    .is_some_and(|a| a.incident.is_none() && a.alert.status == Status::Resolved)
                {
                    state.alerts.remove(&f);
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

/// The likely root cause among the failing services of one incident: a failing service none of
/// whose own dependencies is failing (the deepest failure); ties go to the earliest alert, then
/// to the name. `failing` maps each failing service to its earliest alert time.
pub fn root_cause(topo: &Topology, failing: &BTreeMap<String, DateTime<Utc>>) -> Option<RootCause> {
    if let Some(rc) = lost_redundancy(topo, failing) {
        return Some(rc);
    }
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

/// A redundancy group whose failing members leave fewer working than it needs (both replicas of
/// a pair): the group's service is the root cause, rather than whichever replica failed first.
/// The earliest such group (by its first failing member), then by name.
fn lost_redundancy(
    topo: &Topology,
    failing: &BTreeMap<String, DateTime<Utc>>,
) -> Option<RootCause> {
    let mut best: Option<(DateTime<Utc>, &str, Vec<&str>, usize)> = None;
    for parent in failing.keys().flat_map(|s| topo.redundancy_parents(s)) {
        let def = topo.service(parent)?;
        let crate::topology::Requires::AtLeast(k) = def.requires else {
            continue;
        };
        let down: Vec<&str> = def
            .depends_on
            .iter()
            .filter(|d| failing.contains_key(*d))
            .map(String::as_str)
            .collect();
        if def.depends_on.len() - down.len() >= k as usize {
            continue;
        }
        let first = down.iter().filter_map(|d| failing.get(*d)).min()?;
        if best
            .as_ref()
            .is_none_or(|(t, name, _, _)| (*first, parent) < (*t, *name))
        {
            best = Some((*first, parent, down, k as usize));
        }
    }
    let (_, parent, down, k) = best?;
    let n = topo.service(parent).map_or(0, |d| d.depends_on.len());
    Some(RootCause {
        service: parent.to_string(),
        reason: format!(
            "{parent} lost its redundancy: {} of its {n} redundant dependencies are failing ({}) and it needs {k}",
            down.len(),
            down.join(", ")
        ),
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
            out.incidents.push(id);
        }
    }
    out
}
