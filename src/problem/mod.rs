//! Recurring incidents → problems, known errors (IT4IT Problem). Pure and deterministic, like
//! the rest of the core: the engine shows it every incident version it publishes and every
//! problem action, and publishes the problem versions it returns.
//!
//! An incident's signature is its root-cause service and the alert names on that service
//! (`problem.signature`). Incidents with the same signature are counted per signature; when
//! `problem.threshold` of them opened within `problem.window`, a problem opens linking them.
//! Later incidents whose signature matches an open or known-error problem (same service, and an
//! alert name in common unless the problem names none) are linked to it at once and carry its id
//! (and, for a known error, its workaround). A problem's totals (incidents, outage, cost) count
//! its incidents as they resolve.
//!
//! Problems span weeks while incidents are forgotten within hours, so what a problem needs of
//! its incidents is copied into it ([`Occurrence`]), and memory stays bounded: at most
//! `problem.max_problems` problems (resolved ones forgotten `problem.retention` after they
//! resolved, and evicted first), each listing its newest [`MAX_LISTED`] incidents (older ones
//! only add to the totals); at most `problem.max_candidates` signatures counted, each with at
//! most `threshold` incidents younger than `window`; and a link per incident only while the
//! engine remembers that incident.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{ProblemConfig, SignatureMode};
use crate::model::tracked::TrackedMap;
use crate::model::{Incident, IncidentStatus, Priority, Problem, ProblemStatus};
use bounds::ByAge;

/// Most incidents a problem record lists (the newest); `incident_count` counts them all.
pub const MAX_LISTED: usize = 100;

/// What makes incidents the same: the root-cause service and the alert names on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub service: String,
    /// Sorted, without repeats; empty matches any alert of the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_names: Vec<String>,
}

impl Signature {
    /// The signature of `incident`: its root-cause service (or its only failing service) and
    /// the names of that service's alerts. Security incidents and incidents without a service
    /// have none.
    pub fn of(incident: &Incident) -> Option<Signature> {
        Signature::of_alerts(
            incident,
            incident
                .alerts
                .iter()
                .map(|a| (a.service.as_deref(), &*a.name)),
        )
    }

    /// The signature of `incident` whose alerts (service, name) are `alerts` rather than its
    /// record's list (an incident built but not yet published does not carry them).
    pub fn of_alerts<'a>(
        incident: &Incident,
        alerts: impl Iterator<Item = (Option<&'a str>, &'a str)>,
    ) -> Option<Signature> {
        if incident.security.is_some() {
            return None;
        }
        let service = match (&incident.root_cause, incident.failing_services.as_slice()) {
            (Some(rc), _) => rc.service.clone(),
            (None, [only]) => only.clone(),
            _ => return None,
        };
        let alert_names: BTreeSet<&str> = alerts
            .filter(|(s, _)| *s == Some(service.as_str()))
            .map(|(_, name)| name)
            .collect();
        Some(Signature {
            alert_names: alert_names.into_iter().map(String::from).collect(),
            service,
        })
    }

    /// The key incidents are counted under.
    fn key(&self, mode: SignatureMode) -> String {
        match mode {
            SignatureMode::Service => self.service.clone(),
            SignatureMode::ServiceAndAlerts => {
                format!("{}\u{1f}{}", self.service, self.alert_names.join("\u{1f}"))
            }
        }
    }

    /// Whether an incident with signature `incident` is an occurrence of a problem with this one.
    fn covers(&self, incident: &Signature) -> bool {
        covers(&self.service, &self.alert_names, incident)
    }
}

/// Whether the signature `service`, `alert_names` covers `incident`'s.
fn covers(service: &str, alert_names: &[String], incident: &Signature) -> bool {
    service == incident.service
        && (alert_names.is_empty()
            || alert_names
                .iter()
                .any(|a| incident.alert_names.binary_search(a).is_ok()))
}

/// One incident as a problem remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Occurrence {
    /// Shared with the problem's versions that list it.
    pub incident: Arc<str>,
    /// When the incident opened (never changes: lists compare it before the id).
    pub at: DateTime<Utc>,
    pub priority: Priority,
    pub outage_seconds: i64,
    pub cost: f64,
    /// Whether its last version was resolved (or closed).
    #[serde(default)]
    pub resolved: bool,
}

impl Occurrence {
    /// Whether it is of incident `id`, opened at `opened_at`. The opening time is compared
    /// first: it is in the list itself, the id behind a pointer (an incident's opening never
    /// changes, so the same incident has the same one).
    fn is(&self, id: &str, opened_at: DateTime<Utc>) -> bool {
        self.at == opened_at && *self.incident == *id
    }

