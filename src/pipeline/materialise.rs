//! The view's own consumer: reads every partition of the `incidents`, `changes` and `problems`
//! topics from
//! the beginning (manual assignment, no group, nothing committed) and applies each record to
//! the [`View`], so every instance serves every incident whichever partitions it correlates.
//! Records arrive within milliseconds of being published; each batch tells the console's live
//! pages what changed.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::View;
use super::kafka::{FETCH_WAIT_MAX_MS, base_config};
use crate::config::Config;
use crate::model::Output;
use crate::telemetry::Metrics;
use crate::telemetry::events::{ViewRecordSkipped, ViewUpdated};

/// Most records applied under one write lock of the view.
const BATCH: usize = 2000;

/// How long a batch waits to fill once its first record arrived.
const LINGER: Duration = Duration::from_millis(5);

/// How often the partition counts are read again (topics can gain partitions).
const REDISCOVER: Duration = Duration::from_secs(60);

/// Why the view's consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum MaterialiseError {
    #[error("cannot create the view's Kafka consumer (check kafka.properties): {0}")]
    Client(#[source] KafkaError),
}

/// The consumer, created at start-up so a bad configuration is refused before anything runs.
pub struct Materialiser {
    consumer: std::sync::Arc<StreamConsumer>,
    topics: [String; 3],
    view: View,
    metrics: Metrics,
    /// Partitions assigned so far, per topic.
    assigned: BTreeMap<String, i32>,
    /// When reading started (ms since the epoch): the delay is measured for records published
    /// after it, not for the history read at start-up.
    started_ms: i64,
}

impl std::fmt::Debug for Materialiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Materialiser")
            .field("topics", &self.topics)
            .field("assigned", &self.assigned)
            .finish_non_exhaustive()
    }
}

impl Materialiser {
    pub fn new(cfg: &Config, view: View, metrics: Metrics) -> Result<Self, MaterialiseError> {
        let mut c = base_config(&cfg.kafka);
        // A group id of its own per process: librdkafka wants one, and nothing is committed
        // under it, so instances never share or take over each other's positions.
        let nonce: u64 = rand::random();
        c.set(
            "group.id",
            format!("{}-view-{nonce:016x}", cfg.kafka.group_id),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS);
        for (key, value) in &cfg.kafka.properties {
            c.set(key, value);
        }
        let consumer: StreamConsumer = c.create().map_err(MaterialiseError::Client)?;
        Ok(Materialiser {
            consumer: std::sync::Arc::new(consumer),
            topics: [
                cfg.topics.incidents.clone(),
                cfg.topics.changes.clone(),
                cfg.topics.problems.clone(),
            ],
            view,
            metrics,
            assigned: BTreeMap::new(),
            started_ms: now_ms(),
        })
    }

    /// Reads until `shutdown`. Broker trouble is waited out (the view goes stale meanwhile,
    /// and catches up after); it never stops the pipeline.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        // Until every topic has partitions (they may be created by this very start-up).
        while !self.discover().await {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        tracing::info!(partitions = ?self.assigned, "view reading the incidents, changes and problems topics");
        let mut rediscover = tokio::time::interval(REDISCOVER);
        rediscover.tick().await;
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = rediscover.tick() => { self.discover().await; continue; }
                m = self.consumer.recv() => m,
            };
            let first = match first {
                Ok(m) => m.detach(),
                Err(e) => {
                    tracing::warn!(error = %e, "view consumer error; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + LINGER;
            while batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                    Ok(Ok(m)) => batch.push(m.detach()),
                    _ => break,
                }
            }
            self.apply(&batch);
        }
    }

    fn apply(&self, batch: &[rdkafka::message::OwnedMessage]) {
        let now_ms = now_ms();
        let mut records = Vec::with_capacity(batch.len());
        let mut delays = Vec::with_capacity(batch.len());
        for m in batch {
            let Some(payload) = m.payload() else { continue };
            match serde_json::from_slice::<Output>(payload) {
                Ok(o) => {
                    if let Some(ts) = m.timestamp().to_millis()
                        && ts >= self.started_ms
                    {
                        let ms = now_ms.saturating_sub(ts).max(0) as u64;
                        delays.push(Duration::from_millis(ms));
                    }
                    records.push(o);
                }
                Err(e) => self.metrics.emit(ViewRecordSkipped {
                    topic: m.topic(),
                    partition: m.partition(),
                    offset: m.offset(),
                    error: &e,
                }),
            }
        }
        let applied = self.view.apply(&records);
        let (incidents, changes, problems) = self.view.read().sizes();
        self.metrics.emit(ViewUpdated {
            incidents,
            changes,
            problems,
            evicted_incidents: applied.evicted_incidents,
            evicted_changes: applied.evicted_changes,
            evicted_problems: applied.evicted_problems,
            delays,
        });
    }

    /// Assigns partitions not assigned yet, from their beginning. Returns whether every topic
    /// has at least one.
    async fn discover(&mut self) -> bool {
        let mut counts = BTreeMap::new();
        for topic in &self.topics {
            let (c, t) = (self.consumer.clone(), topic.clone());
            // Metadata calls block: keep them off the runtime's threads.
            let md = tokio::task::spawn_blocking(move || {
                c.fetch_metadata(Some(&t), Duration::from_secs(10))
                    .map(|md| md.topics().first().map_or(0, |t| t.partitions().len()) as i32)
            })
            .await
            .unwrap_or(Ok(0));
            match md {
                Ok(n) => {
                    counts.insert(topic.clone(), n);
                }
                Err(e) => {
                    tracing::warn!(topic = %topic, error = %e, "view cannot read topic metadata yet");
                    return false;
                }
            }
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, &n) in &counts {
            let from = self.assigned.get(topic).copied().unwrap_or(0);
            for p in from..n {
                if let Err(e) = tpl.add_partition_offset(topic, p, Offset::Beginning) {
                    tracing::warn!(topic = %topic, partition = p, error = %e, "view cannot add partition");
                }
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.incremental_assign(&tpl) {
                tracing::warn!(error = %e, "view cannot assign partitions; retrying");
                return false;
            }
            for (topic, n) in &counts {
                self.assigned.insert(topic.clone(), *n);
            }
        }
        counts.values().all(|&n| n > 0)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
