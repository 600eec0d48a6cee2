//! What the read API and the console serve, kept current by the correlate stage: the latest
//! version of every incident this instance's partitions hold (closed ones are dropped), of every
//! RFC (with its run) and problem they remember, the health of the service model, the silences
//! and suppressed alerts of its engines, and the links they learned.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::correlate::LearnedLink;
use crate::engine::{EngineState, SuppressedAlert};
use crate::impact::Evaluation;
use crate::model::{Incident, IncidentStatus, Output, Problem, Rfc};
use crate::suppress::Silence;
use crate::topology::Topology;

/// What the query API serves, shared between the correlate stage (which writes it) and the
/// HTTP server (which reads it). Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct View {
    inner: Arc<RwLock<ViewData>>,
}

#[derive(Debug, Default)]
pub struct ViewData {
    pub incidents: HashMap<String, Incident>,
    pub evaluation: Evaluation,
    pub topology: Arc<Topology>,
    pub silences: BTreeMap<String, Silence>,
    /// The most recently seen suppressed alerts (at most [`MAX_SUPPRESSED_LISTED`]).
    pub suppressed: Vec<SuppressedAlert>,
    /// How many suppressed alerts the engines remember in all.
    pub suppressed_total: usize,
    /// Links learned from services whose alerts opened and resolved together, by pair.
    pub learned: Vec<LearnedLink>,
    /// The latest version of every RFC the engines remember (forgotten with its incident).
    pub changes: HashMap<String, Rfc>,
    /// The latest version of every problem the engines remember.
    pub problems: HashMap<String, Problem>,
}

/// Most suppressed alerts the view keeps for `GET /api/v1/suppressed`, newest first.
pub const MAX_SUPPRESSED_LISTED: usize = 1000;

impl View {
    pub fn new(topology: Arc<Topology>) -> View {
        let v = View::default();
        v.write().topology = topology;
        v
    }

    /// The view as it is now (hold the guard briefly: the correlate stage waits for it).
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, ViewData> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ViewData> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the incident records of one batch (published, in order): the last version of each
    /// replaces what the view had; a closed incident leaves the view.
    pub fn update<'a>(&self, incidents: impl DoubleEndedIterator<Item = &'a Incident>) {
        let mut seen = HashSet::new();
        let latest: Vec<&Incident> = incidents.rev().filter(|i| seen.insert(&i.id)).collect();
        if latest.is_empty() {
            return;
        }
        let mut v = self.write();
        for i in latest {
            if i.status == IncidentStatus::Closed {
                v.incidents.remove(&i.id);
            } else if v
                .incidents
                .get(&i.id)
                .is_none_or(|old| old.version < i.version)
            {
                v.incidents.insert(i.id.clone(), i.clone());
            }
        }
    }

    /// Takes the RFC and problem records of one batch (published, in order): a newer version
    /// replaces what the view had.
    pub fn update_records<'a>(&self, outputs: impl Iterator<Item = &'a Output>) {
        let mut changes: Vec<&Rfc> = Vec::new();
        let mut problems: Vec<&Problem> = Vec::new();
        for o in outputs {
            match o {
                Output::Change(r) => changes.push(r),
                Output::Problem(p) => problems.push(p),
                _ => {}
            }
        }
        if changes.is_empty() && problems.is_empty() {
            return;
        }
        let mut v = self.write();
        for r in changes {
            if v.changes
                .get(&r.id)
                .is_none_or(|old| old.version < r.version)
            {
                v.changes.insert(r.id.clone(), r.clone());
            }
        }
        for p in problems {
            if v.problems
                .get(&p.id)
                .is_none_or(|old| old.version < p.version)
            {
                v.problems.insert(p.id.clone(), p.clone());
            }
        }
    }

    /// Keeps only the RFCs and problems the engines (the states of the partitions owned) still
    /// remember.
    pub fn retain_records<'a>(&self, engines: impl Iterator<Item = &'a EngineState>) {
        let engines: Vec<&EngineState> = engines.collect();
        let mut v = self.write();
        v.changes
            .retain(|id, _| engines.iter().any(|e| e.changes.contains_key(id)));
        v.problems
            .retain(|id, _| engines.iter().any(|e| e.problems.problems.contains_key(id)));
    }

    /// Keeps only the incidents `known` still holds (after partitions were revoked or state
    /// forgotten).
    pub fn retain(&self, known: impl Fn(&str) -> bool) {
        self.write().incidents.retain(|id, _| known(id));
    }

    /// The health of the service model, and the model it is about.
    pub fn set_health(&self, evaluation: Evaluation, topology: Arc<Topology>) {
        let mut v = self.write();
        v.evaluation = evaluation;
        v.topology = topology;
    }

    /// The links the engines learned (a pair learned on several partitions is listed once, with
    /// its highest count).
    pub fn set_learned(&self, links: impl Iterator<Item = LearnedLink>) {
        let mut by_pair: BTreeMap<[String; 2], LearnedLink> = BTreeMap::new();
        for l in links {
            match by_pair.get_mut(&l.services) {
                Some(old) if old.co_occurrences >= l.co_occurrences => {}
                _ => {
                    by_pair.insert(l.services.clone(), l);
                }
            }
        }
        self.write().learned = by_pair.into_values().collect();
    }

    /// The silences in force or to come, and the suppressed alerts (any order; the view keeps
    /// the [`MAX_SUPPRESSED_LISTED`] most recently seen).
    pub fn set_suppression<'a>(
        &self,
        silences: impl Iterator<Item = &'a Silence>,
        suppressed: impl Iterator<Item = &'a SuppressedAlert>,
    ) {
        let silences: BTreeMap<String, Silence> =
            silences.map(|s| (s.id.clone(), s.clone())).collect();
        let mut all: Vec<&SuppressedAlert> = suppressed.collect();
        let total = all.len();
        all.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.name.cmp(&b.name)));
        let kept = all
            .into_iter()
            .take(MAX_SUPPRESSED_LISTED)
            .cloned()
            .collect();
        let mut v = self.write();
        v.silences = silences;
        v.suppressed = kept;
        v.suppressed_total = total;
    }
}
