//! Kafka plumbing shared by the stages: client configuration, topic creation, the consumer
//! context that reports lag, and sending a batch of output records until the broker
//! acknowledged every one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, KafkaConfig};
use crate::telemetry::Metrics;
use crate::telemetry::events::{ConsumerLag, ProduceRetried};

use super::PipelineError;

/// The settings every client shares: brokers, client id, and the user's extra properties.
pub fn base_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("client.id", &k.client_id);
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    c
}

/// `fetch.wait.max.ms` of d2c's consumers (see [`consumer`]).
pub const FETCH_WAIT_MAX_MS: &str = "5";

/// A consumer in `group` that stores offsets only when told to (after outputs are
/// acknowledged) and commits the stored offsets in the background.
pub fn consumer(
    k: &KafkaConfig,
    group: &str,
    metrics: &Metrics,
) -> Result<StreamConsumer<LagContext>, KafkaError> {
    let mut c = base_config(k);
    c.set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            k.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (k.session_timeout.as_millis() / 3).max(100).to_string(),
        )
        .set("statistics.interval.ms", "5000")
        // How long the broker may hold a fetch when it has nothing new. librdkafka's 500 ms
        // would be added to the latency of every quiet partition; 5 ms keeps each hop near the
        // broker's own latency, at the cost of up to 200 empty fetches per second per broker
        // connection when idle. Raise it in `kafka.properties` where that matters more.
        .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS);
    if let Some(id) = &k.group_instance_id {
        let stage = group.rsplit('-').next().unwrap_or(group);
        c.set("group.instance.id", format!("{id}-{stage}"));
    }
    // User properties win over d2c's choices above.
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    c.create_with_context(LagContext {
        metrics: metrics.clone(),
        revoked: Arc::default(),
    })
}

/// An idempotent producer that waits for all in-sync replicas.
pub fn producer(k: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    let mut c = base_config(k);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000");
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    c.create()
}

