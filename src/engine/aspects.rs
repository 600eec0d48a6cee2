//! What an operator sees in an incident, aspect by aspect ([`Aspect`]): a stable hash of each,
//! so the engine can tell whether a new version is due and list what changed in it
//! (`changed`). Repeats of an alert (counts, last seen), an alert firing or resolving on its
//! own, services affected coming and going, and impact moving within a band change nothing;
//! membership, status, severity, priority, root cause, failing services, capabilities hurt,
//! impact crossing a band, acknowledgement, related changes, merging, reopening and a
//! problem (or its workaround) do. Fed field by field (no serialisation); lists are prefixed with
//! their length so that moving an item from one list to the next changes the hash.

use xxhash_rust::xxh3::Xxh3;

use crate::correlate::members;
use crate::impact::Assessment;
use crate::model::{Aspect, Impact, Incident};

/// The aspects hashed, in this order (every [`Aspect`] but `Opened`).
pub const HASHED: [Aspect; 14] = [
    Aspect::Status,
    Aspect::Priority,
    Aspect::Severity,
    Aspect::RootCause,
    Aspect::Alerts,
    Aspect::Services,
    Aspect::Capabilities,
    Aspect::Impact,
    Aspect::Acknowledged,
    Aspect::RelatedChanges,
    Aspect::Merged,
    Aspect::Reopened,
    Aspect::Security,
    Aspect::Problem,
];

/// The hash of every aspect of `i`, in [`HASHED`] order; `steady` stands for the record's
/// capabilities and impact when given (see `publish::Built::steady`), and `alerts` for the
/// hash of its alerts when its record does not list them yet (see [`alerts`]).
pub fn hashes(
    i: &Incident,
    steady: Option<&Assessment>,
    alerts: Option<u64>,
) -> [u64; HASHED.len()] {
    let (capabilities, impact) = match steady {
        Some(s) => (&s.capabilities, &s.impact),
        None => (&i.capabilities, &i.impact),
    };
    HASHED.map(|a| match alerts {
        Some(h) if a == Aspect::Alerts => h,
        _ => {
            let mut h = Xxh3::new();
            feed(&mut h, i, capabilities, impact, a);
            h.digest()
        }
    })
}

/// The hash of the alerts aspect of an incident titled `title` with `count` alerts whose
/// fingerprints hash to `chain` in order (`correlate::members::chain`): the same as [`hashes`]
/// gives for the record that lists them.
pub fn alerts(title: &str, count: usize, chain: u64) -> u64 {
    let mut h = Xxh3::new();
    feed_alerts(&mut h, title, count, chain);
    h.digest()
}

/// Hashes `aspect` of `i` again into `hashes` (it was set after hashing); returns the new
/// substance.
pub fn rehash(hashes: &mut [u64; HASHED.len()], i: &Incident, aspect: Aspect) -> u64 {
    if let Some(k) = HASHED.iter().position(|a| *a == aspect) {
        let mut h = Xxh3::new();
        feed(&mut h, i, &i.capabilities, &i.impact, aspect);
        hashes[k] = h.digest();
    }
    substance(hashes)
}

/// One hash of all aspects: whether anything an operator sees changed.
pub fn substance(hashes: &[u64]) -> u64 {
    let mut h = Xxh3::new();
    for x in hashes {
        h.update(&x.to_le_bytes());
    }
    h.digest()
}

/// The aspects whose hashes differ between `before` (a previous version's; empty when not
/// known) and `after`.
pub fn changed(before: &[u64], after: &[u64]) -> Vec<Aspect> {
    HASHED
        .iter()
        .zip(after)
        .enumerate()
        .filter(|(k, (_, h))| before.get(*k) != Some(*h))
        .map(|(_, (a, _))| *a)
        .collect()
}

/// The band of a health score: down, below 25, below 50, below 75, degraded, up. Impact is a
/// new version only when it crosses one.
pub fn band(health: f64) -> u8 {
    if health <= 0.0 {
        0
    } else if health >= 100.0 {
        5
    } else {
        1 + (health / 25.0).clamp(0.0, 3.0) as u8
    }
}

fn text(h: &mut Xxh3, s: &str) {
    h.update(s.as_bytes());
    h.update(&[0xff]);
}

fn list<'a>(h: &mut Xxh3, items: impl ExactSizeIterator<Item = &'a str>) {
    h.update(&(items.len() as u64).to_le_bytes());
    for s in items {
        text(h, s);
    }
}

/// The title, then the members as a count and a chained hash (not fed one by one: an
/// incident's hash is kept as its alerts join, see `correlate::members`).
fn feed_alerts(h: &mut Xxh3, title: &str, count: usize, chain: u64) {
    text(h, title);
    h.update(&(count as u64).to_le_bytes());
    h.update(&chain.to_le_bytes());
}

fn feed(h: &mut Xxh3, i: &Incident, capabilities: &[String], impact: &Impact, aspect: Aspect) {
    match aspect {
        Aspect::Opened => {}
        Aspect::Status => h.update(&[i.status as u8]),
        Aspect::Priority => h.update(&[i.priority as u8]),
        Aspect::Severity => h.update(&[i.severity as u8]),
        Aspect::RootCause => match &i.root_cause {
            Some(rc) => {
                h.update(&[1, u8::from(rc.guess)]);
                text(h, &rc.service);
            }
            None => h.update(&[0]),
        },
        Aspect::Alerts => {
            let chain = i
                .alerts
                .iter()
                .fold(0, |c, a| members::chain(c, &a.fingerprint));
            feed_alerts(h, &i.title, i.alerts.len(), chain);
        }
        // The services that fail (the others affected follow from them and the capabilities).
        Aspect::Services => list(h, i.failing_services.iter().map(String::as_str)),
        Aspect::Capabilities => list(h, capabilities.iter().map(String::as_str)),
        Aspect::Impact => {
            text(h, &impact.criticality);
            h.update(&[band(impact.health)]);
            h.update(&(impact.capabilities.len() as u64).to_le_bytes());
            for c in &impact.capabilities {
                text(h, &c.capability);
                h.update(&[band(c.health)]);
            }
        }
        Aspect::Acknowledged => text(h, i.acknowledged_by.as_deref().unwrap_or("")),
        Aspect::RelatedChanges => {
            list(h, i.related_changes.iter().map(|c| c.change.id.as_str()));
        }
        Aspect::Merged => text(h, i.merged_into.as_deref().unwrap_or("")),
        Aspect::Reopened => h.update(&i.reopened.to_le_bytes()),
        Aspect::Security => {
            if let Some(s) = &i.security {
                text(h, &serde_json::to_string(s).unwrap_or_default());
            }
        }
        Aspect::Problem => {
            text(h, i.problem.as_deref().unwrap_or(""));
            text(h, i.workaround.as_deref().unwrap_or(""));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_split_health_at_0_25_50_75_and_100() {
        let b: Vec<u8> = [0.0, 10.0, 25.0, 49.9, 50.0, 74.0, 75.0, 99.9, 100.0]
            .map(band)
            .to_vec();
        assert_eq!(b, [0, 1, 2, 2, 3, 3, 4, 4, 5]);
    }
}
