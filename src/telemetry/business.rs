//! Business-impact metrics: per capability its health, state, revenue at risk, users affected and
//! accumulated cost; per service its health; MTTD, MTTA and MTTR histograms by priority and
//! capability; events per incident (noise reduction). Labels come from the service model
//! (capability and service names) and fixed sets (priorities, states), never from incident ids.

use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{
    CounterVec, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry,
};

use crate::engine::{Milestone, MilestoneKind};
use crate::impact::Evaluation;
use crate::model::{Priority, ServiceState};
use crate::topology::Topology;

/// The business-impact metrics (part of [`super::Metrics`]).
#[derive(Debug, Clone)]
pub struct BusinessMetrics {
    pub capability_health: GaugeVec,
    pub capability_state: IntGaugeVec,
    pub capability_revenue_at_risk: GaugeVec,
    pub capability_users_affected: IntGaugeVec,
    pub capability_cost: CounterVec,
    pub service_health: GaugeVec,
    pub mttd: HistogramVec,
    pub mtta: HistogramVec,
    pub mttr: HistogramVec,
    pub events_per_incident: Histogram,
    /// Service model refreshes from a source (`file`, `backstage`), by result (`ok`, `failed`).
    pub topology_refreshes: IntCounterVec,
    /// Services and capabilities in the service model in use.
    pub topology_size: IntGaugeVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> HistogramVec {
    register(
        r,
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
            &["priority", "capability"],
        )
        .expect("valid metric"),
    )
}

/// Label of an incident that hurts no known capability.
const NO_CAPABILITY: &str = "none";

