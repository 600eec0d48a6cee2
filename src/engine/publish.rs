//! Turning correlation state into versioned incident records: build the record of a group of
//! alerts (impact, root cause, symptoms, title, owners and links), account its cost, publish it
//! as a new version when what an operator sees changed (`aspects`) and it is due (`settle`),
//! move its RFCs on (withdrawn when no longer needed) and raise the one the policy gives for
//! it, and note the milestones (opened, acknowledged, resolved) the shell measures. Problems
//! (`problems.rs`) and RFC verification (`changes.rs`) look at each version as it goes out.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

mod read;

pub(super) use read::Memo;
use read::{Derived, Parts, Read};

use super::settle::{Built, Judged};
use super::state::Account;
use super::{Engine, EngineState, Published, aspects};
use crate::change::Raiser;
use crate::change::lifecycle::{self, Step};
use crate::correlate::members::{Kept, Members};
use crate::correlate::{self, Group, StoredAlert};
use crate::impact;
use crate::model::{
    Aspect, Impact, Incident, IncidentStatus, Output, Priority, Rfc, ServiceContext,
};

/// Most failing services whose owners and links an incident lists.
const MAX_CONTEXT: usize = 10;

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

impl Engine {
    /// Builds incident `id` as of `time` (the event time of the input that changed it) and
    /// publishes it if its next version is due by then.
    pub(super) fn publish_if_changed(
        &mut self,
        id: &str,
        time: DateTime<Utc>,
        outputs: &mut Vec<Output>,
    ) {
        self.publish_at(id, time, time, outputs);
    }

    /// Builds incident `id` as of `time` and publishes it if its next version is due by `now`
    /// (event time: the input's, or the due time of the timer that changed it).
    pub(super) fn publish_at(
        &mut self,
        id: &str,
        time: DateTime<Utc>,
        now: DateTime<Utc>,
        outputs: &mut Vec<Output>,
    ) {
        let Some(group) = self.state.correlation.groups.get(id) else {
            return;
        };
        let mut memo = std::mem::take(&mut self.memo);
        let (parts, members) = self.read(group, &mut memo);
        self.memo = memo;
        // Made from its alerts this time (after a restore, or after an alert left it): kept,
        // so its next builds read it instead.
        if let Some(m) = members
            && let Some(g) = self.state.correlation.groups.get_mut(id)
        {
            g.members = Kept(Some(m));
        }
        let Some(group) = self.state.correlation.groups.get(id) else {
            return;
        };
        if self.state.published.contains_key(id) {
            let built = self.make(group, parts, time);
            self.offer(built, now, outputs);
            return;
        }
        // Most builds are of a first version the group wait holds back: judged (and its cost
        // accounted) on what the record would say, and made only when it is due.
        let judged = Judged::of_group(
            id,
            group,
            parts
                .derived
                .root
                .as_ref()
                .map(|(s, guess)| (s.as_str(), *guess)),
            parts.derived.assessment.impact.revenue_at_risk_per_minute,
            time,
        );
        let (outage_seconds, cost) = self.account_of(&judged);
        if !self.first_is_due(&judged, now) {
            return;
        }
        let Some(group) = self.state.correlation.groups.get(id) else {
            return;
        };
        let mut built = self.make(group, parts, time);
        built.incident.impact.outage_seconds = outage_seconds;
        built.incident.impact.cost = cost;
        self.publish_first(built, now, outputs);
    }

    /// Publishes `incident` at once as a new version if what an operator sees changed since
    /// the last one (security incidents: they wait for nothing), with the RFC the policy
    /// raises for it.
    pub(super) fn publish(&mut self, mut incident: Incident, outputs: &mut Vec<Output>) {
        self.account(&mut incident);
        let (hashes, substance) = self.hash(&mut incident, None, None);
        if self
            .state
            .published
            .get(&incident.id)
            .is_some_and(|p| p.substance == substance)
        {
            return;
        }
        let now = incident.updated_at;
        self.emit(incident, hashes, substance, now, outputs);
    }

    /// Keeps the incident's priority from dropping below the last published one (lowering it
    /// is a decision for a person, and an RFC already raised stays valid) or below the one it
    /// was escalated to, then hashes what an operator sees of it. `steady` replaces the
    /// record's capabilities and impact when given (see [`Built::steady`]), `alerts` the hash
    /// of its alerts when the record does not list them yet ([`Built::alerts_hash`]).
    pub(super) fn hash(
        &mut self,
        incident: &mut Incident,
        steady: Option<&impact::Assessment>,
        alerts: Option<u64>,
    ) -> ([u64; aspects::HASHED.len()], u64) {
        if let Some(p) = self.state.published.get(&incident.id) {
            incident.priority = incident.priority.min(p.priority);
            // A published incident keeps the problem it was linked to; one not published yet
            // is linked when it is (`emit`), by the root cause it is published with.
            self.link_problem(incident);
        }
        self.escalation_floor(incident);
        let hashes = aspects::hashes(incident, steady, alerts);
        let substance = aspects::substance(&hashes);
        (hashes, substance)
    }

