//! Security correlation: security events (category `security`) grouped into security incidents
//! per attacked entity, with the MITRE ATT&CK stages the attack reached, escalated as it
//! progresses. Pure and deterministic like the rest of `correlate`: event time only.
//!
//! **Detections.** A security event is one detection. Detections of the same tool, rule (its
//! `rule_id` label, else the event name) and entity labels are one detection seen again: its
//! count grows and its last-seen time moves, and no new incident version is made.
//!
//! **Grouping.** Each detection has entity keys:
//! - `host:NAME` for its `host` label, and for an address of `[correlation.security.assets]`
//!   (address → host name) found in `host_ip`, `dest_ip` or `src_ip`;
//! - `ip:ADDR` for `src_ip` (where the attack comes from) and `host_ip` (the attacked host's
//!   own address); for `dest_ip` only when the detection has no `host` label (a network
//!   sensor's alert: the destination is the attacked host). A host detection's destination
//!   (a DNS server, a proxy the host talks to) is not a key, so shared infrastructure does not
//!   chain unrelated attacks; nor is any address in `shared_ips`;
//! - `user:NAME` for its `user` label, except the built-in accounts of [`SHARED_USERS`] (`root`,
//!   `www-data`, …), which every host has.
//!
//! A detection joins the open security incident that shares a key with it and saw a detection
//! at most `window` before (the oldest such incident when several do; they are not merged),
//! else it opens one. A detection below `min_severity` never opens an incident: it joins one it
//! shares a key with, or is ignored (outcome `ignored`). Resolves are ignored too: IDS and EDR
//! tools do not resolve, and a finding marked resolved says nothing about the attack.
//!
//! **Stages and priority.** The incident lists each ATT&CK tactic seen, ordered by first seen
//! (ties by kill-chain order). Severity is the worst detection's, raised with the number of
//! distinct stages: 2 stages at least `major`, 3 or more `critical`. Priority: 3 or more stages
//! P1, 2 stages P2, 1 stage (or none) by severity: critical P2, major and minor P3, warning and
//! info P4.
//!
//! **Lifecycle.** Nothing resolves a security incident but time: it closes `quiet_period`
//! after its last detection (status `closed`, final) and is forgotten `correlation.retention`
//! later; a later detection on the same entities opens a new incident.
//!
//! Ids are `INC-` and 12 hex digits of a hash of the first detection's key and time, as for
//! operational incidents.
//!
//! This file holds the state and [`observe`]; `lifecycle` the timers, acknowledgement and
//! eviction; `incident` the incident record built from the state, with its severity and
//! priority.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::config::SecurityConfig;
use crate::model::attack;
use crate::model::tracked::{TrackedMap, TrackedSet};
use crate::model::{
    AlertRef, Event, IncidentStatus, Labels, StableHasher, Status, later, span, stable_hash,
};

mod incident;
mod lifecycle;

pub use incident::{incident, priority, severity};
pub use lifecycle::{acknowledge, evict, run_timers};

/// Accounts every host has: grouping on them would chain unrelated attacks.
pub const SHARED_USERS: [&str; 9] = [
    "root",
    "administrator",
    "system",
    "nt authority\\system",
    "www-data",
    "nobody",
    "daemon",
    "admin",
    "ubuntu",
];

/// One detection on an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub alert: AlertRef,
}

/// A tactic reached, while the incident is being built up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSeen {
    pub first_seen: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub techniques: BTreeSet<String>,
}

/// One security incident and everything it was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityIncident {
    pub id: String,
    pub opened_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
    pub status: IncidentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<(DateTime<Utc>, String)>,
    /// Entity keys it groups on (see the module docs).
    pub keys: BTreeSet<String>,
    /// Detections by key, and the order they joined in.
    pub detections: BTreeMap<String, Detection>,
    pub order: Vec<String>,
    /// Tactics reached, by tactic id.
    pub stages: BTreeMap<String, StageSeen>,
    /// Techniques that came without a tactic.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub other_techniques: BTreeSet<String>,
    pub event_count: u64,
    /// Detections not listed because the incident had [`MAX_DETECTIONS`] already.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unlisted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Most distinct detections listed on one security incident (a scan from thousands of
/// addresses would otherwise grow one incident without bound); later new ones are counted in
/// `event_count` and their stages and techniques kept, but they are not listed and their
/// entities do not group.
pub const MAX_DETECTIONS: usize = 500;

/// Something due later: an incident goes quiet (closes), or a closed one is forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    Quiet(String),
    Forget(String),
}

/// Everything the security correlator remembers. Tracked (`model::tracked`), so that a delta
/// checkpoint writes the incidents, keys and timers that changed, not all of them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    pub incidents: TrackedMap<String, SecurityIncident>,
    /// Open incidents by entity key: where a detection looks for an incident to join.
    pub open: TrackedMap<String, BTreeSet<String>>,
    pub timers: TrackedSet<(DateTime<Utc>, Timer)>,
}