impl BusinessMetrics {
    pub fn new(r: &Registry, topology: &Topology) -> BusinessMetrics {
        let by_cap = |name: &str, help: &str| {
            register(
                r,
                GaugeVec::new(Opts::new(name, help), &["capability"]).expect("valid metric"),
            )
        };
        let minutes = [
            60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
        ];
        let m = BusinessMetrics {
            capability_health: by_cap(
                "d2c_capability_health",
                "Health score 0-100 of each business capability: the worst health of the services that deliver it (100 up, 0 down).",
            ),
            capability_state: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "d2c_capability_state",
                        "1 for the current state (up, degraded, down) of each business capability, 0 for the others.",
                    ),
                    &["capability", "state"],
                )
                .expect("valid metric"),
            ),
            capability_revenue_at_risk: by_cap(
                "d2c_capability_revenue_at_risk_per_minute",
                "Revenue per minute at risk for each business capability: its revenue_per_minute in proportion to the health lost.",
            ),
            capability_users_affected: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "d2c_capability_users_affected",
                        "Users of each business capability affected, in proportion to the health lost.",
                    ),
                    &["capability"],
                )
                .expect("valid metric"),
            ),
            capability_cost: register(
                r,
                CounterVec::new(
                    Opts::new(
                        "d2c_capability_cost_total",
                        "Revenue at risk accumulated over time for each business capability (revenue per minute at risk x minutes).",
                    ),
                    &["capability"],
                )
                .expect("valid metric"),
            ),
            service_health: register(
                r,
                GaugeVec::new(
                    Opts::new(
                        "d2c_service_health",
                        "Health score 0-100 of each service in the service model.",
                    ),
                    &["service"],
                )
                .expect("valid metric"),
            ),
            mttd: histogram(
                r,
                "d2c_mttd_seconds",
                "Time to detect: seconds from the first event of an incident (as its source stamped it) to d2c opening the incident, by priority and capability.",
                &[1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0],
            ),
            mtta: histogram(
                r,
                "d2c_mtta_seconds",
                "Time to acknowledge: seconds from an incident opening to its acknowledgement, by priority and capability.",
                &minutes,
            ),
            mttr: histogram(
                r,
                "d2c_mttr_seconds",
                "Time to resolve: seconds from an incident opening to its resolution, by priority and capability.",
                &minutes,
            ),
            events_per_incident: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "d2c_events_per_incident",
                        "Events absorbed by each incident when it resolved: the noise an operator did not have to read.",
                    )
                    .buckets(vec![
                        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0,
                    ]),
                )
                .expect("valid metric"),
            ),
            topology_refreshes: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "d2c_topology_refreshes_total",
                        "Service model fetches by source (file, backstage) and result (ok, failed); a failed fetch keeps the last good model.",
                    ),
                    &["source", "result"],
                )
                .expect("valid metric"),
            ),
            topology_size: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "d2c_topology_entities",
                        "Entities in the service model in use, by kind (service, capability, ci).",
                    ),
                    &["kind"],
                )
                .expect("valid metric"),
            ),
        };
        m.set(&Evaluation::default(), topology, Duration::ZERO);
        m.set_topology(topology);
        m.init_series(topology);
        m
    }

    /// The size of the service model in use.
    pub fn set_topology(&self, topology: &Topology) {
        for (kind, n) in [
            ("service", topology.service_names().count()),
            ("capability", topology.capability_names().count()),
            ("ci", topology.ci_count()),
        ] {
            self.topology_size.with_label_values(&[kind]).set(n as i64);
        }
    }

    /// Sets the gauges from `eval` (every capability and service of `topology`; those not in
    /// `eval` are up), and adds `elapsed` worth of revenue at risk to the cost counters.
    pub fn set(&self, eval: &Evaluation, topology: &Topology, elapsed: Duration) {
        for name in topology.capability_names() {
            let hurt = eval.capabilities.iter().find(|c| c.capability == name);
            let health = hurt.map_or(100.0, |c| c.health);
            let state = hurt.map_or(ServiceState::Up, |c| c.state);
            let at_risk = hurt.map_or(0.0, |c| c.revenue_at_risk_per_minute);
            self.capability_health
                .with_label_values(&[name])
                .set(health);
            for s in ServiceState::ALL {
                self.capability_state
                    .with_label_values(&[name, s.as_str()])
                    .set(i64::from(s == state));
            }
            self.capability_revenue_at_risk
                .with_label_values(&[name])
                .set(at_risk);
            self.capability_users_affected
                .with_label_values(&[name])
                .set(hurt.map_or(0, |c| c.users_affected) as i64);
            self.capability_cost
                .with_label_values(&[name])
                .inc_by(at_risk * elapsed.as_secs_f64() / 60.0);
        }
        for name in topology.service_names() {
            self.service_health
                .with_label_values(&[name])
                .set(eval.service_health(name));
        }
    }

    /// Observes one milestone; `now` is the wall clock, against which time to detect is
    /// measured.
    pub fn observe(&self, m: &Milestone, now: DateTime<Utc>) {
        let priority = m.priority.as_str();
        let capabilities: Vec<&str> = if m.capabilities.is_empty() {
            vec![NO_CAPABILITY]
        } else {
            m.capabilities.iter().map(String::as_str).collect()
        };
        let (histogram, seconds) = match m.kind {
            MilestoneKind::Opened { first_event } => (
                &self.mttd,
                (now - first_event).num_milliseconds().max(0) as f64 / 1000.0,
            ),
            MilestoneKind::Acknowledged { seconds } => (&self.mtta, seconds),
            MilestoneKind::Resolved { seconds, events } => {
                self.events_per_incident.observe(events as f64);
                (&self.mttr, seconds)
            }
        };
        for c in capabilities {
            histogram.with_label_values(&[priority, c]).observe(seconds);
        }
    }

    /// Creates the histogram series of every priority and capability, so dashboards see them
    /// from the start.
    fn init_series(&self, topology: &Topology) {
        for p in Priority::ALL {
            for c in topology.capability_names().chain([NO_CAPABILITY]) {
                for h in [&self.mttd, &self.mtta, &self.mttr] {
                    h.with_label_values(&[p.as_str(), c]);
                }
            }
        }
    }
}