    /// Accounts the revenue at risk of `incident` up to this build, whether it is published or
    /// not, and sets its outage time and cost.
    pub(super) fn account(&mut self, i: &mut Incident) {
        let (outage_seconds, cost) = self.account_of(&Judged::of_incident(i));
        i.impact.outage_seconds = outage_seconds;
        i.impact.cost = cost;
    }

    /// Accounts the revenue at risk of the incident judged by `j` up to now; returns its
    /// outage time (seconds) and cost so far.
    pub(super) fn account_of(&mut self, j: &Judged<'_>) -> (i64, f64) {
        let now = j.resolved_at.unwrap_or(j.updated_at);
        let outage_seconds = (now - j.opened_at).num_seconds().max(0);
        let published = &self.state.published;
        let a = self.state.accounts.get_or_insert_with(j.id, || {
            match published.get(j.id) {
                // An older checkpoint: the account of the last version.
                Some(p) => Account {
                    at_risk: p.at_risk,
                    cost: p.cost,
                    since: p.cost_at.unwrap_or(j.opened_at),
                },
                None => Account {
                    at_risk: 0.0,
                    cost: 0.0,
                    since: j.opened_at,
                },
            }
        });
        let minutes = (now - a.since).num_milliseconds().max(0) as f64 / 60_000.0;
        // Kept unrounded between builds, so rounding errors do not add up.
        a.cost += a.at_risk * minutes;
        a.since = a.since.max(now);
        a.at_risk = if j.status == IncidentStatus::Open {
            j.at_risk_per_minute
        } else {
            0.0
        };
        (outage_seconds, impact::round2(a.cost))
    }

    /// Publishes `incident` as its next version: what changed, the milestones it passes, the
    /// RFCs it no longer needs (withdrawn) and the one the policy raises for it.
    pub(super) fn emit(
        &mut self,
        mut incident: Incident,
        mut hashes: [u64; aspects::HASHED.len()],
        mut substance: u64,
        published_at: DateTime<Utc>,
        outputs: &mut Vec<Output>,
    ) {
        if !self.state.published.contains_key(&incident.id) {
            self.link_problem(&mut incident);
            substance = aspects::rehash(&mut hashes, &incident, Aspect::Problem);
        }
        let previous = self.state.published.get(&incident.id);
        incident.version = previous.map_or(1, |p| p.version.saturating_add(1));
        incident.changed = match previous {
            None => vec![Aspect::Opened],
            Some(p) => aspects::changed(&p.aspects, &hashes),
        };
        let milestones = milestones_of(&incident, previous);
        let (at_risk, cost, cost_at) = self
            .state
            .accounts
            .get(&incident.id)
            .map_or((0.0, 0.0, None), |a| (a.at_risk, a.cost, Some(a.since)));
        self.state.published.insert(
            incident.id.clone(),
            Published {
                version: incident.version,
                status: incident.status,
                priority: incident.priority,
                capabilities: incident.capabilities.clone(),
                substance,
                acknowledged: incident.acknowledged_at.is_some(),
                at_risk,
                cost,
                cost_at,
                aspects: hashes.to_vec(),
                published_at: Some(published_at),
            },
        );
        self.milestones.extend(milestones);
        let changes = self.follow(&incident);
        let mut after = Vec::new();
        self.account_problem(&incident, &mut after);
        self.verify_on_publish(&incident, &mut after);
        // The incident moves into the output: it can be large, and it is not needed again.
        outputs.push(Output::Incident(incident));
        outputs.extend(changes.into_iter().map(Output::Change));
        outputs.extend(after);
    }

