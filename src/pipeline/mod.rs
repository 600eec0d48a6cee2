//! The Kafka shell around the pure core. Two stages, each a consumer group of its own:
//!
//! - **ingest** reads `topics.raw`, parses each record (any supported format), writes events to
//!   `topics.events` on the partition of their correlation domain, and bad records to
//!   `topics.dlq`;
//! - **correlate** reads `topics.events`, runs one engine per input partition, and writes
//!   incidents to `topics.incidents` and RFCs to `topics.changes`.
//!
//! Both work in batches: the outputs of a batch are sent and awaited (acks=all, idempotent
//! producer) before the batch's input offsets are stored, so nothing is lost (at least once).

pub mod audit;
pub mod checkpoint;
mod correlate;
mod ingest;
pub mod kafka;
pub mod service_model;

/// Header on single-event `topics.events` records (the format before batches):
/// `<raw partition>/<raw offset>/<index in the record>`. Still read, no longer written.
pub const ORIGIN_HEADER: &str = "d2c.origin";

/// One event on `topics.events`, with the raw record it came from. A record on `topics.events`
/// is a JSON array of these, all of one partition, in the order ingest read them: one record
/// per partition per ingest batch (up to [`EVENTS_RECORD_BYTES`]), so the second broker hop
/// costs one record per batch rather than one per event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoutedEvent {
    pub origin: Origin,
    pub event: crate::model::Event,
}

/// Header of a tick record on `topics.events` (empty JSON array payload): the RFC 3339 time
/// the correlation clock of that partition moves to. See `ingest.tick_interval`.
pub const TICK_HEADER: &str = "d2c.tick";

/// Header of an acknowledgement record on `topics.events` (empty JSON array payload): an
/// [`Ack`] as JSON. Written to every partition by `POST /api/v1/incidents/{id}/ack`; the
/// partition whose engine has the incident applies it, the others ignore it.
pub const ACK_HEADER: &str = "d2c.ack";

/// Header of a silence record on `topics.events` (empty JSON array payload): a
/// [`Silence`](crate::suppress::Silence) as JSON, written to every partition by
/// `POST /api/v1/silences`; every engine adds it.
pub const SILENCE_HEADER: &str = "d2c.silence";

/// Someone acknowledged an incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ack {
    pub incident: String,
    pub by: String,
    #[serde(deserialize_with = "crate::model::deserialize_time")]
    pub time: chrono::DateTime<chrono::Utc>,
}

/// Header of a change decision record on `topics.events` (empty JSON array payload): a
/// [`ChangeDecision`] as JSON. Written to every partition by
/// `POST /api/v1/changes/{id}/decision`; the partition whose engine raised the RFC publishes
/// its next version with the decision, the others ignore it.
pub const DECISION_HEADER: &str = "d2c.decision";

/// A change authority approved or rejected an RFC (e.g. in the ITSM tool).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChangeDecision {
    /// The RFC id.
    pub change: String,
    pub decision: crate::model::DecisionStatus,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(deserialize_with = "crate::model::deserialize_time")]
    pub time: chrono::DateTime<chrono::Utc>,
}

impl ChangeDecision {
    /// The decision as the RFC carries it.
    pub fn to_decision(&self) -> crate::model::Decision {
        crate::model::Decision {
            status: self.decision,
            by: self.by.clone(),
            at: self.time,
            comment: self.comment.clone(),
        }
    }
}

/// Events records are closed at about this size (below Kafka's default 1 MB record limit); an
/// event larger than this alone still makes one record of its own.
pub const EVENTS_RECORD_BYTES: usize = 256 * 1024;

/// The `topics.events` partition of correlation domain `domain`: a stable hash, so every
/// instance of d2c routes a domain to the same partition.
pub fn partition_of(domain: &str, partitions: i32) -> i32 {
    (xxhash_rust::xxh3::xxh3_64(domain.as_bytes()) % partitions.max(1) as u64) as i32
}

/// The events of one `topics.events` record: a batch (a JSON array of [`RoutedEvent`]) or a
/// single event with its origin in [`ORIGIN_HEADER`] (records written before batches).
pub fn decode_events(
    payload: &[u8],
    header_origin: Option<Origin>,
) -> Result<Vec<(crate::model::Event, Option<Origin>)>, serde_json::Error> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let batch: Vec<RoutedEvent> = serde_json::from_slice(payload)?;
        Ok(batch
            .into_iter()
            .map(|r| (r.event, Some(r.origin)))
            .collect())
    } else {
        Ok(vec![(serde_json::from_slice(payload)?, header_origin)])
    }
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use tokio_util::sync::CancellationToken;

