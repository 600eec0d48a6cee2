//! The delivery stage: incidents, RFCs and problems from `topics.incidents`, `topics.changes`
//! and `topics.problems` to ITSM and paging tools (ServiceNow, Jira, PagerDuty, Slack, any
//! webhook), in consumer group `<kafka.group_id>-notify`.
//!
//! Each record goes to every connector a route selects. An offset is stored only once every
//! one of those connectors acknowledged the record, skipped it, or the record went to the
//! delivery dead-letter topic (`topics.delivery_dlq`) after a permanent refusal: nothing is
//! lost. A tool that is down is retried with backoff for as long as it takes (unless
//! `notify.retry.max_attempts` / `max_elapsed` say otherwise), and the batch waits: that is the
//! price of "never lost", and the backlog shows in `d2c_delivery_backlog`.
//!
//! Records are read at least once, so the same version may be sent again after a restart; each
//! connector makes that harmless with the tool's own idempotency (see each connector). Within a
//! run, versions at or below the last one delivered to a connector are skipped, so an older
//! version read late never regresses a ticket.

pub mod connector;
pub mod http;
pub mod item;
pub mod jira;
pub mod pagerduty;
pub mod retry;
pub mod servicenow;
pub mod slack;
pub mod text;
pub mod webhook;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::{NotifyConfig, RetryConfig, RouteConfig};
use crate::engine::Settings;
use crate::pipeline::kafka::{self, KafkaConsumer, OffRuntime, OutRecord, Sender};
use crate::pipeline::{IDLE_TICK, PipelineError, close_consumer, next_batch};
use crate::telemetry::events::{DeliveryAttempted, DeliveryBacklog, DeliveryFinished};
use crate::telemetry::{Health, Metrics};

pub use connector::{Connector, ConnectorError};
pub use item::{Item, Sent};
use retry::{Backoff, Failure};

/// Header naming the connector on a delivery dead-letter record.
pub const CONNECTOR_HEADER: &str = "d2c.connector";

/// Most `(connector, id)` pairs whose last delivered version is remembered.
const MEMORY: usize = 100_000;

/// Why the delivery stage stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// The delivery outcome, the `outcome` label of `d2c_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retried,
    DeadLettered,
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Delivered,
        Outcome::Retried,
        Outcome::DeadLettered,
        Outcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The last version delivered per connector and record id, bounded (oldest forgotten first).
#[derive(Debug, Default)]
struct Memory {
    last: HashMap<(usize, String), u32>,
    order: VecDeque<(usize, String)>,
}

impl Memory {
    fn delivered_at_least(&self, connector: usize, id: &str, version: u32) -> bool {
        self.last
            .get(&(connector, id.to_string()))
            .is_some_and(|v| *v >= version)
    }

    fn remember(&mut self, connector: usize, id: &str, version: u32) {
        let key = (connector, id.to_string());
        match self.last.get_mut(&key) {
            Some(v) => *v = (*v).max(version),
            None => {
                self.last.insert(key.clone(), version);
                self.order.push_back(key);
                while self.order.len() > MEMORY {
                    if let Some(old) = self.order.pop_front() {
                        self.last.remove(&old);
                    }
                }
            }
        }
    }
}

/// One connector with its health, as the stage uses it.
#[derive(Debug)]
struct Target {
    connector: Connector,
    /// Set while attempts fail, so that a failing tool is logged once, not per record.
    failing: AtomicBool,
}

/// The delivery stage.
pub struct Notify {
    targets: Vec<Target>,
    routes: Vec<(usize, RouteConfig)>,
    retry: RetryConfig,
    dlq_topic: String,
    /// Writes dead letters; one the broker refuses for good is dropped with an ERROR.
    sender: Sender,
    metrics: Metrics,
    /// A health of its own: the delivery stage waiting on a tool does not make d2c unready.
    health: Health,
    memory: Mutex<Memory>,
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Sender holds a producer, which has no Debug.
        f.debug_struct("Notify")
            .field("targets", &self.targets)
            .field("dlq_topic", &self.dlq_topic)
            .finish_non_exhaustive()
    }
}

