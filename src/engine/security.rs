//! The engine's side of security triage: security events go to `correlate::security` instead
//! of the operational grouping, and their incidents are published through the same versioning
//! path (`Engine::publish`) with containment RFCs.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{Applied, Engine};
use crate::correlate::security;
use crate::model::{Event, Incident, IncidentStatus, Output, Severity};
use crate::topology::Criticality;

/// Counts of open security incidents for the shell's gauges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecuritySummary {
    /// Open security incidents by ATT&CK tactic id reached (`none` for an incident without
    /// one) and incident severity; an incident counts once under each tactic it reached.
    pub open_by_tactic: BTreeMap<(String, Severity), u64>,
}

impl Engine {
    /// Applies a security event (category `security`); `outputs` holds what the timers due
    /// before it already caused.
    pub(super) fn apply_security(&mut self, ev: &Event, mut outputs: Vec<Output>) -> Applied {
        let (outcome, touched) =
            security::observe(&mut self.state.security, &self.cfg.security, ev);
        if outcome.may_change_incident() {
            for id in &touched {
                self.publish_security(id, ev.time, &mut outputs);
            }
        }
        let evicted = security::evict(&mut self.state.security, self.cfg.max_incidents);
        self.applied(outcome, outputs, evicted)
    }

    /// Runs the security timers due by `now`: quiet incidents close, closed ones are forgotten.
    pub(super) fn advance_security(&mut self, now: DateTime<Utc>, outputs: &mut Vec<Output>) {
        loop {
            let cfg = &self.cfg;
            let due =
                security::run_timers(&mut self.state.security, &cfg.security, cfg.retention, now);
            if due.is_empty() {
                break;
            }
            for (id, time) in due {
                if self.state.security.incidents.contains_key(&id) {
                    self.publish_security(&id, time, outputs);
                } else {
                    self.forget(&id);
                }
            }
        }
    }

    /// Acknowledges security incident `id`, if this engine holds it open and unacknowledged.
    pub(super) fn acknowledge_security(
        &mut self,
        id: &str,
        by: &str,
        at: DateTime<Utc>,
        outputs: &mut Vec<Output>,
    ) {
        if security::acknowledge(&mut self.state.security, id, by, at) {
            self.publish_security(id, at, outputs);
        }
    }

    fn publish_security(&mut self, id: &str, time: DateTime<Utc>, outputs: &mut Vec<Output>) {
        if let Some(inc) = self.state.security.incidents.get(id) {
            let mut incident = security::incident(inc, time);
            self.expose(&mut incident);
            self.publish(incident, outputs);
        }
    }

    /// What an attack exposes: the services of the attacked hosts and containers (a host or
    /// container named as a CI or a service of the topology), every service that needs them,
    /// and the capabilities those deliver. Nothing is down because of it, so health and revenue
    /// at risk stay untouched; `impact.criticality` says how critical the exposed capabilities
    /// are.
    fn expose(&self, i: &mut Incident) {
        let Some(sec) = &i.security else {
            return;
        };
        let attacked: BTreeSet<&str> = sec
            .entities
            .hosts
            .iter()
            .chain(&sec.entities.containers)
            .filter_map(|h| self.topo.service_of(h))
            .collect();
        if attacked.is_empty() {
            return;
        }
        let exposed = self.topo.affected(attacked.iter().copied());
        let capabilities = self.topo.capabilities_of(&exposed);
        i.impact.criticality = capabilities
            .iter()
            .filter_map(|c| self.topo.capability(c))
            .map(|c| c.criticality)
            .min()
            .map_or("none", Criticality::as_str)
            .to_string();
        i.failing_services = attacked.into_iter().map(String::from).collect();
        i.services = exposed.into_iter().collect();
        i.capabilities = capabilities.into_iter().collect();
    }

    /// Gauges for the shell: open security incidents by tactic reached and severity. Apart
    /// from [`Engine::summary`] so the two sets of gauges evolve independently.
    pub fn security_summary(&self) -> SecuritySummary {
        let mut s = SecuritySummary::default();
        for inc in self.state.security.incidents.values() {
            if inc.status != IncidentStatus::Open {
                continue;
            }
            let worst = inc
                .detections
                .values()
                .map(|d| d.alert.severity)
                .min()
                .unwrap_or(Severity::Info);
            let severity = security::severity(worst, inc.stages.len());
            let tactics: Vec<String> = if inc.stages.is_empty() {
                vec!["none".to_owned()]
            } else {
                inc.stages.keys().cloned().collect()
            };
            for t in tactics {
                *s.open_by_tactic.entry((t, severity)).or_default() += 1;
            }
        }
        s
    }
}
