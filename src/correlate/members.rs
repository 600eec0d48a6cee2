//! What an incident's record is built from, kept per incident as its alerts join and change
//! ([`Members`]) instead of read again from every member alert for every version: the worst
//! severity, each service's earliest alert and worst firing severity, and a hash of the
//! members in order. A new alert then costs an incident the same however many alerts it has:
//! in a mass outage (thousands of alerts on one incident) reading every member per new alert
//! made the correlate stage's cost grow with the square of the outage.
//!
//! Derived, never checkpointed: a restored incident has none until its next build makes it
//! from its alerts. Whoever changes what it counts keeps it current or drops it (`None`):
//! - an alert joining ([`Members::add`]);
//! - a member's severity, status or flapping changing in place ([`Members::change`]);
//! - an alert leaving, or the incident being merged away (dropped).
//!
//! A build checks it against a full read of the members in debug builds (the tests).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::stored::StoredAlert;
use crate::model::{Severity, Status};

/// Counts per severity, worst first (`Severity`'s order).
type Counts = [u32; 5];

fn slot(s: Severity) -> usize {
    match s {
        Severity::Critical => 0,
        Severity::Major => 1,
        Severity::Minor => 2,
        Severity::Warning => 3,
        Severity::Info => 4,
    }
}

const BY_SLOT: [Severity; 5] = [
    Severity::Critical,
    Severity::Major,
    Severity::Minor,
    Severity::Warning,
    Severity::Info,
];

/// The worst severity counted, if any.
fn worst(c: &Counts) -> Option<Severity> {
    c.iter().position(|n| *n > 0).map(|k| BY_SLOT[k])
}

/// What [`Members`] counts of one alert; everything else it reads (service, first seen,
/// fingerprint) does not change while the alert is a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    severity: Severity,
    firing: bool,
    /// Flapping and not firing: counted as firing when judging whether a version is due.
    quiet_flapping: bool,
}

impl View {
    pub fn of(a: &StoredAlert) -> View {
        View {
            severity: a.severity,
            firing: a.status == Status::Firing,
            quiet_flapping: a.flapping && a.status != Status::Firing,
        }
    }
}

/// One service's member alerts.
#[derive(Debug, Clone)]
pub struct Service {
    /// The earliest `first_seen` of its members.
    pub first_seen: DateTime<Utc>,
    all: Counts,
    firing: Counts,
    quiet_flapping: Counts,
}

impl Service {
    /// The worst severity of its members: firing ones only, or all of them (`all`).
    pub fn worst(&self, all: bool) -> Option<Severity> {
        worst(if all { &self.all } else { &self.firing })
    }

    /// The worst severity of its flapping members that are not firing.
    pub fn worst_quiet_flapping(&self) -> Option<Severity> {
        worst(&self.quiet_flapping)
    }

    fn count(&mut self, v: View, by: i64) {
        let k = slot(v.severity);
        let step = |n: &mut u32| *n = (i64::from(*n) + by).clamp(0, i64::from(u32::MAX)) as u32;
        step(&mut self.all[k]);
        if v.firing {
            step(&mut self.firing[k]);
        }
        if v.quiet_flapping {
            step(&mut self.quiet_flapping[k]);
        }
    }
}

/// An incident's [`Members`] when it has them: compared equal always, since it is derived
/// (a restored incident has none until its next build).
#[derive(Debug, Clone, Default)]
pub struct Kept(pub Option<Members>);

impl PartialEq for Kept {
    fn eq(&self, _: &Kept) -> bool {
        true
    }
}

/// The summary of an incident's member alerts, in the order they joined (see the module).
#[derive(Debug, Clone, Default)]
pub struct Members {
    /// How many members it counts: the first `len` of the incident's list.
    len: usize,
    severities: Counts,
    /// Members without a service, in the order the guessed cause picks them (worst severity,
    /// then earliest, then fingerprint; see `fallback`), and how many of them each subject
    /// has.
    unmapped: BTreeSet<(Severity, DateTime<Utc>, Arc<str>)>,
    subjects: BTreeMap<String, u32>,
    /// Members firing, and members flapping while not firing.
    firing: usize,
    quiet_flapping: usize,
    services: BTreeMap<Arc<str>, Service>,
    /// A hash of the members' fingerprints in order ([`chain`]).
    chain: u64,
}

/// The hash of fingerprint `f` appended to members hashed `h`: order matters, and appending
/// costs the same however many came before.
pub fn chain(h: u64, f: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(f.as_bytes(), h)
}