    fn of(i: &Incident) -> Occurrence {
        Occurrence {
            incident: Arc::from(i.id.as_str()),
            at: i.opened_at,
            priority: i.priority,
            outage_seconds: i.impact.outage_seconds,
            cost: i.impact.cost,
            resolved: i.status != IncidentStatus::Open,
        }
    }
}

/// A problem with what it needs to keep its totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The last version published.
    pub problem: Problem,
    /// Its newest incidents (at most [`MAX_LISTED`]), oldest first.
    pub recent: Vec<Occurrence>,
    /// Incidents, outage seconds and cost of the incidents that left `recent`.
    #[serde(default)]
    pub earlier: (u64, i64, f64),
    /// Something changed since the last version (set and cleared within one input).
    #[serde(skip)]
    dirty: bool,
}

/// Incidents counted toward a problem that is not open yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub signature: Signature,
    /// Oldest first; at most `problem.threshold`, none older than `problem.window`.
    pub occurrences: Vec<Occurrence>,
}

/// Where an incident counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Member {
    Problem(String),
    Candidate(String),
}

/// Everything an engine remembers about problems; checkpointed with the engine state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub problems: TrackedMap<String, Entry>,
    /// Counted incidents per signature key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub candidates: TrackedMap<String, Candidate>,
    /// Where each incident the engine still remembers counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: TrackedMap<String, Member>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swept_at: Option<DateTime<Utc>>,
    /// The problems of each service, for [`State::matching`]: derived, never checkpointed.
    #[serde(skip)]
    by_service: ByService,
    /// The counted signatures in eviction order, for [`State::evict_candidates`]: derived,
    /// never checkpointed.
    #[serde(skip)]
    by_age: ByAge,
}

/// A cache of the problem ids of each service, so that matching a new incident costs the
/// problems of its service, not all of them. Kept as recurrence opens problems and eviction
/// forgets them; `None` until built and after a sweep or a problem action changed the
/// problems, rebuilt on the next match.
#[derive(Debug, Clone, Default)]
struct ByService(Option<BTreeMap<String, Vec<String>>>);

impl ByService {
    /// Problem `id` of `service` was added.
    fn add(&mut self, service: &str, id: &str) {
        if let Some(index) = &mut self.0 {
            index
                .entry(service.to_owned())
                .or_default()
                .push(id.to_owned());
        }
    }

    /// Problem `id` of `service` was forgotten.
    fn remove(&mut self, service: &str, id: &str) {
        if let Some(index) = &mut self.0
            && let Some(ids) = index.get_mut(service)
        {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                index.remove(service);
            }
        }
    }
}

/// A cache says nothing about the state beyond what the rest of it says.
impl PartialEq for ByService {
    fn eq(&self, _: &ByService) -> bool {
        true
    }
}

/// When the newest occurrence of `c` opened: the cap evicts the signatures with the oldest.
fn newest(c: &Candidate) -> Option<DateTime<Utc>> {
    c.occurrences.last().map(|o| o.at)
}

/// Counts the shell turns into gauges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Problems not resolved, by status.
    pub by_status: BTreeMap<ProblemStatus, u64>,
    /// Incidents of the problems not resolved.
    pub incidents: u64,
    /// Cost of the incidents of the problems not resolved.
    pub cost: f64,
}

impl Summary {
    /// Adds the counts of another partition's engine.
    pub fn add(&mut self, other: Summary) {
        for (status, n) in other.by_status {
            *self.by_status.entry(status).or_default() += n;
        }
        self.incidents += other.incidents;
        self.cost += other.cost;
    }
}

