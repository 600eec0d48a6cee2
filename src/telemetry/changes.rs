//! Metrics of problems and of RFC runs: open problems, incidents per problem and recurring cost;
//! the automation stage's runs; and the DORA measures of corrective changes (change failure
//! rate, time from RFC to implemented, time to restore after an automated change), read off the
//! RFC versions the correlate stage publishes. Labels are fixed sets, and runbook names from the
//! settings file.

use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use super::Metrics;
use super::events::TelemetryEvent;
use crate::model::{Output, ProblemStatus, RfcStatus};

/// The automation stage's `result` label values (see [`RunFinished`]).
pub const RUN_RESULTS: [&str; 7] = [
    "implemented",
    "already_done",
    "failed",
    "dry_run",
    "rate_limited",
    "disabled",
    "stale",
];

/// Metrics of problems and RFC runs (part of [`Metrics`]).
#[derive(Debug, Clone)]
pub struct ChangeMetrics {
    problems: IntGaugeVec,
    problem_incidents: IntGauge,
    problem_cost: Gauge,
    problems_opened: IntCounterVec,
    recurring_incidents: IntCounterVec,
    changes_finished: IntCounterVec,
    lead_time: HistogramVec,
    restore_time: HistogramVec,
    runs: IntCounterVec,
    call_seconds: HistogramVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

impl ChangeMetrics {
    pub fn new(r: &Registry) -> ChangeMetrics {
        let m = ChangeMetrics {
            problems: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "d2c_problems",
                        "Problems not resolved, by status (open, known_error).",
                    ),
                    &["status"],
                )
                .expect("valid metric"),
            ),
            problem_incidents: register(
                r,
                IntGauge::with_opts(Opts::new(
                    "d2c_problem_incidents",
                    "Incidents linked to problems not resolved (divide by d2c_problems for incidents per problem).",
                ))
                .expect("valid metric"),
            ),
            problem_cost: register(
                r,
                Gauge::with_opts(Opts::new(
                    "d2c_problem_cost",
                    "Recurring cost: revenue at risk accumulated by the incidents of problems not resolved.",
                ))
                .expect("valid metric"),
            ),
            problems_opened: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "d2c_problems_opened_total",
                        "Problems opened, by how (recurrence, by_hand).",
                    ),
                    &["how"],
                )
                .expect("valid metric"),
            ),
            recurring_incidents: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "d2c_recurring_incidents_total",
                        "Incidents that opened as an occurrence of a problem, by whether they carried a known error's workaround (yes, no).",
                    ),
                    &["workaround"],
                )
                .expect("valid metric"),
            ),
            changes_finished: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "d2c_changes_finished_total",
                        "RFCs with a run that ended, by outcome (successful, unsuccessful, failed): the change failure rate is (unsuccessful + failed) / all.",
                    ),
                    &["outcome"],
                )
                .expect("valid metric"),
            ),
            lead_time: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "d2c_change_lead_time_seconds",
                        "Seconds from an RFC being raised to its run implemented, by approval (pre_approved, approved).",
                    )
                    .buckets(vec![
                        10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
                        43200.0, 86400.0,
                    ]),
                    &["approval"],
                )
                .expect("valid metric"),
            ),
            restore_time: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "d2c_change_restore_seconds",
                        "Seconds from an automated change implemented to its incident resolved (successful RFCs), by runbook.",
                    )
                    .buckets(vec![
                        10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
                    ]),
                    &["runbook"],
                )
                .expect("valid metric"),
            ),
            runs: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "d2c_automation_runs_total",
                        "RFC runs handled by the automation stage, by runbook and result (implemented, already_done: found done after a restart, failed, dry_run, rate_limited, disabled: kill switch off, stale: approved longer ago than automation.max_delay).",
                    ),
                    &["runbook", "result"],
                )
                .expect("valid metric"),
            ),
            call_seconds: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "d2c_automation_call_seconds",
                        "Seconds a runbook's tool took, from the first call to its answer (an AWX job: to its end), by runbook.",
                    )
                    .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0]),
                    &["runbook"],
                )
                .expect("valid metric"),
            ),
        };
        for s in [ProblemStatus::Open, ProblemStatus::KnownError] {
            m.problems.with_label_values(&[s.as_str()]);
        }
        for how in ["recurrence", "by_hand"] {
            m.problems_opened.with_label_values(&[how]);
        }
        for w in ["yes", "no"] {
            m.recurring_incidents.with_label_values(&[w]);
        }
        for o in ["successful", "unsuccessful", "failed"] {
            m.changes_finished.with_label_values(&[o]);
        }
        m
    }

    /// Initialises the run series of runbook `name` to zero.
    pub fn init_runbook(&self, name: &str) {
        for result in RUN_RESULTS {
            self.runs.with_label_values(&[name, result]);
        }
        self.call_seconds.with_label_values(&[name]);
        self.restore_time.with_label_values(&[name]);
    }

    /// Counts a first incident version linked to a problem, with a workaround or not.
    pub(super) fn recurring(&self, workaround: bool) {
        let w = if workaround { "yes" } else { "no" };
        self.recurring_incidents.with_label_values(&[w]).inc();
    }

    /// Counts one published RFC or problem version: problem openings and the DORA measures of
    /// RFC versions that end a step (incident versions: [`recurring`](Self::recurring)).
    pub(super) fn observe(&self, o: &Output) {
        match o {
            Output::Problem(p) if p.version == 1 => {
                let how = if p.opened_by == "d2c" {
                    "recurrence"
                } else {
                    "by_hand"
                };
                self.problems_opened.with_label_values(&[how]).inc();
            }
            Output::Change(r) => {
                let Some(run) = &r.automation else {
                    return;
                };
                let secs = |from: chrono::DateTime<chrono::Utc>, to: Option<_>| {
                    to.map(|t: chrono::DateTime<chrono::Utc>| {
                        (t - from).num_milliseconds().max(0) as f64 / 1000.0
                    })
                };
                match r.status {
                    RfcStatus::Implemented => {
                        let approval = if r.decision.is_some() {
                            "approved"
                        } else {
                            "pre_approved"
                        };
                        if let Some(s) = secs(r.created_at, run.finished_at) {
                            self.lead_time.with_label_values(&[approval]).observe(s);
                        }
                    }
                    RfcStatus::Successful => {
                        self.changes_finished
                            .with_label_values(&["successful"])
                            .inc();
                        if let (Some(done), Some(s)) = (run.finished_at, run.verified_at) {
                            let s = secs(done, Some(s)).unwrap_or(0.0);
                            self.restore_time
                                .with_label_values(&[&run.runbook])
                                .observe(s);
                        }
                    }
                    RfcStatus::Unsuccessful => {
                        self.changes_finished
                            .with_label_values(&["unsuccessful"])
                            .inc();
                    }
                    RfcStatus::Failed => {
                        self.changes_finished.with_label_values(&["failed"]).inc();
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// The problem gauges of all owned partitions, and the problems they forgot since last time.
#[derive(Debug)]
pub struct ProblemsCounted<'a> {
    pub summary: &'a crate::problem::Summary,
    pub evicted: u64,
}

impl TelemetryEvent for ProblemsCounted<'_> {
    fn emit(self, m: &Metrics) {
        let c = &m.changes;
        for s in [ProblemStatus::Open, ProblemStatus::KnownError] {
            let n = self.summary.by_status.get(&s).copied().unwrap_or(0);
            c.problems.with_label_values(&[s.as_str()]).set(n as i64);
        }
        c.problem_incidents.set(self.summary.incidents as i64);
        c.problem_cost.set(self.summary.cost);
        if self.evicted > 0 {
            m.state_evictions
                .with_label_values(&["problem"])
                .inc_by(self.evicted);
        }
    }
}

/// The automation stage finished with one RFC: `result` is one of [`RUN_RESULTS`];
/// `call_seconds` how long the tool took, when it was called.
#[derive(Debug)]
pub struct RunFinished<'a> {
    pub runbook: &'a str,
    pub change: &'a str,
    pub result: &'static str,
    pub call_seconds: Option<f64>,
    /// Why, for the results that did not run or failed.
    pub reason: Option<&'a str>,
}

impl TelemetryEvent for RunFinished<'_> {
    fn emit(self, m: &Metrics) {
        let c = &m.changes;
        c.runs.with_label_values(&[self.runbook, self.result]).inc();
        if let Some(s) = self.call_seconds {
            c.call_seconds.with_label_values(&[self.runbook]).observe(s);
        }
        let reason = self.reason.unwrap_or("");
        match self.result {
            "failed" | "rate_limited" => tracing::warn!(
                runbook = self.runbook,
                change = self.change,
                result = self.result,
                reason,
                "RFC run did not implement the change; a person must take over"
            ),
            "implemented" | "already_done" | "dry_run" => tracing::info!(
                runbook = self.runbook,
                change = self.change,
                result = self.result,
                "RFC run recorded"
            ),
            _ => tracing::debug!(
                runbook = self.runbook,
                change = self.change,
                result = self.result,
                reason,
                "RFC not run"
            ),
        }
    }
}