use crate::engine::Origin;
use crate::settings::Settings;
use crate::telemetry::{Health, Metrics, View};

use kafka::LagContext;

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot create a Kafka client: {0}")]
    Client(KafkaError),
    #[error(
        "cannot create topics (set kafka.create_topics = false if they are managed elsewhere): {0}"
    )]
    CreateTopics(KafkaError),
    #[error("cannot create topic `{topic}`: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("cannot subscribe to `{topic}`: {source}")]
    Subscribe { topic: String, source: KafkaError },
    #[error("shut down before the broker acknowledged the batch; its input will be read again")]
    Interrupted,
    #[error("stage {0} stopped unexpectedly: {1}")]
    Stage(&'static str, String),
    #[error("cannot restore the correlation state: {0}")]
    Restore(String),
    #[error(
        "topic `{state}` has {state_partitions} partitions but `{events}` has {events_partitions}; the state topic needs at least as many (one checkpoint stream per events partition)"
    )]
    StatePartitions {
        state: String,
        state_partitions: usize,
        events: String,
        events_partitions: usize,
    },
}

/// Runs both stages until `shutdown` is cancelled or one of them fails. On shutdown each stage
/// finishes its batch, commits its offsets and returns.
pub async fn run(
    settings: Arc<Settings>,
    metrics: Metrics,
    health: Health,
    view: View,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    let cfg = &settings.config;
    if cfg.kafka.create_topics {
        kafka::ensure_topics(cfg).await?;
    }
    let producer = kafka::producer(&cfg.kafka).map_err(PipelineError::Client)?;
    let events_partitions = kafka::check_partitions(cfg, &producer).await?;
    let ingest_consumer = subscribe(cfg, "ingest", &cfg.topics.raw, &metrics)?;
    let correlate_consumer = subscribe(cfg, "correlate", &cfg.topics.events, &metrics)?;
    let stop_all = shutdown.child_token();
    // The service model: the topology file, or with a Backstage catalog, both, refreshed.
    let (model_tx, model) = tokio::sync::watch::channel(settings.topology.clone());
    if cfg.backstage.enabled() {
        let client = service_model::client(&cfg.backstage);
        let first = service_model::first(&client, &settings, &metrics).await;
        let last = first.map(|(file, topo)| {
            metrics.business.set_topology(&topo);
            let _ = model_tx.send(Arc::new(topo));
            file
        });
        tokio::spawn(service_model::refresh(
            client,
            settings.clone(),
            metrics.clone(),
            last,
            model_tx,
            stop_all.clone(),
        ));
    }
    health.set_ready(true);
    tracing::info!(brokers = %cfg.kafka.brokers, raw = %cfg.topics.raw, "pipeline started");

    let ingest = ingest::Ingest::new(
        &settings,
        producer.clone(),
        metrics.clone(),
        events_partitions,
        model.clone(),
    );
    let correlate =
        correlate::Correlate::new(&settings, producer.clone(), metrics.clone(), view, model)?;
    let (a, b) = tokio::join!(
        guard(
            "ingest",
            ingest.run(ingest_consumer, health.clone(), stop_all.clone()),
            &stop_all
        ),
        guard(
            "correlate",
            correlate.run(correlate_consumer, health.clone(), stop_all.clone()),
            &stop_all
        ),
    );
    health.set_ready(false);
    a.and(b)
}

/// Runs one stage; if it fails, stops the other too.
async fn guard(
    name: &'static str,
    stage: impl Future<Output = Result<(), PipelineError>>,
    stop_all: &CancellationToken,
) -> Result<(), PipelineError> {
    let r = stage.await;
    if let Err(e) = &r {
        tracing::error!(stage = name, error = %e, "stage failed; stopping the pipeline");
    }
    stop_all.cancel();
    r
}

fn subscribe(
    cfg: &crate::config::Config,
    stage: &str,
    topic: &str,
    metrics: &Metrics,
) -> Result<StreamConsumer<LagContext>, PipelineError> {
    let group = format!("{}-{stage}", cfg.kafka.group_id);
    let c = kafka::consumer(&cfg.kafka, &group, metrics).map_err(PipelineError::Client)?;
    c.subscribe(&[topic])
        .map_err(|source| PipelineError::Subscribe {
            topic: topic.to_string(),
            source,
        })?;
    Ok(c)
}