impl State {
    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty() && self.timers.is_empty()
    }

    fn unindex(&mut self, id: &str) {
        let Some(inc) = self.incidents.get(id) else {
            return;
        };
        for key in &inc.keys {
            if let Some(ids) = self.open.get_mut(key) {
                ids.remove(id);
                if ids.is_empty() {
                    self.open.remove(key);
                }
            }
        }
    }
}

/// The entity keys of a detection; see the module docs.
pub fn entity_keys(cfg: &SecurityConfig, ev: &Event) -> BTreeSet<String> {
    let label = |k: &str| label_of(ev, k);
    let usable = |ip: &&str| usable_ip(cfg, ip);
    let mut keys = BTreeSet::new();
    if let Some(host) = label("host") {
        keys.insert(format!("host:{host}"));
    }
    for k in ["host_ip", "dest_ip", "src_ip"] {
        if let Some(host) = label(k).and_then(|ip| cfg.assets.get(ip)) {
            keys.insert(format!("host:{host}"));
        }
    }
    let mut ips = vec![label("src_ip"), label("host_ip")];
    if label("host").is_none() {
        ips.push(label("dest_ip"));
    }
    for ip in ips.into_iter().flatten().filter(|ip| usable(ip)) {
        keys.insert(format!("ip:{ip}"));
    }
    if let Some(user) = label("user").filter(|u| own_user(u)) {
        keys.insert(format!("user:{user}"));
    }
    keys
}

/// A label's value, if not empty.
fn label_of<'e>(ev: &'e Event, k: &str) -> Option<&'e str> {
    ev.labels
        .get(k)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Whether an address may group or route detections (not one of `shared_ips`).
fn usable_ip(cfg: &SecurityConfig, ip: &str) -> bool {
    !cfg.shared_ips.iter().any(|s| s == ip)
}

/// Whether a user is a person's or a service's own account, not one of [`SHARED_USERS`].
fn own_user(user: &str) -> bool {
    !SHARED_USERS.contains(&user.to_ascii_lowercase().as_str())
}

/// The entity a detection is about, for routing (`correlation.security.partition = "entity"`):
/// its host (the `host` label, else the host `assets` names for its `host_ip` or `dest_ip`), else
/// the attacked address (`host_ip`, else `dest_ip`: a network sensor's destination), else its
/// user, else the address the attack came from (`src_ip`), as an entity key (`host:web-1`,
/// `ip:10.0.1.5`, `user:alice`). Shared addresses and built-in accounts are skipped as in
/// [`entity_keys`]. `None` when it names none of them.
pub fn attacked_entity(cfg: &SecurityConfig, ev: &Event) -> Option<String> {
    let label = |k: &str| label_of(ev, k);
    let usable = |ip: &&str| usable_ip(cfg, ip);
    if let Some(host) = label("host") {
        return Some(format!("host:{host}"));
    }
    let attacked = [label("host_ip"), label("dest_ip")];
    if let Some(host) = attacked.iter().flatten().find_map(|ip| cfg.assets.get(*ip)) {
        return Some(format!("host:{host}"));
    }
    if let Some(ip) = attacked.into_iter().flatten().find(usable) {
        return Some(format!("ip:{ip}"));
    }
    if let Some(user) = label("user").filter(|u| own_user(u)) {
        return Some(format!("user:{user}"));
    }
    let src = label("src_ip")?;
    match cfg.assets.get(src) {
        Some(host) => Some(format!("host:{host}")),
        None => usable(&src).then(|| format!("ip:{src}")),
    }
}

/// The key of a detection: tool, rule and entity labels.
fn detection_key(ev: &Event) -> String {
    let mut h = StableHasher::default();
    h.part("security").part(&ev.source);
    h.part(ev.labels.get("rule_id").unwrap_or(&ev.name));
    for (k, v) in &ev.labels {
        if k != "rule_id" {
            h.part_of(&[k, "=", v]);
        }
    }
    h.hex()
}

