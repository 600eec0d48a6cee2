//! The pure core: `(state, event) -> (state, outputs)` and `(state, tick(now)) -> (state,
//! outputs)`. Composes correlation, impact and change policy into versioned incident and RFC
//! records. No I/O and no wall clock, so the same input always gives the same output.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::change::ChangePolicy;
use crate::config::CorrelationConfig;
use crate::correlate::{self, Group, Outcome};
use crate::impact;
use crate::model::{
    Category, Decision, Event, Incident, IncidentStatus, Output, Priority, Rfc, Status,
};
use crate::suppress::{InhibitState, Silence, SuppressReason, Suppression, Suppressor};
use crate::topology::Topology;

mod triage;
pub use triage::SecuritySummary;

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
}

/// The last published version of an incident, as much as the engine needs of it: the version,
/// what the gauges count, and a hash of its substance to tell whether a new version is due.
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
}

/// A moment in an incident's life that the shell turns into MTTD, MTTA and MTTR histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct Milestone {
    pub kind: MilestoneKind,
    pub priority: Priority,
    /// The capabilities the incident hurts (the histograms' label, bounded by the service
    /// model).
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MilestoneKind {
    /// The incident was opened; `first_event` is the earliest time its source stamped on any
    /// of its alerts (the shell measures detection from it to the wall clock).
    Opened { first_event: DateTime<Utc> },
    /// Acknowledged this many seconds after opening.
    Acknowledged { seconds: f64 },
    /// Resolved this many seconds after opening, having absorbed `events` events.
    Resolved { seconds: f64, events: u64 },
}

/// A stable hash of what an operator sees in an incident: repeats of an alert (counts, last
/// seen) do not change it; a change of membership, status, severity, priority, impact or cause
/// does. Fed field by field (no serialisation); lists are prefixed with their length so that
/// moving an item from one list to the next changes the hash.
fn substance(i: &Incident) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let text = |h: &mut xxhash_rust::xxh3::Xxh3, s: &str| {
        h.update(s.as_bytes());
        h.update(&[0xff]);
    };
    let list = |h: &mut xxhash_rust::xxh3::Xxh3, items: &[String]| {
        h.update(&(items.len() as u64).to_le_bytes());
        for s in items {
            h.update(s.as_bytes());
            h.update(&[0xff]);
        }
    };
    h.update(&[i.status as u8, i.severity as u8, i.priority as u8]);
    text(&mut h, &i.title);
    match &i.root_cause {
        Some(rc) => {
            h.update(&[1]);
            text(&mut h, &rc.service);
            text(&mut h, &rc.reason);
        }
        None => h.update(&[0]),
    }
    list(&mut h, &i.failing_services);
    list(&mut h, &i.services);
    list(&mut h, &i.capabilities);
    text(&mut h, &i.impact.criticality);
    h.update(&i.impact.revenue_at_risk_per_minute.to_bits().to_le_bytes());
    h.update(&i.impact.health.to_bits().to_le_bytes());
    h.update(&i.reopened.to_le_bytes());
    text(&mut h, i.acknowledged_by.as_deref().unwrap_or(""));
    text(&mut h, i.merged_into.as_deref().unwrap_or(""));
    // Security incidents: new stages, entities, techniques or tools make a new version.
    if let Some(s) = &i.security {
        text(&mut h, &serde_json::to_string(s).unwrap_or_default());
    }
    h.update(&(i.related_changes.len() as u64).to_le_bytes());
    for c in &i.related_changes {
        text(&mut h, &c.change.id);
    }
    h.update(&(i.alerts.len() as u64).to_le_bytes());
    for a in &i.alerts {
        text(&mut h, &a.fingerprint);
        h.update(&[
            a.status as u8,
            a.severity as u8,
            u8::from(a.flapping),
            u8::from(a.auto_resolved),
        ]);
    }
    h.digest()
}

/// Where an event came from: its raw record's partition and offset, and its index among the
/// events of that record (one Alertmanager payload carries many).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub partition: i32,
    pub offset: i64,
    pub index: u32,
}

