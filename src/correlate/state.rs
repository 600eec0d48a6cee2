//! The correlator's state: deduplicated alerts, incidents (groups), the open-incident index per
//! domain, remembered changes and the timer queue. Every other file of `correlate` reads and
//! writes this; it is what the engine checkpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::topology::Topology;

use super::intern::Interner;
use super::members::{Kept, Members, View};
use super::stored::StoredAlert;
use crate::model::tracked::{TrackedHashMap, TrackedMap, TrackedSet, sorted};
use crate::model::{Change, IncidentStatus, RelatedChange, hashing};

/// The deduplicated state of one fingerprint and the incident it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub alert: StoredAlert,
    /// Time of the event that set the current status; older events do not change it.
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub status_time: DateTime<Utc>,
    /// The incident's id, shared with its [`Group::id`].
    pub incident: Option<Arc<str>>,
    /// Times of its recent status changes (within the flap window).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<DateTime<Utc>>,
    /// Due time of its pending resolve-timeout timer, if one is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_due: Option<DateTime<Utc>>,
}

/// The alerts of one incident and its lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Shared with its alerts' [`AlertState::incident`].
    pub id: Arc<str>,
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub opened_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::model::serialize_time")]
    pub last_event_at: DateTime<Utc>,
    #[serde(default = "open")]
    pub status: IncidentStatus,
    /// When every alert was resolved, while the resolve hold runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolving_since: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reopened: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// When and by whom the incident was acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<(DateTime<Utc>, String)>,
    /// Fingerprints of member alerts, in the order they joined (each the same string as the
    /// alert's key in [`State::alerts`]).
    pub alerts: Vec<Arc<str>>,
    pub event_count: u64,
    /// Correlation domain of the incident's first alert; only alerts of the same domain can
    /// join it.
    #[serde(default)]
    pub domain: String,
    /// Values of the group-by labels of its first alert; only alerts with the same values join.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group_key: String,
    /// Changes found for it so far (kept, so later versions list them even after the changes
    /// themselves are forgotten).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_changes: Vec<RelatedChange>,
    /// What its record is built from, kept as its alerts join and change (see `members`):
    /// derived, so neither checkpointed nor compared.
    #[serde(skip)]
    pub members: Kept,
}

impl Group {
    /// Its summary of its alerts (see `members`), when it has a current one: not for an
    /// incident merged away (its alerts change the other's), nor one that lost count.
    pub fn summary(&self) -> Option<&Members> {
        self.members
            .0
            .as_ref()
            .filter(|m| self.merged_into.is_none() && m.len() == self.alerts.len())
    }

    /// Adds alert `key` as its newest member, counting it in its summary (`a`: the alert, if
    /// the state has it; without it, or without a current summary, the summary is dropped).
    pub(super) fn join(&mut self, key: Arc<str>, a: Option<&StoredAlert>) {
        let current = self.summary().is_some();
        match (self.members.0.as_mut(), a) {
            (Some(m), Some(a)) if current => m.add(a),
            _ => self.members = Kept(None),
        }
        self.alerts.push(key);
    }
}

/// Keeps the summary of incident `incident` current after its member `a` changed in place
/// from `was` (looked up only when what the summary counts changed).
pub(super) fn member_changed(
    groups: &mut TrackedHashMap<Arc<str>, Group>,
    incident: Option<&str>,
    a: &StoredAlert,
    was: View,
) {
    if was != View::of(a)
        && let Some(g) = incident.and_then(|id| groups.get_mut(id))
        && let Some(m) = g.members.0.as_mut()
    {
        m.change(a, was);
    }
}

fn open() -> IncidentStatus {
    IncidentStatus::Open
}

/// Something due later than the event that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    /// The resolve hold of an incident ends.
    Resolve(String),
    /// A resolved incident's reopen window ends: it closes.
    Close(String),
    /// A closed incident's retention ends: it is forgotten.
    Forget(String),
    /// A flapping alert may have become quiet.
    Flap(String),
    /// A firing alert of a source with a resolve timeout may have gone silent.
    ResolveTimeout(String),
    /// A resolve that matched no alert is forgotten.
    ForgetAlert(String),
    /// The engine's next version of an incident is due (its group wait or group interval
    /// ended); scheduled and checked by the engine.
    Publish(String),
}

