//! What keeps the problem state bounded: resolved problems forgotten after `problem.retention`,
//! counted incidents older than `problem.window` dropped, and the caps on problems and counted
//! signatures (oldest first); and the counts the gauges show.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};

use super::{State, Summary};
use crate::config::ProblemConfig;
use crate::model::ProblemStatus;

/// How often (in event time) resolved problems past retention and stale counts are swept.
const SWEEP_EVERY: TimeDelta = TimeDelta::hours(1);

impl State {
    /// At most once an hour of event time: forgets resolved problems past `retention` and
    /// counted incidents older than `window`. Then keeps the caps. Returns the problems
    /// forgotten.
    pub fn sweep(&mut self, cfg: &ProblemConfig, now: DateTime<Utc>) -> u64 {
        if self.swept_at.is_some_and(|t| {
            t.checked_add_signed(SWEEP_EVERY)
                .is_none_or(|due| now < due)
        }) {
            return 0;
        }
        self.swept_at = Some(now);
        let retention = TimeDelta::from_std(cfg.retention).unwrap_or(TimeDelta::MAX);
        let before = self.problems.len();
        self.problems_changed();
        self.problems.retain(|_, e| {
            e.problem
                .resolved_at
                .and_then(|t| t.checked_add_signed(retention))
                .is_none_or(|end| now < end)
        });
        let window = TimeDelta::from_std(cfg.window).unwrap_or(TimeDelta::MAX);
        if let Some(since) = now.checked_sub_signed(window) {
            self.candidates_changed();
            // Only the candidates with stale counts change (and are marked for a delta).
            let stale: Vec<String> = self
                .candidates
                .iter()
                .filter(|(_, c)| c.occurrences.iter().any(|o| o.at < since))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                if let Some(c) = self.candidates.get_mut(&k) {
                    c.occurrences.retain(|o| o.at >= since);
                    if c.occurrences.is_empty() {
                        self.candidates.remove(&k);
                    }
                }
            }
        }
        (before - self.problems.len()) as u64 + self.evict(cfg.max_problems)
    }

    /// Forgets problems down to `max`: resolved ones first (oldest resolution first), then the
    /// ones whose last incident is oldest. Returns how many.
    pub fn evict(&mut self, max: usize) -> u64 {
        let over = self.problems.len().saturating_sub(max);
        if over == 0 {
            return 0;
        }
        // The `over` first in that order, found without sorting (or copying) them all: at the
        // cap this runs for every problem that opens.
        let mut order: Vec<(bool, DateTime<Utc>, &str)> = self
            .problems
            .values()
            .map(|e| {
                let p = &e.problem;
                let last = p.resolved_at.or(p.last_occurrence).unwrap_or(p.updated_at);
                (p.status != ProblemStatus::Resolved, last, p.id.as_str())
            })
            .collect();
        order.select_nth_unstable(over - 1);
        let gone: Vec<String> = order[..over].iter().map(|o| o.2.to_owned()).collect();
        for id in gone {
            if let Some(e) = self.problems.remove(&id) {
                self.by_service.remove(&e.problem.service, &id);
            }
        }
        over as u64
    }

    /// Forgets counted signatures down to `max`, those whose newest occurrence is oldest first.
    pub(super) fn evict_candidates(&mut self, max: usize) {
        if self.candidates.len() <= max {
            return;
        }
        let candidates = &self.candidates;
        let order = self.by_age.0.get_or_insert_with(|| {
            candidates
                .iter()
                .map(|(k, c)| (super::newest(c), k.clone()))
                .collect()
        });
        debug_assert_eq!(
            order.len(),
            self.candidates.len(),
            "eviction order out of step"
        );
        while self.candidates.len() > max {
            let Some((_, k)) = order.pop_first() else {
                break;
            };
            self.candidates.remove(&k);
        }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for e in self.problems.values() {
            let p = &e.problem;
            if p.status == ProblemStatus::Resolved {
                continue;
            }
            *s.by_status.entry(p.status).or_default() += 1;
            s.incidents += p.incident_count;
            s.cost += p.cost;
        }
        s
    }
}

/// A cache of the counted signatures' keys in the order the cap evicts them (the newest
/// occurrence's opening, then the key), so that counting a new signature at the cap costs a
/// step in a B-tree instead of a walk over every signature counted. Kept as incidents are
/// counted and signatures evicted; `None` until built and after a sweep, a problem action or a
/// restore changed the candidates, rebuilt when next needed.
#[derive(Debug, Clone, Default)]
pub(super) struct ByAge(pub(super) Option<BTreeSet<(Option<DateTime<Utc>>, String)>>);

impl ByAge {
    /// Signature `key`, whose newest occurrence was `was` (`None`: it was not counted), now has
    /// `now` (`None`: it is no longer counted).
    pub(super) fn moved(
        &mut self,
        key: &str,
        was: Option<Option<DateTime<Utc>>>,
        now: Option<Option<DateTime<Utc>>>,
    ) {
        let Some(order) = &mut self.0 else {
            return;
        };
        if was == now {
            return;
        }
        if let Some(at) = was {
            order.remove(&(at, key.to_owned()));
        }
        if let Some(at) = now {
            order.insert((at, key.to_owned()));
        }
    }
}

/// A cache says nothing about the state beyond what the rest of it says.
impl PartialEq for ByAge {
    fn eq(&self, _: &ByAge) -> bool {
        true
    }
}
