//! The automation stage: runs approved RFCs whose policy rule names a runbook, in consumer group
//! `<kafka.group_id>-automation` on `topics.changes`, beside the delivery stage. Connectors for
//! what operations teams use: Kubernetes ([`kubernetes`]: rolling restart, scale), Ansible AWX /
//! Automation Controller ([`awx`]: launch a job template, follow the job) and a signed webhook
//! ([`webhook`]).
//!
//! The stage does I/O only; the RFC's lifecycle is the engine's. What happens is reported as
//! run-report control records on `topics.events` (implementing, then implemented or failed, with
//! the tool's answer; or dry_run), and the engine that raised the RFC publishes its next
//! version, starts verification, and replay reproduces it all. An offset is stored only once
//! the run's last report is acknowledged by the broker.
//!
//! Safety: an RFC runs only with a recorded approval (or a pre-approved rule), and only once
//! (see [`change::lifecycle::may_run`](crate::change::lifecycle::may_run)); the kill switch
//! `automation.enabled`; `automation.dry_run` records what would run and calls nothing; at most
//! `automation.max_runs_per_service` runs per service per `automation.rate_window`; an RFC
//! approved longer ago than `automation.max_delay` is not run. Exactly once across a crash
//! between a call and its record: each connector finds its own earlier run of the RFC before
//! calling (see each connector).

pub mod awx;
pub mod job;
pub mod kubernetes;
pub mod runbook;
pub mod webhook;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;
use tokio_util::sync::CancellationToken;

use crate::change::lifecycle;
use crate::config::AutomationConfig;
use crate::engine::Settings;
use crate::model::{Output, RunOutcome, RunReport};
use crate::notify::retry::Failure;
use crate::pipeline::kafka::{self, KafkaConsumer, KafkaProducer, OffRuntime, Sender};
use crate::pipeline::records::RUN_HEADER;
use crate::pipeline::{IDLE_TICK, PipelineError, close_consumer, next_batch};
use crate::telemetry::events::RunFinished;
use crate::telemetry::{Health, Metrics};

pub use job::{Done, Job};
pub use runbook::{Runbook, RunbookError};

/// Attempts at a run whose tool is unreachable or answers 5xx, before it is failed.
const ATTEMPTS: u32 = 5;

/// Most services whose recent runs the rate limit remembers (the least recently run go first).
const MAX_SERVICES: usize = 10_000;

/// Why the automation stage stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum AutomationError {
    #[error(transparent)]
    Runbook(#[from] RunbookError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Recent runs per service, for `automation.max_runs_per_service`.
#[derive(Debug, Default)]
struct RateLimit {
    runs: HashMap<String, VecDeque<Instant>>,
}

impl RateLimit {
    /// Whether `service` may run now; counts the run when it may.
    fn allow(&mut self, service: &str, max: u32, window: Duration, now: Instant) -> bool {
        let recent = self.runs.entry(service.to_string()).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            recent.pop_front();
        }
        if recent.len() >= max as usize {
            return false;
        }
        recent.push_back(now);
        if self.runs.len() > MAX_SERVICES {
            let oldest = self
                .runs
                .iter()
                .min_by_key(|(_, r)| r.back().copied())
                .map(|(s, _)| s.clone());
            if let Some(s) = oldest {
                self.runs.remove(&s);
            }
        }
        true
    }
}

/// The automation stage.
pub struct Automation {
    runbooks: Vec<Runbook>,
    cfg: AutomationConfig,
    events_topic: String,
    producer: KafkaProducer,
    /// Writes run reports; one the broker refuses for good goes to the DLQ.
    sender: Sender,
    metrics: Metrics,
    /// A health of its own: a slow runbook does not make d2c unready.
    health: Health,
    limit: Mutex<RateLimit>,
}

impl std::fmt::Debug for Automation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // FutureProducer has no Debug.
        f.debug_struct("Automation")
            .field("runbooks", &self.runbooks)
            .field("enabled", &self.cfg.enabled)
            .field("dry_run", &self.cfg.dry_run)
            .finish_non_exhaustive()
    }
}

/// What became of one record.
enum Handled {
    Finished,
    Interrupted,
}

