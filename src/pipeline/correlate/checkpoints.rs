//! The correlate stage's checkpoints: which partitions are due, taking each, writing it in the
//! background once every output sent before it is acknowledged, and storing the input offsets
//! a checkpoint covers once the broker acknowledged it.

use std::time::Instant;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::telemetry::events::{CheckpointStep, CheckpointWritten};

use super::super::PipelineError;
use super::super::checkpoint;
use super::super::inflight;
use super::super::kafka::{KafkaConsumer, assigned};
use super::Correlate;

/// How long the checkpoints taken after one batch may hold the stage before the rest due wait
/// for the next batches. The first is always taken: a copy of a large state (a full
/// checkpoint) or of many changes takes tens of milliseconds, and taken together for every
/// partition they held one batch for all of them (BENCHMARKS.md, round 3h).
const TAKE_BUDGET: std::time::Duration = std::time::Duration::from_millis(2);

/// When a partition's first checkpoint is due (or the next one after a lost delta), both full
/// ones, if `state.checkpoint_interval` is longer: a full checkpoint copies the whole state on
/// the stage's thread, so it is taken while the state of a partition that starts empty is
/// small, not after an interval of growth (at 10,000 new alerts/s, 30 s of growth made each
/// partition's first copy take ~130 ms; BENCHMARKS.md, round 3h).
const FIRST_FULL_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl Correlate {
    /// Checkpoints partitions with unsaved progress whose interval passed (all of them when
    /// `force`). A checkpoint is taken at once (a delta of what changed or a copy of the
    /// state, see [`Part::take`](super::super::restore::Part::take)), then serialised in the
    /// background and written once every output sent before it is acknowledged (a checkpoint
    /// says the outputs of the input it covers are published), so the stage waits neither for
    /// the broker nor for the write; when the broker acknowledged it, the input offsets it
    /// covers are stored. Taking one holds the stage, so partitions due together are spread
    /// over the next batches (see [`TAKE_BUDGET`]). With `force`, takes every one and waits
    /// for them all.
    pub(super) async fn checkpoint(
        &mut self,
        consumer: &KafkaConsumer,
        force: bool,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        if force && !self.flights.is_empty() {
            // Waited for here: nothing hands acknowledgements back while the stage waits for
            // its checkpoints.
            let done = self.flights.drain(shutdown).await?;
            self.published(done);
        }
        self.finish_checkpoints(consumer, force).await?;
        let cfg = &self.settings.config;
        let interval = cfg.state.checkpoint_interval;
        let mut due: Vec<(Instant, i32)> = self
            .parts
            .iter()
            .filter(|(_, part)| {
                let progressed = part.next > part.checkpointed && part.next >= 0;
                // A new owner's first checkpoint (full) comes soon, while the state is as
                // small as it will be; the deltas after it cost what changed.
                let wait = if part.need_full {
                    interval.min(FIRST_FULL_AFTER)
                } else {
                    interval
                };
                part.pending.is_none()
                    && progressed
                    && (force || part.last_checkpoint.elapsed() >= wait)
            })
            .map(|(&p, part)| (part.last_checkpoint, p))
            .collect();
        // The longest waiting first.
        due.sort_unstable();
        let (sent, acknowledged) = (self.flights.sent(), self.flights.acknowledged());
        let started = Instant::now();
        let mut taken_any = false;
        for (_, p) in due {
            if !force && taken_any && started.elapsed() >= TAKE_BUDGET {
                // The rest at the next batches.
                break;
            }
            let Some(part) = self.parts.get_mut(&p) else {
                continue;
            };
            if !assigned(consumer, &cfg.topics.events, p) {
                // Revoked meanwhile: the new owner writes the checkpoints now.
                continue;
            }
            // The last checkpoint (on shutdown) takes the engine itself: no copy of a state
            // that is dropped next (that copy was the peak of d2c's memory).
            let took = Instant::now();
            let taken = part.take(&cfg.state, force.then(|| self.settings.engine()));
            let delta = matches!(taken, checkpoint::Taken::Delta { .. });
            if !matches!(taken, checkpoint::Taken::Engine(_)) {
                self.metrics.emit(CheckpointStep {
                    delta,
                    step: "take",
                    elapsed: took.elapsed(),
                });
            }
            let (metrics, waits) = (self.metrics.clone(), self.metrics.clone());
            let (sender, shutdown) = (self.checkpoints.clone(), shutdown.clone());
            let (topic, watermark) = (cfg.topics.events.clone(), part.next);
            let (state_topic, chunk_bytes) = (cfg.topics.state.clone(), cfg.state.chunk_bytes);
            let mut acknowledged = acknowledged.clone();
            let task = tokio::spawn(async move {
                let recs = tokio::task::spawn_blocking(move || {
                    let at = (topic.as_str(), p, watermark);
                    let serialising = Instant::now();
                    let recs = checkpoint::records_of(taken, at, &state_topic, chunk_bytes);
                    metrics.emit(CheckpointStep {
                        delta,
                        step: "serialise",
                        elapsed: serialising.elapsed(),
                    });
                    recs
                })
                .await
                .map_err(|e| PipelineError::Stage("checkpoint", e.to_string()))?;
                let bytes = recs.iter().map(|r| r.payload.len()).sum();
                let waiting = Instant::now();
                inflight::acknowledged(&mut acknowledged, sent, &shutdown).await?;
                waits.emit(CheckpointStep {
                    delta,
                    step: "wait",
                    elapsed: waiting.elapsed(),
                });
                sender.send_all(&recs, &shutdown).await?;
                Ok(bytes)
            });
            part.pending = Some((part.next, task));
            part.last_checkpoint = Instant::now();
            taken_any = true;
        }
        if force && taken_any {
            self.finish_checkpoints(consumer, true).await?;
        }
        Ok(())
    }

    /// Collects checkpoints written in the background (waiting for them when `wait`), and
    /// stores the input offsets the acknowledged ones cover.
    async fn finish_checkpoints(
        &mut self,
        consumer: &KafkaConsumer,
        wait: bool,
    ) -> Result<(), PipelineError> {
        let topic = self.settings.config.topics.events.clone();
        let mut tpl = TopicPartitionList::new();
        for (&p, part) in self.parts.iter_mut() {
            let Some((watermark, task)) = part.pending.take() else {
                continue;
            };
            if !wait && !task.is_finished() {
                part.pending = Some((watermark, task));
                continue;
            }
            let r = task.await;
            let r = r.map_err(|e| PipelineError::Stage("checkpoint", e.to_string()));
            let r = r.and_then(|r| r);
            let delta = part.written(r.is_ok());
            let bytes = match r {
                Ok(bytes) => bytes,
                // The broker refuses the checkpoint for good (e.g. a chunk over its limit):
                // its offsets stay unstored, the next interval tries again, the stage goes on.
                Err(PipelineError::Refused { topic, error }) => {
                    tracing::error!(
                        partition = p,
                        topic,
                        error,
                        "the broker refused a checkpoint; its input will be processed again after a restart (lower state.chunk_bytes if the chunks are too large)"
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.metrics.emit(CheckpointWritten { bytes, delta });
            part.checkpointed = watermark;
            self.poisoned.forget_below(p, watermark);
            let _ = tpl.add_partition_offset(&topic, p, Offset::Offset(watermark));
        }
        if tpl.count() > 0
            && let Err(e) = consumer.store_offsets(&tpl)
        {
            tracing::debug!(error = %e, "cannot store offsets (partition revoked meanwhile?)");
        }
        Ok(())
    }
}
