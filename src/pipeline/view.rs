//! What the read API and the console serve. The incidents, RFCs (with their runs) and problems
//! are materialised from the `incidents`, `changes` and `problems` topics by
//! [`super::materialise`] (latest version per id, each incident's timeline), so every instance
//! holds the whole picture; the health of the service model is computed from those incidents.
//! The silences and suppressed alerts come from this instance's engines (the correlate stage).
//! So do the links they learned (`correlate::learned`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use tokio::sync::broadcast;

use super::timeline::{self, Entry, Happening, Timeline};
use crate::config::ViewConfig;
use crate::correlate::LearnedLink;
use crate::engine::SuppressedAlert;
use crate::impact::Evaluation;
use crate::model::{Incident, IncidentStatus, Output, Problem, Rfc, Status};
use crate::suppress::Silence;
use crate::topology::Topology;

/// What the query API and the console serve, shared between the stages that write it and the
/// HTTP server that reads it. Cloning shares it.
#[derive(Debug, Clone)]
pub struct View {
    inner: Arc<RwLock<ViewData>>,
    notices: broadcast::Sender<Notice>,
}

/// What changed in the view, for live pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A new version of this incident, or of one of its RFCs.
    Incident(Arc<str>),
    /// Too much changed at once to name (or a listener fell behind): refresh everything.
    Many,
}

/// Most incidents one batch names in notices before it sends [`Notice::Many`] instead.
const MAX_NOTICES_PER_BATCH: usize = 64;

#[derive(Debug, Default)]
pub struct ViewData {
    /// The latest version of every incident (closed ones too, until evicted).
    pub incidents: HashMap<String, Incident>,
    /// What each incident's versions (and its RFCs' versions) changed.
    pub timelines: HashMap<String, Timeline>,
    /// The latest version of every RFC.
    pub changes: HashMap<String, Rfc>,
    /// The latest version of every problem.
    pub problems: HashMap<String, Problem>,
    /// The service model in use.
    pub topology: Arc<Topology>,
    pub silences: BTreeMap<String, Silence>,
    /// The most recently seen suppressed alerts (at most [`MAX_SUPPRESSED_LISTED`]).
    pub suppressed: Vec<SuppressedAlert>,
    /// How many suppressed alerts the engines remember in all.
    pub suppressed_total: usize,
    /// Links learned by this instance's engines from services whose alerts opened and resolved
    /// together, by pair.
    pub learned: Vec<LearnedLink>,
    limits: ViewConfig,
}

/// Most suppressed alerts the view keeps for `GET /api/v1/suppressed`, newest first.
pub const MAX_SUPPRESSED_LISTED: usize = 1000;

/// What one [`View::apply`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Incidents dropped to stay within `http.view.max_incidents`.
    pub evicted_incidents: usize,
    /// RFCs dropped to stay within `http.view.max_changes` (or with their incident).
    pub evicted_changes: usize,
    /// Problems dropped to stay within `http.view.max_problems`.
    pub evicted_problems: usize,
}

impl View {
    pub fn new(topology: Arc<Topology>, limits: ViewConfig) -> View {
        let (notices, _) = broadcast::channel(256);
        View {
            inner: Arc::new(RwLock::new(ViewData {
                topology,
                limits,
                ..ViewData::default()
            })),
            notices,
        }
    }