impl Automation {
    /// Builds the runbooks of `[automation]` (reading their secrets) and a producer for run
    /// reports.
    pub fn new(
        cfg: &crate::config::Config,
        metrics: Metrics,
    ) -> Result<Automation, AutomationError> {
        let a = &cfg.automation;
        let mut runbooks = Vec::new();
        for (i, r) in a.runbooks.iter().enumerate() {
            let runbook = Runbook::build(r, i, a)?;
            metrics.changes.init_runbook(&runbook.name);
            runbooks.push(runbook);
        }
        let health = Health::default();
        let producer =
            kafka::producer(&cfg.kafka, &metrics, &health).map_err(PipelineError::Client)?;
        let sender = Sender::new(cfg, producer.clone(), &metrics, &health, "automation");
        Ok(Automation {
            runbooks,
            cfg: a.clone(),
            events_topic: cfg.topics.events.clone(),
            producer,
            sender,
            metrics,
            health,
            limit: Mutex::default(),
        })
    }

    /// Reads `topics.changes` until `shutdown`; each record's offset is stored once its run
    /// (if it has one to make) was reported.
    pub async fn run(
        self,
        consumer: OffRuntime<KafkaConsumer>,
        shutdown: CancellationToken,
    ) -> Result<(), AutomationError> {
        let partitions = match self.events_partitions(&shutdown).await {
            Ok(n) => n,
            Err(PipelineError::Interrupted) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let health = self.health.clone();
        let linger = Duration::from_millis(5);
        while let Some((batch, _)) =
            next_batch(&consumer, 100, linger, IDLE_TICK, &health, &shutdown).await
        {
            if batch.is_empty() {
                continue;
            }
            if let Handled::Interrupted =
                self.process(&consumer, &batch, partitions, &shutdown).await
            {
                break;
            }
        }
        close_consumer(consumer, "automation").await;
        Ok(())
    }

    /// The partitions of the events topic (waiting while it is not there yet).
    async fn events_partitions(&self, shutdown: &CancellationToken) -> Result<i32, PipelineError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match kafka::partition_count(&self.producer, &self.events_topic).await {
                Ok(n) if n > 0 => return Ok(n),
                Ok(_) => {
                    tracing::warn!(topic = %self.events_topic, "events topic not found yet; waiting")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the events topic's partitions; retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Err(PipelineError::Interrupted),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Handles a batch: partitions side by side, the records of one partition in order.
    async fn process(
        &self,
        consumer: &KafkaConsumer,
        batch: &[BorrowedMessage<'_>],
        partitions: i32,
        shutdown: &CancellationToken,
    ) -> Handled {
        let mut parts: BTreeMap<i32, Vec<&BorrowedMessage<'_>>> = BTreeMap::new();
        for m in batch {
            parts.entry(m.partition()).or_default().push(m);
        }
        let runs = parts.into_values().map(|records| async move {
            for m in records {
                if let Handled::Interrupted = self.handle(m, partitions, shutdown).await {
                    return Handled::Interrupted;
                }
                if let Err(e) = consumer.store_offset_from_message(m) {
                    tracing::debug!(error = %e, "cannot store offset");
                }
            }
            Handled::Finished
        });
        let results = futures::future::join_all(runs).await;
        if results.iter().any(|h| matches!(h, Handled::Interrupted)) {
            Handled::Interrupted
        } else {
            Handled::Finished
        }
    }

    /// One record of `topics.changes`: runs it if it is an RFC that may run now.
    async fn handle(
        &self,
        m: &BorrowedMessage<'_>,
        partitions: i32,
        shutdown: &CancellationToken,
    ) -> Handled {
        let Some(raw) = m.payload() else {
            return Handled::Finished;
        };
        let rfc = match serde_json::from_slice::<Output>(raw) {
            Ok(Output::Change(rfc)) => rfc,
            // Only d2c writes this topic; a foreign record is passed over.
            _ => return Handled::Finished,
        };
        let run = match lifecycle::may_run(&rfc) {
            Ok(run) => run,
            Err(why) => {
                if rfc.automation.is_some() {
                    tracing::debug!(change = %rfc.id, reason = %why, "RFC not run");
                }
                return Handled::Finished;
            }
        };
        let job = Job {
            rfc: &rfc,
            run,
            raw,
            approved_at: lifecycle::approved_at(&rfc),
        };
        let reporter = Reporter {
            stage: self,
            partitions,
            shutdown,
        };
        let name = run.runbook.as_str();
        if !self.cfg.enabled {
            self.metrics.emit(RunFinished {
                runbook: name,
                change: &rfc.id,
                result: "disabled",
                call_seconds: None,
                reason: Some("automation.enabled is false"),
            });
            return Handled::Finished;
        }
        let Some(runbook) = self.runbooks.iter().find(|r| &*r.name == name) else {
            let reason = format!("runbook `{name}` is not configured in [[automation.runbooks]]");
            return reporter
                .finish(
                    &job,
                    name,
                    "failed",
                    RunOutcome::Failed,
                    None,
                    None,
                    Some(reason),
                    None,
                )
                .await;
        };
        let age = chrono::Utc::now() - job.approved_at;
        if age.to_std().is_ok_and(|a| a > self.cfg.max_delay) {
            self.metrics.emit(RunFinished {
                runbook: name,
                change: &rfc.id,
                result: "stale",
                call_seconds: None,
                reason: Some("approved longer ago than automation.max_delay"),
            });
            return Handled::Finished;
        }
        let described = runbook.describe(&job);
        if self.cfg.dry_run {
            let (call, reason) = match described {
                Ok(call) => (Some(call), "dry run: nothing was called".to_string()),
                Err(why) => (None, format!("dry run: the run would fail: {why}")),
            };
            return reporter
                .finish(
                    &job,
                    name,
                    "dry_run",
                    RunOutcome::DryRun,
                    call,
                    None,
                    Some(reason),
                    None,
                )
                .await;
        }
        let call = match described {
            Ok(c) => c,
            Err(why) => {
                return reporter
                    .finish(
                        &job,
                        name,
                        "failed",
                        RunOutcome::Failed,
                        None,
                        None,
                        Some(why),
                        None,
                    )
                    .await;
            }
        };
        let allowed = self.limit.lock().unwrap_or_else(|e| e.into_inner()).allow(
            &run.target.service,
            self.cfg.max_runs_per_service,
            self.cfg.rate_window,
            Instant::now(),
        );
        if !allowed {
            let reason = format!(
                "not run: {} runs on {} within {:?} (automation.max_runs_per_service); a person must take over",
                self.cfg.max_runs_per_service, run.target.service, self.cfg.rate_window
            );
            return reporter
                .finish(
                    &job,
                    name,
                    "rate_limited",
                    RunOutcome::Failed,
                    // Nothing was called.
                    None,
                    None,
                    Some(reason),
                    None,
                )
                .await;
        }
        let implementing = RunReport {
            change: rfc.id.clone(),
            outcome: RunOutcome::Implementing,
            call: Some(call.clone()),
            answer: None,
            reason: None,
            time: chrono::Utc::now(),
        };
        if reporter.report(&implementing).await.is_err() {
            return Handled::Interrupted;
        }
        let started = Instant::now();
        let result = tokio::select! {
            _ = shutdown.cancelled() => return Handled::Interrupted,
            r = self.attempts(runbook, &job, shutdown) => r,
        };
        let elapsed = Some(started.elapsed().as_secs_f64());
        match result {
            Ok(done) => {
                let result = if done.already {
                    "already_done"
                } else {
                    "implemented"
                };
                reporter
                    .finish(
                        &job,
                        name,
                        result,
                        RunOutcome::Implemented,
                        Some(done.call),
                        Some(done.answer),
                        None,
                        elapsed,
                    )
                    .await
            }
            Err(f) => {
                let (answer, reason) = match f {
                    Failure::Permanent { body, reason, .. } => {
                        ((!body.is_empty()).then_some(body), reason)
                    }
                    Failure::Retry { reason, .. } => {
                        (None, format!("gave up after {ATTEMPTS} attempts: {reason}"))
                    }
                };
                reporter
                    .finish(
                        &job,
                        name,
                        "failed",
                        RunOutcome::Failed,
                        Some(call),
                        answer,
                        Some(reason),
                        elapsed,
                    )
                    .await
            }
        }
    }

    /// Attempts the run until it is done, fails for good, or [`ATTEMPTS`] attempts failed with
    /// errors worth retrying (each attempt first finds an earlier run of the RFC, so a repeat
    /// never runs it twice).
    async fn attempts(
        &self,
        runbook: &Runbook,
        job: &Job<'_>,
        shutdown: &CancellationToken,
    ) -> Result<Done, Failure> {
        let mut wait = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match runbook.attempt(job).await {
                Err(Failure::Retry { after, reason }) if attempt < ATTEMPTS => {
                    tracing::warn!(runbook = &*runbook.name, change = %job.rfc.id, attempt, error = %reason, "runbook call failed; retrying");
                    let pause = after.unwrap_or(wait).min(Duration::from_secs(30));
                    tokio::select! {
                        _ = shutdown.cancelled() => return Err(Failure::retry("shut down")),
                        _ = tokio::time::sleep(pause) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(8));
                }
                other => return other,
            }
        }
    }
}

/// Writes run reports for one record.
struct Reporter<'a> {
    stage: &'a Automation,
    partitions: i32,
    shutdown: &'a CancellationToken,
}

impl Reporter<'_> {
    /// Writes `report` to every events partition and waits for the broker.
    async fn report(&self, report: &RunReport) -> Result<(), PipelineError> {
        let value = serde_json::to_vec(report).expect("a run report always serialises");
        kafka::broadcast_control(
            &self.stage.sender,
            &self.stage.events_topic,
            self.partitions,
            RUN_HEADER,
            &value,
            self.shutdown,
        )
        .await
    }

    /// Reports the end of a run and counts it.
    #[expect(
        clippy::too_many_arguments,
        reason = "every ending of a run reports these; a struct would only rename them"
    )]
    async fn finish(
        &self,
        job: &Job<'_>,
        runbook: &str,
        result: &'static str,
        outcome: RunOutcome,
        call: Option<String>,
        answer: Option<String>,
        reason: Option<String>,
        call_seconds: Option<f64>,
    ) -> Handled {
        let report = RunReport {
            change: job.rfc.id.clone(),
            outcome,
            call: call.map(|c| lifecycle::clamp(&c)),
            answer: answer.map(|a| lifecycle::clamp(&a)),
            reason: reason.map(|r| lifecycle::clamp(&r)),
            time: chrono::Utc::now(),
        };
        if self.report(&report).await.is_err() {
            return Handled::Interrupted;
        }
        self.stage.metrics.emit(RunFinished {
            runbook,
            change: &job.rfc.id,
            result,
            call_seconds,
            reason: report.reason.as_deref(),
        });
        Handled::Finished
    }
}