/// What applying one event did, for the shell to count.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub outcome: Outcome,
    /// Why the event was suppressed, when it was.
    pub suppressed: Option<Suppression>,
    pub outputs: Vec<Output>,
    /// State forgotten to stay within the caps while applying this event.
    pub evicted: correlate::Evicted,
}

/// Counts the shell turns into gauges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub active_alerts: u64,
    pub suppressed_alerts: u64,
    pub open_by_priority: BTreeMap<Priority, u64>,
    pub open_by_capability: BTreeMap<String, u64>,
    /// The own health (0–100) of every service with a firing alert: its worst alert's.
    pub own_health: BTreeMap<String, f64>,
}

/// The correlation engine for one stream of events (one input partition).
#[derive(Debug, Clone)]
pub struct Engine {
    topo: Arc<Topology>,
    policy: Arc<ChangePolicy>,
    cfg: CorrelationConfig,
    state: EngineState,
    /// Silences, maintenance windows and inhibition; `None` when there are no rules.
    suppressor: Option<Suppressor>,
    /// Milestones since the shell last took them (not state: metrics only).
    milestones: Vec<Milestone>,
}

impl Engine {
    /// Suppresses events by `suppressor`'s rules from now on; inhibition picks up where the
    /// state's `inhibit` left it.
    pub fn with_suppressor(mut self, mut suppressor: Suppressor) -> Self {
        suppressor.restore_inhibit_state(self.state.inhibit.clone());
        for s in self.state.silences.values() {
            if let Err(e) = suppressor.add_silence(s.clone()) {
                tracing::warn!(id = %s.id, error = %e, "a silence of the checkpoint no longer applies");
            }
        }
        self.suppressor = Some(suppressor);
        self
    }

    /// Adds (or, with the id of an existing one, replaces) a silence at run time. Returns its
    /// id.
    pub fn add_silence(&mut self, silence: Silence) -> Result<String, crate::suppress::Error> {
        let suppressor = match &mut self.suppressor {
            Some(s) => s,
            None => self.suppressor.insert(Suppressor::new(Default::default())?),
        };
        let id = suppressor.add_silence(silence)?;
        if let Some(s) = suppressor.silence(&id) {
            self.state.silences.insert(id.clone(), s.clone());
        }
        Ok(id)
    }

    /// The state with everything in it, for a checkpoint (the suppressor's inhibition state is
    /// copied in first).
    pub fn checkpoint_state(&mut self) -> &EngineState {
        if let Some(s) = &self.suppressor {
            self.state.inhibit = s.inhibit_state().clone();
        }
        &self.state
    }

    pub fn new(topo: Arc<Topology>, policy: Arc<ChangePolicy>, cfg: CorrelationConfig) -> Self {
        Engine {
            topo,
            policy,
            cfg,
            state: EngineState::default(),
            suppressor: None,
            milestones: Vec::new(),
        }
    }

    /// Uses `topo` from now on (the service model was refreshed). Incidents already open keep
    /// their alerts; their impact is assessed on the new model at their next version.
    pub fn set_topology(&mut self, topo: Arc<Topology>) {
        self.topo = topo;
    }

    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// Restores an engine from a checkpointed state.
    pub fn with_state(
        topo: Arc<Topology>,
        policy: Arc<ChangePolicy>,
        cfg: CorrelationConfig,
        state: EngineState,
    ) -> Self {
        Engine {
            topo,
            policy,
            cfg,
            state,
            suppressor: None,
            milestones: Vec::new(),
        }
        .with_runtime_silences()
    }

    /// A state with run-time silences needs a suppressor even when the settings have no rules.
    fn with_runtime_silences(self) -> Self {
        if self.state.silences.is_empty() {
            return self;
        }
        match Suppressor::new(Default::default()) {
            Ok(s) => self.with_suppressor(s),
            Err(_) => self,
        }
    }

