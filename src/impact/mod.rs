//! Impact: from the services whose own alerts fail to the health of every service and business
//! capability, with redundancy (a service needs all, any or k of its dependencies), the revenue
//! at risk and users affected, and the ITIL priority (impact × urgency).
//!
//! Health is a score 0–100 in the manner of Splunk ITSI: 100 is up, 0 is down, anything between
//! is degraded. A service's own health comes from its worst firing alert ([`own_health`]); its
//! health is the lower of that and what its dependencies leave it ([`evaluate`]); a capability
//! takes the worst health of the services that deliver it.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{CapabilityImpact, Impact, Priority, ServiceState, Severity, hashing};
use crate::topology::{CapabilityId, Criticality, Requires, ServiceId, Topology};

/// The health an alert of `severity` leaves its service: critical and major take it down (0),
/// minor leaves 50, warning 75; info does not hurt it (100).
pub fn own_health(severity: Severity) -> f64 {
    match severity {
        Severity::Critical | Severity::Major => 0.0,
        Severity::Minor => 50.0,
        Severity::Warning => 75.0,
        Severity::Info => 100.0,
    }
}

/// The own health an alert of `severity` leaves its service, when it hurts it (below 100): an
/// alert that hurts nothing (info) has no place in an incident's own health.
pub fn hurt_health(severity: Severity) -> Option<f64> {
    let h = own_health(severity);
    (h < 100.0).then_some(h)
}

/// Lowers the own health of `service` in `own` to what an alert of `severity` leaves it; an
/// alert that hurts nothing (info) adds nothing.
pub fn add_alert(own: &mut BTreeMap<String, f64>, service: &str, severity: Severity) {
    lower(own, service, severity, || service.to_owned());
}

/// [`add_alert`] for a map keyed by shared names (the engine's, whose alerts share theirs).
pub fn add_alert_shared(own: &mut BTreeMap<Arc<str>, f64>, service: &Arc<str>, severity: Severity) {
    lower(own, service, severity, || service.clone());
}

fn lower<K: Ord + Borrow<str>>(
    own: &mut BTreeMap<K, f64>,
    service: &str,
    severity: Severity,
    key: impl FnOnce() -> K,
) {
    if let Some(h) = hurt_health(severity) {
        // Looked up before inserting: most alerts of an incident share a service already seen.
        match own.get_mut(service) {
            Some(e) => *e = e.min(h),
            None => {
                own.insert(key(), h);
            }
        }
    }
}

/// The health of every service and capability hurt (below 100); the others are up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    /// Health of each service that is not up.
    pub services: BTreeMap<String, f64>,
    /// Each capability that is not up, worst first (then by name).
    pub capabilities: Vec<CapabilityImpact>,
}

impl Evaluation {
    /// The health of service `name` (100 when not hurt).
    pub fn service_health(&self, name: &str) -> f64 {
        self.services.get(name).copied().unwrap_or(100.0)
    }
}

/// Health from a service's dependencies: with `all`, the worst of them; with k of N, 0 when
/// fewer than k work (health above 0), else their mean (so losing one replica of two leaves 50).
fn from_dependencies(requires: Requires, deps: &[f64]) -> f64 {
    if deps.is_empty() {
        return 100.0;
    }
    match requires {
        Requires::All => deps.iter().copied().fold(100.0, f64::min),
        Requires::AtLeast(k) => {
            let working = deps.iter().filter(|h| **h > 0.0).count();
            if working < k as usize {
                0.0
            } else {
                deps.iter().sum::<f64>() / deps.len() as f64
            }
        }
    }
}

/// Rounds a health or money figure to two decimals for people to read (states are decided on
/// the unrounded figure).
pub fn round2(x: f64) -> f64 {
    // `+ 0.0` turns the -0.0 of an empty sum into 0.
    (x * 100.0).round() / 100.0 + 0.0
}

/// Evaluates the health of every service and capability, given the own health of the services
/// whose alerts fire (`own`, 0–100; services not in the topology are ignored).
pub fn evaluate<K: Borrow<str>>(topo: &Topology, own: &BTreeMap<K, f64>) -> Evaluation {
    let ids = topo.ids();
    let Reach {
        services,
        capabilities,
    } = reach(topo, own);
    Evaluation {
        services: services
            .into_iter()
            .map(|(s, h)| (ids.name(s).to_owned(), h))
            .collect(),
        capabilities: capabilities.into_iter().map(|(_, c)| c).collect(),
    }
}

/// [`evaluate`] by id.
struct Reach {
    /// Each service hurt with its health, in id (so name) order.
    services: Vec<(ServiceId, f64)>,
    /// Each capability hurt, worst first (then by name).
    capabilities: Vec<(CapabilityId, CapabilityImpact)>,
}

