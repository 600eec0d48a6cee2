//! The Kafka shell around the pure core. Two stages, each a consumer group of its own:
//!
//! - **ingest** reads `topics.raw`, parses each record (any supported format), writes events to
//!   `topics.events` on the partition of their correlation domain, and bad records to
//!   `topics.dlq`;
//! - **correlate** reads `topics.events`, runs one engine per input partition, and writes
//!   incidents to `topics.incidents` and RFCs to `topics.changes`.
//!
//! Beside them, [`materialise`] reads the `incidents` and `changes` topics whole into the
//! [`View`] that the read API and the console serve.
//!
//! Both stages work in batches: the outputs of a batch are handed to the producer in order
//! (acks=all, idempotent), and the batch's input offsets are stored only once the broker
//! acknowledged them and every batch before (see [`inflight`]), so nothing is lost (at least
//! once); up to `kafka.in_flight_batches` batches go unacknowledged while the next is processed.

pub mod audit;
pub mod checkpoint;
pub mod client;
mod correlate;
pub mod dump;
mod gauges;
mod inflight;
mod ingest;
pub mod kafka;
pub mod materialise;
mod poison;
pub mod records;
mod restore;
pub mod send;
mod stage;
pub mod timeline;
pub mod topology_refresh;
pub mod view;

pub use records::{EventsRecord, RoutedEvent, partition_of};
pub use view::View;

use std::sync::Arc;

use rdkafka::error::KafkaError;
use tokio_util::sync::CancellationToken;

use crate::engine::Settings;
use crate::telemetry::{Health, Metrics};

pub(crate) use stage::{IDLE_TICK, close_consumer, next_batch};
use stage::{guard, subscribe};

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
    #[error("the broker refused a record for `{topic}` for good ({error}); it was not written")]
    Refused { topic: String, error: String },
    #[error("cannot use the Backstage catalog: {0}")]
    Backstage(String),
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
    // Clients are created before anything waits on the broker, so their context reports a
    // refused credential or certificate (on /readyz and once in the log) while start-up waits.
    let producer = kafka::producer(&cfg.kafka, &metrics, &health).map_err(PipelineError::Client)?;
    let stop_all = shutdown.child_token();
    let backstage = if cfg.backstage.enabled() {
        Some(topology_refresh::client(&cfg.backstage).map_err(PipelineError::Backstage)?)
    } else {
        None
    };
    if cfg.kafka.create_topics {
        match kafka::ensure_topics(cfg, &metrics, &health, &shutdown).await {
            Err(PipelineError::Interrupted) => return Ok(()),
            r => r?,
        }
    }
    let events_partitions = match kafka::check_partitions(cfg, &producer, &health, &shutdown).await
    {
        Err(PipelineError::Interrupted) => return Ok(()),
        r => r?,
    };
    let ingest_consumer = subscribe(cfg, "ingest", &cfg.topics.raw, &metrics, &health)?;
    let correlate_consumer = subscribe(cfg, "correlate", &cfg.topics.events, &metrics, &health)?;
    // The service model: the topology file, or with a Backstage catalog, both, refreshed.
    let (model_tx, model) = tokio::sync::watch::channel(settings.topology.clone());
    if let Some(client) = backstage {
        let first = topology_refresh::first(&client, &settings, &metrics).await;
        let last = first.map(|(file, topo)| {
            metrics.business.set_topology(&topo);
            let _ = model_tx.send(Arc::new(topo));
            file
        });
        tokio::spawn(topology_refresh::refresh(
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
        kafka::Sender::new(cfg, producer.clone(), &metrics, &health, "ingest"),
        events_partitions,
        model.clone(),
    );
    let correlate = correlate::Correlate::new(
        &settings,
        kafka::Sender::new(cfg, producer.clone(), &metrics, &health, "correlate"),
        view,
        model,
    )?;
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

#[cfg(test)]
mod tests;
