//! Every metric d2c exports, registered once. Labels are bounded: formats, reasons, outcomes and
//! priorities are fixed sets; capabilities come from the topology; partitions from the topics.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::engine::{SecuritySummary, Summary};
use crate::model::{Priority, Severity, attack};
use crate::topology::Topology;

/// The metrics of one d2c process.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Raw records consumed by the ingest stage, by detected format and result (`ok`, `dlq`).
    pub(super) records_consumed: IntCounterVec,
    /// Events normalised from raw records, by format.
    pub(super) events_normalised: IntCounterVec,
    /// Raw records sent to the DLQ, by reason.
    pub(super) dlq_records: IntCounterVec,
    /// Events applied by the correlate stage, by outcome.
    pub(super) events_correlated: IntCounterVec,
    /// Events suppressed by a silence, maintenance window or inhibition rule, by reason.
    pub(super) events_suppressed: IntCounterVec,
    /// Alerts whose events are being suppressed (remembered so they stay visible).
    pub(super) alerts_suppressed: IntGauge,
    pub(super) alerts_active: IntGauge,
    pub(super) alerts_shared_strings: IntGauge,
    pub(super) incidents_open: IntGaugeVec,
    pub(super) capability_open_incidents: IntGaugeVec,
    pub(super) incidents_opened: IntCounterVec,
    pub(super) incidents_resolved: IntCounterVec,
    pub(super) incident_versions: IntCounter,
    pub(super) rfcs_published: IntCounterVec,
    pub(super) rfc_transitions: IntCounterVec,
    /// Seconds from a raw record entering Kafka to the incident record it caused being
    /// acknowledged by the broker.
    pub(super) event_to_incident: Histogram,
    pub(super) batch_seconds: HistogramVec,
    /// How long each stage holds a batch, the broker's time excluded (see [`super::held`]).
    pub(super) held: super::held::HeldMetrics,
    pub(super) consumer_lag: IntGaugeVec,
    pub(super) produce_retries: IntCounterVec,
    pub(super) records_undecodable: IntCounter,
    pub(super) state_evictions: IntCounterVec,
    /// Lookups of the correlation engine's build memos, by memo and result.
    pub(super) memo_lookups: IntCounterVec,
    pub(super) state_restores: IntCounter,
    pub(super) checkpoints: IntCounter,
    pub(super) checkpoint_bytes: Histogram,
    pub(super) checkpoint_deltas: IntCounter,
    pub(super) checkpoints_dropped: IntCounter,
    pub(super) checkpoint_seconds: HistogramVec,
    pub(super) restore_deltas: IntCounter,
    pub(super) restore_seconds: Histogram,
    pub(super) partitions_owned: IntGauge,
    pub(super) input_gaps: IntCounter,
    /// Business impact: capability and service health, MTTD/MTTA/MTTR, cost.
    pub business: super::business::BusinessMetrics,
    /// Deliveries to ITSM and paging tools, by connector and outcome (delivered, retried,
    /// dead_lettered, skipped).
    pub(super) deliveries: IntCounterVec,
    /// Seconds per delivery attempt, by connector.
    pub(super) delivery_seconds: HistogramVec,
    /// Delivery attempts that failed and are retried, by connector.
    pub(super) delivery_retries: IntCounterVec,
    /// Records the delivery stage read but has not finished delivering.
    pub(super) delivery_backlog: IntGauge,
    /// Open security incidents by ATT&CK tactic reached and severity.
    pub(super) security_incidents_open: IntGaugeVec,
    /// Security events received by the correlate stage, by tool.
    pub(super) security_events: IntCounterVec,
    /// The shell's failure handling and the state maps' sizes (see [`super::shell`]).
    pub(super) shell: super::shell::ShellMetrics,
    /// The incident view behind the console and the read API (`pipeline::materialise`).
    pub(super) view_size: IntGaugeVec,
    pub(super) view_evictions: IntCounterVec,
    pub(super) view_skipped: IntCounter,
    pub(super) view_delay: Histogram,
    /// Problems, RFC runs and the DORA measures of corrective changes.
    pub changes: super::changes::ChangeMetrics,
}