    /// Applies one event; returns what it did and the records it caused, in order.
    pub fn apply(&mut self, ev: &Event) -> Applied {
        self.apply_from(ev, None)
    }

    /// As [`Engine::apply`], for an event whose raw origin is known: an event at or before the
    /// last applied position of its raw partition is skipped as a redelivery.
    pub fn apply_from(&mut self, ev: &Event, origin: Option<Origin>) -> Applied {
        if let Some(o) = origin {
            let pos = (o.offset, o.index);
            match self.state.origins.get(&o.partition) {
                Some(last) if *last >= pos => {
                    return Applied {
                        outcome: Outcome::Redelivered,
                        suppressed: None,
                        outputs: Vec::new(),
                        evicted: Default::default(),
                    };
                }
                _ => {
                    self.state.origins.insert(o.partition, pos);
                }
            }
        }
        let mut outputs = Vec::new();
        // Timers due by now run before the event, as they would have had a tick come earlier.
        self.advance(ev.time, &mut outputs);
        let res = self.topo.resolve(ev);
        let fingerprint = correlate::fingerprint_for(&self.cfg, ev);
        if let Some(suppression) = self.suppressed(ev, &fingerprint, res.service.as_deref()) {
            self.remember_suppressed(ev, &fingerprint, &res, &suppression);
            return Applied {
                outcome: Outcome::Suppressed,
                suppressed: Some(suppression),
                outputs,
                evicted: Default::default(),
            };
        }
        if ev.category == Category::Security {
            return self.apply_security(ev, outputs);
        }
        let (outcome, touched) = correlate::observe(
            &mut self.state.correlation,
            &self.topo,
            &self.cfg,
            ev,
            &fingerprint,
            &res,
        );
        if outcome.may_change_incident() {
            for id in &touched {
                self.publish_if_changed(id, ev.time, &mut outputs);
            }
        }
        self.acknowledged_by_source(ev, &fingerprint, &mut outputs);
        let evicted = correlate::evict(
            &mut self.state.correlation,
            self.cfg.max_alerts,
            self.cfg.max_incidents,
        );
        for id in &evicted.incidents {
            self.forget(id);
        }
        Applied {
            outcome,
            suppressed: None,
            outputs,
            evicted,
        }
    }

    /// Whether `ev` is suppressed. A resolve of an alert that is on an incident is never
    /// suppressed: the incident it opened before the silence must still resolve.
    fn suppressed(
        &mut self,
        ev: &Event,
        fingerprint: &str,
        service: Option<&str>,
    ) -> Option<Suppression> {
        let suppressor = self.suppressor.as_mut()?;
        let suppression = suppressor.check(ev, service)?;
        let on_incident = self
            .state
            .correlation
            .alerts
            .get(fingerprint)
            .is_some_and(|a| a.incident.is_some());
        (ev.status == Status::Firing || !on_incident).then_some(suppression)
    }

    fn remember_suppressed(
        &mut self,
        ev: &Event,
        fingerprint: &str,
        res: &crate::topology::Resolution,
        s: &Suppression,
    ) {
        let list = &mut self.state.suppressed;
        let entry = list
            .entry(fingerprint.to_string())
            .or_insert_with(|| SuppressedAlert {
                name: ev.name.clone(),
                ci: res.ci.clone(),
                service: res.service.clone(),
                reason: s.reason,
                by: s.by.clone(),
                count: 0,
                first_seen: ev.time,
                last_seen: ev.time,
            });
        entry.count += 1;
        entry.reason = s.reason;
        entry.by.clone_from(&s.by);
        entry.first_seen = entry.first_seen.min(ev.time);
        entry.last_seen = entry.last_seen.max(ev.time);
        if list.len() > MAX_SUPPRESSED {
            let oldest = list
                .iter()
                .min_by_key(|(f, a)| (a.last_seen, *f))
                .map(|(f, _)| f.clone());
            if let Some(f) = oldest {
                list.remove(&f);
            }
        }
    }

