//! When an incident's next version is due: the group wait before the first version and the
//! group interval after it (the idea of Alertmanager's `group_wait` / `group_interval`, applied
//! to incidents), on event time: waits count from the times of the events that changed the
//! incident, and end with a `Timer::Publish` in the correlator's timer queue when the clock
//! (event times and ticks) passes them, so replay and the Kafka stage publish the same
//! versions, and a backlog read late is published as it was published live.
//!
//! - First version: due once the root cause has not moved for `correlation.group_wait`; a root
//!   cause that could still move down the dependency chain (its service has dependencies in
//!   the model) waits for `group_wait_max` from the opening, the cap of every wait. An
//!   incident merged away before its first version is never published; one that resolved or
//!   was acknowledged is published at once.
//! - Later versions: due when something an operator sees changed (`engine::aspects`), at most
//!   every `group_interval`; a higher priority, a status change, a merge and an
//!   acknowledgement are due at once.
//! - While every alert of an incident is resolved (its resolve hold runs), nothing is
//!   published: the resolution is the next news, or, if an alert fires again, nothing changed
//!   after all. A blip that resolves before its first version is due is published once,
//!   resolved.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::state::Pending;
use super::{Engine, Published, aspects};
use crate::correlate::Group;
use crate::impact;
use crate::model::{Impact, Incident, IncidentStatus, Output, later};

/// When a built version is due.
enum Due {
    Now,
    At(DateTime<Utc>),
    /// Nothing to publish (nothing changed, or merged away before anyone saw it).
    Never,
}

impl Due {
    /// Whether a version due so is due by `now`.
    fn by(&self, now: DateTime<Utc>) -> bool {
        match self {
            Due::Now => true,
            Due::At(t) => *t <= now,
            Due::Never => false,
        }
    }
}

impl Engine {
    /// Offers a freshly built version of an operational incident published before: published
    /// now when it is due, or held back with a timer for when it will be. (A first version is
    /// judged before its record is made, [`first_is_due`](Self::first_is_due), and
    /// [`publish_first`](Self::publish_first)ed when it is due.)
    /// `now` is the event time of the input that changed the incident, or the due time of the
    /// timer that did.
    pub(super) fn offer(&mut self, built: Built, now: DateTime<Utc>, outputs: &mut Vec<Output>) {
        let Built {
            mut incident,
            assessment,
            steady,
            settling,
            alerts_hash,
        } = built;
        self.account(&mut incident);
        // Hashed as it was built (hashing also links it to its problem).
        let (hashes, substance) =
            self.fill_and_hash(&mut incident, &assessment, steady.as_ref(), alerts_hash);
        let due = match self.state.published.get(&incident.id) {
            // Every alert resolved: the resolution (or a re-fire) is the next news.
            _ if settling => Due::Never,
            Some(p) => self.next_due(p, &incident, substance),
            // Not reached from `publish_at`, which judges a first version before making it.
            None => self.first_due(&Judged::of_incident(&incident), now),
        };
        if self.due_by(&incident.id, &due, settling, now) {
            self.materialise(&mut incident);
            self.emit(incident, hashes, substance, now, outputs);
        }
    }

    /// Publishes the first version of an incident that [`first_is_due`](Self::first_is_due):
    /// filled in and hashed only now (when it is due depends on neither, and most first
    /// versions are held back).
    pub(super) fn publish_first(
        &mut self,
        built: Built,
        now: DateTime<Utc>,
        outputs: &mut Vec<Output>,
    ) {
        let Built {
            mut incident,
            assessment,
            steady,
            alerts_hash,
            ..
        } = built;
        let (hashes, substance) =
            self.fill_and_hash(&mut incident, &assessment, steady.as_ref(), alerts_hash);
        self.materialise(&mut incident);
        self.emit(incident, hashes, substance, now, outputs);
    }

    /// Whether a version due so is due by `now`: if so, it has nothing held back any more;
    /// if not, it is held back until it is due, or has nothing to publish.
    fn due_by(&mut self, id: &str, due: &Due, settling: bool, now: DateTime<Utc>) -> bool {
        match due {
            _ if due.by(now) => {
                self.settled(id);
                return true;
            }
            Due::At(t) => self.hold(id, now, *t),
            Due::Never if settling => {}
            Due::Now | Due::Never => self.settled(id),
        }
        false
    }

    /// Fills `incident` in from `assessment` ([`Built::fill`]) and hashes it as built
    /// ([`Engine::hash`]).
    fn fill_and_hash(
        &mut self,
        incident: &mut Incident,
        assessment: &impact::Assessment,
        steady: Option<&impact::Assessment>,
        alerts_hash: u64,
    ) -> ([u64; aspects::HASHED.len()], u64) {
        Built::fill(incident, assessment);
        self.hash(incident, steady, Some(alerts_hash))
    }

    /// When the first version of `i` is due, tracking its root cause in its pending entry.
    fn first_due(&mut self, i: &Judged<'_>, now: DateTime<Utc>) -> Due {
        if i.merged {
            return Due::Never;
        }
        if self.cfg.group_wait.is_zero() || i.status != IncidentStatus::Open || i.acknowledged {
            return Due::Now;
        }
        let root = i.root.map(|(service, _)| service);
        let could_move = i
            .root
            .is_some_and(|(service, guess)| !guess && self.topo.dependency_rank(service) > 0);
        let p = self.state.pending.get_or_insert_with(i.id, || Pending {
            since: now,
            root: root.map(str::to_owned),
            root_since: now,
            due: None,
        });
        if p.root.as_deref() != root {
            p.root = root.map(str::to_owned);
            p.root_since = now;
        }
        let cap = later(p.since, self.cfg.group_wait_max);
        Due::At(if could_move {
            cap
        } else {
            later(p.root_since, self.cfg.group_wait).min(cap)
        })
    }

