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

use super::Lookups;

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
    pub lookups: Lookups,
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
        let k = slot_of(id);
        if let Some(s) = &self.slots[k]
            && s.id == *id
            && s.severity == severity
            && s.own == *own
        {
            self.lookups.count(true);
            return s.assessment.clone();
        }
        self.lookups.count(false);
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

/// The slot of incident `id` in a memo of [`SLOTS`] slots.
fn slot_of(id: &str) -> usize {
    (xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % SLOTS as u64) as usize
}

/// What the last builds of a few incidents made of their summaries, by the summary's shape
/// (`Members::shape`: a new one whenever what a build reads from it may have changed) and
/// whether the build read all alerts or the firing ones: a build of the same shape reuses it
/// instead of reading the summary, assessing the impact and finding the root cause again. In
/// an outage most new alerts join a service the incident already counts, with a severity it
/// already has, and leave its shape as it was. Direct-mapped like [`Assessed`], and cleared
/// with it when the service model changes.
#[derive(Debug)]
pub(super) struct Shaped<T> {
    /// Empty until first used, then [`SLOTS`] long.
    slots: Vec<Option<Made<T>>>,
    /// Builds answered from a slot, and made afresh.
    pub lookups: Lookups,
}

/// What was made of an incident (its id), at a shape, reading all alerts or the firing ones.
type Made<T> = (Arc<str>, u64, bool, Arc<T>);

/// A copy shares what was made (`Arc`): `T` need not be `Clone`.
impl<T> Clone for Shaped<T> {
    fn clone(&self) -> Self {
        Shaped {
            slots: self.slots.clone(),
            lookups: self.lookups,
        }
    }
}

impl<T> Default for Shaped<T> {
    fn default() -> Self {
        Shaped {
            slots: Vec::new(),
            lookups: Lookups::default(),
        }
    }
}

impl<T> Shaped<T> {
    /// What was made of incident `id` at `shape` (`all`: read from all its alerts), if kept.
    pub fn get(&mut self, id: &str, shape: u64, all: bool) -> Option<Arc<T>> {
        let kept = self
            .slots
            .get(slot_of(id))
            .and_then(Option::as_ref)
            .filter(|(i, s, a, _)| **i == *id && *s == shape && *a == all)
            .map(|(.., made)| made.clone());
        self.lookups.count(kept.is_some());
        kept
    }

    /// Keeps `made` as what was made of incident `id` at `shape`, in place of whatever its
    /// slot held.
    pub fn put(&mut self, id: &Arc<str>, shape: u64, all: bool, made: Arc<T>) {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        self.slots[slot_of(id)] = Some((id.clone(), shape, all, made));
    }

    /// Forgets everything made (the service model changed).
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
        assert_eq!((a.lookups.hits, a.lookups.misses), (1, 1));
        // Another severity, another own health, another incident: assessed afresh.
        let minor = a.assess(&topo, &id, &own, Severity::Minor);
        assert_eq!(*minor, impact::assess(&topo, &own, Severity::Minor));
        let degraded = BTreeMap::from([(Arc::<str>::from("payments-db"), 50.0)]);
        let other = a.assess(&topo, &id, &degraded, Severity::Minor);
        assert_eq!(*other, impact::assess(&topo, &degraded, Severity::Minor));
        assert_ne!(other.impact, first.impact);
        a.assess(&topo, &"INC-2".into(), &degraded, Severity::Minor);
        assert_eq!((a.lookups.hits, a.lookups.misses), (1, 4));
        a.clear();
        a.assess(&topo, &id, &degraded, Severity::Minor);
        assert_eq!(a.lookups.misses, 5, "cleared");
    }

    #[test]
    fn a_kept_build_needs_the_same_incident_shape_and_alerts_read() {
        let mut m: Shaped<&str> = Shaped::default();
        let id: Arc<str> = "INC-1".into();
        assert_eq!(m.get(&id, 7, false), None, "nothing kept yet");
        m.put(&id, 7, false, Arc::new("made"));
        assert_eq!(m.get(&id, 7, false).as_deref(), Some(&"made"));
        assert_eq!(m.get(&id, 8, false), None, "another shape");
        assert_eq!(m.get(&id, 7, true), None, "read from all alerts");
        assert_eq!(m.get("INC-2", 7, false), None, "another incident");
        assert_eq!((m.lookups.hits, m.lookups.misses), (1, 4));
        m.clear();
        assert_eq!(m.get(&id, 7, false), None, "cleared");
    }
}
