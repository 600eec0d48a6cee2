//! The last impact assessments of a few incidents, so that a version whose impact inputs did
//! not change is not assessed again: in an outage most new alerts join a service that already
//! fails, and leave every service's own health as it was. A memo of a pure function, keyed by
//! its whole input (the incident's own health per service and its severity), so a hit gives
//! exactly what assessing again would; cleared when the service model changes.
//!
//! Shared (`Arc`): most versions built are held back and never need their own copy of the
//! services, capabilities and impact (see `Built::assessment`).
//!
//! Direct-mapped by incident id over [`SLOTS`] slots: bounded, and with nothing to evict but
//! the slot an incident maps to. Derived, not state: never checkpointed.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::impact::{self, Assessment};
use crate::model::Severity;
use crate::topology::Topology;

/// Incidents whose last assessment is kept (those whose ids map to different slots).
pub const SLOTS: usize = 64;

#[derive(Debug, Clone)]
struct Slot {
    id: Arc<str>,
    own: BTreeMap<Arc<str>, f64>,
    severity: Severity,
    assessment: Arc<Assessment>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Assessed {
    /// Empty until first used, then [`SLOTS`] long.
    slots: Vec<Option<Slot>>,
    /// Assessments answered from a slot, and made afresh.
    pub hits: u64,
    pub misses: u64,
}

impl Assessed {
    /// [`impact::assess`] of incident `id` with `own` and `severity` on `topo`.
    pub fn assess(
        &mut self,
        topo: &Topology,
        id: &Arc<str>,
        own: &BTreeMap<Arc<str>, f64>,
        severity: Severity,
    ) -> Arc<Assessment> {
        if self.slots.is_empty() {
            self.slots.resize(SLOTS, None);
        }
        let k = (xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % SLOTS as u64) as usize;
        if let Some(s) = &self.slots[k]
            && s.id == *id
            && s.severity == severity
            && s.own == *own
        {
            self.hits += 1;
            return s.assessment.clone();
        }
        self.misses += 1;
        let assessment = Arc::new(impact::assess(topo, own, severity));
        self.slots[k] = Some(Slot {
            id: id.clone(),
            own: own.clone(),
            severity,
            assessment: assessment.clone(),
        });
        assessment
    }

    /// Forgets every assessment (the service model changed).
    pub fn clear(&mut self) {
        self.slots.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_same_incident_own_health_and_severity() {
        let topo = crate::engine::Settings::embedded()
            .expect("embedded")
            .topology;
        let mut a = Assessed::default();
        let id: Arc<str> = "INC-1".into();
        let own = BTreeMap::from([(Arc::<str>::from("payments-db"), 0.0)]);
        let first = a.assess(&topo, &id, &own, Severity::Critical);
        assert_eq!(a.assess(&topo, &id, &own, Severity::Critical), first);
        assert_eq!((a.hits, a.misses), (1, 1));
        // Another severity, another own health, another incident: assessed afresh.
        let minor = a.assess(&topo, &id, &own, Severity::Minor);
        assert_eq!(*minor, impact::assess(&topo, &own, Severity::Minor));
        let degraded = BTreeMap::from([(Arc::<str>::from("payments-db"), 50.0)]);
        let other = a.assess(&topo, &id, &degraded, Severity::Minor);
        assert_eq!(*other, impact::assess(&topo, &degraded, Severity::Minor));
        assert_ne!(other.impact, first.impact);
        a.assess(&topo, &"INC-2".into(), &degraded, Severity::Minor);
        assert_eq!((a.hits, a.misses), (1, 4));
        a.clear();
        a.assess(&topo, &id, &degraded, Severity::Minor);
        assert_eq!(a.misses, 5, "cleared");
    }
}
