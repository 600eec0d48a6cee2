//! Inhibition: the firing source alerts, bounded and serialisable, and the index that finds an
//! inhibiting source for an event in the size of its `equal`-label group.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::matcher::{EventLabels, LabelSet, Matcher, all_match};
use crate::model::{Event, Status};

/// One inhibition rule, checked.
#[derive(Debug, Clone)]
pub(super) struct InhibitRule {
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// The values of the `equal` labels; missing is `""`, so missing equals missing.
    fn key(&self, labels: &impl LabelSet) -> Vec<String> {
        self.equal
            .iter()
            .map(|n| labels.label(n).unwrap_or("").to_string())
            .collect()
    }
}

/// A firing alert that matched some rule's `source_matchers` when it last fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceAlert {
    /// Time of the event that made it a source; older events of its fingerprint are ignored.
    pub time: DateTime<Utc>,
    /// Its labels with the pseudo-labels (`alertname`, `ci`, `service`, `source`, `severity`)
    /// written in, so rules can be matched again after a restore.
    pub labels: BTreeMap<String, String>,
}

/// What the suppressor remembers between events: the firing inhibition sources, by
/// fingerprint. Serialise it into a checkpoint and give it back with
/// [`Suppressor::restore_inhibit_state`](super::Suppressor::restore_inhibit_state).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InhibitState {
    sources: BTreeMap<String, SourceAlert>,
    /// Sources forgotten because of the cap, since the state was created.
    #[serde(default)]
    evictions: u64,
}

impl InhibitState {
    /// The firing sources, by fingerprint.
    pub fn sources(&self) -> &BTreeMap<String, SourceAlert> {
        &self.sources
    }

    /// Sources forgotten because of `max_inhibit_sources`, in total.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}

/// The rules, the state, and indexes derived from the state (rebuilt on restore, never
/// serialised).
#[derive(Debug, Clone)]
pub(super) struct Inhibitor {
    rules: Vec<InhibitRule>,
    max_sources: usize,
    state: InhibitState,
    /// Sources by event time, oldest first: what the cap evicts.
    by_time: BTreeSet<(DateTime<Utc>, String)>,
    /// Per rule: `equal` values → fingerprints of sources with them, each with whether the
    /// source also matches the rule's targets (see [`Inhibitor::inhibitor`]).
    index: Vec<BTreeMap<Vec<String>, BTreeMap<String, bool>>>,
}

impl Inhibitor {
    pub fn new(rules: Vec<InhibitRule>, max_sources: usize) -> Inhibitor {
        Inhibitor {
            index: vec![BTreeMap::new(); rules.len()],
            rules,
            max_sources,
            state: InhibitState::default(),
            by_time: BTreeSet::new(),
        }
    }

    pub fn state(&self) -> &InhibitState {
        &self.state
    }

    /// Replaces the state; sources no current rule selects are dropped, and the cap applies.
    pub fn restore(&mut self, state: InhibitState) {
        self.state = InhibitState {
            sources: BTreeMap::new(),
            evictions: state.evictions,
        };
        self.by_time.clear();
        self.index.iter_mut().for_each(BTreeMap::clear);
        for (fp, src) in state.sources {
            if self.rules.iter().any(|r| all_match(&r.source, &src.labels)) {
                self.insert(fp, src);
            }
        }
        self.enforce_cap();
    }

    /// Updates the sources from one event: a firing event that matches a rule's sources becomes
    /// (or stays) a source; a resolve, or a firing that no longer matches, removes it. Events
    /// older than the source's last one change nothing.
    pub fn observe(&mut self, ev: &Event, labels: &EventLabels<'_>) {
        if self.rules.is_empty() {
            return;
        }
        let fp = &ev.fingerprint;
        if self.state.sources.get(fp).is_some_and(|s| ev.time < s.time) {
            return;
        }
        let is_source =
            ev.status == Status::Firing && self.rules.iter().any(|r| all_match(&r.source, labels));
        self.remove(fp);
        if is_source {
            let src = SourceAlert {
                time: ev.time,
                labels: labels.to_map(),
            };
            self.insert(fp.clone(), src);
            self.enforce_cap();
        }
    }

    /// The first rule (in config order) and the first source (by fingerprint) inhibiting an
    /// event. An alert never inhibits itself; and, as in Alertmanager, an event that matches
    /// both sides of a rule is not inhibited by a source that matches both sides too, so two
    /// such alerts cannot silence each other.
    pub fn inhibitor(&self, fingerprint: &str, labels: &EventLabels<'_>) -> Option<(usize, &str)> {
        for (i, rule) in self.rules.iter().enumerate() {
            if !all_match(&rule.target, labels) {
                continue;
            }
            let Some(sources) = self.index[i].get(&rule.key(labels)) else {
                continue;
            };
            let two_sided = all_match(&rule.source, labels);
            let found = sources
                .iter()
                .find(|&(fp, &both)| fp != fingerprint && !(two_sided && both));
            if let Some((fp, _)) = found {
                return Some((i, fp));
            }
        }
        None
    }

    fn insert(&mut self, fp: String, src: SourceAlert) {
        for (i, rule) in self.rules.iter().enumerate() {
            if all_match(&rule.source, &src.labels) {
                let both = all_match(&rule.target, &src.labels);
                self.index[i]
                    .entry(rule.key(&src.labels))
                    .or_default()
                    .insert(fp.clone(), both);
            }
        }
        self.by_time.insert((src.time, fp.clone()));
        self.state.sources.insert(fp, src);
    }

    fn remove(&mut self, fp: &str) {
        let Some(src) = self.state.sources.remove(fp) else {
            return;
        };
        self.by_time.remove(&(src.time, fp.to_string()));
        for (i, rule) in self.rules.iter().enumerate() {
            let key = rule.key(&src.labels);
            if let Some(group) = self.index[i].get_mut(&key) {
                group.remove(fp);
                if group.is_empty() {
                    self.index[i].remove(&key);
                }
            }
        }
    }

    /// Forgets the sources seen least recently until the cap holds.
    fn enforce_cap(&mut self) {
        while self.state.sources.len() > self.max_sources {
            let Some((_, fp)) = self.by_time.first().cloned() else {
                break;
            };
            self.remove(&fp);
            self.state.evictions += 1;
        }
    }
}
