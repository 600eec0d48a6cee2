//! The runtime every stage shares (ingest, correlate, delivery): subscribing a consumer in the
//! stage's own group, taking batches, storing and committing offsets, and stopping the other
//! stages when one fails.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use tokio_util::sync::CancellationToken;

use super::PipelineError;
use super::kafka::{self, LagContext};
use crate::telemetry::{Health, Metrics};

/// Runs one stage; if it fails, stops the other too.
pub(super) async fn guard(
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

pub(super) fn subscribe(
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
pub(super) fn store_offsets(consumer: &StreamConsumer<LagContext>, batch: &[BorrowedMessage<'_>]) {
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