/// What happened to one record at one connector.
enum Done {
    Finished,
    Interrupted,
}

impl Notify {
    /// Builds the connectors of `cfg` (reading their secrets) and a producer for dead letters.
    pub fn new(
        cfg: &NotifyConfig,
        kafka_cfg: &crate::config::KafkaConfig,
        dlq_topic: &str,
        metrics: Metrics,
    ) -> Result<Notify, NotifyError> {
        let mut targets = Vec::new();
        for (i, c) in cfg.connectors.iter().enumerate() {
            let connector = Connector::build(c, i)?;
            metrics.init_connector(&connector.name, &Outcome::ALL.map(Outcome::as_str));
            targets.push(Target {
                connector,
                failing: AtomicBool::new(false),
            });
        }
        let routes = cfg
            .routes
            .iter()
            .filter_map(|r| {
                let i = cfg.connectors.iter().position(|c| c.name == r.connector)?;
                Some((i, r.clone()))
            })
            .collect();
        let health = Health::default();
        let producer =
            kafka::producer(kafka_cfg, &metrics, &health).map_err(PipelineError::Client)?;
        let sender = Sender {
            producer,
            metrics: metrics.clone(),
            health: health.clone(),
            stage: "delivery",
            dlq_topic: dlq_topic.to_string(),
            max_bytes: kafka_cfg.max_message_bytes(),
            stall_timeout: kafka_cfg.stall_timeout,
            on_refused: crate::pipeline::send::OnRefused::DeadLetter,
        };
        Ok(Notify {
            targets,
            routes,
            retry: cfg.retry.clone(),
            dlq_topic: dlq_topic.to_string(),
            sender,
            metrics,
            health,
            memory: Mutex::default(),
        })
    }

    /// The connectors (indices into `[[notify.connectors]]`) that take `item`, each once.
    pub fn targets_of(&self, item: &Item) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .routes
            .iter()
            .filter(|(_, r)| matches(r, item))
            .map(|(i, _)| *i)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Reads both topics until `shutdown`, delivering every record before storing its offset.
    pub async fn run(
        self,
        consumer: OffRuntime<KafkaConsumer>,
        batch_max: usize,
        shutdown: CancellationToken,
    ) -> Result<(), NotifyError> {
        let health = self.health.clone();
        let linger = std::time::Duration::from_millis(5);
        while let Some((batch, _)) =
            next_batch(&consumer, batch_max, linger, IDLE_TICK, &health, &shutdown).await
        {
            if batch.is_empty() {
                continue;
            }
            if let Done::Interrupted = self.process(&consumer, &batch, &shutdown).await {
                break;
            }
        }
        self.metrics.emit(DeliveryBacklog::Reset);
        close_consumer(consumer, "notify").await;
        Ok(())
    }

    /// Delivers a batch: partitions side by side, the records of one partition in order; each
    /// record's offset is stored as soon as it is done.
    async fn process(
        &self,
        consumer: &KafkaConsumer,
        batch: &[BorrowedMessage<'_>],
        shutdown: &CancellationToken,
    ) -> Done {
        self.metrics.emit(DeliveryBacklog::Read(batch.len()));
        let mut parts: BTreeMap<(&str, i32), Vec<&BorrowedMessage<'_>>> = BTreeMap::new();
        for m in batch {
            parts.entry((m.topic(), m.partition())).or_default().push(m);
        }
        let runs = parts.into_values().map(|records| async move {
            for m in records {
                if let Done::Interrupted = self.deliver_record(m, shutdown).await {
                    return Done::Interrupted;
                }
                if let Err(e) = consumer.store_offset_from_message(m) {
                    // The partition was revoked meanwhile: its new owner reads it again.
                    tracing::debug!(error = %e, "cannot store offset");
                }
                self.metrics.emit(DeliveryBacklog::Done);
            }
            Done::Finished
        });
        let results = futures::future::join_all(runs).await;
        if results.iter().any(|d| matches!(d, Done::Interrupted)) {
            Done::Interrupted
        } else {
            Done::Finished
        }
    }

    async fn deliver_record(&self, m: &BorrowedMessage<'_>, shutdown: &CancellationToken) -> Done {
        let Some(payload) = m.payload() else {
            return Done::Finished;
        };
        let item = match Item::decode(payload) {
            Ok(item) => item,
            Err(e) => {
                // Only d2c writes these topics; a foreign record is skipped, not fatal.
                tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e, "record is not a d2c incident, RFC or problem; skipped");
                return Done::Finished;
            }
        };
        let sends = self
            .targets_of(&item)
            .into_iter()
            .map(|t| self.deliver(t, &item, shutdown));
        let results = futures::future::join_all(sends).await;
        if results.iter().any(|d| matches!(d, Done::Interrupted)) {
            Done::Interrupted
        } else {
            Done::Finished
        }
    }

