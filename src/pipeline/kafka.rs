//! Kafka plumbing shared by the stages: client configuration (with `[kafka.security]`), topic
//! creation, and handing clients that may block on the broker off the async runtime when they
//! are dropped. Sending lives in [`super::send`], the clients' context in [`super::client`].

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::types::{RDKafkaConfRes, RDKafkaErrorCode};

use tokio_util::sync::CancellationToken;

use crate::config::{Config, KafkaConfig};
use crate::telemetry::{Health, Metrics};

use super::PipelineError;
pub use super::client::KafkaContext;
pub use super::send::{OutRecord, Sender};

/// The producer every stage and the HTTP API use.
pub type KafkaProducer = FutureProducer<KafkaContext>;
/// The consumer of a stage.
pub type KafkaConsumer = StreamConsumer<KafkaContext>;

/// The settings every client shares: brokers, client id, `[kafka.security]` (secrets
/// resolved), and the user's extra properties. Fails when a secret of `[kafka.security]`
/// cannot be read.
pub fn base_config(k: &KafkaConfig) -> Result<ClientConfig, KafkaError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("client.id", &k.client_id);
    let security = k.security.properties().map_err(|e| {
        KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            e.to_string(),
            e.key.clone(),
            "<not shown>".into(),
        )
    })?;
    for (key, value) in security {
        c.set(key, value);
    }
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    Ok(c)
}

/// Creates a client with d2c's context, which reads librdkafka's statistics: they tell it when a
/// broker connection is up again (and the consumers' lag); every 5 s is cheap. Clients with
/// librdkafka's default context get none: that context would log each as a multi-kilobyte
/// INFO line.
pub fn create<C: rdkafka::config::FromClientConfigAndContext<KafkaContext>>(
    mut c: ClientConfig,
    k: &KafkaConfig,
    metrics: &Metrics,
    health: &Health,
) -> Result<C, KafkaError> {
    if !k.properties.contains_key("statistics.interval.ms") {
        c.set("statistics.interval.ms", "5000");
    }
    c.create_with_context(KafkaContext::new(k, metrics, health))
}

/// `fetch.wait.max.ms` of d2c's consumers (see [`consumer`]).
pub const FETCH_WAIT_MAX_MS: &str = "5";

/// A consumer in `group` that stores offsets only when told to (after outputs are
/// acknowledged) and commits the stored offsets in the background.
pub fn consumer(
    k: &KafkaConfig,
    group: &str,
    metrics: &Metrics,
    health: &Health,
) -> Result<KafkaConsumer, KafkaError> {
    let mut c = base_config(k)?;
    c.set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            k.session_timeout.as_millis().to_string(),
        )
        // A survivor hears of a rebalance at its next heartbeat, and a real broker completes the
        // rebalance once every live member has rejoined: at most 1 s keeps a failover within
        // the session timeout plus about a second (librdkafka's default is 3 s).
        .set(
            "heartbeat.interval.ms",
            (k.session_timeout.as_millis() / 3)
                .clamp(100, 1000)
                .to_string(),
        )
        .set("partition.assignment.strategy", k.assignment.strategy())
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
    create(c, k, metrics, health)
}

/// An idempotent producer that waits for all in-sync replicas.
pub fn producer(
    k: &KafkaConfig,
    metrics: &Metrics,
    health: &Health,
) -> Result<KafkaProducer, KafkaError> {
    let mut c = base_config(k)?;
    // A stage hands a whole batch to the producer at once, so a longer linger would only
    // delay every event (5 ms, librdkafka's default, cost ~20 ms of d2c's p50 over the two
    // stages in BENCHMARKS.md); records that come while a request is in flight still form the
    // next request. 0 sent smaller requests and was slower.
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "60000");
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    create(c, k, metrics, health)
}

/// Readiness condition while the topics are not there yet.
const TOPICS_CONDITION: &str = "startup.topics";

