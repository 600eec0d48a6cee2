//! Links learned from history: two subjects (services, or what alerts the model does not know
//! are about, see [`subject`](super::fallback::subject)) whose alerts opened and resolved
//! together, within `correlation.window` of each other, in `correlation.learn_after` incidents
//! are linked for grouping, although the model declares no dependency between them. Counted
//! when an incident resolves, against the other incidents resolved shortly before.
//!
//! Bounded: at most [`MAX_EPISODES`] recent resolutions and [`MAX_PAIRS`] counted pairs (the
//! least recently seen go first, learned links last), counted in `d2c_state_evictions_total`;
//! an incident of more than [`MAX_SUBJECTS`] subjects is not learned from.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most recent per-subject resolutions kept to compare new ones with.
pub const MAX_EPISODES: usize = 1000;
/// Most pairs of subjects counted.
pub const MAX_PAIRS: usize = 10_000;
/// An incident with more subjects than this teaches nothing (it is too broad to say which of
/// them belong together), and its pairs would crowd out the others.
pub const MAX_SUBJECTS: usize = 50;

/// A subject's part in one resolved incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    pub subject: String,
    pub incident: String,
    /// Its earliest alert's first firing, and its last resolve, in that incident.
    pub opened: DateTime<Utc>,
    pub resolved: DateTime<Utc>,
}

/// How often two subjects opened and resolved together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub count: u32,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// When the count reached `learn_after`: the link is learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_at: Option<DateTime<Utc>>,
}

/// A learned link, as the read API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedLink {
    /// The two subjects, in name order.
    pub services: [String; 2],
    /// Always true: the link is learned, not declared in the model.
    pub learned: bool,
    /// Incidents in which they opened and resolved together.
    pub co_occurrences: u32,
    pub learned_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// What the correlator learned. Ordered maps and lists, so it is the same on every run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Learning {
    /// Recent resolutions, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub episodes: Vec<Episode>,
    /// Counts by pair key ([`key`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pairs: BTreeMap<String, Pair>,
    /// The learned links, both ways, for a lookup without allocating.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, BTreeSet<String>>,
}

/// The key of the pair `a`, `b` (in name order, joined by a unit separator).
fn key(a: &str, b: &str) -> String {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    format!("{a}\u{1f}{b}")
}

impl Learning {
    pub fn is_empty(&self) -> bool {
        self.episodes.is_empty() && self.pairs.is_empty()
    }

    /// Whether `a` and `b` are linked by learning.
    pub fn linked(&self, a: &str, b: &str) -> bool {
        !self.links.is_empty() && self.links.get(a).is_some_and(|p| p.contains(b))
    }

    /// Notes that incident `incident` resolved at `now`, its subjects having `episodes` (subject,
    /// opened, resolved) in it; counts every pair that opened and resolved within `window` of
    /// each other, in it or in an incident resolved shortly before, and learns the link of a
    /// pair counted `learn_after` times.
    pub fn resolved(
        &mut self,
        incident: &str,
        episodes: Vec<Episode>,
        window: chrono::Duration,
        learn_after: u32,
        now: DateTime<Utc>,
    ) {
        if learn_after == 0 || episodes.is_empty() || episodes.len() > MAX_SUBJECTS {
            return;
        }
        let near = |x: DateTime<Utc>, y: DateTime<Utc>| (x - y).abs() <= window;
        // Old episodes cannot resolve "together" with this one any more.
        self.episodes
            .retain(|e| near(e.resolved, now) || e.resolved > now);
        let mut counted = BTreeSet::new();
        for (i, e) in episodes.iter().enumerate() {
            let others = episodes[i + 1..]
                .iter()
                .chain(self.episodes.iter().filter(|o| o.incident != incident));
            for o in others {
                if o.subject != e.subject
                    && near(o.opened, e.opened)
                    && near(o.resolved, e.resolved)
                {
                    counted.insert(key(&e.subject, &o.subject));
                }
            }
        }
        for k in counted {
            let p = self.pairs.entry(k.clone()).or_insert(Pair {
                count: 0,
                first_seen: now,
                last_seen: now,
                learned_at: None,
            });
            p.count = p.count.saturating_add(1);
            p.last_seen = p.last_seen.max(now);
            if p.learned_at.is_none() && p.count >= learn_after {
                p.learned_at = Some(now);
                if let Some((a, b)) = k.split_once('\u{1f}') {
                    self.links.entry(a.into()).or_default().insert(b.into());
                    self.links.entry(b.into()).or_default().insert(a.into());
                }
            }
        }
        self.episodes.extend(episodes);
        if self.episodes.len() > MAX_EPISODES {
            let extra = self.episodes.len() - MAX_EPISODES;
            self.episodes.drain(..extra);
        }
    }