/// The ATT&CK tactics (from the built-in table) and techniques of an event's `attack`
/// attribute: `{"tactics": [ids or names], "techniques": [ids]}`.
fn attack_of(ev: &Event) -> (Vec<&'static attack::Tactic>, BTreeSet<String>) {
    let Some(a) = ev.attributes.get("attack") else {
        return (Vec::new(), BTreeSet::new());
    };
    let list = |key: &str| -> Vec<&str> {
        a.get(key)
            .and_then(|v| v.as_array())
            .map(|v| v.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default()
    };
    let mut tactics: Vec<_> = list("tactics")
        .into_iter()
        .filter_map(attack::tactic)
        .collect();
    tactics.sort_by_key(|t| t.order);
    tactics.dedup();
    let techniques = list("techniques")
        .into_iter()
        .filter_map(attack::technique_id)
        .collect();
    (tactics, techniques)
}

/// Applies one security event. Returns what happened and the incidents it touched.
pub fn observe(state: &mut State, cfg: &SecurityConfig, ev: &Event) -> (Outcome, Vec<String>) {
    if ev.status == Status::Resolved {
        return (Outcome::Ignored, Vec::new());
    }
    let keys = entity_keys(cfg, ev);
    let window = span(cfg.window);
    let time = ev.time;
    let mut candidates: Vec<(DateTime<Utc>, &String)> = keys
        .iter()
        .filter_map(|k| state.open.get(k))
        .flatten()
        .filter_map(|id| state.incidents.get(id))
        .filter(|i| time - i.last_event_at <= window && i.opened_at - time <= window)
        .map(|i| (i.opened_at, &i.id))
        .collect();
    candidates.sort();
    let joined = candidates.first().map(|(_, id)| (*id).clone());
    let key = detection_key(ev);
    let id = match joined {
        Some(id) => id,
        None if ev.severity > cfg.min_severity => return (Outcome::Ignored, Vec::new()),
        None => {
            let id = format!(
                "INC-{}",
                &stable_hash(&[&key, &time.timestamp_millis().to_string()])[..12]
            );
            state.incidents.insert(
                id.clone(),
                SecurityIncident {
                    id: id.clone(),
                    opened_at: time,
                    last_event_at: time,
                    status: IncidentStatus::Open,
                    closed_at: None,
                    acknowledged: None,
                    keys: BTreeSet::new(),
                    detections: BTreeMap::new(),
                    order: Vec::new(),
                    stages: BTreeMap::new(),
                    other_techniques: BTreeSet::new(),
                    event_count: 0,
                    unlisted: 0,
                },
            );
            id
        }
    };
    let inc = state
        .incidents
        .get_mut(&id)
        .expect("found or inserted above");
    let opened = inc.event_count == 0;
    inc.event_count += 1;
    let previous_last = inc.last_event_at;
    inc.last_event_at = inc.last_event_at.max(time);
    let full = inc.detections.len() >= MAX_DETECTIONS && !inc.detections.contains_key(&key);
    let new_keys: Vec<String> = if full {
        Vec::new()
    } else {
        keys.difference(&inc.keys).cloned().collect()
    };
    inc.keys.extend(new_keys.iter().cloned());
    let outcome = match inc.detections.get_mut(&key) {
        // A full incident still counts the detection and its stages, without listing it.
        None if full => {
            inc.unlisted += 1;
            Outcome::Deduplicated
        }
        Some(d) => {
            let a = &mut d.alert;
            a.count += 1;
            a.first_seen = a.first_seen.min(time);
            a.last_seen = a.last_seen.max(time);
            if ev.severity < a.severity {
                a.severity = ev.severity;
                Outcome::SeverityChanged
            } else {
                Outcome::Deduplicated
            }
        }
        None => {
            inc.detections.insert(
                key.clone(),
                Detection {
                    alert: AlertRef {
                        fingerprint: key.as_str().into(),
                        name: ev.name.as_str().into(),
                        ci: ev.ci.as_deref().map(Into::into),
                        service: None,
                        source: ev.source.as_str().into(),
                        severity: ev.severity,
                        status: Status::Firing,
                        first_seen: time,
                        last_seen: time,
                        count: 1,
                        labels: Labels::from_map(&ev.labels),
                        annotations: Labels::default(),
                        flapping: false,
                        auto_resolved: false,
                        symptom_of: None,
                    },
                },
            );
            inc.order.push(key);
            if opened {
                Outcome::Opened
            } else {
                Outcome::Joined
            }
        }
    };
    let (tactics, techniques) = attack_of(ev);
    for t in &tactics {
        let stage = inc.stages.entry(t.id.to_owned()).or_insert(StageSeen {
            first_seen: time,
            techniques: BTreeSet::new(),
        });
        stage.first_seen = stage.first_seen.min(time);
        stage.techniques.extend(techniques.iter().cloned());
    }
    if tactics.is_empty() {
        inc.other_techniques.extend(techniques);
    }
    for k in new_keys {
        state.open.entry(k).or_default().insert(id.clone());
    }
    if inc.last_event_at != previous_last || opened {
        let quiet = later(inc.last_event_at, cfg.quiet_period);
        if !opened {
            state.timers.remove(&(
                later(previous_last, cfg.quiet_period),
                Timer::Quiet(id.clone()),
            ));
        }
        state.timers.insert((quiet, Timer::Quiet(id.clone())));
    }
    (outcome, vec![id])
}