    /// Whether the first version judged by `j` (its cost accounted) is due by `now`; if not,
    /// it is held back until it is, or has nothing to publish.
    pub(super) fn first_is_due(&mut self, j: &Judged<'_>, now: DateTime<Utc>) -> bool {
        let due = if j.settling {
            // Every alert resolved: the resolution (or a re-fire) is the next news.
            Due::Never
        } else {
            self.first_due(j, now)
        };
        self.due_by(j.id, &due, j.settling, now)
    }

    /// When the next version of `i` is due, after version `p`.
    fn next_due(&self, p: &Published, i: &Incident, substance: u64) -> Due {
        if p.substance == substance {
            return Due::Never;
        }
        let urgent = i.priority < p.priority
            || i.status != p.status
            || i.merged_into.is_some()
            || (i.acknowledged_at.is_some() && !p.acknowledged);
        match p.published_at {
            _ if urgent || self.cfg.group_interval.is_zero() => Due::Now,
            Some(at) => Due::At(later(at, self.cfg.group_interval)),
            None => Due::Now,
        }
    }

    /// Holds the next version of incident `id` back until `due`.
    fn hold(&mut self, id: &str, now: DateTime<Utc>, due: DateTime<Utc>) {
        let p = self.state.pending.get_or_insert_with(id, || Pending {
            since: now,
            root: None,
            root_since: now,
            due: None,
        });
        let was = p.due.replace(due);
        self.state.correlation.schedule_publish(id, was, due);
    }

    /// Incident `id` has nothing held back any more.
    pub(super) fn settled(&mut self, id: &str) {
        if let Some(p) = self.state.pending.remove(id)
            && let Some(due) = p.due
        {
            self.state.correlation.cancel_publish(id, due);
        }
    }
}

/// What a version's cost and, for a first version, when it is due are judged by: read off
/// its record, or off its group and what a build read of it before the record is made.
pub(super) struct Judged<'a> {
    pub id: &'a str,
    pub status: IncidentStatus,
    pub opened_at: DateTime<Utc>,
    /// The time of the build (never before the opening).
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub merged: bool,
    pub acknowledged: bool,
    /// The root cause's service, and whether it is a guess.
    pub root: Option<(&'a str, bool)>,
    pub at_risk_per_minute: f64,
    /// Every alert resolved (the resolve hold runs).
    pub settling: bool,
}

impl<'a> Judged<'a> {
    /// Of a record.
    pub fn of_incident(i: &'a Incident) -> Self {
        Judged {
            id: &i.id,
            status: i.status,
            opened_at: i.opened_at,
            updated_at: i.updated_at,
            resolved_at: i.resolved_at,
            merged: i.merged_into.is_some(),
            acknowledged: i.acknowledged_at.is_some(),
            root: i.root_cause.as_ref().map(|r| (r.service.as_str(), r.guess)),
            at_risk_per_minute: i.impact.revenue_at_risk_per_minute,
            settling: false,
        }
    }

    /// Of group `g` (incident `id`) built as of `time`, with its root cause and the revenue it
    /// puts at risk: what the record made of it would say.
    pub fn of_group(
        id: &'a str,
        g: &Group,
        root: Option<(&'a str, bool)>,
        at_risk_per_minute: f64,
        time: DateTime<Utc>,
    ) -> Self {
        Judged {
            id,
            status: g.status,
            opened_at: g.opened_at,
            updated_at: time.max(g.opened_at),
            resolved_at: g.resolved_at,
            merged: g.merged_into.is_some(),
            acknowledged: g.acknowledged.is_some(),
            root,
            at_risk_per_minute,
            settling: g.resolving_since.is_some(),
        }
    }
}

/// An incident record as built from its group, with what `settle` judges it by.
pub(super) struct Built {
    /// Without its services, capabilities and impact (but the revenue at risk) until
    /// [`fill`](Built::fill)ed from `assessment`.
    pub incident: Incident,
    pub assessment: Arc<impact::Assessment>,
    /// Capabilities and impact with flapping alerts counted as firing, when they may differ
    /// from the record's.
    pub steady: Option<impact::Assessment>,
    /// Every alert resolved: the resolve hold runs, and the resolution is the next news.
    pub settling: bool,
    /// The hash of its alerts aspect (the record does not list them until it is published).
    pub alerts_hash: u64,
}

impl Built {
    /// Puts the services, capabilities and impact of `assessment` on `incident`, keeping the
    /// outage time and cost accounting set.
    pub fn fill(incident: &mut Incident, assessment: &impact::Assessment) {
        let (outage_seconds, cost) = (incident.impact.outage_seconds, incident.impact.cost);
        incident.services.clone_from(&assessment.services);
        incident.capabilities.clone_from(&assessment.capabilities);
        incident.impact = Impact {
            outage_seconds,
            cost,
            ..assessment.impact.clone()
        };
    }
}
