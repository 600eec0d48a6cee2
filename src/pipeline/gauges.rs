//! The correlate stage's gauges, computed from the engines of the partitions it owns (at most
//! once a second): the state summary, the size of every map of the correlation state (what a
//! soak run watches for growth), business impact, and what the view shows of the service model
//! and the suppression.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Engine, SecuritySummary, Summary};
use crate::telemetry::Metrics;
use crate::telemetry::shell::STATE_MAPS;
use crate::topology::Topology;

use super::View;

/// Sets the state gauges, the business-impact gauges (adding `elapsed` worth of cost) and the
/// view's service model, suppression and learned links, from `engines`.
pub(super) fn set(
    metrics: &Metrics,
    engines: &[&Engine],
    topo: &Arc<Topology>,
    view: &View,
    elapsed: Duration,
) {
    let mut total = Summary::default();
    for engine in engines {
        let s = engine.summary();
        for (svc, h) in s.own_health {
            let e = total.own_health.entry(svc).or_insert(100.0);
            *e = e.min(h);
        }
        total.active_alerts += s.active_alerts;
        total.suppressed_alerts += s.suppressed_alerts;
        total.shared_strings += s.shared_strings;
        for (p, n) in s.open_by_priority {
            *total.open_by_priority.entry(p).or_default() += n;
        }
        for (c, n) in s.open_by_capability {
            *total.open_by_capability.entry(c).or_default() += n;
        }
    }
    metrics.set_summary(&total, topo);
    let mut security = SecuritySummary::default();
    for engine in engines {
        for (k, n) in engine.security_summary().open_by_tactic {
            *security.open_by_tactic.entry(k).or_default() += n;
        }
    }
    metrics.set_security_summary(&security);
    metrics.set_partitions_owned(engines.len());
    metrics.set_state_entries(&state_sizes(engines));
    let eval = crate::impact::evaluate(topo, &total.own_health);
    metrics.business.set(&eval, topo, elapsed);
    view.set_topology(topo.clone());
    view.set_suppression(
        engines.iter().flat_map(|e| e.silences()),
        engines.iter().flat_map(|e| e.state().suppressed.values()),
    );
    view.set_learned(engines.iter().flat_map(|e| e.learned_links()));
}

/// Entries of every map of the correlation state, summed over `engines`, in the order of
/// [`STATE_MAPS`].
pub fn state_sizes(engines: &[&Engine]) -> [usize; STATE_MAPS.len()] {
    let mut n = [0usize; STATE_MAPS.len()];
    for e in engines {
        let s = e.state();
        let c = &s.correlation;
        let sizes = [
            c.alerts.len(),
            c.groups.len(),
            c.open.values().map(|ids| ids.len()).sum(),
            c.timers.len(),
            c.changes.values().map(Vec::len).sum(),
            s.published.len(),
            s.rfcs.values().map(|ids| ids.len()).sum::<usize>() + s.changes.len(),
            s.origins.len(),
            s.suppressed.len(),
            s.silences.len(),
            s.security.incidents.len(),
            s.security.timers.len(),
        ];
        for (total, k) in n.iter_mut().zip(sizes) {
            *total += k;
        }
    }
    n
}