    /// Advances the engine's time to `now` (never backwards) and runs the timers due: ends of
    /// resolve holds, closing, ends of flapping, resolve timeouts, forgetting. Returns the
    /// records they caused.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Output> {
        let mut outputs = Vec::new();
        self.advance(now, &mut outputs);
        outputs
    }

    /// Acknowledges incident `id` (someone is working on it), at `at` by `by`. Returns the new
    /// version, or nothing when the incident is unknown to this engine (another partition owns
    /// it), closed, or acknowledged already.
    pub fn acknowledge(&mut self, id: &str, by: &str, at: DateTime<Utc>) -> Vec<Output> {
        let mut outputs = Vec::new();
        self.advance(at, &mut outputs);
        let at = self.state.clock.unwrap_or(at);
        if correlate::acknowledge(&mut self.state.correlation, id, by, at) {
            self.publish_if_changed(id, at, &mut outputs);
        } else {
            self.acknowledge_security(id, by, at, &mut outputs);
        }
        outputs
    }

    /// A tool that tells an alert was acknowledged (attribute `acknowledged: true`, e.g. a
    /// PagerDuty `acknowledge` event) acknowledges the incident the alert is on, by that tool.
    fn acknowledged_by_source(&mut self, ev: &Event, fingerprint: &str, outputs: &mut Vec<Output>) {
        if ev.attributes.get("acknowledged") != Some(&serde_json::Value::Bool(true)) {
            return;
        }
        let Some(id) = self
            .state
            .correlation
            .alerts
            .get(fingerprint)
            .and_then(|a| a.incident.clone())
        else {
            return;
        };
        if correlate::acknowledge(&mut self.state.correlation, &id, &ev.source, ev.time) {
            self.publish_if_changed(&id, ev.time, outputs);
        }
    }

    fn advance(&mut self, now: DateTime<Utc>, outputs: &mut Vec<Output>) {
        let now = self.state.clock.map_or(now, |c| c.max(now));
        self.state.clock = Some(now);
        for (id, due) in correlate::run_timers(&mut self.state.correlation, &self.cfg, now) {
            if self.state.correlation.groups.contains_key(&id) {
                self.publish_if_changed(&id, due, outputs);
            } else {
                // Forgotten by its retention timer: forget what was published of it too.
                self.forget(&id);
            }
        }
        self.advance_security(now, outputs);
    }

    /// Records the change authority's decision on RFC `rfc_id` and returns the RFC's next
    /// version. Returns nothing when this engine did not raise the RFC (another partition did,
    /// or its incident was forgotten) or the RFC already carries the same decision, so the
    /// decision record sent to every partition and repeats of it publish one version.
    pub fn decide_change(&mut self, rfc_id: &str, decision: Decision) -> Vec<Output> {
        let mut outputs = Vec::new();
        let at = self.state.clock.map_or(decision.at, |c| c.max(decision.at));
        let Some(rfc) = self.state.changes.get_mut(rfc_id) else {
            return outputs;
        };
        if rfc
            .decision
            .as_ref()
            .is_some_and(|d| d.status == decision.status)
        {
            return outputs;
        }
        rfc.version += 1;
        rfc.decision = Some(Box::new(Decision { at, ..decision }));
        outputs.push(Output::Change(rfc.clone()));
        // Timers run after the decision is recorded: one due by now may forget the RFC's
        // incident, and the decision must not be lost with it.
        self.advance(at, &mut outputs);
        outputs
    }

    fn forget(&mut self, id: &str) {
        self.state.published.remove(id);
        for rfc in self.state.rfcs.remove(id).unwrap_or_default() {
            self.state.changes.remove(&rfc);
        }
    }

    /// Every silence this engine applies (from the settings and added at run time).
    pub fn silences(&self) -> impl Iterator<Item = &Silence> {
        self.suppressor.iter().flat_map(|s| s.silences())
    }

    /// The milestones (openings, acknowledgements, resolutions) since the last call.
    pub fn take_milestones(&mut self) -> Vec<Milestone> {
        std::mem::take(&mut self.milestones)
    }

    /// Gauges for the shell: firing alerts, open incidents by priority and by capability, the
    /// own health of failing services.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            suppressed_alerts: self.state.suppressed.len() as u64,
            ..Summary::default()
        };
        // One pass over the alerts for both the count and the health.
        for a in self.state.correlation.alerts.values() {
            if a.alert.status == Status::Firing {
                s.active_alerts += 1;
                if let Some(svc) = &a.alert.service {
                    impact::add_alert(&mut s.own_health, svc, a.alert.severity);
                }
            }
        }
        for inc in self.state.published.values() {
            if inc.status == IncidentStatus::Open {
                *s.open_by_priority.entry(inc.priority).or_default() += 1;
                for c in &inc.capabilities {
                    *s.open_by_capability.entry(c.clone()).or_default() += 1;
                }
            }
        }
        s
    }

    fn publish_if_changed(&mut self, id: &str, time: DateTime<Utc>, outputs: &mut Vec<Output>) {
        let Some(group) = self.state.correlation.groups.get(id) else {
            return;
        };
        let incident = self.build(group, time);
        self.publish(incident, outputs);
    }

    /// Publishes `incident` as a new version if its substance changed since the last one, with
    /// the RFC the policy raises for it (containment rules for security incidents).
    fn publish(&mut self, mut incident: Incident, outputs: &mut Vec<Output>) {
        let id = incident.id.as_str();
        let previous = self.state.published.get(id);
        // Priority is raised as the impact grows, never lowered while d2c knows the incident:
        // lowering it is a decision for a person, and an RFC already raised stays valid.
        if let Some(p) = previous {
            incident.priority = incident.priority.min(p.priority);
        }
        let hash = substance(&incident);
        if previous.is_some_and(|p| p.substance == hash) {
            return;
        }
        incident.version = previous.map_or(1, |p| p.version + 1);
        let now = incident.resolved_at.unwrap_or(incident.updated_at);
        incident.impact.outage_seconds = (now - incident.opened_at).num_seconds().max(0);
        let (cost, since) = previous.map_or((0.0, incident.opened_at), |p| {
            (p.cost, p.cost_at.unwrap_or(incident.opened_at))
        });
        let minutes = (now - since).num_milliseconds().max(0) as f64 / 60_000.0;
        // Kept unrounded between versions, so rounding errors do not add up.
        let cost = cost + previous.map_or(0.0, |p| p.at_risk) * minutes;
        incident.impact.cost = impact::round2(cost);
        let milestones = milestones_of(&incident, previous);
        let rfc = (incident.status == IncidentStatus::Open)
            .then(|| match incident.security {
                Some(_) => self.policy.containment(&incident),
                None => self
                    .policy
                    .matching(&incident)
                    .map(|r| r.propose(&incident)),
            })
            .flatten()
            .filter(|rfc| {
                self.state
                    .rfcs
                    .entry(incident.id.clone())
                    .or_default()
                    .insert(rfc.id.clone())
            });
        self.state.published.insert(
            incident.id.clone(),
            Published {
                version: incident.version,
                status: incident.status,
                priority: incident.priority,
                capabilities: incident.capabilities.clone(),
                substance: hash,
                acknowledged: incident.acknowledged_at.is_some(),
                at_risk: if incident.status == IncidentStatus::Open {
                    incident.impact.revenue_at_risk_per_minute
                } else {
                    0.0
                },
                cost,
                cost_at: Some(now.max(since)),
            },
        );
        self.milestones.extend(milestones);
        if let Some(r) = &rfc {
            self.state.changes.insert(r.id.clone(), r.clone());
        }
        // The incident moves into the output: it can be large, and it is not needed again.
        outputs.push(Output::Incident(incident));
        outputs.extend(rfc.map(Output::Change));
    }
}