/// Everything the correlator remembers. Ordered maps, or hash maps nothing walks in an order
/// that could show and that checkpoints write in key order, so that every output is the same
/// on every run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    /// Hashed, not ordered: a new alert looks up itself and the members of the incidents it
    /// may join, and in an ordered map of a million alerts each lookup is a chain of string
    /// compares and cache misses. Nothing reads it in an order that could show (the gauges
    /// add up, eviction sorts what it picks); a checkpoint writes it sorted by fingerprint, as
    /// the ordered map it was. Boxed: a table slot costs a pointer, not the whole alert.
    #[serde(serialize_with = "sorted_by_key")]
    pub alerts: TrackedHashMap<Arc<str>, Box<AlertState>>,
    /// Hashed too: looked up by id on every event of an incident and every build; only a
    /// checkpoint walks it, in key order. Keyed by the group's own id ([`Group::id`], shared
    /// with its alerts and the index of recent incidents): a lookup compares against memory it
    /// has mostly just read, and the changes a checkpoint tracks hold no copies of ids.
    #[serde(serialize_with = "sorted")]
    pub groups: TrackedHashMap<Arc<str>, Group>,
    /// Open incidents per correlation domain: where a new alert looks for an incident to join,
    /// so that finding one costs the size of its domain, not of the whole state.
    #[serde(default)]
    pub open: TrackedMap<String, BTreeSet<String>>,
    /// Recent change events per correlation domain, oldest first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, Vec<Change>>,
    /// Timers by due time.
    #[serde(default)]
    pub timers: TrackedSet<(DateTime<Utc>, Timer)>,
    /// Links learned from alerts that opened and resolved together (`learned`).
    #[serde(default, skip_serializing_if = "super::learned::Learning::is_empty")]
    pub learned: super::learned::Learning,
    /// `open`, ordered by time: derived, never checkpointed.
    #[serde(skip)]
    pub(super) recent: Recent,
    /// The text alerts share (names, sources, CIs, services): derived, never checkpointed.
    #[serde(skip)]
    pub(super) names: Interner,
}

/// Writes `alerts` in the order of their fingerprints, as an ordered map would.
fn sorted_by_key<S: serde::Serializer>(
    alerts: &TrackedHashMap<Arc<str>, Box<AlertState>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(in_key_order(alerts.iter()))
}

/// `pairs` in the order of their keys. Sorted by the keys' first 8 bytes as a number first,
/// the whole keys only where those are equal: fingerprints are mostly hashes, so nearly every
/// comparison is of two integers instead of a string compare behind two pointers (the sort
/// went from 6.9% to 2.1% of writing a full checkpoint, BENCHMARKS.md round 3k). Zero-padding
/// a shorter prefix keeps the order of the strings, and ties go to the whole keys.
pub(super) fn in_key_order<'a, V>(
    pairs: impl Iterator<Item = (&'a Arc<str>, V)>,
) -> impl Iterator<Item = (&'a Arc<str>, V)> {
    let mut keyed: Vec<(u64, &Arc<str>, V)> = pairs
        .map(|(k, v)| {
            let mut prefix = [0u8; 8];
            let n = k.len().min(8);
            prefix[..n].copy_from_slice(&k.as_bytes()[..n]);
            (u64::from_be_bytes(prefix), k, v)
        })
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    keyed.into_iter().map(|(_, k, v)| (k, v))
}

/// An open incident in [`Recent`]: the time it is filed under, and its id.
type Filed = (DateTime<Utc>, Arc<str>);

/// How far an incident's place in [`Recent`] may lag behind its last event, so that a repeat
/// (the dedup path) moves it at most once a minute of event time instead of on every event.
const RECENT_SLACK: chrono::Duration = chrono::Duration::seconds(60);

/// The open incidents of each domain ordered by (about) when they last had an event: a new
/// alert looks only at those its time window can reach, so open incidents that went quiet long
/// ago cost it nothing, however many there are. A cache of `State::open` and the groups' last
/// event times, built on first use (after a restore it is empty) and kept up to date since.
#[derive(Debug, Clone, Default)]
pub(super) struct Recent {
    built: bool,
    /// Looked up by domain, never walked: hashed. The ids are the groups' own ([`Group::id`]):
    /// a new alert reads each candidate's id from the memory that holds it for the group, not
    /// from a copy of its own.
    by_domain: hashing::HashMap<Arc<str>, BTreeSet<Filed>>,
    /// The domain and time each open incident is filed under: its last event time, up to
    /// `RECENT_SLACK` before it.
    filed: hashing::HashMap<Arc<str>, (Arc<str>, DateTime<Utc>)>,
    /// The least id, where a range of `by_domain` from a time starts (made once).
    least: Arc<str>,
}

/// A cache says nothing about the state beyond what the rest of it says.
impl PartialEq for Recent {
    fn eq(&self, _: &Recent) -> bool {
        true
    }
}

impl Recent {
    fn insert(&mut self, domain: &str, id: &Arc<str>, last: DateTime<Utc>) {
        if !self.built {
            return;
        }
        if let Some((d, at)) = self.filed.remove(&**id) {
            self.unfile(&d, id, at);
        }
        // One copy of the domain's name, shared by its entries here.
        let domain = self
            .by_domain
            .get_key_value(domain)
            .map_or_else(|| Arc::from(domain), |(d, _)| d.clone());
        self.by_domain
            .entry(domain.clone())
            .or_default()
            .insert((last, id.clone()));
        self.filed.insert(id.clone(), (domain, last));
    }

    fn unfile(&mut self, domain: &str, id: &Arc<str>, at: DateTime<Utc>) {
        if let Some(set) = self.by_domain.get_mut(domain) {
            set.remove(&(at, id.clone()));
            if set.is_empty() {
                self.by_domain.remove(domain);
            }
        }
    }