/// Makes `listed` the ids of `recent`, in order. Usually it lists them already but for the
/// newest one (and the oldest, dropped at the cap): those are changed in place, so the ids
/// both have are not copied again (each copy and drop touches the id's own memory, a cache
/// miss apiece in a large state). Compares pointers only: the list shares `recent`'s ids.
fn list_recent(listed: &mut Vec<Arc<str>>, recent: &[Occurrence]) {
    let same = |a: &Arc<str>, o: &Occurrence| Arc::ptr_eq(a, &o.incident);
    let kept = recent
        .first()
        .and_then(|first| listed.iter().position(|a| same(a, first)))
        .filter(|&from| {
            listed.len() - from <= recent.len()
                && listed[from..].iter().zip(recent).all(|(a, o)| same(a, o))
        });
    match kept {
        Some(from) => {
            listed.drain(..from);
        }
        None => listed.clear(),
    }
    let have = listed.len();
    listed.extend(recent[have..].iter().map(|o| o.incident.clone()));
    debug_assert!(
        listed.iter().zip(recent).all(|(a, o)| same(a, o)) && listed.len() == recent.len()
    );
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Entry {
    fn new(problem: Problem) -> Entry {
        Entry {
            problem,
            recent: Vec::new(),
            earlier: (0, 0, 0.0),
            dirty: true,
        }
    }

    fn add(&mut self, o: Occurrence) {
        if self.recent.iter().any(|r| r.is(&o.incident, o.at)) {
            return;
        }
        self.recent.push(o);
        if self.recent.len() > MAX_LISTED {
            let old = self.recent.remove(0);
            self.earlier.0 += 1;
            self.earlier.1 = self.earlier.1.saturating_add(old.outage_seconds);
            self.earlier.2 += old.cost;
        }
        self.dirty = true;
    }

    /// The next version, with totals from its occurrences, if something changed.
    fn publish(&mut self, at: DateTime<Utc>) -> Option<Problem> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        let p = &mut self.problem;
        p.version += 1;
        p.updated_at = p.updated_at.max(at);
        list_recent(&mut p.incidents, &self.recent);
        p.incident_count = self.earlier.0 + self.recent.len() as u64;
        let (mut outage, mut cost) = (self.earlier.1, self.earlier.2);
        for o in &self.recent {
            outage = outage.saturating_add(o.outage_seconds);
            cost += o.cost;
            p.priority = p.priority.min(o.priority);
            p.first_occurrence = Some(p.first_occurrence.map_or(o.at, |f| f.min(o.at)));
            p.last_occurrence = Some(p.last_occurrence.map_or(o.at, |l| l.max(o.at)));
        }
        p.outage_seconds = outage;
        p.cost = round2(cost);
        Some(p.clone())
    }

    /// The id and workaround an incident linked to this problem carries.
    fn fields(&self) -> (String, Option<String>) {
        let workaround = match self.problem.status {
            ProblemStatus::KnownError => self.problem.workaround.clone(),
            _ => None,
        };
        (self.problem.id.clone(), workaround)
    }
}

impl State {
    /// Links `incident` (a version about to be published) to its problem, counting it toward
    /// one when it is new here, and returns the problem id and workaround it carries. May open
    /// a problem: [`State::account`] then returns its first version.
    pub fn link(
        &mut self,
        cfg: &ProblemConfig,
        incident: &Incident,
    ) -> Option<(String, Option<String>)> {
        let alerts = || {
            incident
                .alerts
                .iter()
                .map(|a| (a.service.as_deref(), &*a.name))
        };
        self.link_with(cfg, incident, alerts)
    }

