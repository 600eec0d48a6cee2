//! The correlate stage's checkpoints: which partitions are due, taking each (after every
//! output sent so far is acknowledged), writing it in the background, and storing the input
//! offsets a checkpoint covers once the broker acknowledged it.

use std::time::Instant;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::telemetry::events::{CheckpointStep, CheckpointWritten};

use super::super::PipelineError;
use super::super::checkpoint;
use super::super::kafka::{KafkaConsumer, assigned};
use super::super::restore::Part;
use super::Correlate;

impl Correlate {
    /// Checkpoints partitions with unsaved progress whose interval passed (all of them when
    /// `force`). A checkpoint is taken after the batch's outputs were acknowledged (a delta of
    /// what changed or a copy of the state, see [`Part::take`]), then serialised and written
    /// in the background so the stage keeps processing; when the broker acknowledged it, the
    /// input offsets it covers are stored. With `force`, waits for every checkpoint.
    pub(super) async fn checkpoint(
        &mut self,
        consumer: &KafkaConsumer,
        force: bool,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        self.finish_checkpoints(consumer, force).await?;
        let cfg = &self.settings.config;
        let interval = cfg.state.checkpoint_interval;
        let due = |part: &Part| {
            let progressed = part.next > part.checkpointed && part.next >= 0;
            part.pending.is_none()
                && progressed
                && (force || part.last_checkpoint.elapsed() >= interval)
        };
        if !self.flights.is_empty() && self.parts.values().any(due) {
            // A checkpoint says the outputs of the input it covers are published.
            let done = self.flights.drain(shutdown).await?;
            self.published(done);
        }
        let mut started = false;
        for (&p, part) in self.parts.iter_mut() {
            if !due(part) {
                continue;
            }
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
            let metrics = self.metrics.clone();
            let (sender, shutdown) = (self.checkpoints.clone(), shutdown.clone());
            let (topic, watermark) = (cfg.topics.events.clone(), part.next);
            let (state_topic, chunk_bytes) = (cfg.topics.state.clone(), cfg.state.chunk_bytes);
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
                sender.send_all(&recs, &shutdown).await?;
                Ok(bytes)
            });
            part.pending = Some((part.next, task));
            part.last_checkpoint = Instant::now();
            started = true;
        }
        if force && started {
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
            let delta = part.written(r.as_ref().ok().copied());
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