/// The milestones version `i` passes, given the version published before it.
fn milestones_of(i: &Incident, previous: Option<&Published>) -> Vec<Milestone> {
    let since_open = |t: DateTime<Utc>| (t - i.opened_at).num_milliseconds() as f64 / 1000.0;
    let mut kinds = Vec::new();
    if previous.is_none() && i.status == IncidentStatus::Open {
        let first_event = i
            .alerts
            .iter()
            .map(|a| a.first_seen)
            .min()
            .unwrap_or(i.opened_at);
        kinds.push(MilestoneKind::Opened { first_event });
    }
    if let Some(at) = i.acknowledged_at
        && !previous.is_some_and(|p| p.acknowledged)
    {
        kinds.push(MilestoneKind::Acknowledged {
            seconds: since_open(at).max(0.0),
        });
    }
    // A quiet stretch can resolve and close an incident in one step; merged incidents did not
    // resolve (their alerts live on in the other).
    if let Some(at) = i.resolved_at
        && i.status != IncidentStatus::Open
        && i.merged_into.is_none()
        && previous.is_none_or(|p| p.status == IncidentStatus::Open)
    {
        kinds.push(MilestoneKind::Resolved {
            seconds: since_open(at).max(0.0),
            events: i.event_count,
        });
    }
    kinds
        .into_iter()
        .map(|kind| Milestone {
            kind,
            priority: i.priority,
            capabilities: i.capabilities.clone(),
        })
        .collect()
}