    /// The RFCs published with version `incident`: the next versions of those it no longer
    /// needs (withdrawn, see `change::lifecycle`), then the one the policy raises for it if it
    /// is new (containment rules for security incidents).
    fn follow(&mut self, incident: &Incident) -> Vec<Rfc> {
        let mut out = Vec::new();
        let EngineState { rfcs, changes, .. } = &mut self.state;
        for id in rfcs.get(&incident.id).into_iter().flatten() {
            if let Some(rfc) = changes.get_mut(id)
                && let Some(reason) = lifecycle::no_longer_needed(rfc, incident)
                && lifecycle::advance(rfc, Step::Withdrawn(reason), incident.updated_at)
            {
                out.push(rfc.clone());
            }
        }
        // No change is proposed for a cause d2c only guessed (services the model does not know).
        let open = incident.status == IncidentStatus::Open
            && incident.merged_into.is_none()
            && !incident.root_cause.as_ref().is_some_and(|r| r.guess);
        // Every version meets its rule again: the RFC is made only when its id is new.
        let Some((id, raiser)) = open.then(|| self.policy.raiser(incident)).flatten() else {
            return out;
        };
        if self
            .state
            .rfcs
            .get(&incident.id)
            .is_some_and(|r| r.contains(&id))
        {
            return out;
        }
        let r = match raiser {
            Raiser::Rule(rule) => self.propose(rule, incident),
            Raiser::Containment(rule, contained) => rule.propose(incident, contained),
        };
        debug_assert_eq!(r.id, id, "an RFC's id is the one its rule gives beforehand");
        self.state
            .rfcs
            .entry(incident.id.clone())
            .or_default()
            .insert(id);
        self.state.changes.insert(r.id.clone(), r.clone());
        out.push(r);
        out
    }
}