/// What `own` hurts, by id (see [`evaluate`]).
fn reach<K: Borrow<str>>(topo: &Topology, own: &BTreeMap<K, f64>) -> Reach {
    // By service id (see `topology::Ids`: id order is name order), so the walk below indexes
    // `Vec`s instead of looking names up.
    let ids = topo.ids();
    let own: Vec<(ServiceId, f64)> = own
        .iter()
        .filter_map(|(name, h)| ids.service(name.borrow()).map(|s| (s, *h)))
        .collect();
    let own_of = |s: ServiceId| {
        own.binary_search_by_key(&s, |(id, _)| *id)
            .map_or(100.0, |k| own[k].1)
    };
    // Only the failing services and the services that need them can be hurt.
    let mut order: Vec<ServiceId> = Vec::new();
    for (s, _) in own.iter().filter(|(_, h)| *h < 100.0) {
        order.push(*s);
        order.extend_from_slice(ids.needed_by(*s));
    }
    // A service needs strictly more services than any of its dependencies: this is a
    // dependency order.
    order.sort_unstable_by_key(|s| (ids.rank(*s), *s));
    order.dedup();
    let mut health: hashing::HashMap<ServiceId, f64> =
        hashing::HashMap::with_capacity_and_hasher(order.len(), Default::default());
    let mut deps: Vec<f64> = Vec::new();
    for s in order {
        deps.clear();
        deps.extend(
            ids.depends_on(s)
                .iter()
                .map(|d| health.get(d).copied().unwrap_or(100.0)),
        );
        let h = own_of(s)
            .clamp(0.0, 100.0)
            .min(from_dependencies(ids.requires(s), &deps));
        if h < 100.0 {
            health.insert(s, h);
        }
    }
    // Only capabilities a hurt service delivers can be hurt, and a capability's health is the
    // worst of the hurt services that deliver it (the others are up, 100): gathered from the
    // hurt services, so an evaluation costs the incident's reach, not the size of the service
    // model or how many services deliver a capability.
    let mut hurt: Vec<(CapabilityId, f64)> = health
        .iter()
        .flat_map(|(s, h)| ids.capabilities(*s).iter().map(move |c| (*c, *h)))
        .collect();
    hurt.sort_unstable_by_key(|(c, _)| *c);
    hurt.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = kept.1.min(later.1);
        }
        same
    });
    let mut capabilities: Vec<(CapabilityId, CapabilityImpact)> = hurt
        .into_iter()
        .filter_map(|(c, h)| {
            let (_, revenue_per_minute, users) = ids.capability(c);
            (h < 100.0).then(|| {
                let lost = (100.0 - h) / 100.0;
                let impact = CapabilityImpact {
                    capability: ids.capability_name(c).to_owned(),
                    state: ServiceState::of(h),
                    health: round2(h),
                    users_affected: (users as f64 * lost).round() as u64,
                    revenue_at_risk_per_minute: round2(revenue_per_minute * lost),
                };
                (c, impact)
            })
        })
        .collect();
    // Ids are in name order: the same order as by name.
    capabilities.sort_by(|(a_id, a), (b_id, b)| a.health.total_cmp(&b.health).then(a_id.cmp(b_id)));
    let mut services: Vec<(ServiceId, f64)> = health.into_iter().collect();
    services.sort_unstable_by_key(|(s, _)| *s);
    Reach {
        services,
        capabilities,
    }
}

/// What an incident hurts.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The services that are not up: the failing ones and those their failure reaches.
    pub services: Vec<String>,
    pub capabilities: Vec<String>,
    /// Criticality, health, revenue at risk, users affected, per-capability detail; outage
    /// duration and cost are the engine's to fill in.
    pub impact: Impact,
    pub priority: Priority,
}

/// Assesses an incident whose alerts leave the services of `own` at that health, with worst
/// severity `severity`. Impact comes from the most critical capability hurt, one step lower when
/// it is only degraded (an incident that hurts no known capability counts as low impact);
/// urgency from the severity.
pub fn assess<K: Borrow<str>>(
    topo: &Topology,
    own: &BTreeMap<K, f64>,
    severity: Severity,
) -> Assessment {
    let ids = topo.ids();
    let Reach {
        services,
        capabilities: hurt,
    } = reach(topo, own);
    let mut criticality: Option<Criticality> = None;
    let mut impact_rank = 3;
    for (c, i) in &hurt {
        let (k, _, _) = ids.capability(*c);
        criticality = Some(criticality.map_or(k, |m| m.min(k)));
        let rank = k.impact() + u8::from(i.state == ServiceState::Degraded);
        impact_rank = impact_rank.min(rank);
    }
    let health = if hurt.is_empty() {
        services.iter().map(|(_, h)| *h).fold(100.0, f64::min)
    } else {
        hurt.iter().map(|(_, c)| c.health).fold(100.0, f64::min)
    };
    // By id is by name.
    let mut by_name: Vec<CapabilityId> = hurt.iter().map(|(c, _)| *c).collect();
    by_name.sort_unstable();
    let capabilities: Vec<String> = by_name
        .into_iter()
        .map(|c| ids.capability_name(c).to_owned())
        .collect();
    let hurt: Vec<CapabilityImpact> = hurt.into_iter().map(|(_, c)| c).collect();
    Assessment {
        services: services
            .into_iter()
            .map(|(s, _)| ids.name(s).to_owned())
            .collect(),
        capabilities,
        impact: Impact {
            criticality: criticality.map_or("none", Criticality::as_str).to_string(),
            health: round2(health),
            revenue_at_risk_per_minute: round2(
                hurt.iter().map(|c| c.revenue_at_risk_per_minute).sum(),
            ),
            users_affected: hurt.iter().map(|c| c.users_affected).sum(),
            outage_seconds: 0,
            cost: 0.0,
            capabilities: hurt,
        },
        priority: Priority::from_matrix(impact_rank, severity.urgency()),
    }
}

#[cfg(test)]
mod tests;
