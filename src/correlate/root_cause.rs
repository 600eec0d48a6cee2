//! Root cause of an incident, asked by the engine when it builds an incident record: the
//! deepest failing service by topology, or a redundancy group that lost too many members.

use std::borrow::Borrow;
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::model::RootCause;
use crate::topology::{ServiceId, Topology};

/// The likely root cause among the failing services of one incident: a failing service none of
/// whose own dependencies is failing (the deepest failure); ties go to the earliest alert, then
/// to the name. `failing` has each failing service with its earliest alert time, once each, in
/// name order.
pub fn root_cause<K: Ord + Borrow<str>>(
    topo: &Topology,
    failing: &[(K, DateTime<Utc>)],
) -> Option<RootCause> {
    let known = known(topo, failing);
    if let Some(lost) = lost_redundancy(topo, &known) {
        return Some(lost.explained(topo));
    }
    let deepest = deepest(topo, &known)?;
    let ids = topo.ids();
    let needs = |a: Option<ServiceId>, b: Option<ServiceId>| match (a, b) {
        (Some(a), Some(b)) => ids.needs(a, b),
        _ => false,
    };
    let symptoms: BTreeSet<&str> = known
        .iter()
        .filter(|(_, _, a)| needs(*a, deepest.2))
        .map(|(s, _, _)| (*s).borrow())
        .collect();
    let deepest: (&str, _) = (deepest.0.borrow(), deepest.1);
    let reason = if failing.len() == 1 {
        format!("{} is the only failing service", deepest.0)
    } else if symptoms.is_empty() {
        format!(
            "{} alerted first among failing services with no failing dependency",
            deepest.0
        )
    } else {
        let verb = if symptoms.len() == 1 {
            "depends"
        } else {
            "depend"
        };
        format!(
            "{} has no failing dependency, and {} {verb} on it",
            deepest.0,
            symptoms.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    Some(RootCause {
        service: deepest.0.to_owned(),
        reason,
        guess: false,
    })
}

/// The service [`root_cause`] names, without saying why: what whether an incident's first
/// version is due depends on, asked on every build of one the group wait holds back.
pub fn root_service<K: Ord + Borrow<str>>(
    topo: &Topology,
    failing: &[(K, DateTime<Utc>)],
) -> Option<String> {
    let known = known(topo, failing);
    if let Some(lost) = lost_redundancy(topo, &known) {
        return Some(lost.parent.to_owned());
    }
    deepest(topo, &known).map(|(s, _, _)| (*s).borrow().to_owned())
}

/// Each failing service with its earliest alert time and its id (one lookup per service, then
/// no string compares).
fn known<'a, K: Borrow<str>>(
    topo: &Topology,
    failing: &'a [(K, DateTime<Utc>)],
) -> Vec<(&'a K, &'a DateTime<Utc>, Option<ServiceId>)> {
    let ids = topo.ids();
    failing
        .iter()
        .map(|(s, t)| (s, t, ids.service(s.borrow())))
        .collect()
}

/// The failing service none of whose own dependencies is failing; ties go to the earliest
/// alert, then to the name.
fn deepest<'k, 'a, K: Ord>(
    topo: &Topology,
    known: &'k [(&'a K, &'a DateTime<Utc>, Option<ServiceId>)],
) -> Option<&'k (&'a K, &'a DateTime<Utc>, Option<ServiceId>)> {
    let ids = topo.ids();
    let needs = |a: Option<ServiceId>, b: Option<ServiceId>| match (a, b) {
        (Some(a), Some(b)) => ids.needs(a, b),
        _ => false,
    };
    known
        .iter()
        .filter(|(s, _, a)| !known.iter().any(|(d, _, b)| d != s && needs(*a, *b)))
        .min_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)))
}

/// A redundancy group whose failing members leave fewer working than it needs (both replicas of
/// a pair): the group's service is the root cause, rather than whichever replica failed first.
struct Lost<'a> {
    parent: &'a str,
    /// Its failing dependencies.
    down: Vec<&'a str>,
    /// How many it needs.
    k: usize,
}

impl Lost<'_> {
    fn explained(self, topo: &Topology) -> RootCause {
        let Lost { parent, down, k } = self;
        let n = topo.service(parent).map_or(0, |d| d.depends_on.len());
        RootCause {
            service: parent.to_string(),
            reason: format!(
                "{parent} lost its redundancy: {} of its {n} redundant dependencies are failing ({}) and it needs {k}",
                down.len(),
                down.join(", ")
            ),
            guess: false,
        }
    }
}

/// The earliest alert time of failing service `name` (`known` is in name order).
fn since<'a, K: Borrow<str>>(
    known: &[(&K, &'a DateTime<Utc>, Option<ServiceId>)],
    name: &str,
) -> Option<&'a DateTime<Utc>> {
    known
        .binary_search_by(|(k, _, _)| (*k).borrow().cmp(name))
        .ok()
        .map(|i| known[i].1)
}

/// The group that [`Lost`] its redundancy earliest (by its first failing member), then by name.
/// `known` is [`known`] of the failing services: with their ids, so none is looked up again.
fn lost_redundancy<'a, K: Ord + Borrow<str>>(
    topo: &'a Topology,
    known: &[(&K, &DateTime<Utc>, Option<ServiceId>)],
) -> Option<Lost<'a>> {
    let mut best: Option<(DateTime<Utc>, &str, Vec<&str>, usize)> = None;
    for parent in known
        .iter()
        .filter_map(|(_, _, id)| *id)
        .flat_map(|id| topo.redundancy_parents_of(id))
    {
        let def = topo.service(parent)?;
        let crate::topology::Requires::AtLeast(k) = def.requires else {
            continue;
        };
        let down: Vec<&str> = def
            .depends_on
            .iter()
            .filter(|d| since(known, d).is_some())
            .map(String::as_str)
            .collect();
        if def.depends_on.len() - down.len() >= k as usize {
            continue;
        }
        let first = down.iter().filter_map(|d| since(known, d)).min()?;
        if best
            .as_ref()
            .is_none_or(|(t, name, _, _)| (*first, parent) < (*t, *name))
        {
            best = Some((*first, parent, down, k as usize));
        }
    }
    let (_, parent, down, k) = best?;
    Some(Lost { parent, down, k })
}