impl Engine {
    fn build(&self, g: &Group, time: DateTime<Utc>) -> Incident {
        let mut alerts: Vec<_> = g
            .alerts
            .iter()
            .filter_map(|f| self.state.correlation.alerts.get(f))
            .map(|a| a.alert.clone())
            .collect();
        let severity = alerts
            .iter()
            .map(|a| a.severity)
            .min()
            .unwrap_or(crate::model::Severity::Info);
        let mut failing: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        // Impact is that of the alerts still firing; once the incident resolved, that of them
        // all, so the resolved record still says what the incident hurt.
        let all = g.status != IncidentStatus::Open;
        let mut own: BTreeMap<String, f64> = BTreeMap::new();
        for a in &alerts {
            if let Some(s) = &a.service {
                let t = failing.entry(s.clone()).or_insert(a.first_seen);
                *t = (*t).min(a.first_seen);
                if a.status == Status::Firing || all {
                    impact::add_alert(&mut own, s, a.severity);
                }
            }
        }
        let assessment = impact::assess(&self.topo, &own, severity);
        let root_cause = correlate::root_cause(&self.topo, &failing);
        if let Some(rc) = &root_cause {
            for a in &mut alerts {
                if let Some(s) = &a.service
                    && s != &rc.service
                    && self.topo.needs(s, &rc.service)
                {
                    a.symptom_of = Some(rc.service.clone());
                }
            }
        }
        let first = alerts.first().map_or("alert", |a| a.name.as_str());
        let subject = root_cause
            .as_ref()
            .map(|r| r.service.clone())
            .or_else(|| alerts.first().and_then(|a| a.ci.clone()))
            .unwrap_or_else(|| "unmapped".into());
        let title = match alerts.len() {
            0 | 1 => format!("{subject}: {first}"),
            n => format!("{subject}: {first} and {} more alerts", n - 1),
        };
        Incident {
            id: g.id.clone(),
            version: 0,
            status: g.status,
            severity,
            priority: assessment.priority,
            title,
            opened_at: g.opened_at,
            updated_at: time.max(g.opened_at),
            resolved_at: g.resolved_at,
            closed_at: g.closed_at,
            acknowledged_at: g.acknowledged.as_ref().map(|(t, _)| *t),
            acknowledged_by: g.acknowledged.as_ref().map(|(_, by)| by.clone()),
            reopened: g.reopened,
            merged_into: g.merged_into.clone(),
            root_cause,
            related_changes: g.related_changes.clone(),
            failing_services: failing.into_keys().collect(),
            services: assessment.services,
            capabilities: assessment.capabilities,
            impact: assessment.impact,
            event_count: g.event_count,
            alerts,
            security: None,
        }
    }
}

#[cfg(test)]
mod tests;