/// The milestones version `i` passes, given the version published before it.
fn milestones_of(i: &Incident, previous: Option<&Published>) -> Vec<Milestone> {
    let since_open = |t: DateTime<Utc>| (t - i.opened_at).num_milliseconds() as f64 / 1000.0;
    let mut kinds = Vec::new();
    // A first version may already be resolved (it settled before it was due): it still opened.
    if previous.is_none() {
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
    /// Reads what the record of group `g` is made from and judged by: its alerts' figures,
    /// impact assessment and root cause.
    /// Also returns the summary of its alerts when the incident had none (or an outdated one)
    /// and can keep one (see `correlate::members`): made while reading them anyway.
    fn read(&self, g: &Group, memo: &mut Memo) -> (Parts, Option<Members>) {
        let stored = |f: &Arc<str>| self.state.correlation.alerts.get(f).map(|a| &a.alert);
        // Impact is that of the alerts still firing; once the incident resolved, that of them
        // all, so the resolved record still says what the incident hurt.
        let all = g.status != IncidentStatus::Open;
        let (read, members, shape) = match g.summary() {
            // Kept as its alerts join and change: the same however many alerts it has; what
            // was made of the same shape of it is not made again.
            Some(m) => {
                if let Some(derived) = memo.shaped.get(&g.id, m.shape(), all) {
                    debug_assert!(
                        *derived == self.derive(g, Read::of_members(m, all, stored), memo),
                        "what was kept of {} at its shape differs from what its summary gives",
                        g.id
                    );
                    let parts = Parts {
                        count: m.len(),
                        chain: m.chain(),
                        derived,
                    };
                    return (parts, None);
                }
                let read = Read::of_members(m, all, stored);
                debug_assert_eq!(
                    read,
                    Read::of_alerts(&g.alerts.iter().filter_map(stored).collect::<Vec<_>>(), all),
                    "the summary of {} differs from its alerts",
                    g.id
                );
                (read, None, Some(m.shape()))
            }
            _ => {
                let alerts: Vec<&StoredAlert> = g.alerts.iter().filter_map(stored).collect();
                // Not for an incident merged away (its alerts change the other's summary), nor
                // one with alerts gone from the state.
                let members = (g.merged_into.is_none() && alerts.len() == g.alerts.len())
                    .then(|| Members::of(alerts.iter().copied()));
                // Made now: the group keeps it, so its next build may find this one.
                let shape = members.as_ref().map(Members::shape);
                (Read::of_alerts(&alerts, all), members, shape)
            }
        };
        let (count, chain) = (read.count, read.chain);
        let derived = Arc::new(self.derive(g, read, memo));
        if let Some(shape) = shape {
            memo.shaped.put(&g.id, shape, all, derived.clone());
        }
        let parts = Parts {
            count,
            chain,
            derived,
        };
        (parts, members)
    }

    /// Assesses the impact of what `read` found of group `g` and finds its root service.
    fn derive(&self, g: &Group, read: Read, memo: &mut Memo) -> Derived {
        let Read {
            severity,
            failing,
            own,
            steady,
            guess,
            ..
        } = read;
        let assessment = memo.assessed.assess(&self.topo, &g.id, &own, severity);
        let root = if failing.is_empty() {
            // None of its alerts is on a service the model knows: the guessed cause.
            guess.as_ref().map(|r| (r.service.clone(), r.guess))
        } else {
            correlate::root_service(&self.topo, &failing).map(|s| (s, false))
        };
        Derived {
            severity,
            failing,
            steady,
            guess,
            assessment,
            root,
        }
    }

    /// Makes the record of group `g` as of `time` from what [`read`](Self::read) found,
    /// without its alert list and service context (most versions are held back and dropped):
    /// [`materialise`](Self::materialise) fills in the rest when the version is published.
    fn make(&self, g: &Group, parts: Parts, time: DateTime<Utc>) -> Built {
        let stored = |f: &Arc<str>| self.state.correlation.alerts.get(f).map(|a| &a.alert);
        let Parts {
            count,
            chain,
            derived,
        } = parts;
        let Derived {
            severity,
            failing,
            steady,
            guess,
            assessment,
            root,
        } = &*derived;
        let severity = *severity;
        let root_cause = if failing.is_empty() {
            // None of its alerts is on a service the model knows.
            guess.clone()
        } else {
            correlate::root_cause(&self.topo, failing)
        };
        debug_assert_eq!(
            root_cause.as_ref().map(|r| (r.service.as_str(), r.guess)),
            root.as_ref().map(|(s, guess)| (s.as_str(), *guess)),
            "the root service judged differs from the root cause of the record"
        );
        // A flapping alert stays on its incident as firing until it calms down: whether a new
        // version is due is judged on the impact with it firing, so its flips are no news.
        let steady = steady
            .as_ref()
            .map(|own| impact::assess(&self.topo, own, severity));
        let first = g.alerts.iter().find_map(stored);
        let subject = root_cause
            .as_ref()
            .map(|r| r.service.clone())
            .or_else(|| first.and_then(|a| a.ci.as_deref().map(str::to_owned)))
            .unwrap_or_else(|| "unmapped".into());
        let name = first.map_or("alert", |a| &*a.name);
        let title = match count {
            0 | 1 => format!("{subject}: {name}"),
            n => format!("{subject}: {name} and {} more alerts", n - 1),
        };
        let alerts_hash = aspects::alerts(&title, count, chain);
        let incident = Incident {
            id: g.id.to_string(),
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
            failing_services: failing.iter().map(|(s, _)| s.to_string()).collect(),
            // Filled in from `assessment` when the version is judged on them or published
            // (`Built::fill`); accounting reads only the revenue at risk.
            services: Vec::new(),
            capabilities: Vec::new(),
            impact: Impact {
                revenue_at_risk_per_minute: assessment.impact.revenue_at_risk_per_minute,
                ..Impact::default()
            },
            event_count: g.event_count,
            changed: Vec::new(),
            context: Vec::new(),
            alerts: Vec::new(),
            alerts_omitted: 0,
            security: None,
            problem: None,
            workaround: None,
        };
        Built {
            incident,
            assessment: assessment.clone(),
            steady,
            settling: g.resolving_since.is_some(),
            alerts_hash,
        }
    }

    /// Fills in what [`make`](Self::make) left out of a version about to be published: its
    /// alerts (each marked a symptom of the root cause when its service needs it) and the
    /// owners and links of its failing services, the root cause's first. The group is as it
    /// was built (nothing changes it between the build and the publication).
    pub(super) fn materialise(&self, incident: &mut Incident) {
        let Some(g) = self.state.correlation.groups.get(incident.id.as_str()) else {
            return;
        };
        let root = incident.root_cause.as_ref().map(|r| r.service.as_str());
        // Asked once per service, not per alert: an incident's alerts share few services.
        let mut needs: BTreeMap<&str, bool> = BTreeMap::new();
        // One copy of the root's name, shared by every symptom alert of the version.
        let symptom_of: Option<Arc<str>> = root.map(Arc::from);
        let alerts = g
            .alerts
            .iter()
            .filter_map(|f| self.state.correlation.alerts.get(f))
            .map(|a| {
                let mut r = a.alert.to_ref();
                if let (Some(rc), Some(s)) = (root, a.alert.service.as_deref()) {
                    let symptom = *needs
                        .entry(s)
                        .or_insert_with(|| s != rc && self.topo.needs(s, rc));
                    if symptom {
                        r.symptom_of.clone_from(&symptom_of);
                    }
                }
                r
            })
            .collect();
        let mut context: Vec<ServiceContext> = root
            .into_iter()
            .chain(
                incident
                    .failing_services
                    .iter()
                    .map(String::as_str)
                    .filter(|s| Some(*s) != root),
            )
            .map(|s| self.topo.context_of(s))
            .filter(|c| !c.is_empty())
            .collect();
        context.truncate(MAX_CONTEXT);
        incident.alerts = alerts;
        incident.context = context;
    }
}