/// Every severity, for label sets.
const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::Major,
    Severity::Minor,
    Severity::Warning,
    Severity::Info,
];

fn plain_counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn plain_gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Metrics {
    /// Registers every metric. Label sets known up front (formats, reasons, priorities,
    /// capabilities) are initialised to zero so dashboards and rate() see them from the start.
    pub fn new(topology: &Topology) -> Metrics {
        let r = Registry::new();
        let build = gauge(
            &r,
            "d2c_build_info",
            "Version of the running d2c.",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let m = Metrics {
            records_consumed: counter(
                &r,
                "d2c_events_consumed_total",
                "Raw records consumed from the raw events topic, by detected format and result (ok or dlq).",
                &["format", "result"],
            ),
            events_normalised: counter(
                &r,
                "d2c_events_normalised_total",
                "Events normalised from raw records (one Alertmanager payload carries many), by format.",
                &["format"],
            ),
            dlq_records: counter(
                &r,
                "d2c_dlq_records_total",
                "Records sent to the dead-letter topic, by reason: raw records ingest cannot read or refuses (e.g. time_out_of_range, clock_ahead, expansion_limit), and inputs the correlation engine refused (clock_behind, time_out_of_range, silence refusals, invalid_transition) or failed on (internal_error).",
                &["reason"],
            ),
            events_correlated: counter(
                &r,
                "d2c_events_correlated_total",
                "Events applied by the correlation engine, by outcome (opened, joined, reopened, deduplicated, severity_changed, alert_resolved, unmatched_resolve, stale, change, suppressed, redelivered).",
                &["outcome"],
            ),
            events_suppressed: counter(
                &r,
                "d2c_events_suppressed_total",
                "Events suppressed by a silence, maintenance window or inhibition rule, by reason (silenced, maintenance, inhibited); they open no incident but stay counted and listed.",
                &["reason"],
            ),
            alerts_suppressed: plain_gauge(
                &r,
                "d2c_alerts_suppressed",
                "Alerts remembered as suppressed (at most 10000 per partition).",
            ),
            alerts_active: plain_gauge(&r, "d2c_alerts_active", "Alerts currently firing."),
            alerts_shared_strings: plain_gauge(
                &r,
                "d2c_alerts_shared_strings",
                "Strings the alerts in memory share (alert names, sources, CIs, services; at most 131072 per partition).",
            ),
            incidents_open: gauge(
                &r,
                "d2c_incidents_open",
                "Open incidents, by priority.",
                &["priority"],
            ),
            capability_open_incidents: gauge(
                &r,
                "d2c_capability_open_incidents",
                "Open incidents hurting each business capability.",
                &["capability"],
            ),
            incidents_opened: counter(
                &r,
                "d2c_incidents_opened_total",
                "Incidents opened, by priority at opening.",
                &["priority"],
            ),
            incidents_resolved: counter(
                &r,
                "d2c_incidents_resolved_total",
                "Incidents resolved, by priority at resolution.",
                &["priority"],
            ),
            incident_versions: plain_counter(
                &r,
                "d2c_incident_versions_total",
                "Incident records published (every change of an incident is a new version).",
            ),
            rfcs_published: counter(
                &r,
                "d2c_rfcs_published_total",
                "Change requests raised (their first version), by category.",
                &["category"],
            ),
            rfc_transitions: counter(
                &r,
                "d2c_rfc_transitions_total",
                "Later versions of change requests, by the status they reached (approved, rejected, withdrawn …).",
                &["status"],
            ),
            event_to_incident: {
                let h = Histogram::with_opts(
                    HistogramOpts::new(
                        "d2c_event_to_incident_seconds",
                        "Seconds from a raw event entering Kafka to the incident record it caused being acknowledged by the broker.",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ]),
                )
                .expect("valid metric");
                r.register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
            batch_seconds: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "d2c_batch_seconds",
                        "Seconds to process one batch, from its first record to its outputs acknowledged, by stage.",
                    )
                    .buckets(prometheus::exponential_buckets(0.001, 2.0, 14).expect("valid buckets")),
                    &["stage"],
                )
                .expect("valid metric");
                r.register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
            consumer_lag: gauge(
                &r,
                "d2c_consumer_lag",
                "Records between the consumer's position and the end of each partition, by topic and partition.",
                &["topic", "partition"],
            ),
            produce_retries: counter(
                &r,
                "d2c_produce_retries_total",
                "Output records sent again after the broker did not acknowledge them, by topic.",
                &["topic"],
            ),
            records_undecodable: plain_counter(
                &r,
                "d2c_events_undecodable_total",
                "Records on the normalised events topic that are not d2c events (skipped).",
            ),
            state_evictions: counter(
                &r,
                "d2c_state_evictions_total",
                "State forgotten to stay within correlation.max_alerts / max_incidents (and problems within problem.max_problems or past problem.retention, pairs of services counted for learned links within their cap, suppressed alerts remembered within theirs), by kind (alert, incident, open_incident, problem, learned_pair, suppressed).",
                &["kind"],
            ),
            memo_lookups: counter(
                &r,
                "d2c_engine_memo_lookups_total",
                "Lookups of the correlation engine's memos of incident builds, by memo (assessment: an incident's business impact for the same own health of its services and severity; build: what was made of an incident summary of the same shape) and result (hit, miss). Many misses in a storm: each new alert changes what its incident hurts, and each build is made in full.",
                &["memo", "result"],
            ),
            state_restores: plain_counter(
                &r,
                "d2c_state_restores_total",
                "Partitions whose correlation state was restored from the state topic (or started empty).",
            ),
            checkpoints: plain_counter(
                &r,
                "d2c_checkpoints_total",
                "Checkpoints of a partition's correlation state acknowledged by the broker.",
            ),
            checkpoint_bytes: {
                let h = Histogram::with_opts(
                    HistogramOpts::new("d2c_checkpoint_bytes", "Size of each checkpoint written.")
                        .buckets(
                            prometheus::exponential_buckets(1024.0, 4.0, 10)
                                .expect("valid buckets"),
                        ),
                )
                .expect("valid metric");
                r.register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
            checkpoint_seconds: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "d2c_checkpoint_seconds",
                        "Time spent on each checkpoint by kind (full, delta) and step: take (copying what it writes, on the correlate stage's own thread: events wait meanwhile), serialise (into chunks, on a blocking thread beside it) and wait (serialised, for the outputs sent before it to be acknowledged, beside the stage).",
                    )
                    .buckets(
                        prometheus::exponential_buckets(0.0005, 2.0, 14).expect("valid buckets"),
                    ),
                    &["kind", "step"],
                )
                .expect("valid metric");
                r.register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
            checkpoint_deltas: plain_counter(
                &r,
                "d2c_checkpoint_deltas_total",
                "Checkpoints acknowledged that were deltas (what changed since the previous one), among d2c_checkpoints_total.",
            ),
            checkpoints_dropped: plain_counter(
                &r,
                "d2c_checkpoints_dropped_total",
                "Checkpoints of a partition revoked before they were written, dropped: the new owner writes its own.",
            ),
            restore_deltas: plain_counter(
                &r,
                "d2c_state_restore_deltas_total",
                "Deltas applied on top of full checkpoints when restoring partitions.",
            ),
            restore_seconds: {
                let h = Histogram::with_opts(
                    HistogramOpts::new(
                        "d2c_state_restore_seconds",
                        "Time to read and rebuild one partition's state from the state topic.",
                    )
                    .buckets(
                        prometheus::exponential_buckets(0.01, 2.0, 14).expect("valid buckets"),
                    ),
                )
                .expect("valid metric");
                r.register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
            partitions_owned: plain_gauge(
                &r,
                "d2c_partitions_owned",
                "Partitions of the events topic this instance correlates.",
            ),
            input_gaps: plain_counter(
                &r,
                "d2c_input_gaps_total",
                "Times input between a checkpoint and the consumer position was no longer readable (deleted by retention).",
            ),
            business: super::business::BusinessMetrics::new(&r, topology),
            deliveries: counter(
                &r,
                "d2c_deliveries_total",
                "Records handled by the delivery stage, by connector and outcome (delivered, retried: one failed attempt, dead_lettered, skipped: nothing to send or an older version).",
                &["connector", "outcome"],
            ),
            delivery_seconds: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "d2c_delivery_duration_seconds",
                        "Seconds per delivery attempt to a tool, including lookups before a create, by connector.",
                    )
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
                    &["connector"],
                )
                .expect("valid metric");
                r.register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
            delivery_retries: counter(
                &r,
                "d2c_delivery_retries_total",
                "Delivery attempts that failed with a retryable error (connection, timeout, 408, 429, 5xx), by connector.",
                &["connector"],
            ),
            delivery_backlog: plain_gauge(
                &r,
                "d2c_delivery_backlog",
                "Incident and RFC records the delivery stage has read but not yet delivered, skipped or dead-lettered.",
            ),
            security_incidents_open: gauge(
                &r,
                "d2c_security_incidents_open",
                "Open security incidents, by MITRE ATT&CK tactic id reached (none: no tactic known) and severity; an incident counts under each tactic it reached.",
                &["tactic", "severity"],
            ),
            security_events: counter(
                &r,
                "d2c_security_events_total",
                "Security events received by the correlate stage, by tool (an input format name, or other).",
                &["tool"],
            ),
            shell: super::shell::ShellMetrics::new(&r),
            held: super::held::HeldMetrics::new(&r),
            view_size: gauge(
                &r,
                "d2c_view_records",
                "Incidents, RFCs and problems held by the view the console and the read API serve (latest version of each), by kind (incident, change, problem).",
                &["kind"],
            ),
            view_evictions: counter(
                &r,
                "d2c_view_evictions_total",
                "Incidents, RFCs and problems dropped from the view to stay within http.view.max_incidents / max_changes / max_problems, by kind (incident, change, problem).",
                &["kind"],
            ),
            view_skipped: plain_counter(
                &r,
                "d2c_view_records_skipped_total",
                "Records on the incidents, changes or problems topic the view could not read (not d2c output records); skipped.",
            ),
            view_delay: {
                let h = Histogram::with_opts(
                    HistogramOpts::new(
                        "d2c_view_delay_seconds",
                        "Seconds from an incident or RFC record being published to the view (and the console's live pages) having it.",
                    )
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                )
                .expect("valid metric");
                r.register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
            changes: super::changes::ChangeMetrics::new(&r),
            registry: r,
        };
        for kind in ["incident", "change", "problem"] {
            m.view_size.with_label_values(&[kind]);
            m.view_evictions.with_label_values(&[kind]);
        }
        for kind in [
            "alert",
            "incident",
            "open_incident",
            "problem",
            "learned_pair",
            "suppressed",
        ] {
            m.state_evictions.with_label_values(&[kind]);
        }
        for reason in crate::suppress::SuppressReason::ALL {
            m.events_suppressed.with_label_values(&[reason.as_str()]);
        }
        for outcome in crate::correlate::Outcome::ALL {
            m.events_correlated.with_label_values(&[outcome.as_str()]);
        }
        for f in crate::ingest::Format::ALL {
            for result in ["ok", "dlq"] {
                m.records_consumed.with_label_values(&[f.as_str(), result]);
            }
            m.events_normalised.with_label_values(&[f.as_str()]);
        }
        for reason in crate::ingest::IngestError::REASONS {
            m.dlq_records.with_label_values(&[reason]);
        }
        for reason in crate::engine::Refusal::REASONS {
            m.dlq_records.with_label_values(&[reason]);
        }
        m.records_consumed.with_label_values(&["unknown", "dlq"]);
        for p in Priority::ALL {
            m.incidents_open.with_label_values(&[p.as_str()]);
            m.incidents_opened.with_label_values(&[p.as_str()]);
            m.incidents_resolved.with_label_values(&[p.as_str()]);
        }
        for c in topology.capability_names() {
            m.capability_open_incidents.with_label_values(&[c]);
        }
        for category in ["emergency", "standard", "normal"] {
            m.rfcs_published.with_label_values(&[category]);
        }
        for status in crate::model::RfcStatus::ALL {
            m.rfc_transitions.with_label_values(&[status.as_str()]);
        }
        for stage in ["ingest", "correlate"] {
            m.batch_seconds.with_label_values(&[stage]);
        }
        for tool in crate::ingest::Format::ALL
            .map(|f| f.as_str())
            .iter()
            .chain(&["other"])
        {
            m.security_events.with_label_values(&[tool]);
        }
        m.set_security_summary(&SecuritySummary::default());
        m
    }

    /// Initialises the delivery series of connector `name` to zero, so dashboards see them from
    /// the start.
    pub fn init_connector(&self, name: &str, outcomes: &[&str]) {
        for o in outcomes {
            self.deliveries.with_label_values(&[name, o]);
        }
        self.delivery_seconds.with_label_values(&[name]);
        self.delivery_retries.with_label_values(&[name]);
    }

    /// Sets the security gauges: every tactic of the built-in table (and `none`) × severity.
    pub fn set_security_summary(&self, s: &SecuritySummary) {
        let tactics = attack::TACTICS.iter().map(|t| t.id).chain(["none"]);
        for tactic in tactics {
            for severity in SEVERITIES {
                let n = s
                    .open_by_tactic
                    .get(&(tactic.to_owned(), severity))
                    .copied()
                    .unwrap_or(0);
                self.security_incidents_open
                    .with_label_values(&[tactic, severity.as_str()])
                    .set(n as i64);
            }
        }
    }

    /// Sets the state gauges from the sum of the engines' summaries.
    pub fn set_summary(&self, s: &Summary, topology: &Topology) {
        self.alerts_active.set(s.active_alerts as i64);
        self.alerts_suppressed.set(s.suppressed_alerts as i64);
        self.alerts_shared_strings.set(s.shared_strings as i64);
        for p in Priority::ALL {
            let n = s.open_by_priority.get(&p).copied().unwrap_or(0);
            self.incidents_open
                .with_label_values(&[p.as_str()])
                .set(n as i64);
        }
        for c in topology.capability_names() {
            let n = s.open_by_capability.get(c).copied().unwrap_or(0);
            self.capability_open_incidents
                .with_label_values(&[c])
                .set(n as i64);
        }
    }

    /// Checkpoints acknowledged so far, how many of them deltas, and their bytes (`d2c bench`).
    pub fn checkpoints_written(&self) -> (u64, u64, f64) {
        (
            self.checkpoints.get(),
            self.checkpoint_deltas.get(),
            self.checkpoint_bytes.get_sample_sum(),
        )
    }

    /// Checkpoint `step`s (`take`, `serialise`) so far, full and delta: how many, and their
    /// seconds (`d2c bench`).
    pub fn checkpoint_steps(&self, step: &str) -> [(u64, f64); 2] {
        ["full", "delta"].map(|kind| {
            let h = self.checkpoint_seconds.with_label_values(&[kind, step]);
            (h.get_sample_count(), h.get_sample_sum())
        })
    }

    /// Events applied by the correlate stage so far, all outcomes together.
    pub fn events_correlated_total(&self) -> u64 {
        use prometheus::core::Collector;
        self.events_correlated
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|s| s.get_counter().get_value() as u64)
            .sum()
    }

    /// Deliveries to `connector` that ended with `outcome` (and, for `retried`, the retries).
    pub fn deliveries(&self, connector: &str, outcome: &str) -> u64 {
        self.deliveries
            .with_label_values(&[connector, outcome])
            .get()
    }

    /// Delivery attempts to `connector` that failed and were retried.
    pub fn delivery_retries(&self, connector: &str) -> u64 {
        self.delivery_retries.with_label_values(&[connector]).get()
    }

    /// How many events partitions this instance owns.
    pub fn set_partitions_owned(&self, n: usize) {
        self.partitions_owned.set(n as i64);
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics cannot fail");
        buf
    }
}