/// Creates every configured topic that does not exist yet.
pub async fn ensure_topics(cfg: &Config) -> Result<(), PipelineError> {
    let admin: AdminClient<DefaultClientContext> = base_config(&cfg.kafka)
        .create()
        .map_err(PipelineError::Client)?;
    let topics: Vec<NewTopic> = cfg
        .topics
        .all()
        .iter()
        .map(|(_, name)| {
            let t = NewTopic::new(
                name,
                cfg.kafka.partitions,
                TopicReplication::Fixed(cfg.kafka.replication_factor),
            );
            if *name == cfg.topics.state {
                t.set("cleanup.policy", "compact")
            } else {
                t
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&topics, &opts)
        .await
        .map_err(PipelineError::CreateTopics)?;
    for r in results {
        match r {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(PipelineError::CreateTopic {
                    topic: name,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Consumer context: turns librdkafka's statistics into the lag gauge and logs rebalances.
#[derive(Debug, Clone)]
pub struct LagContext {
    metrics: Metrics,
    /// Partitions revoked since the stage last looked; the stage drops their state.
    pub revoked: Arc<Mutex<Vec<i32>>>,
}

impl ClientContext for LagContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                // Partition -1 is librdkafka's internal "unassigned" bucket. Lag -1 means no
                // position yet (nothing consumed or committed): then everything from the log
                // start to its end is still to be read.
                if *p < 0 || part.fetch_state == "none" || part.hi_offset < 0 {
                    continue;
                }
                let lag = if part.consumer_lag >= 0 {
                    part.consumer_lag
                } else {
                    part.hi_offset - part.lo_offset.max(0)
                };
                self.metrics.emit(ConsumerLag {
                    topic,
                    partition: *p,
                    lag,
                });
            }
        }
    }
}

impl ConsumerContext for LagContext {
    fn pre_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            revoked.extend(tpl.elements().iter().map(|e| e.partition()));
        }
    }

    fn post_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, r: &Rebalance<'_>) {
        match r {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions revoked")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

/// One record to publish.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub topic: String,
    /// Explicit partition; `None` lets the producer pick by key.
    pub partition: Option<i32>,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    /// Record timestamp in milliseconds; `None` lets the producer stamp it.
    pub timestamp: Option<i64>,
}

/// Sends `records` and waits until the broker acknowledged every one. Records that fail are
/// sent again with backoff (order within a partition is kept by the idempotent producer for
/// records in flight together); gives up only when `shutdown` is cancelled, so nothing is
/// dropped: the caller then does not store the input offsets, and the input is read again.
pub async fn send_all(
    producer: &FutureProducer,
    records: &[OutRecord],
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<(), PipelineError> {
    let mut pending: Vec<&OutRecord> = records.iter().collect();
    let mut backoff = Duration::from_millis(100);
    loop {
        let sends = pending.iter().map(|r| {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut rec = FutureRecord::to(&r.topic)
                .key(&r.key)
                .payload(&r.payload)
                .headers(headers);
            if let Some(ts) = r.timestamp {
                rec = rec.timestamp(ts);
            }
            if let Some(p) = r.partition {
                rec = rec.partition(p);
            }
            producer.send(rec, Timeout::Never)
        });
        let results = join_all(sends).await;
        let mut failed = Vec::new();
        for (r, res) in pending.iter().zip(results) {
            if let Err((e, _)) = res {
                metrics.emit(ProduceRetried {
                    topic: &r.topic,
                    error: &e,
                });
                failed.push(*r);
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        pending = failed;
        tokio::select! {
            _ = shutdown.cancelled() => return Err(PipelineError::Interrupted),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Checks that the state topic has a partition for every events partition, and returns the
/// number of events partitions. Waits (with backoff, until `shutdown`) while the broker is
/// unreachable or the topics are not there yet.
pub async fn check_partitions(
    cfg: &Config,
    producer: &FutureProducer,
) -> Result<i32, PipelineError> {
    use rdkafka::producer::Producer;
    let (events, state) = (cfg.topics.events.clone(), cfg.topics.state.clone());
    let mut backoff = Duration::from_millis(200);
    loop {
        let (e, s) = (events.clone(), state.clone());
        let producer = producer.clone();
        let counts = tokio::task::spawn_blocking(move || -> Result<(usize, usize), KafkaError> {
            let count = |t: &str| -> Result<usize, KafkaError> {
                let md = producer
                    .client()
                    .fetch_metadata(Some(t), Duration::from_secs(10))?;
                Ok(md.topics().first().map_or(0, |t| t.partitions().len()))
            };
            Ok((count(&e)?, count(&s)?))
        })
        .await
        .map_err(|e| PipelineError::Stage("start-up", e.to_string()))?;
        match counts {
            Ok((ep, sp)) if ep > 0 && sp > 0 => {
                if sp < ep {
                    return Err(PipelineError::StatePartitions {
                        state,
                        state_partitions: sp,
                        events,
                        events_partitions: ep,
                    });
                }
                return Ok(ep as i32);
            }
            Ok(_) => {
                tracing::warn!(events = %events, state = %state, "topics not found yet; waiting")
            }
            Err(e) => tracing::warn!(error = %e, "cannot read topic metadata; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Reads `partitions` of `topic` from their beginning up to the end offsets seen at the start,
/// calling `f` for each record. Returns false if `timeout` passed before every partition was
/// read to its end.
pub fn read_to_end(
    consumer: &rdkafka::consumer::BaseConsumer,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
    mut f: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<bool, KafkaError> {
    use rdkafka::consumer::Consumer;
    use rdkafka::{Message, Offset};
    let mut ends = std::collections::HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        if high > low {
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let deadline = std::time::Instant::now() + timeout;
    while !ends.is_empty() {
        if std::time::Instant::now() > deadline {
            return Ok(false);
        }
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        if ends
            .get(&m.partition())
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            ends.remove(&m.partition());
        }
        f(&m);
    }
    Ok(true)
}

/// Seeks `consumer` to offset `to` of partition `p` of `topic`; false (logged) when it failed.
pub(super) fn seek(consumer: &StreamConsumer<LagContext>, topic: &str, p: i32, to: i64) -> bool {
    use rdkafka::consumer::Consumer;
    let to = rdkafka::Offset::Offset(to);
    match consumer.seek(topic, p, to, Duration::from_secs(10)) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "seek failed; retrying on the next record");
            false
        }
    }
}

/// Whether partition `p` of `topic` is assigned to `consumer` now.
pub(super) fn assigned(consumer: &StreamConsumer<LagContext>, topic: &str, p: i32) -> bool {
    use rdkafka::consumer::Consumer;
    consumer
        .assignment()
        .map(|a| a.find_partition(topic, p).is_some())
        .unwrap_or(false)
}

/// The number of partitions of `topic`, read from the broker's metadata.
pub async fn partition_count(producer: &FutureProducer, topic: &str) -> Result<i32, KafkaError> {
    use rdkafka::producer::Producer;
    let (producer, topic) = (producer.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .map(|md| {
                md.topics()
                    .first()
                    .map_or(0, |t| t.partitions().len() as i32)
            })
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}

/// Writes a control record (empty batch payload, `value` in header `header`) to every one of
/// `partitions` of the events topic `topic`, and waits until the broker acknowledged each (see
/// [`send_all`]): the engine that owns what the record is about applies it, the others pass it
/// over.
pub async fn broadcast_control(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    header: &'static str,
    value: &[u8],
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<(), PipelineError> {
    let records: Vec<OutRecord> = (0..partitions)
        .map(|p| OutRecord {
            topic: topic.to_string(),
            partition: Some(p),
            key: Vec::new(),
            payload: b"[]".to_vec(),
            headers: vec![(header, value.to_vec())],
            timestamp: None,
        })
        .collect();
    send_all(producer, &records, metrics, shutdown).await
}