/// Longest wait for a record before [`next_batch`] returns an empty batch.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Waits for the first record (or shutdown), then takes more until `max` records or `linger`
/// has passed. Returns `None` on shutdown, and an empty batch after [`IDLE_TICK`] without
/// input. Broker errors are logged and waited out: the
/// consumer reconnects by itself.
pub(crate) async fn next_batch<'c>(
    consumer: &'c StreamConsumer<LagContext>,
    max: usize,
    linger: Duration,
    health: &Health,
    shutdown: &CancellationToken,
) -> Option<Vec<BorrowedMessage<'c>>> {
    let idle = tokio::time::sleep(IDLE_TICK);
    tokio::pin!(idle);
    let first = loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            // Nothing arrived: an empty batch lets the stage do its periodic work (finish
            // checkpoints, refresh gauges) while the input is quiet.
            _ = &mut idle => return Some(Vec::new()),
            m = consumer.recv() => match m {
                Ok(m) => { health.set_ready(true); break m }
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error; retrying");
                    health.set_ready(false);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    };
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + linger;
    while batch.len() < max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => batch.push(m),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "consumer error while filling a batch");
                break;
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Marks every record of an acknowledged batch as done; the background commit picks it up.
fn store_offsets(consumer: &StreamConsumer<LagContext>, batch: &[BorrowedMessage<'_>]) {
    for m in batch {
        if let Err(e) = consumer.store_offset_from_message(m) {
            // Happens when the partition was revoked meanwhile: the new owner re-reads it.
            tracing::debug!(error = %e, "cannot store offset");
        }
    }
}

/// Commits stored offsets before the stage exits.
pub(crate) fn commit_on_exit(consumer: &StreamConsumer<LagContext>, stage: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!(stage, "offsets committed on shutdown"),
        // No offsets stored yet is not a failure.
        Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(stage, error = %e, "cannot commit offsets on shutdown"),
    }
}

/// Elapsed seconds since `start`, for the batch histogram.
fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod events_record_tests {
    use super::*;
    use crate::model::{Category, Event, Severity, Status};

    fn event(name: &str) -> Event {
        Event {
            id: format!("id-{name}"),
            source: "native".into(),
            time: "2026-11-28T10:00:00Z".parse().unwrap(),
            ci: Some("db-1".into()),
            name: name.into(),
            severity: Severity::Major,
            status: Status::Firing,
            category: Category::Availability,
            fingerprint: format!("fp-{name}"),
            labels: Default::default(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn a_batch_record_gives_its_events_in_order_with_their_origins() {
        let batch: Vec<RoutedEvent> = (0..3)
            .map(|i| RoutedEvent {
                origin: Origin {
                    partition: 2,
                    offset: 40 + i,
                    index: 0,
                },
                event: event(&format!("e{i}")),
            })
            .collect();
        let payload = serde_json::to_vec(&batch).unwrap();
        let decoded = decode_events(&payload, None).unwrap();
        assert_eq!(decoded.len(), 3);
        for (i, (ev, origin)) in decoded.iter().enumerate() {
            assert_eq!(ev, &batch[i].event);
            assert_eq!(origin.unwrap().offset, 40 + i as i64);
        }
    }

    #[test]
    fn a_single_event_record_takes_its_origin_from_the_header() {
        let payload = serde_json::to_vec(&event("one")).unwrap();
        let origin = Origin {
            partition: 1,
            offset: 7,
            index: 3,
        };
        let decoded = decode_events(&payload, Some(origin)).unwrap();
        assert_eq!(decoded, vec![(event("one"), Some(origin))]);
        assert!(decode_events(b"{\"not\":\"an event\"}", None).is_err());
        assert!(decode_events(b"[{\"not\":\"routed\"}]", None).is_err());
    }

    #[test]
    fn a_domain_always_goes_to_the_same_partition_within_range() {
        for d in ["shop", "ci:host-1", "", "payments"] {
            let p = partition_of(d, 6);
            assert!((0..6).contains(&p));
            assert_eq!(p, partition_of(d, 6));
        }
        assert_eq!(
            partition_of("x", 0),
            0,
            "no panic on a topic without partitions"
        );
    }
}