    /// [`link`](Self::link) for an incident whose alerts (service, name) `alerts` gives, asked
    /// only if its signature is needed.
    pub fn link_with<'a, I: Iterator<Item = (Option<&'a str>, &'a str)>>(
        &mut self,
        cfg: &ProblemConfig,
        incident: &Incident,
        alerts: impl FnOnce() -> I,
    ) -> Option<(String, Option<String>)> {
        match self.members.get(&incident.id) {
            Some(Member::Problem(id)) => return self.problems.get(id).map(Entry::fields),
            Some(Member::Candidate(_)) => return None,
            None => {}
        }
        if incident.status != IncidentStatus::Open {
            return None;
        }
        let sig = Signature::of_alerts(incident, alerts())?;
        if let Some(id) = self.matching(&sig) {
            let entry = self.problems.get_mut(&id)?;
            entry.add(Occurrence::of(incident));
            self.members
                .insert(incident.id.clone(), Member::Problem(id.clone()));
            return Some(entry.fields());
        }
        if cfg.threshold == 0 {
            return None;
        }
        let key = sig.key(cfg.signature);
        let window = TimeDelta::from_std(cfg.window).unwrap_or(TimeDelta::MAX);
        let since = incident.opened_at.checked_sub_signed(window);
        // Looked up only while the eviction order is kept (at the cap).
        let was = self
            .by_age
            .0
            .as_ref()
            .and_then(|_| self.candidates.get(&key).map(newest));
        let candidate = self.candidates.entry(key.clone()).or_insert(Candidate {
            signature: sig,
            occurrences: Vec::new(),
        });
        candidate
            .occurrences
            .retain(|o| since.is_none_or(|s| o.at >= s));
        candidate.occurrences.push(Occurrence::of(incident));
        self.members
            .insert(incident.id.clone(), Member::Candidate(key.clone()));
        if candidate.occurrences.len() < cfg.threshold as usize {
            let now = Some(newest(candidate));
            self.by_age.moved(&key, was, now);
            self.evict_candidates(cfg.max_candidates);
            return None;
        }
        self.by_age.moved(&key, was, None);
        let Candidate {
            signature,
            occurrences,
        } = self.candidates.remove(&key)?;
        let first = occurrences.first()?.incident.clone();
        let id = format!(
            "PRB-{}",
            &crate::model::stable_hash(&["recurring", &key, &first])[..12]
        );
        let names = if signature.alert_names.is_empty() {
            String::new()
        } else {
            format!(" {}", signature.alert_names.join(", "))
        };
        let mut entry = Entry::new(Problem {
            id: id.clone(),
            version: 0,
            status: ProblemStatus::Open,
            title: format!("{}:{names} keeps recurring", signature.service),
            service: signature.service.clone(),
            alert_names: match cfg.signature {
                SignatureMode::Service => Vec::new(),
                SignatureMode::ServiceAndAlerts => signature.alert_names,
            },
            priority: incident.priority,
            incidents: Vec::new(),
            incident_count: 0,
            first_occurrence: None,
            last_occurrence: None,
            outage_seconds: 0,
            cost: 0.0,
            opened_at: incident.updated_at,
            updated_at: incident.updated_at,
            opened_by: "d2c".into(),
            workaround: None,
            known_error_at: None,
            known_error_by: None,
            resolved_at: None,
            resolved_by: None,
            comment: None,
        });
        for o in occurrences {
            if let Some(m) = self.members.get_mut(&*o.incident) {
                *m = Member::Problem(id.clone());
            }
            entry.add(o);
        }
        let fields = entry.fields();
        self.by_service.add(&entry.problem.service, &id);
        self.problems.insert(id, entry);
        Some(fields)
    }

    /// Problems were added or forgotten other than one by one: the index by service is rebuilt
    /// when next needed.
    fn problems_changed(&mut self) {
        self.by_service.0 = None;
    }

    /// Signatures were counted or forgotten other than one by one: their eviction order is
    /// rebuilt when next needed.
    fn candidates_changed(&mut self) {
        self.by_age.0 = None;
    }

    /// The state was changed from outside (a restore applied a delta to it): what is derived
    /// from it is rebuilt when next needed.
    pub fn restored(&mut self) {
        self.problems_changed();
        self.candidates_changed();
    }

    /// The problem (not resolved) an incident with `sig` is an occurrence of: a known error
    /// first, then the oldest.
    fn matching(&mut self, sig: &Signature) -> Option<String> {
        let problems = &self.problems;
        let index = self.by_service.0.get_or_insert_with(|| {
            let mut index: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for e in problems.values() {
                let p = &e.problem;
                index
                    .entry(p.service.clone())
                    .or_default()
                    .push(p.id.clone());
            }
            index
        });
        index
            .get(&sig.service)
            .into_iter()
            .flatten()
            .filter_map(|id| problems.get(id))
            .map(|e| &e.problem)
            .filter(|p| p.status != ProblemStatus::Resolved)
            // Compared in place: building a `Signature` of every problem cost two clones each,
            // for every new incident.
            .filter(|p| covers(&p.service, &p.alert_names, sig))
            .min_by_key(|p| (p.status != ProblemStatus::KnownError, p.opened_at, &p.id))
            .map(|p| p.id.clone())
    }

    /// Takes the published version of a linked or counted incident into its problem's totals;
    /// returns the problem's next version when it changed for people (an incident linked or
    /// resolved).
    pub fn account(&mut self, incident: &Incident) -> Option<Problem> {
        let update = |o: &mut Occurrence| {
            let now = Occurrence::of(incident);
            let resolved_now = now.resolved && !o.resolved;
            o.priority = o.priority.min(now.priority);
            o.outage_seconds = now.outage_seconds;
            o.cost = now.cost;
            o.resolved = now.resolved;
            resolved_now
        };
        match self.members.get(&incident.id)? {
            Member::Problem(id) => {
                let entry = self.problems.get_mut(id)?;
                // Newest first: the incident accounted is most often the one linked last.
                if let Some(o) = entry
                    .recent
                    .iter_mut()
                    .rev()
                    .find(|o| o.is(&incident.id, incident.opened_at))
                    && update(o)
                {
                    entry.dirty = true;
                }
                entry.publish(incident.updated_at)
            }
            Member::Candidate(key) => {
                let c = self.candidates.get_mut(key)?;
                if let Some(o) = c
                    .occurrences
                    .iter_mut()
                    .rev()
                    .find(|o| o.is(&incident.id, incident.opened_at))
                {
                    update(o);
                }
                None
            }
        }
    }

    /// The incidents linked to `problem` that the engine still remembers.
    pub fn linked(&self, problem: &str) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, m)| matches!(m, Member::Problem(p) if p == problem))
            .map(|(i, _)| i.clone())
            .collect()
    }

    /// The engine forgot incident `id`: its link goes (the problem keeps its occurrence).
    pub fn forget_incident(&mut self, id: &str) {
        self.members.remove(id);
    }

    /// The last published version of every problem remembered.
    pub fn all(&self) -> impl Iterator<Item = &Problem> {
        self.problems.values().map(|e| &e.problem)
    }
}

mod actions;
mod bounds;

#[cfg(test)]
mod tests;
