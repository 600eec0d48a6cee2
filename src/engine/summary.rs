//! The engine's gauges: the counts the shell turns into metrics (firing alerts, open incidents
//! by priority and capability, the own health of failing services, the strings alerts share).

use std::collections::BTreeMap;

use super::Engine;
use crate::impact;
use crate::model::{IncidentStatus, Priority, Status};

/// Counts the shell turns into gauges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub active_alerts: u64,
    pub suppressed_alerts: u64,
    pub open_by_priority: BTreeMap<Priority, u64>,
    pub open_by_capability: BTreeMap<String, u64>,
    /// The own health (0–100) of every service with a firing alert: its worst alert's.
    pub own_health: BTreeMap<String, f64>,
    /// Strings the alerts share (names, sources, CIs, services; at most
    /// `correlate::MAX_INTERNED`).
    pub shared_strings: u64,
}

impl Engine {
    /// Gauges for the shell: firing alerts, open incidents by priority and by capability, the
    /// own health of failing services.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            suppressed_alerts: self.state.suppressed.len() as u64,
            shared_strings: self.state.correlation.shared_strings() as u64,
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
}
