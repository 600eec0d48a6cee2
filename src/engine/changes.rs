//! The engine's side of running RFCs (see `change::lifecycle`): an RFC gets the run its rule
//! asks for when raised; the automation stage's reports move it to implementing, implemented or
//! failed; verification ends it `successful` when its incident resolves within
//! `verify_within`, or `unsuccessful` when that time passes first (an event-time timer), and
//! then the incident is escalated one priority step.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Applied, Engine, Input, Refusal};
use crate::change::{Rule, lifecycle};
use crate::model::{Incident, IncidentStatus, Output, Priority, Rfc, RfcStatus, RunReport};

/// What the engine remembers of runs: implemented RFCs waiting for verification, and
/// escalated incidents. Both are forgotten with their incident.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunState {
    /// `(due, RFC id)`: when verification of an implemented RFC ends.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pending: BTreeSet<(DateTime<Utc>, String)>,
    /// The priority an incident was escalated to, by incident id: its versions never fall
    /// below it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub escalations: BTreeMap<String, Priority>,
}

impl RunState {
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.escalations.is_empty()
    }
}

impl Engine {
    /// The RFC `rule` raises for `incident`, with the run the rule asks for.
    pub(super) fn propose(&self, rule: &Rule, incident: &Incident) -> Rfc {
        let mut rfc = rule.propose(incident);
        rfc.automation = lifecycle::run_for(rule, incident, &self.topo);
        rfc
    }

    /// An escalated incident keeps at least the priority it was escalated to.
    pub(super) fn escalation_floor(&self, incident: &mut Incident) {
        if let Some(p) = self.state.runs.escalations.get(&incident.id) {
            incident.priority = incident.priority.min(*p);
        }
    }

    /// Applies the automation stage's report on one of this engine's RFCs.
    pub(super) fn report_run(&mut self, report: &RunReport) -> Applied {
        let mut outputs = Vec::new();
        let at = self.state.clock.map_or(report.time, |c| c.max(report.time));
        let Some(rfc) = self.state.changes.get_mut(&report.change) else {
            // Another partition raised it, or its incident was forgotten.
            return Applied::default();
        };
        match lifecycle::apply(rfc, report, at) {
            Ok(true) => {}
            Ok(false) => return Applied::default(),
            Err(detail) => {
                let refusal = Refusal {
                    reason: "invalid_transition",
                    detail,
                };
                return Applied::refused(refusal, &Input::Run(report));
            }
        }
        outputs.push(Output::Change(rfc.clone()));
        if let Some(due) = lifecycle::verify_due(rfc) {
            let resolved = self
                .state
                .published
                .get(&rfc.incident_id)
                .is_none_or(|p| p.status != IncidentStatus::Open);
            if resolved {
                // Resolved before the change was done: nothing left to wait for.
                if lifecycle::succeed(rfc, at) {
                    outputs.push(Output::Change(rfc.clone()));
                }
            } else {
                self.state.runs.pending.insert((due, rfc.id.clone()));
            }
        }
        self.advance(at, &mut outputs);
        Applied::outputs(outputs)
    }

    /// After a version of `incident` was published: if it resolved, its implemented RFCs are
    /// `successful`. (A merged incident did not resolve: its RFCs wait for their timer.)
    pub(super) fn verify_on_publish(&mut self, incident: &Incident, outputs: &mut Vec<Output>) {
        if incident.status == IncidentStatus::Open || incident.merged_into.is_some() {
            return;
        }
        let at = incident.resolved_at.unwrap_or(incident.updated_at);
        let ids: Vec<String> = self
            .state
            .rfcs
            .get(&incident.id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            if let Some(rfc) = self.state.changes.get_mut(&id)
                && rfc.status == RfcStatus::Implemented
            {
                let due = lifecycle::verify_due(rfc);
                if lifecycle::succeed(rfc, at) {
                    outputs.push(Output::Change(rfc.clone()));
                }
                if let Some(due) = due {
                    self.state.runs.pending.remove(&(due, id));
                }
            }
        }
    }

    /// Verification timers due by `now`: an RFC whose incident is still open is
    /// `unsuccessful`, and the incident escalated one priority step (a new version).
    pub(super) fn verify_due(&mut self, now: DateTime<Utc>, outputs: &mut Vec<Output>) {
        while let Some((due, id)) = self.state.runs.pending.first().cloned() {
            if due > now {
                break;
            }
            self.state.runs.pending.pop_first();
            let Some(rfc) = self.state.changes.get(&id) else {
                continue;
            };
            let incident = rfc.incident_id.clone();
            let open = self
                .state
                .published
                .get(&incident)
                .filter(|p| p.status == IncidentStatus::Open)
                .map(|p| p.priority);
            let escalated = open.map(|p| p.escalated()).filter(|e| Some(*e) != open);
            let Some(rfc) = self.state.changes.get_mut(&id) else {
                continue;
            };
            let changed = match open {
                Some(_) => lifecycle::fail_verification(rfc, due, escalated),
                None => lifecycle::succeed(rfc, due),
            };
            if changed {
                outputs.push(Output::Change(rfc.clone()));
            }
            if let Some(p) = escalated {
                self.state.runs.escalations.insert(incident.clone(), p);
                self.publish_if_changed(&incident, due, outputs);
            }
        }
    }

    /// Incident `id` and its RFCs are forgotten: so are its escalation and pending checks.
    pub(super) fn forget_runs(&mut self, id: &str, rfcs: &BTreeSet<String>) {
        self.state.runs.escalations.remove(id);
        self.state
            .runs
            .pending
            .retain(|(_, rfc)| !rfcs.contains(rfc));
    }
}
