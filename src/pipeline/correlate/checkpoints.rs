//! The correlate stage's checkpoints: which partitions are due, taking each, writing it in the
//! background once every output sent before it is acknowledged, and storing the input offsets
//! a checkpoint covers once the broker acknowledged it.

use std::time::Instant;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::telemetry::events::{CheckpointDropped, CheckpointStep, CheckpointWritten};

use super::super::PipelineError;
use super::super::checkpoint;
use super::super::inflight;
use super::super::kafka::{KafkaConsumer, assigned};
use super::super::restore::Copied;
use super::Correlate;

/// How long copying checkpoints after one batch may hold the stage; the rest is copied after
/// the next batches. A copy of a large state (a full checkpoint) or of many changes takes tens
/// of milliseconds (60–85 ms for a delta of 30 s of 10,000 new alerts/s), so each is copied a
/// few keys at a time over as many batches as it needs, the state going on changing meanwhile
/// (`model::tracked`); taken at once, and together for every partition, they held one batch
/// for all of them (BENCHMARKS.md, rounds 3h and 3i).
const TAKE_BUDGET: std::time::Duration = std::time::Duration::from_millis(2);

/// When a partition's first checkpoint is due (or the next one after a lost delta), both full
/// ones, if `state.checkpoint_interval` is longer: a full checkpoint copies the whole state on
/// the stage's thread (its keys at once, the rest over the next batches), so it is taken while
/// the state of a partition that starts empty is small, not after an interval of growth (at
/// 10,000 new alerts/s, 30 s of growth made each partition's first copy, at once, take ~130
/// ms; BENCHMARKS.md, round 3h), and the deltas after it are what a restore reads.
const FIRST_FULL_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl Correlate {
    /// Checkpoints partitions with unsaved progress whose interval passed (all of them when
    /// `force`). A checkpoint is begun at once (a delta of what changed or a copy of the
    /// state, see [`Part::take`](super::super::restore::Part::take)) and copied over the next
    /// batches within [`TAKE_BUDGET`] a batch, then serialised in the
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
        let settings = self.settings.clone();
        let cfg = &settings.config;
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
                // A checkpoint being copied is written when complete (on shutdown the engine
                // is taken whole instead).
                part.pending.is_none()
                    && (force || part.copying.is_none())
                    && progressed
                    && (force || part.last_checkpoint.elapsed() >= wait)
            })
            .map(|(&p, part)| (part.last_checkpoint, p))
            .collect();
        // The longest waiting first.
        due.sort_unstable();
        let started = Instant::now();
        let mut taken_any = false;
        // Checkpoints being copied go on first, within the budget; on shutdown the engine
        // itself is taken instead (see `Part::take`).
        if !force {
            let parts: Vec<i32> = self
                .parts
                .iter()
                .filter(|(_, part)| part.copying.is_some())
                .map(|(&p, _)| p)
                .collect();
            for p in parts {
                let left = TAKE_BUDGET.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                self.copy_more(p, left, shutdown);
            }
        }
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
            let (watermark, sent) = (part.next, self.flights.sent());
            let taken = part.take(&cfg.state, force.then(|| settings.engine()), sent);
            part.last_checkpoint = Instant::now();
            taken_any = true;
            match taken {
                Some(taken) => {
                    if !matches!(taken, checkpoint::Taken::Engine(_)) {
                        self.metrics.emit(CheckpointStep {
                            delta: false,
                            step: "take",
                            elapsed: took.elapsed(),
                        });
                    }
                    self.write(p, taken, watermark, sent, shutdown);
                }
                None => {
                    let left = TAKE_BUDGET.saturating_sub(started.elapsed());
                    self.copy_more(p, left, shutdown);
                }
            }
        }
        if force && taken_any {
            self.finish_checkpoints(consumer, true).await?;
        }
        Ok(())
    }

    /// Copies more of partition `p`'s checkpoint for `budget` (at least a few keys); once it
    /// is complete, writes it. The time it held the stage, in all, is counted as its take.
    fn copy_more(&mut self, p: i32, budget: std::time::Duration, shutdown: &CancellationToken) {
        let Some(part) = self.parts.get_mut(&p) else {
            return;
        };
        let Some(Copied {
            taken,
            watermark,
            sent,
            held,
            batches,
        }) = part.copy(budget)
        else {
            return;
        };
        tracing::debug!(
            partition = p,
            batches,
            held_ms = held.as_secs_f64() * 1e3,
            "checkpoint copied"
        );
        self.metrics.emit(CheckpointStep {
            delta: matches!(taken, checkpoint::Taken::Delta { .. }),
            step: "take",
            elapsed: held,
        });
        self.write(p, taken, watermark, sent, shutdown);
    }

    /// Serialises `taken` in the background and writes it once the first `sent` output
    /// batches are acknowledged; pending on partition `p` until then.
    fn write(
        &mut self,
        p: i32,
        taken: checkpoint::Taken,
        watermark: i64,
        sent: u64,
        shutdown: &CancellationToken,
    ) {
        let cfg = &self.settings.config;
        let delta = matches!(taken, checkpoint::Taken::Delta { .. });
        let (metrics, waits) = (self.metrics.clone(), self.metrics.clone());
        let (sender, shutdown) = (self.checkpoints.clone(), shutdown.clone());
        let topic = cfg.topics.events.clone();
        let (state_topic, chunk_bytes) = (cfg.topics.state.clone(), cfg.state.chunk_bytes);
        let mut acknowledged = self.flights.acknowledged();
        let Some(revoked) = self.parts.get(&p).map(|part| part.revoked.clone()) else {
            return;
        };
        let before = revoked.clone();
        let task = tokio::spawn(async move {
            let recs = tokio::task::spawn_blocking(move || {
                // Revoked before it was serialised: not even serialised (a rebalance is when
                // the cores are wanted for restores).
                if before.is_cancelled() {
                    return None;
                }
                let at = (topic.as_str(), p, watermark);
                let serialising = Instant::now();
                let recs = checkpoint::records_of(taken, at, &state_topic, chunk_bytes);
                // Test-only (feature `failpoints`): `checkpoint-serialise=sleep(MS)` makes
                // every checkpoint take MS longer to serialise, so that tests see partitions
                // revoked while one is pending.
                #[cfg(feature = "failpoints")]
                fail::fail_point!("checkpoint-serialise");
                metrics.emit(CheckpointStep {
                    delta,
                    step: "serialise",
                    elapsed: serialising.elapsed(),
                });
                Some(recs)
            })
            .await
            .map_err(|e| PipelineError::Stage("checkpoint", e.to_string()))?;
            let waiting = Instant::now();
            // Written once the outputs before it are acknowledged, unless revoked first.
            let ready = match recs {
                Some(recs) => inflight::acknowledged_unless_revoked(
                    &mut acknowledged,
                    sent,
                    &revoked,
                    &shutdown,
                )
                .await?
                .then_some(recs),
                None => None,
            };
            let Some(recs) = ready else {
                waits.emit(CheckpointDropped {
                    partition: p,
                    delta,
                });
                // Nobody waits for it any more: the partition's `Part` is gone.
                return Err(PipelineError::Interrupted);
            };
            let bytes = recs.iter().map(|r| r.payload.len()).sum();
            waits.emit(CheckpointStep {
                delta,
                step: "wait",
                elapsed: waiting.elapsed(),
            });
            sender.send_all(&recs, &shutdown).await?;
            Ok(bytes)
        });
        if let Some(part) = self.parts.get_mut(&p) {
            part.pending = Some((watermark, task));
        }
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