impl Members {
    /// Counts `alerts`, in order.
    pub fn of<'a>(alerts: impl IntoIterator<Item = &'a StoredAlert>) -> Members {
        let mut m = Members::default();
        for a in alerts {
            m.add(a);
        }
        m
    }

    /// Counts alert `a`, joining last.
    pub fn add(&mut self, a: &StoredAlert) {
        let v = View::of(a);
        self.len += 1;
        self.severities[slot(v.severity)] += 1;
        self.firing += usize::from(v.firing);
        self.quiet_flapping += usize::from(v.quiet_flapping);
        self.chain = chain(self.chain, &a.fingerprint);
        match &a.service {
            Some(s) => {
                let e = self.services.entry(s.clone()).or_insert_with(|| Service {
                    first_seen: a.first_seen,
                    all: Counts::default(),
                    firing: Counts::default(),
                    quiet_flapping: Counts::default(),
                });
                e.first_seen = e.first_seen.min(a.first_seen);
                e.count(v, 1);
            }
            None => {
                self.unmapped
                    .insert((v.severity, a.first_seen, a.fingerprint.clone()));
                *self.subjects.entry(a.subject().to_owned()).or_default() += 1;
            }
        }
    }

    /// Member `a` changed in place from `was`.
    pub fn change(&mut self, a: &StoredAlert, was: View) {
        let now = View::of(a);
        if was == now {
            return;
        }
        let service = a.service.as_deref();
        if service.is_none()
            && was.severity != now.severity
            && self
                .unmapped
                .remove(&(was.severity, a.first_seen, a.fingerprint.clone()))
        {
            self.unmapped
                .insert((now.severity, a.first_seen, a.fingerprint.clone()));
        }
        let dec = &mut self.severities[slot(was.severity)];
        *dec = dec.saturating_sub(1);
        self.severities[slot(now.severity)] += 1;
        self.firing =
            (self.firing + usize::from(now.firing)).saturating_sub(usize::from(was.firing));
        self.quiet_flapping = (self.quiet_flapping + usize::from(now.quiet_flapping))
            .saturating_sub(usize::from(was.quiet_flapping));
        if let Some(s) = service.and_then(|s| self.services.get_mut(s)) {
            s.count(was, -1);
            s.count(now, 1);
        }
    }

    /// How many members it counts.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every member is resolved and none flaps.
    pub fn all_resolved(&self) -> bool {
        self.firing == 0 && self.quiet_flapping == 0
    }

    /// The worst severity of all members (`Info` without any).
    pub fn severity(&self) -> Severity {
        worst(&self.severities).unwrap_or(Severity::Info)
    }

    /// The members' services, by name.
    pub fn services(&self) -> impl ExactSizeIterator<Item = (&Arc<str>, &Service)> {
        self.services.iter()
    }

    /// What the cause of an incident without a known service is guessed from (see
    /// `fallback::guess_root_cause`): the fingerprint of the earliest of its most severe
    /// members without a service, and how many subjects those have.
    pub fn guess_basis(&self) -> Option<(&Arc<str>, usize)> {
        self.unmapped
            .first()
            .map(|(_, _, f)| (f, self.subjects.len()))
    }

    /// The hash of the members' fingerprints, in order ([`chain`] from 0).
    pub fn chain(&self) -> u64 {
        self.chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn alert(f: &str, service: Option<&str>, severity: Severity, status: Status) -> StoredAlert {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("valid");
        StoredAlert {
            fingerprint: f.into(),
            name: "A".into(),
            ci: None,
            service: service.map(Into::into),
            source: "native".into(),
            severity,
            status,
            first_seen: t,
            last_seen: t,
            count: 1,
            labels: Labels::default(),
            annotations: Labels::default(),
            flapping: false,
            auto_resolved: false,
        }
    }

    #[test]
    fn counts_follow_changes_in_place_and_the_chain_follows_order() {
        let a = alert("a", Some("db"), Severity::Critical, Status::Firing);
        let b = alert("b", Some("db"), Severity::Warning, Status::Firing);
        let c = alert("c", None, Severity::Major, Status::Firing);
        let mut m = Members::of([&a, &b, &c]);
        assert_eq!(m.severity(), Severity::Critical);
        // Only `c` has no service: the guessed cause would be read from it.
        assert_eq!(m.guess_basis().map(|(f, n)| (&**f, n)), Some(("c", 1)));
        let db = |m: &Members| m.services().next().map(|(_, s)| s.clone()).expect("db");
        assert_eq!(db(&m).worst(false), Some(Severity::Critical));
        // The critical alert resolves: the service's worst firing one is the warning.
        let mut resolved = a.clone();
        resolved.status = Status::Resolved;
        m.change(&resolved, View::of(&a));
        assert_eq!(db(&m).worst(false), Some(Severity::Warning));
        assert_eq!(db(&m).worst(true), Some(Severity::Critical));
        assert_eq!(m.severity(), Severity::Critical);
        assert_ne!(Members::of([&a, &b]).chain(), Members::of([&b, &a]).chain());
        assert_eq!(m.len(), 3);
        assert!(!m.all_resolved());
        let mut b_done = b.clone();
        b_done.status = Status::Resolved;
        m.change(&b_done, View::of(&b));
        let mut c_done = c.clone();
        c_done.status = Status::Resolved;
        c_done.flapping = true;
        m.change(&c_done, View::of(&c));
        assert!(!m.all_resolved(), "a member flaps");
        let mut c_calm = c_done.clone();
        c_calm.flapping = false;
        m.change(&c_calm, View::of(&c_done));
        assert!(m.all_resolved());
    }
}
