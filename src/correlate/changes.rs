//! Change correlation: change events (deployments, configuration changes) remembered per domain
//! and linked to the incidents they may have caused, when an incident opens or a change arrives.

use std::sync::Arc;

use super::state::{State, alert_domain};
use super::stored::StoredAlert;
use crate::config::CorrelationConfig;
use crate::model::{Change, Event, RelatedChange, span};
use crate::topology::{Name, Resolution, Topology};

/// Most changes remembered per correlation domain; older ones go first.
pub const MAX_CHANGES_PER_DOMAIN: usize = 1000;

/// Remembers a change event and links it to open incidents it may have caused.
pub(super) fn record_change(
    state: &mut State,
    topo: &Topology,
    cfg: &CorrelationConfig,
    ev: &Event,
    res: &Resolution<'_>,
) -> Vec<Arc<str>> {
    let fallback = res
        .service
        .is_none()
        .then(|| {
            crate::topology::fallback_domain(
                |k| ev.labels.get(k).map(String::as_str),
                &cfg.fallback_group_by,
            )
        })
        .flatten();
    let Some(domain) = alert_domain(
        topo,
        res.service.map(Name::as_str),
        res.ci.map(Name::as_str),
        fallback,
    ) else {
        return Vec::new();
    };
    let change = Change {
        time: ev.time,
        id: ev.id.clone(),
        name: ev.name.clone(),
        ci: res.ci.map(String::from),
        service: res.service.map(String::from),
        source: ev.source.clone(),
    };
    let lookback = span(cfg.change_lookback);
    let list = state.changes.entry(domain.to_string()).or_default();
    if list.contains(&change) {
        return Vec::new();
    }
    // Oldest first; ties by id, so the order depends only on the changes.
    let at = list.partition_point(|c| (c.time, &c.id) < (change.time, &change.id));
    list.insert(at, change);
    let newest = list.last().map(|c| c.time).unwrap_or(ev.time);
    list.retain(|c| newest - c.time <= lookback);
    if list.len() > MAX_CHANGES_PER_DOMAIN {
        let extra = list.len() - MAX_CHANGES_PER_DOMAIN;
        list.drain(..extra);
    }
    let open: Vec<Arc<str>> = state
        .open
        .get(&*domain)
        .into_iter()
        .flatten()
        .filter_map(|id| state.groups.get(id.as_str()).map(|g| g.id.clone()))
        .collect();
    let mut touched = Vec::new();
    for id in open {
        if link_changes(state, topo, cfg, &id) {
            touched.push(id);
        }
    }
    touched
}

/// Adds to incident `id` the remembered changes that may have caused it: at most
/// `change_lookback` before it opened (or up to its first alert's window after), on one of its
/// services, a service one of them needs, or one of its CIs. Returns whether any was added.
pub(super) fn link_changes(
    state: &mut State,
    topo: &Topology,
    cfg: &CorrelationConfig,
    id: &str,
) -> bool {
    let Some(g) = state.groups.get(id) else {
        return false;
    };
    let Some(changes) = state.changes.get(&g.domain) else {
        return false;
    };
    let lookback = span(cfg.change_lookback);
    let members: Vec<&StoredAlert> = g
        .alerts
        .iter()
        .filter_map(|f| state.alerts.get(f))
        .map(|a| &a.alert)
        .collect();
    let mut found = Vec::new();
    for c in changes {
        let before = g.opened_at - c.time;
        if before > lookback || before < chrono::Duration::zero() {
            continue;
        }
        let relevant = members.iter().any(|a| {
            (c.ci.is_some() && a.ci.as_deref() == c.ci.as_deref())
                || match (a.service.as_deref(), c.service.as_deref()) {
                    (Some(s), Some(cs)) => s == cs || topo.needs(s, cs),
                    _ => false,
                }
        });
        if relevant && !g.related_changes.iter().any(|r| r.change.id == c.id) {
            found.push(RelatedChange {
                change: c.clone(),
                seconds_before_incident: before.num_seconds(),
            });
        }
    }
    if found.is_empty() {
        return false;
    }
    let g = state.groups.get_mut(id).expect("checked above");
    g.related_changes.extend(found);
    // Newest first: the likeliest cause on top.
    g.related_changes
        .sort_by(|a, b| (b.change.time, &b.change.id).cmp(&(a.change.time, &a.change.id)));
    true
}