    /// The view as it is now (hold the guard briefly: the writers wait for it).
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, ViewData> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ViewData> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Notices of what changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Takes incident, RFC and problem records as read from their topics (in order per id): a
    /// version newer than the one held replaces it (and adds to the incident's timeline); older
    /// versions and repeats (records published again after a crash) change nothing. Then evicts
    /// down to the bounds, and tells listeners which incidents changed.
    pub fn apply<'a>(&self, records: impl IntoIterator<Item = &'a Output>) -> Applied {
        let mut touched = BTreeSet::new();
        let applied = {
            let mut v = self.write();
            for r in records {
                match r {
                    Output::Incident(i) => {
                        if v.apply_incident(i) {
                            touched.insert(i.id.clone());
                            if let Some(into) = &i.merged_into {
                                touched.insert(into.clone());
                            }
                        }
                    }
                    Output::Change(c) => {
                        if v.apply_change(c) {
                            touched.insert(c.incident_id.clone());
                        }
                    }
                    Output::Problem(p) => {
                        if v.apply_problem(p) {
                            // Its incidents show it; the problems page listens to all.
                            touched.extend(p.incidents.iter().map(|i| i.to_string()));
                            touched.insert(p.id.clone());
                        }
                    }
                    Output::Dlq(_) => {}
                }
            }
            v.evict()
        };
        if touched.len() > MAX_NOTICES_PER_BATCH {
            let _ = self.notices.send(Notice::Many);
        } else {
            for id in touched {
                // No listener is not an error.
                let _ = self.notices.send(Notice::Incident(id.into()));
            }
        }
        applied
    }

    /// The service model the engines use now (it changes when Backstage is refreshed).
    pub fn set_topology(&self, topology: Arc<Topology>) {
        self.write().topology = topology;
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

impl ViewData {
    /// Whether `i` was newer than what the view held (and so was taken).
    fn apply_incident(&mut self, i: &Incident) -> bool {
        let old = self.incidents.get(&i.id);
        if old.is_some_and(|o| o.version >= i.version) {
            return false;
        }
        let what = timeline::incident_changes(old, i);
        let first = old.is_none();
        let max = self.limits.max_timeline;
        let entry = Entry {
            at: i.updated_at,
            record: i.id.clone(),
            version: i.version,
            what,
        };
        let mut backfill = Vec::new();
        if first {
            // RFCs read before their incident (the two topics are read side by side).
            backfill = self
                .changes
                .values()
                .filter(|r| r.incident_id == i.id)
                .map(|r| Entry {
                    at: timeline::rfc_time(r),
                    record: r.id.clone(),
                    version: r.version,
                    what: timeline::rfc_changes(None, r),
                })
                .collect();
        }
        let t = self.timelines.entry(i.id.clone()).or_default();
        t.add(entry, max);
        for e in backfill {
            t.add(e, max);
        }
        if let Some(into) = &i.merged_into
            && i.status == IncidentStatus::Closed
            && let Some(t) = self.timelines.get_mut(into)
        {
            t.add(
                Entry {
                    at: i.updated_at,
                    record: i.id.clone(),
                    version: i.version,
                    what: vec![Happening::Absorbed {
                        incident: i.id.clone(),
                    }],
                },
                max,
            );
        }
        self.incidents.insert(i.id.clone(), i.clone());
        true
    }

    fn apply_change(&mut self, r: &Rfc) -> bool {
        let old = self.changes.get(&r.id);
        if old.is_some_and(|o| o.version >= r.version) {
            return false;
        }
        let what = timeline::rfc_changes(old, r);
        let max = self.limits.max_timeline;
        if let Some(t) = self.timelines.get_mut(&r.incident_id) {
            t.add(
                Entry {
                    at: timeline::rfc_time(r),
                    record: r.id.clone(),
                    version: r.version,
                    what,
                },
                max,
            );
        }
        self.changes.insert(r.id.clone(), r.clone());
        true
    }

    fn apply_problem(&mut self, p: &Problem) -> bool {
        if self
            .problems
            .get(&p.id)
            .is_some_and(|o| o.version >= p.version)
        {
            return false;
        }
        self.problems.insert(p.id.clone(), p.clone());
        true
    }

    /// Drops incidents past `max_incidents` down to 90% of it (closed first, then resolved,
    /// then open, least recently updated first) with their timelines and RFCs, then RFCs past
    /// `max_changes` (oldest first).
    fn evict(&mut self) -> Applied {
        let mut applied = Applied::default();
        let max = self.limits.max_incidents;
        if self.incidents.len() > max {
            let keep = max - max / 10;
            let mut order: Vec<(u8, chrono::DateTime<chrono::Utc>, String)> = self
                .incidents
                .values()
                .map(|i| {
                    let rank = match i.status {
                        IncidentStatus::Closed => 0,
                        IncidentStatus::Resolved => 1,
                        IncidentStatus::Open => 2,
                    };
                    (rank, i.updated_at, i.id.clone())
                })
                .collect();
            order.sort();
            let gone: BTreeSet<String> = order
                .into_iter()
                .take(self.incidents.len() - keep)
                .map(|(_, _, id)| id)
                .collect();
            for id in &gone {
                self.incidents.remove(id);
                self.timelines.remove(id);
            }
            applied.evicted_incidents = gone.len();
            let before = self.changes.len();
            self.changes.retain(|_, r| !gone.contains(&r.incident_id));
            applied.evicted_changes += before - self.changes.len();
        }
        let max = self.limits.max_changes;
        if self.changes.len() > max {
            let keep = max - max / 10;
            let mut order: Vec<(chrono::DateTime<chrono::Utc>, String)> = self
                .changes
                .values()
                .map(|r| (r.created_at, r.id.clone()))
                .collect();
            order.sort();
            let n = self.changes.len() - keep;
            for (_, id) in order.into_iter().take(n) {
                self.changes.remove(&id);
            }
            applied.evicted_changes += n;
        }
        let max = self.limits.max_problems;
        if self.problems.len() > max {
            // Resolved problems first, then the least recently updated.
            let keep = max - max / 10;
            let mut order: Vec<(bool, chrono::DateTime<chrono::Utc>, String)> = self
                .problems
                .values()
                .map(|p| {
                    let live = p.status != crate::model::ProblemStatus::Resolved;
                    (live, p.updated_at, p.id.clone())
                })
                .collect();
            order.sort();
            let n = self.problems.len() - keep;
            for (_, _, id) in order.into_iter().take(n) {
                self.problems.remove(&id);
            }
            applied.evicted_problems = n;
        }
        applied
    }

    /// The timeline of incident `id`.
    pub fn timeline(&self, id: &str) -> Option<&Timeline> {
        self.timelines.get(id)
    }

    /// The RFCs raised for incident `id`, oldest first.
    pub fn changes_of(&self, id: &str) -> Vec<&Rfc> {
        let mut v: Vec<&Rfc> = self
            .changes
            .values()
            .filter(|r| r.incident_id == id)
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }

    /// Incidents, RFCs and problems held, for the size gauges.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.incidents.len(),
            self.changes.len(),
            self.problems.len(),
        )
    }

    /// The own health of every service with a firing alert on an open incident (security
    /// incidents aside, as in the engine), and the health of the whole service model from it:
    /// the same figures the engines compute, over every instance's incidents.
    pub fn evaluation(&self) -> Evaluation {
        let mut own = BTreeMap::new();
        for i in self.incidents.values() {
            if i.status != IncidentStatus::Open || i.security.is_some() {
                continue;
            }
            for a in &i.alerts {
                if a.status == Status::Firing
                    && let Some(svc) = &a.service
                {
                    crate::impact::add_alert(&mut own, svc, a.severity);
                }
            }
        }
        crate::impact::evaluate(&self.topology, &own)
    }
}
