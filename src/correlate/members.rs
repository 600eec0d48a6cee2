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
//!
//! Its [`shape`](Members::shape) names what a build reads from it besides how many members it
//! has and their hash: a new number whenever that may have changed, so that a build can reuse
//! what it made of the same shape (most alerts of an outage join a service that already fails,
//! with a severity it already has).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

    /// What a build reads of it: its earliest alert and its worst severities.
    fn looks(&self) -> (DateTime<Utc>, [Option<Severity>; 3]) {
        (
            self.first_seen,
            [
                self.worst(true),
                self.worst(false),
                self.worst_quiet_flapping(),
            ],
        )
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
    /// See [`shape`](Members::shape).
    shape: u64,
}

/// The last shape handed out: shapes are unique in the process, so a shape names one content
/// even across incidents, copies of the state and summaries made again. It only names content
/// (nothing in any output depends on its value), so the output stays the same on every run.
static SHAPES: AtomicU64 = AtomicU64::new(0);

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
        let severity = self.severity();
        self.len += 1;
        self.severities[slot(v.severity)] += 1;
        self.firing += usize::from(v.firing);
        self.quiet_flapping += usize::from(v.quiet_flapping);
        self.chain = chain(self.chain, &a.fingerprint);
        let mut reshaped = self.severity() != severity;
        match &a.service {
            Some(s) => match self.services.get_mut(&**s) {
                Some(e) => {
                    let was = e.looks();
                    e.first_seen = e.first_seen.min(a.first_seen);
                    e.count(v, 1);
                    reshaped |= e.looks() != was;
                }
                None => {
                    let mut e = Service {
                        first_seen: a.first_seen,
                        all: Counts::default(),
                        firing: Counts::default(),
                        quiet_flapping: Counts::default(),
                    };
                    e.count(v, 1);
                    self.services.insert(s.clone(), e);
                    reshaped = true;
                }
            },
            None => {
                self.unmapped
                    .insert((v.severity, a.first_seen, a.fingerprint.clone()));
                *self.subjects.entry(a.subject().to_owned()).or_default() += 1;
                reshaped = true;
            }
        }
        if reshaped {
            self.reshape();
        }
    }

    /// What a build reads from it may have changed: it takes a new shape.
    fn reshape(&mut self) {
        self.shape = SHAPES.fetch_add(1, Ordering::Relaxed) + 1;
    }

    /// A number naming what a build reads from it besides [`len`](Self::len) and
    /// [`chain`](Self::chain) (its services with their earliest alert and worst severities,
    /// its worst severity, its members without a service): two summaries of the same shape
    /// read the same. New whenever an alert joins or changes in a way that may change that;
    /// unique in the process (0 only for a summary nothing has joined).
    pub fn shape(&self) -> u64 {
        self.shape
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
        self.reshape();
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

    #[test]
    fn the_shape_changes_with_what_a_build_reads_and_only_then() {
        let mut m = Members::default();
        assert_eq!(m.shape(), 0, "nothing joined");
        let mut shapes = vec![m.shape()];
        let mut joins = |m: &mut Members, a: &StoredAlert| {
            m.add(a);
            shapes.push(m.shape());
            shapes[shapes.len() - 2] != m.shape()
        };
        assert!(joins(
            &mut m,
            &alert("a", Some("db"), Severity::Major, Status::Firing)
        ));
        // The same service, a severity it has or a lesser one: a build reads the same.
        assert!(!joins(
            &mut m,
            &alert("b", Some("db"), Severity::Major, Status::Firing)
        ));
        assert!(!joins(
            &mut m,
            &alert("c", Some("db"), Severity::Warning, Status::Firing)
        ));
        // A worse severity, another service, an earlier alert, one without a service: not.
        assert!(joins(
            &mut m,
            &alert("d", Some("db"), Severity::Critical, Status::Firing)
        ));
        assert!(joins(
            &mut m,
            &alert("e", Some("web"), Severity::Minor, Status::Firing)
        ));
        let mut early = alert("f", Some("web"), Severity::Minor, Status::Firing);
        early.first_seen -= chrono::Duration::seconds(1);
        assert!(joins(&mut m, &early));
        assert!(joins(
            &mut m,
            &alert("g", None, Severity::Info, Status::Firing)
        ));
        // A resolved alert on a service with only firing ones changes what "all" reads.
        let resolved = alert("h", Some("web"), Severity::Major, Status::Resolved);
        assert!(joins(&mut m, &resolved));
        // Any change in place is a new shape, and shapes are never handed out twice.
        let before = m.shape();
        let mut now = resolved.clone();
        now.status = Status::Firing;
        m.change(&now, View::of(&resolved));
        assert_ne!(m.shape(), before);
        let other = Members::of([&now]);
        assert!(!shapes.contains(&other.shape()) && other.shape() != m.shape());
    }
}