/// Creates the configured topics that do not exist yet: reads the cluster's metadata first and
/// creates only what is missing, so a cluster that has them (or whose controller cannot be
/// reached, as librdkafka's mock cluster) is never asked. Transient failures (the broker away,
/// a timeout) are retried with backoff until `shutdown`, with the reason on `/readyz`; a
/// refusal that retrying cannot change (not authorised, a replication factor the cluster
/// cannot meet) stops start-up with a message naming the setting.
pub async fn ensure_topics(
    cfg: &Config,
    metrics: &Metrics,
    health: &Health,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<(), PipelineError> {
    let c = base_config(&cfg.kafka).map_err(PipelineError::Client)?;
    let admin: AdminClient<KafkaContext> =
        create(c, &cfg.kafka, metrics, health).map_err(PipelineError::Client)?;
    let admin = OffRuntime::new(admin);
    health.set_condition(
        TOPICS_CONDITION,
        "reading the cluster's metadata to create the missing topics",
    );
    let mut backoff = Duration::from_millis(200);
    let mut logged = false;
    loop {
        match create_missing(cfg, &admin).await {
            Ok(()) => {
                health.clear_condition(TOPICS_CONDITION);
                return Ok(());
            }
            Err(Attempt::Permanent(e)) => {
                health.clear_condition(TOPICS_CONDITION);
                return Err(e);
            }
            Err(Attempt::Transient(reason)) => {
                let why = format!("cannot create the topics yet ({reason}); retrying");
                if !logged {
                    tracing::warn!(error = %reason, "cannot create the topics yet; retrying with backoff (set kafka.create_topics = false if they are managed elsewhere)");
                    logged = true;
                } else {
                    tracing::debug!(error = %reason, "cannot create the topics yet; retrying");
                }
                health.set_condition(TOPICS_CONDITION, why);
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(PipelineError::Interrupted),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

enum Attempt {
    Transient(String),
    Permanent(PipelineError),
}

async fn create_missing(
    cfg: &Config,
    admin: &OffRuntime<AdminClient<KafkaContext>>,
) -> Result<(), Attempt> {
    let names: Vec<String> = cfg
        .topics
        .all()
        .iter()
        .map(|(_, n)| n.to_string())
        .collect();
    let existing = {
        let admin = admin.shared();
        tokio::task::spawn_blocking(move || {
            admin
                .inner()
                .fetch_metadata(None, Duration::from_secs(10))
                .map(|md| {
                    md.topics()
                        .iter()
                        .filter(|t| !t.partitions().is_empty())
                        .map(|t| t.name().to_string())
                        .collect::<std::collections::BTreeSet<_>>()
                })
        })
        .await
        .map_err(|e| Attempt::Transient(e.to_string()))?
        .map_err(|e| Attempt::Transient(format!("cannot read the cluster's metadata: {e}")))?
    };
    let missing: Vec<&String> = names.iter().filter(|n| !existing.contains(*n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let topics: Vec<NewTopic> = missing
        .iter()
        .map(|name| {
            let t = NewTopic::new(
                name,
                cfg.kafka.partitions,
                TopicReplication::Fixed(cfg.kafka.replication_factor),
            );
            if **name == cfg.topics.state {
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
        .map_err(|e| Attempt::Transient(e.to_string()))?;
    let mut transient = Vec::new();
    for r in results {
        match r {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((
                name,
                code @ (RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::InvalidReplicationFactor
                | RDKafkaErrorCode::InvalidPartitions
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::InvalidConfig
                | RDKafkaErrorCode::PolicyViolation),
            )) => {
                return Err(Attempt::Permanent(PipelineError::CreateTopic {
                    topic: name,
                    reason: code.to_string(),
                }));
            }
            Err((name, code)) => transient.push(format!("`{name}`: {code}")),
        }
    }
    if transient.is_empty() {
        Ok(())
    } else {
        Err(Attempt::Transient(transient.join("; ")))
    }
}

/// A Kafka client whose drop may block on the broker (a consumer leaving its group, an admin
/// client waiting for its requests), held so that dropping it never blocks the async runtime:
/// the client is dropped on a thread of its own. Without this, a SIGTERM while the broker is
/// unreachable would block the runtime thread and the shutdown deadline would never fire.
pub struct OffRuntime<C: Send + Sync + 'static> {
    client: Option<std::sync::Arc<C>>,
}

impl<C: Send + Sync + 'static> std::fmt::Debug for OffRuntime<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OffRuntime")
    }
}

impl<C: Send + Sync + 'static> OffRuntime<C> {
    pub fn new(client: C) -> Self {
        OffRuntime {
            client: Some(std::sync::Arc::new(client)),
        }
    }

    /// A shared handle, for blocking calls in `spawn_blocking`.
    pub fn shared(&self) -> std::sync::Arc<C> {
        self.client.clone().expect("present until dropped")
    }

    /// Runs `last` (e.g. a final commit) and drops the client on a thread of its own; the
    /// returned receiver completes when both are done.
    pub fn close(
        mut self,
        name: &'static str,
        last: impl FnOnce(&C) + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Some(client) = self.client.take() {
            spawn_closer(name, move || {
                last(&client);
                drop(client);
                let _ = tx.send(());
            });
        }
        rx
    }
}

impl<C: Send + Sync + 'static> std::ops::Deref for OffRuntime<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.client.as_deref().expect("present until dropped")
    }
}

impl<C: Send + Sync + 'static> Drop for OffRuntime<C> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            spawn_closer("kafka-client", move || drop(client));
        }
    }
}

fn spawn_closer(name: &str, f: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name(format!("d2c-close-{name}"))
        .spawn(f);
    if let Err(e) = spawned {
        // No thread to spare: the client leaks rather than block the runtime.
        tracing::warn!(error = %e, "cannot start a thread to close a Kafka client");
    }
}

/// Readiness condition while the events and state topics cannot be read.
const PARTITIONS_CONDITION: &str = "startup.partitions";

/// Checks that the state topic has a partition for every events partition, and returns the
/// number of events partitions. Waits (with backoff, until `shutdown`) while the broker is
/// unreachable or the topics are not there yet.
pub async fn check_partitions(
    cfg: &Config,
    producer: &KafkaProducer,
    health: &Health,
    shutdown: &tokio_util::sync::CancellationToken,
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
        let why = match counts {
            Ok((ep, sp)) if ep > 0 && sp > 0 => {
                health.clear_condition(PARTITIONS_CONDITION);
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
            Ok(_) => format!("topics `{events}` and `{state}` not found yet; waiting"),
            Err(e) => format!("cannot read the metadata of `{events}` and `{state}`: {e}"),
        };
        if health.set_condition(PARTITIONS_CONDITION, &why) {
            tracing::warn!(reason = %why, "waiting for the topics; retrying with backoff");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(PipelineError::Interrupted),
            _ = tokio::time::sleep(backoff) => {}
        }
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

/// Why the settings of `[kafka.security]` cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SecurityCheckError {
    #[error("{0}")]
    Setting(#[from] crate::config::SecurityError),
    #[error(
        "librdkafka refuses the Kafka client settings ([kafka.security], kafka.properties): {0}"
    )]
    Client(KafkaError),
}

/// Checks `[kafka.security]` as far as it can without a broker: the files exist and read as
/// PEM, the secrets resolve, and librdkafka accepts the whole client configuration (it loads
/// the CA, certificate and key, decrypting the key with its password, when a client is made).
pub fn check_security(k: &KafkaConfig) -> Result<(), SecurityCheckError> {
    k.security.verify()?;
    let client: rdkafka::producer::BaseProducer = base_config(k)
        .and_then(|c| c.create())
        .map_err(SecurityCheckError::Client)?;
    // Dropped off the caller's thread: it may have started connecting.
    spawn_closer("check", move || drop(client));
    Ok(())
}

/// Seeks `consumer` to offset `to` of partition `p` of `topic`; false (logged) when it failed.
pub(super) fn seek(consumer: &KafkaConsumer, topic: &str, p: i32, to: i64) -> bool {
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
pub(super) fn assigned(consumer: &KafkaConsumer, topic: &str, p: i32) -> bool {
    use rdkafka::consumer::Consumer;
    consumer
        .assignment()
        .map(|a| a.find_partition(topic, p).is_some())
        .unwrap_or(false)
}

/// The number of partitions of `topic`, read from the broker's metadata.
pub async fn partition_count(producer: &KafkaProducer, topic: &str) -> Result<i32, KafkaError> {
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
/// [`Sender::send_all`]): the engine that owns what the record is about applies it, the others
/// pass it over.
pub async fn broadcast_control(
    sender: &Sender,
    topic: &str,
    partitions: i32,
    header: &'static str,
    value: &[u8],
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
    sender.send_all(&records, shutdown).await
}