    /// Incident `id` had an event: `last_event` is its new last event time.
    pub(super) fn touch(&mut self, id: &str, last_event: DateTime<Utc>) {
        if !self.built {
            return;
        }
        let Some((id, (domain, at))) = self.filed.get_key_value(id) else {
            return;
        };
        if last_event - *at > RECENT_SLACK {
            let (id, domain) = (id.clone(), domain.clone());
            self.insert(&domain, &id, last_event);
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some((id, (d, at))) = self.filed.remove_entry(id) {
            self.unfile(&d, &id, at);
        }
    }
}

impl State {
    /// Shares the strings of a restored state as a running one shares them (a checkpoint
    /// holds a copy of each per use): each fingerprint once, each incident id once, and the
    /// alerts' names, sources, CIs and services through the interner.
    pub fn share_strings(&mut self) {
        let State {
            alerts,
            groups,
            names,
            ..
        } = self;
        for (key, a) in alerts.iter_mut() {
            a.alert.share(key, names);
            if let Some(id) = &a.incident
                && let Some(g) = groups.get(&**id)
            {
                a.incident = Some(g.id.clone());
            }
        }
        for g in groups.values_mut() {
            for f in &mut g.alerts {
                if let Some((key, _)) = alerts.get_key_value(&**f) {
                    *f = key.clone();
                }
            }
        }
    }

    /// How many strings the alerts share (a gauge: bounded by `MAX_INTERNED`).
    pub fn shared_strings(&self) -> usize {
        self.names.count()
    }

    /// Files open incident `id` of `domain` (opened or reopened) where new alerts look for one.
    pub(super) fn open_index(&mut self, domain: &str, id: &Arc<str>, last_event: DateTime<Utc>) {
        self.open
            .entry(domain.to_owned())
            .or_default()
            .insert(id.to_string());
        self.recent.insert(domain, id, last_event);
    }

    /// Builds the index of recent open incidents if it is not (after a restore), for
    /// [`State::recent_open`].
    pub(super) fn index_recent(&mut self) {
        if !self.recent.built {
            self.recent = Recent {
                built: true,
                ..Recent::default()
            };
            for (d, ids) in &self.open {
                for id in ids {
                    if let Some(g) = self.groups.get(id.as_str()) {
                        self.recent.insert(d, &g.id, g.last_event_at);
                    }
                }
            }
        }
    }

    /// The open incidents of `domain` whose last event may be at or after `since` (and some
    /// a little older), in no particular order; read in place (no copy of the list or its
    /// ids). Empty until [`State::index_recent`] built the index.
    pub(super) fn recent_open<'s>(
        &'s self,
        domain: &str,
        since: DateTime<Utc>,
    ) -> impl Iterator<Item = &'s Arc<str>> + 's {
        let from = since
            .checked_sub_signed(RECENT_SLACK)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.recent
            .by_domain
            .get(domain)
            .into_iter()
            .flat_map(move |set| set.range((from, self.recent.least.clone())..))
            .map(|(_, id)| id)
    }

    /// Takes incident `id` out of the open index (it resolved, closed or was forgotten).
    pub(super) fn close_index(&mut self, domain: &str, id: &str) {
        self.recent.remove(id);
        if let Some(ids) = self.open.get_mut(domain) {
            ids.remove(id);
            if ids.is_empty() {
                self.open.remove(domain);
            }
        }
    }

    pub(super) fn schedule(&mut self, due: DateTime<Utc>, timer: Timer) {
        self.timers.insert((due, timer));
    }

    /// Schedules the engine's next version of incident `id` at `due`, instead of at `was` when
    /// one was scheduled.
    pub fn schedule_publish(&mut self, id: &str, was: Option<DateTime<Utc>>, due: DateTime<Utc>) {
        if let Some(was) = was {
            if was == due {
                return;
            }
            self.timers.remove(&(was, Timer::Publish(id.to_owned())));
        }
        self.timers.insert((due, Timer::Publish(id.to_owned())));
    }

    /// Cancels the engine's next version of incident `id` scheduled at `was`.
    pub fn cancel_publish(&mut self, id: &str, was: DateTime<Utc>) {
        self.timers.remove(&(was, Timer::Publish(id.to_owned())));
    }
}

/// The domain an alert correlates in: its service's; when no service claims it, that of its
/// fallback labels (`correlation.fallback_group_by`), else its CI's. `None` when it has none of
/// these (it can only ever be alone).
pub(super) fn alert_domain<'a>(
    topo: &'a Topology,
    service: Option<&str>,
    ci: Option<&str>,
    fallback: Option<String>,
) -> Option<Cow<'a, str>> {
    match (service, ci) {
        // Borrowed from the model: a new alert joining its service's domain copies nothing.
        (Some(s), _) => topo.service_domain(s).map(Cow::Borrowed),
        _ if fallback.is_some() => fallback.map(Cow::Owned),
        (None, Some(ci)) => Some(Cow::Owned(format!("ci:{ci}"))),
        (None, None) => None,
    }
}
