//! The runtime every stage shares (ingest, correlate, delivery, automation): subscribing a
//! consumer in the stage's own group, taking batches (with the consumer's readiness condition),
//! storing offsets, closing the consumer off the async runtime with a last commit, and stopping
//! the other stages when one fails.

use std::time::Duration;

use futures::{FutureExt, StreamExt};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::PipelineError;
use super::kafka::{self, KafkaConsumer, OffRuntime};
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
    health: &Health,
) -> Result<OffRuntime<KafkaConsumer>, PipelineError> {
    let group = format!("{}-{stage}", cfg.kafka.group_id);
    let c = kafka::consumer(&cfg.kafka, &group, metrics, health).map_err(PipelineError::Client)?;
    let c = OffRuntime::new(c);
    c.subscribe(&[topic])
        .map_err(|source| PipelineError::Subscribe {
            topic: topic.to_string(),
            source,
        })?;
    Ok(c)
}

/// Readiness condition while a consumer reports errors.
const CONSUMER_CONDITION: &str = "kafka.consumer";

/// Longest wait for a record before [`next_batch`] returns an empty batch, so the stage does
/// its periodic work while its input is quiet.
pub(crate) const IDLE_TICK: Duration = Duration::from_secs(1);

/// The same while batches are in flight: their acknowledgements are handed back (offsets
/// stored, outputs counted with the time they were acknowledged) within this long even when
/// no input follows.
pub(crate) const SETTLE_TICK: Duration = Duration::from_millis(5);

/// Waits for the first record (or shutdown), then takes more until `max` records or `linger`
/// has passed; returns them with the instant the first one was received. Returns `None` on
/// shutdown, and an empty batch after `idle` (usually [`IDLE_TICK`]) without input. Broker
/// errors are logged and waited out: the consumer reconnects by itself.
pub(crate) async fn next_batch<'c>(
    consumer: &'c KafkaConsumer,
    max: usize,
    linger: Duration,
    idle: Duration,
    health: &Health,
    shutdown: &CancellationToken,
) -> Option<(Vec<BorrowedMessage<'c>>, std::time::Instant)> {
    let idle = tokio::time::sleep(idle);
    tokio::pin!(idle);
    let mut errored = false;
    let first = loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            // Nothing arrived: an empty batch lets the stage do its periodic work (finish
            // checkpoints, refresh gauges) while the input is quiet.
            _ = &mut idle => {
                if !errored {
                    // A quiet second without an error: the consumer is well, just idle.
                    health.clear_condition(CONSUMER_CONDITION);
                }
                return Some((Vec::new(), std::time::Instant::now()));
            }
            m = consumer.recv() => match m {
                Ok(m) => {
                    health.set_ready(true);
                    health.clear_condition(CONSUMER_CONDITION);
                    break m
                }
                Err(e) => {
                    errored = true;
                    if health.set_condition(CONSUMER_CONDITION, format!("the consumer reports: {e}")) {
                        tracing::warn!(error = %e, "consumer error; retrying");
                    } else {
                        tracing::debug!(error = %e, "consumer error; retrying");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    };
    let received = std::time::Instant::now();
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + linger;
    // One stream for the whole batch: records already fetched are taken without a timer each
    // (`recv` per record registered and dropped a waker and a timer every time, ~13 µs a
    // record, four times the ingest stage's own work on it).
    let mut stream = consumer.stream();
    while batch.len() < max {
        let next = match stream.next().now_or_never() {
            Some(next) => next,
            None if linger.is_zero() => break,
            None => match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
        };
        match next {
            Some(Ok(m)) => batch.push(m),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error while filling a batch");
                break;
            }
            // A consumer's stream never ends.
            None => break,
        }
    }
    Some((batch, received))
}

/// How old `batch`'s records were, on average, when it was `received`: then minus their Kafka
/// timestamps, in ms (the hop before the stage, as the stage sees it). The mean, not the first
/// record's age: a producer stamps a burst over a few ms, so the first record is the oldest of
/// it. `None` when no record has a timestamp.
pub(super) fn age_at(batch: &[BorrowedMessage<'_>], received: std::time::Instant) -> Option<i64> {
    let then = crate::telemetry::held::now_ms()
        .saturating_sub(i64::try_from(received.elapsed().as_millis()).unwrap_or(i64::MAX));
    let (mut sum, mut n) = (0i64, 0i64);
    for ts in batch.iter().filter_map(|m| m.timestamp().to_millis()) {
        sum = sum.saturating_add(then.saturating_sub(ts));
        n += 1;
    }
    (n > 0).then(|| sum / n)
}

/// The offsets to store once `batch`'s outputs are acknowledged: per input partition, the one
/// after its last record in the batch (the background commit picks them up).
pub(super) fn next_offsets(batch: &[BorrowedMessage<'_>]) -> TopicPartitionList {
    let mut next: std::collections::BTreeMap<(&str, i32), i64> = Default::default();
    for m in batch {
        let o = next.entry((m.topic(), m.partition())).or_insert(0);
        *o = (*o).max(m.offset().saturating_add(1));
    }
    let mut tpl = TopicPartitionList::with_capacity(next.len());
    for ((topic, p), o) in next {
        let _ = tpl.add_partition_offset(topic, p, Offset::Offset(o));
    }
    tpl
}

/// Commits the stored offsets and closes the consumer (leaving its group) on a thread of its
/// own, so a broker that does not answer cannot block the runtime; waits for it.
pub(crate) async fn close_consumer(consumer: OffRuntime<KafkaConsumer>, stage: &'static str) {
    let closed = consumer.close(stage, move |c| commit_on_exit(c, stage));
    let _ = closed.await;
}

/// Commits stored offsets before the stage exits (blocking: call off the runtime).
fn commit_on_exit(consumer: &KafkaConsumer, stage: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!(stage, "offsets committed on shutdown"),
        // No offsets stored yet is not a failure.
        Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(stage, error = %e, "cannot commit offsets on shutdown"),
    }
}
