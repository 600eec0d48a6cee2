//! Suppressed events: whether an event is suppressed (silences, maintenance windows,
//! inhibition) and what is remembered of the alerts suppressed, within [`MAX_SUPPRESSED`].
//! Free functions of the fields they use, so that the engine can call them while the event's
//! resolution borrows its service model.

use chrono::{DateTime, Utc};

use super::{EngineState, MAX_SUPPRESSED, SuppressedAlert};
use crate::model::tracked::TrackedMap;
use crate::model::{Event, Status};
use crate::suppress::{Suppression, Suppressor};

/// Whether `ev` is suppressed. A resolve of an alert that is on an incident is never
/// suppressed: the incident it opened before the silence must still resolve. Inlined: it runs
/// for every event, and without rules it is one test.
#[inline]
pub(super) fn check(
    suppressor: Option<&mut Suppressor>,
    state: &EngineState,
    ev: &Event,
    fingerprint: &str,
    service: Option<&str>,
) -> Option<Suppression> {
    let suppression = suppressor?.check(ev, service)?;
    let on_incident = state
        .correlation
        .alerts
        .get(fingerprint)
        .is_some_and(|a| a.incident.is_some());
    (ev.status == Status::Firing || !on_incident).then_some(suppression)
}

/// Remembers suppressed alert `fingerprint` in `list`; returns how many it forgot to stay
/// within [`MAX_SUPPRESSED`].
pub(super) fn remember(
    list: &mut TrackedMap<String, SuppressedAlert>,
    ev: &Event,
    fingerprint: &str,
    res: &crate::topology::Resolution<'_>,
    s: &Suppression,
) -> u64 {
    let entry = list
        .entry(fingerprint.to_string())
        .or_insert_with(|| SuppressedAlert {
            name: ev.name.clone(),
            ci: res.ci.map(String::from),
            service: res.service.map(String::from),
            reason: s.reason,
            by: s.by.clone(),
            count: 0,
            first_seen: ev.time,
            last_seen: ev.time,
        });
    entry.count += 1;
    entry.reason = s.reason;
    entry.by.clone_from(&s.by);
    entry.first_seen = entry.first_seen.min(ev.time);
    entry.last_seen = entry.last_seen.max(ev.time);
    if list.len() > MAX_SUPPRESSED {
        // Down to 90% of the cap, least recently seen first: one sort per tenth of the cap,
        // where looking for the oldest on every new one walked them all (a silenced storm
        // of new alerts ran at a few thousand events/s).
        let goal = MAX_SUPPRESSED - MAX_SUPPRESSED / 10;
        let mut order: Vec<(DateTime<Utc>, &str)> = list
            .iter()
            .map(|(f, a)| (a.last_seen, f.as_str()))
            .collect();
        let over = order.len() - goal;
        order.select_nth_unstable(over - 1);
        let gone: Vec<String> = order[..over].iter().map(|o| o.1.to_owned()).collect();
        for f in gone {
            list.remove(&f);
        }
        return over as u64;
    }
    0
}