    /// Delivers `item` to target `t`, retrying until it is acknowledged, skipped or dead-lettered.
    async fn deliver(&self, t: usize, item: &Item, shutdown: &CancellationToken) -> Done {
        let target = &self.targets[t];
        let name = &*target.connector.name;
        let (id, version) = (item.id(), item.version());
        if self.memory().delivered_at_least(t, id, version) {
            self.count(name, Outcome::Skipped);
            return Done::Finished;
        }
        let mut backoff = Backoff::new(&self.retry);
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let t0 = Instant::now();
            let result = tokio::select! {
                _ = shutdown.cancelled() => return Done::Interrupted,
                r = target.connector.deliver(item) => r,
            };
            self.metrics.emit(DeliveryAttempted {
                connector: name,
                elapsed: t0.elapsed(),
            });
            let failure = match result {
                Ok(sent) => {
                    if target.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!(connector = name, "delivery works again");
                    }
                    let outcome = match sent {
                        Sent::Delivered => Outcome::Delivered,
                        Sent::Skipped => Outcome::Skipped,
                    };
                    self.memory().remember(t, id, version);
                    self.count(name, outcome);
                    tracing::debug!(
                        connector = name,
                        id,
                        version,
                        outcome = outcome.as_str(),
                        "record delivered"
                    );
                    return Done::Finished;
                }
                Err(f) => f,
            };
            let exhausted = (self.retry.max_attempts > 0 && attempts >= self.retry.max_attempts)
                || self
                    .retry
                    .max_elapsed
                    .is_some_and(|max| started.elapsed() >= max);
            match failure {
                Failure::Retry { after, reason } if !exhausted => {
                    if !target.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(connector = name, error = %reason, "delivery failing; records wait and are retried with backoff");
                    }
                    let wait = backoff.next(after);
                    tracing::debug!(connector = name, id, version, attempts, wait_ms = wait.as_millis() as u64, error = %reason, "delivery attempt failed; retrying");
                    self.count(name, Outcome::Retried);
                    tokio::select! {
                        _ = shutdown.cancelled() => return Done::Interrupted,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Failure::Retry { reason, .. } => {
                    let reason = format!("gave up after {attempts} attempts: {reason}");
                    return self
                        .dead_letter(t, item, None, String::new(), reason, attempts, shutdown)
                        .await;
                }
                Failure::Permanent {
                    status,
                    body,
                    reason,
                } => {
                    return self
                        .dead_letter(t, item, status, body, reason, attempts, shutdown)
                        .await;
                }
            }
        }
    }

    /// Writes `item` with the tool's answer to the delivery dead-letter topic, and waits for the
    /// broker's acknowledgement.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per failure kind; a struct would only rename them"
    )]
    async fn dead_letter(
        &self,
        t: usize,
        item: &Item,
        status: Option<u16>,
        body: String,
        reason: String,
        attempts: u32,
        shutdown: &CancellationToken,
    ) -> Done {
        let c = &self.targets[t].connector;
        let record: serde_json::Value =
            serde_json::from_slice(&item.raw).unwrap_or(serde_json::Value::Null);
        let letter = dead_letter_record(c, item, status, &body, &reason, attempts, record);
        let out = OutRecord {
            topic: self.dlq_topic.clone(),
            partition: None,
            key: item.id().as_bytes().to_vec(),
            payload: letter.to_string().into_bytes(),
            headers: vec![(CONNECTOR_HEADER, c.name.as_bytes().to_vec())],
            timestamp: None,
        };
        if self.sender.send_all(&[out], shutdown).await.is_err() {
            return Done::Interrupted;
        }
        tracing::error!(connector = &*c.name, id = item.id(), version = item.version(), status, error = %reason, topic = %self.dlq_topic, "record refused by the tool; written to the delivery dead-letter topic");
        self.count(&c.name, Outcome::DeadLettered);
        Done::Finished
    }

    fn count(&self, connector: &str, outcome: Outcome) {
        self.metrics.emit(DeliveryFinished {
            connector,
            outcome: outcome.as_str(),
        });
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The JSON of a delivery dead-letter record.
pub fn dead_letter_record(
    c: &Connector,
    item: &Item,
    status: Option<u16>,
    body: &str,
    reason: &str,
    attempts: u32,
    record: serde_json::Value,
) -> serde_json::Value {
    json!({
        "type": "delivery_dlq",
        "connector": &*c.name,
        "kind": c.kind.as_str(),
        "id": item.id(),
        "version": item.version(),
        "status": status,
        "response": body,
        "error": reason,
        "attempts": attempts,
        "record": record,
    })
}

/// Whether route `r` selects `item`.
pub fn matches(r: &RouteConfig, item: &Item) -> bool {
    use item::Record;
    let any = |empty: bool, hit: bool| empty || hit;
    any(r.types.is_empty(), r.types.contains(&item.kind()))
        && any(
            r.priorities.is_empty(),
            r.priorities.contains(&item.priority()),
        )
        && any(
            r.categories.is_empty(),
            r.categories.contains(&item.category),
        )
        && match item.status() {
            Some(s) => any(r.statuses.is_empty(), r.statuses.contains(&s)),
            None => true,
        }
        && (r.capabilities.is_empty()
            || matches!(&item.record, Record::Incident(i)
                if i.capabilities.iter().any(|c| r.capabilities.contains(c))))
}

/// Builds the delivery stage when `[notify]` has connectors: reads every secret and builds the
/// HTTP clients, so a missing secret stops d2c at start-up rather than at the first record.
pub fn prepare(
    cfg: &crate::config::Config,
    metrics: &Metrics,
) -> Result<Option<Notify>, NotifyError> {
    if !cfg.notify.enabled() {
        return Ok(None);
    }
    Notify::new(
        &cfg.notify,
        &cfg.kafka,
        &cfg.topics.delivery_dlq,
        metrics.clone(),
    )
    .map(Some)
}

/// Runs the delivery stage (if `prepare` gave one) until `shutdown`.
pub async fn run(
    notify: Option<Notify>,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
) -> Result<(), NotifyError> {
    let Some(notify) = notify else {
        return Ok(());
    };
    let cfg = &settings.config;
    let group = format!("{}-notify", cfg.kafka.group_id);
    let consumer = kafka::consumer(&cfg.kafka, &group, &notify.metrics, &notify.health)
        .map_err(PipelineError::Client)?;
    let consumer = OffRuntime::new(consumer);
    let topics = [
        cfg.topics.incidents.as_str(),
        cfg.topics.changes.as_str(),
        cfg.topics.problems.as_str(),
    ];
    consumer
        .subscribe(&topics)
        .map_err(|source| PipelineError::Subscribe {
            topic: topics.join(","),
            source,
        })?;
    tracing::info!(
        connectors = cfg.notify.connectors.len(),
        routes = cfg.notify.routes.len(),
        group,
        "delivery stage started"
    );
    // Records are delivered one at a time per partition: a large batch only holds more
    // records back from having their offsets stored.
    let batch_max = cfg.kafka.batch_max_records.min(500);
    notify.run(consumer, batch_max, shutdown).await
}

#[cfg(test)]
mod tests;
