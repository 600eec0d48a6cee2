//! What a build reads from an incident's member alerts: from the stored alerts themselves, or
//! from the summary the incident keeps of them (`correlate::members`), to the same figures;
//! what it makes of that (`Derived`), and the memos that spare making it again (`Memo`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::correlate::members::{self, Members};
use crate::correlate::{self, StoredAlert};
use crate::engine::assessed::{Assessed, Shaped};
use crate::impact;
use crate::model::{AlertRef, RootCause, Severity, Status};

/// What a build reads from an incident's member alerts.
#[derive(Debug, PartialEq)]
pub(super) struct Read {
    pub(super) count: usize,
    pub(super) severity: Severity,
    /// Each member service and the earliest `first_seen` of its alerts, in name order.
    pub(super) failing: Vec<(Arc<str>, DateTime<Utc>)>,
    /// The own health of each service its alerts hurt (firing ones, or all of them).
    pub(super) own: BTreeMap<Arc<str>, f64>,
    /// `own` with flapping alerts counted as firing, when there are any not firing now.
    pub(super) steady: Option<BTreeMap<Arc<str>, f64>>,
    /// The members' fingerprints, hashed in order (`members::chain`).
    pub(super) chain: u64,
    /// The guessed cause, when no member is on a service the model knows.
    pub(super) guess: Option<RootCause>,
}

impl Read {
    /// Reads every member (`all`: impact from every alert, not only the firing ones).
    pub(super) fn of_alerts(alerts: &[&StoredAlert], all: bool) -> Read {
        let severity = alerts
            .iter()
            .map(|a| a.severity)
            .min()
            .unwrap_or(Severity::Info);
        let mut failing: BTreeMap<Arc<str>, DateTime<Utc>> = BTreeMap::new();
        let mut own: BTreeMap<Arc<str>, f64> = BTreeMap::new();
        for a in alerts {
            if let Some(s) = &a.service {
                match failing.get_mut(&**s) {
                    Some(t) => *t = (*t).min(a.first_seen),
                    None => {
                        failing.insert(s.clone(), a.first_seen);
                    }
                }
                if a.status == Status::Firing || all {
                    impact::add_alert_shared(&mut own, s, a.severity);
                }
            }
        }
        let mut steady: Option<BTreeMap<Arc<str>, f64>> = None;
        for a in alerts
            .iter()
            .filter(|a| a.flapping && a.status != Status::Firing && !all)
        {
            if let Some(s) = &a.service {
                impact::add_alert_shared(steady.get_or_insert_with(|| own.clone()), s, a.severity);
            }
        }
        let guess = failing.is_empty().then(|| {
            let refs: Vec<AlertRef> = alerts.iter().map(|a| a.to_ref()).collect();
            correlate::fallback::guess_root_cause(&refs)
        });
        Read {
            guess: guess.flatten(),
            count: alerts.len(),
            severity,
            failing: failing.into_iter().collect(),
            own,
            steady,
            chain: alerts
                .iter()
                .fold(0, |h, a| members::chain(h, &a.fingerprint)),
        }
    }

    /// Reads an incident's summary instead: the same figures (`stored` finds a member by its
    /// fingerprint).
    pub(super) fn of_members<'a>(
        m: &Members,
        all: bool,
        stored: impl Fn(&Arc<str>) -> Option<&'a StoredAlert>,
    ) -> Read {
        // The summary's services come in name order, once each: one pass keeps that order, and
        // the map is built from sorted input instead of a search per service.
        let n = m.services().len();
        let mut failing: Vec<(Arc<str>, DateTime<Utc>)> = Vec::with_capacity(n);
        let mut hurt: Vec<(Arc<str>, f64)> = Vec::with_capacity(n);
        let mut quiet = Vec::new();
        for (s, counts) in m.services() {
            failing.push((s.clone(), counts.first_seen));
            if let Some(h) = counts.worst(all).and_then(impact::hurt_health) {
                hurt.push((s.clone(), h));
            }
            if !all && let Some(worst) = counts.worst_quiet_flapping() {
                quiet.push((s, worst));
            }
        }
        let own: BTreeMap<Arc<str>, f64> = hurt.into_iter().collect();
        let steady = (!quiet.is_empty()).then(|| {
            let mut steady = own.clone();
            for (s, worst) in quiet {
                impact::add_alert_shared(&mut steady, s, worst);
            }
            steady
        });
        let guess = if failing.is_empty() {
            m.guess_basis().and_then(|(f, subjects)| {
                let a = stored(f)?;
                Some(correlate::fallback::guess(
                    a.subject(),
                    &a.name,
                    a.severity,
                    a.first_seen,
                    subjects,
                ))
            })
        } else {
            None
        };
        Read {
            guess,
            count: m.len(),
            severity: m.severity(),
            failing,
            own,
            steady,
            chain: m.chain(),
        }
    }
}

/// What a build reads of a group before it makes the record.
pub(super) struct Parts {
    /// How many members it has, and their fingerprints hashed in order.
    pub(super) count: usize,
    pub(super) chain: u64,
    pub(super) derived: Arc<Derived>,
}

/// What a build makes of what it read of a group's members, besides how many they are and
/// their hash: the same for the same shape of its summary (`Members::shape`), so kept by it
/// (`assessed::Shaped`).
#[derive(Debug, PartialEq)]
pub(super) struct Derived {
    pub(super) severity: Severity,
    /// Each member service and the earliest `first_seen` of its alerts, in name order.
    pub(super) failing: Vec<(Arc<str>, DateTime<Utc>)>,
    /// The own health of its services with flapping alerts counted as firing, when that
    /// differs (see [`Read`]).
    pub(super) steady: Option<BTreeMap<Arc<str>, f64>>,
    /// The guessed cause, when no member is on a service the model knows.
    pub(super) guess: Option<RootCause>,
    pub(super) assessment: Arc<impact::Assessment>,
    /// The root cause's service, and whether it is a guess (`correlate::root_service`): the
    /// record's root cause says why only when the record is made.
    pub(super) root: Option<(String, bool)>,
}

/// The memos of builds (not state): impact assessments, and what was made of each shape.
#[derive(Debug, Clone, Default)]
pub(in crate::engine) struct Memo {
    pub(super) assessed: Assessed,
    pub(super) shaped: Shaped<Derived>,
}

impl Memo {
    /// Forgets everything (the service model changed).
    pub(in crate::engine) fn clear(&mut self) {
        self.assessed.clear();
        self.shaped.clear();
    }

    /// Hits and misses since the last call.
    pub(in crate::engine) fn take_counts(&mut self) -> crate::engine::MemoCounts {
        crate::engine::MemoCounts {
            assessment: std::mem::take(&mut self.assessed.lookups),
            build: std::mem::take(&mut self.shaped.lookups),
        }
    }
}