    /// Keeps at most [`MAX_PAIRS`] pairs: past it, forgets down to 90% of it, pairs not learned
    /// first, least recently seen first. Returns how many were forgotten.
    pub fn evict(&mut self) -> u64 {
        if self.pairs.len() <= MAX_PAIRS {
            return 0;
        }
        let goal = MAX_PAIRS - MAX_PAIRS / 10;
        let mut order: Vec<(bool, DateTime<Utc>, String)> = self
            .pairs
            .iter()
            .map(|(k, p)| (p.learned_at.is_some(), p.last_seen, k.clone()))
            .collect();
        order.sort();
        let mut gone = 0;
        for (learned, _, k) in order {
            if self.pairs.len() <= goal {
                break;
            }
            self.pairs.remove(&k);
            gone += 1;
            if learned && let Some((a, b)) = k.split_once('\u{1f}') {
                for (x, y) in [(a, b), (b, a)] {
                    if let Some(set) = self.links.get_mut(x) {
                        set.remove(y);
                        if set.is_empty() {
                            self.links.remove(x);
                        }
                    }
                }
            }
        }
        gone
    }

    /// The learned links, in name order.
    pub fn learned_links(&self) -> impl Iterator<Item = LearnedLink> + '_ {
        self.pairs.iter().filter_map(|(k, p)| {
            let at = p.learned_at?;
            let (a, b) = k.split_once('\u{1f}')?;
            Some(LearnedLink {
                services: [a.to_owned(), b.to_owned()],
                learned: true,
                co_occurrences: p.count,
                learned_at: at,
                last_seen: p.last_seen,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn ep(subject: &str, incident: &str, opened: i64, resolved: i64) -> Episode {
        Episode {
            subject: subject.into(),
            incident: incident.into(),
            opened: t(opened),
            resolved: t(resolved),
        }
    }

    #[test]
    fn pairs_that_open_and_resolve_together_are_learned_after_n_incidents() {
        let mut l = Learning::default();
        let w = chrono::Duration::minutes(5);
        for k in 0..3 {
            let base = k * 3600;
            let (a, b) = (format!("A{k}"), format!("B{k}"));
            l.resolved(
                &a,
                vec![ep("db-a", &a, base, base + 300)],
                w,
                3,
                t(base + 300),
            );
            assert!(!l.linked("db-a", "db-b"));
            l.resolved(
                &b,
                vec![ep("db-b", &b, base + 5, base + 302)],
                w,
                3,
                t(base + 302),
            );
            // Unrelated: resolved 20 minutes later.
            let c = format!("C{k}");
            l.resolved(
                &c,
                vec![ep("mail", &c, base, base + 1500)],
                w,
                3,
                t(base + 1500),
            );
        }
        assert!(l.linked("db-a", "db-b") && l.linked("db-b", "db-a"));
        assert!(!l.linked("db-a", "mail"));
        let links: Vec<LearnedLink> = l.learned_links().collect();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].services, ["db-a".to_owned(), "db-b".to_owned()]);
        assert_eq!(links[0].co_occurrences, 3);
    }

    #[test]
    fn pairs_stay_within_the_cap_learned_links_last() {
        let mut l = Learning::default();
        let w = chrono::Duration::minutes(5);
        l.resolved(
            "I",
            vec![ep("x", "I", 0, 10), ep("y", "I", 0, 10)],
            w,
            1,
            t(10),
        );
        assert!(l.linked("x", "y"));
        for i in 0..MAX_PAIRS as i64 {
            let inc = format!("N{i}");
            let s = 100 + i * 1000;
            l.resolved(
                &inc,
                vec![
                    ep(&format!("p{i}"), &inc, s, s),
                    ep(&format!("q{i}"), &inc, s, s),
                ],
                w,
                5,
                t(s),
            );
        }
        let gone = l.evict();
        assert!(gone > 0 && l.pairs.len() <= MAX_PAIRS);
        assert!(
            l.linked("x", "y"),
            "the learned link outlives unlearned pairs"
        );
        assert!(l.episodes.len() <= MAX_EPISODES);
    }
}
