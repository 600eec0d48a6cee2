//! Turning correlation state into versioned incident records: build the record of a group of
//! alerts (impact, root cause, symptoms, title), publish it as a new version only when what an
//! operator sees changed (its substance), raise the RFC the policy gives for it, account its
//! cost, and note the milestones (opened, acknowledged, resolved) the shell measures. Problems
//! (`problems.rs`) and RFC verification (`changes.rs`) look at each version as it goes out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Engine, Published};
use crate::correlate::{self, Group};
use crate::impact;
use crate::model::{Incident, IncidentStatus, Output, Priority, Status};

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
    text(&mut h, i.problem.as_deref().unwrap_or(""));
    text(&mut h, i.workaround.as_deref().unwrap_or(""));
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

impl Engine {
    pub(super) fn publish_if_changed(
        &mut self,
        id: &str,
        time: DateTime<Utc>,
        outputs: &mut Vec<Output>,
    ) {
        let Some(group) = self.state.correlation.groups.get(id) else {
            return;
        };
        let incident = self.build(group, time);
        self.publish(incident, outputs);
    }

    /// Publishes `incident` as a new version if its substance changed since the last one, with
    /// the RFC the policy raises for it (containment rules for security incidents).
    pub(super) fn publish(&mut self, mut incident: Incident, outputs: &mut Vec<Output>) {
        // Priority is raised as the impact grows, never lowered while d2c knows the incident:
        // lowering it is a decision for a person, and an RFC already raised stays valid.
        if let Some(p) = self.state.published.get(&incident.id) {
            incident.priority = incident.priority.min(p.priority);
        }
        self.escalation_floor(&mut incident);
        self.link_problem(&mut incident);
        let id = incident.id.as_str();
        let previous = self.state.published.get(id);
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
                    .map(|r| self.propose(r, &incident)),
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
        let mut after = Vec::new();
        self.account_problem(&incident, &mut after);
        self.verify_on_publish(&incident, &mut after);
        // The incident moves into the output: it can be large, and it is not needed again.
        outputs.push(Output::Incident(incident));
        outputs.extend(rfc.map(Output::Change));
        outputs.extend(after);
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
            problem: None,
            workaround: None,
        }
    }
}