/// Builds the automation stage when `[automation]` has runbooks: reads every secret and CA file
/// and builds the clients, so a missing secret stops d2c at start-up.
pub fn prepare(
    cfg: &crate::config::Config,
    metrics: &Metrics,
) -> Result<Option<Automation>, AutomationError> {
    if !cfg.automation.configured() {
        return Ok(None);
    }
    Automation::new(cfg, metrics.clone()).map(Some)
}

/// Runs the automation stage (if `prepare` gave one) until `shutdown`.
pub async fn run(
    automation: Option<Automation>,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
) -> Result<(), AutomationError> {
    let Some(automation) = automation else {
        return Ok(());
    };
    let cfg = &settings.config;
    let group = format!("{}-automation", cfg.kafka.group_id);
    let consumer = kafka::consumer(&cfg.kafka, &group, &automation.metrics, &automation.health)
        .map_err(PipelineError::Client)?;
    let consumer = OffRuntime::new(consumer);
    let topic = cfg.topics.changes.as_str();
    consumer
        .subscribe(&[topic])
        .map_err(|source| PipelineError::Subscribe {
            topic: topic.to_string(),
            source,
        })?;
    tracing::info!(
        runbooks = automation.runbooks.len(),
        enabled = automation.cfg.enabled,
        dry_run = automation.cfg.dry_run,
        group,
        "automation stage started"
    );
    if !automation.cfg.enabled {
        tracing::warn!("automation.enabled is false: approved RFCs are recorded but not run");
    }
    automation.run(consumer, shutdown).await
}

#[cfg(test)]
mod tests;
