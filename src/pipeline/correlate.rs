//! The correlate stage: normalised events → one engine per input partition → incidents and
//! RFCs, with the engine state checkpointed to the state topic.
//!
//! Order of writes per batch: outputs (awaited), then checkpoints of partitions that are due
//! (awaited), then the input offsets those checkpoints cover. A partition's state is restored
//! from its newest checkpoint before any of its input is applied; input below the checkpoint's
//! watermark is skipped, and if the consumer's position is past the watermark it seeks back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::correlate::Outcome;
use crate::engine::Settings;
use crate::engine::{Engine, Input};
use crate::model::Output;
use crate::pipeline::View;
use crate::telemetry::events::{
    BatchProcessed, CheckpointWritten, EventSuppressed, EventsCorrelated, InputGap,
    MilestonesReached, OutputsPublished, ProblemsCounted, RecordUndecodable, SecurityEventReceived,
    StateEvicted, StateRestored,
};
use crate::telemetry::shell::EventDeadLettered;
use crate::telemetry::{Health, Metrics};

use super::PipelineError;
use super::checkpoint::{self, Taken};
use super::kafka::{KafkaConsumer, OffRuntime, OutRecord, Sender, assigned, base_config, seek};
use super::poison::{Poisoned, output_record};
use super::records::{EventsRecord, UNDECODABLE_EVENT, undecodable};
use super::send::OnRefused;
use super::stage::{close_consumer, next_batch};

/// How long to wait for the consumer to deliver the watermark's record after a seek before
/// accepting that the input in between is gone (deleted by retention).
const SEEK_PATIENCE: Duration = Duration::from_secs(30);

/// One owned input partition.
struct Part {
    engine: Engine,
    /// The next input offset to apply.
    next: i64,
    /// The watermark of the last checkpoint written or restored.
    checkpointed: i64,
    last_checkpoint: Instant,
    /// Set after a seek back to `next`: records past it are skipped until it arrives.
    seeking_since: Option<Instant>,
    /// A checkpoint being written in the background, and the watermark it covers.
    pending: Option<(i64, tokio::task::JoinHandle<Result<usize, PipelineError>>)>,
    /// The first offset this engine applied: where a rebuild without a checkpoint starts.
    first: Option<i64>,
}

pub(super) struct Correlate {
    settings: Arc<Settings>,
    /// Sends outputs; dead-letters what the broker refuses for good.
    sender: Sender,
    /// A producer of its own for checkpoints, so that large checkpoints never queue ahead of
    /// incident records.
    checkpoints: Sender,
    metrics: Metrics,
    parts: HashMap<i32, Part>,
    restorer: OffRuntime<BaseConsumer>,
    /// When the state gauges were last computed (they walk the whole state, so at most once a
    /// second, not per batch).
    gauges_at: Option<Instant>,
    /// What the read API serves: this stage gives it the service model in use, the silences
    /// and the suppressed alerts (incidents come from the topics, see `pipeline::materialise`).
    view: View,
    /// The service model in use, and where a refreshed one arrives.
    topology: Arc<crate::topology::Topology>,
    model: tokio::sync::watch::Receiver<Arc<crate::topology::Topology>>,
    /// Inputs that made an engine panic, skipped when read again, and partitions being rebuilt.
    poisoned: Poisoned,
}

impl Correlate {
    pub(super) fn new(
        settings: &Arc<Settings>,
        sender: Sender,
        view: View,
        mut model: tokio::sync::watch::Receiver<Arc<crate::topology::Topology>>,
    ) -> Result<Self, PipelineError> {
        let k = &settings.config.kafka;
        let mut c = base_config(k).map_err(PipelineError::Client)?;
        c.set("group.id", format!("{}-restore", k.group_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // librdkafka's 500 ms fetch wait was most of each restore (two reads per partition).
            .set("fetch.wait.max.ms", super::kafka::FETCH_WAIT_MAX_MS);
        let restorer: BaseConsumer = c.create().map_err(PipelineError::Client)?;
        let topology = model.borrow_and_update().clone();
        let (metrics, health) = (sender.metrics.clone(), sender.health.clone());
        let producer =
            super::kafka::producer(k, &metrics, &health).map_err(PipelineError::Client)?;
        let mut checkpoints =
            Sender::new(&settings.config, producer, &metrics, &health, "checkpoint");
        checkpoints.on_refused = OnRefused::Fail;
        Ok(Correlate {
            settings: settings.clone(),
            sender,
            checkpoints,
            metrics,
            parts: HashMap::new(),
            restorer: OffRuntime::new(restorer),
            gauges_at: None,
            view,
            topology,
            model,
            poisoned: Poisoned::default(),
        })
    }

    pub(super) async fn run(
        mut self,
        consumer: OffRuntime<KafkaConsumer>,
        health: Health,
        shutdown: CancellationToken,
    ) -> Result<(), PipelineError> {
        let k = self.settings.config.kafka.clone();
        let result = loop {
            let Some(batch) = next_batch(
                &consumer,
                k.batch_max_records,
                k.batch_linger,
                &health,
                &shutdown,
            )
            .await
            else {
                break Ok(());
            };
            match self.process(&consumer, &batch, &shutdown).await {
                Ok(()) => {}
                Err(PipelineError::Interrupted) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if result.is_ok() {
            // A last checkpoint of everything applied, so a successor starts where we stopped.
            let never = CancellationToken::new();
            let deadline = tokio::time::sleep(k.shutdown_deadline);
            tokio::select! {
                r = self.checkpoint(&consumer, true, &never) => if let Err(e) = r {
                    tracing::warn!(error = %e, "cannot write the final checkpoints; input since the last ones will be processed again");
                },
                _ = deadline => tracing::warn!("final checkpoints not acknowledged before the shutdown deadline"),
            }
        }
        close_consumer(consumer, "correlate").await;
        result
    }

    async fn process(
        &mut self,
        consumer: &KafkaConsumer,
        batch: &[BorrowedMessage<'_>],
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let start = Instant::now();
        self.drop_revoked(consumer);
        if self.model.has_changed().unwrap_or(false) {
            self.topology = self.model.borrow_and_update().clone();
            for part in self.parts.values_mut() {
                part.engine.set_topology(self.topology.clone());
            }
        }
        let mut outputs: Vec<(Output, Option<i64>)> = Vec::new();
        let mut outcomes = [0u64; Outcome::ALL.len()];
        for m in batch {
            let p = m.partition();
            if !self.parts.contains_key(&p) && !self.restore(consumer, p, shutdown).await? {
                continue;
            }
            if self.admit(consumer, p, m.offset()) && !self.apply(m, &mut outcomes, &mut outputs) {
                // The engine panicked (a bug) and may be half changed: restore it from its
                // checkpoint and read the partition again from there (without that input).
                let first = self.parts.remove(&p).and_then(|part| part.first);
                self.poisoned.rebuilding.insert(p, first);
                if self.restore(consumer, p, shutdown).await? {
                    self.seek_back(consumer, p, m.offset());
                }
            }
        }
        self.metrics.emit(EventsCorrelated { counts: &outcomes });
        self.publish(&outputs, shutdown).await?;
        self.checkpoint(consumer, false, shutdown).await?;
        if self
            .gauges_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            let elapsed = self.gauges_at.map_or(Duration::ZERO, |t| t.elapsed());
            self.set_gauges(elapsed);
            self.gauges_at = Some(Instant::now());
        }
        if !batch.is_empty() {
            self.metrics.emit(BatchProcessed {
                stage: "correlate",
                elapsed: start.elapsed(),
            });
        }
        Ok(())
    }

    /// Whether the record at offset `o` of owned partition `p` is the next one to apply. Records
    /// the checkpoint covers are passed over; when the consumer is ahead of the state, it seeks
    /// back to the watermark (and waits for it up to [`SEEK_PATIENCE`]).
    fn admit(&mut self, consumer: &KafkaConsumer, p: i32, o: i64) -> bool {
        let Some(part) = self.parts.get_mut(&p) else {
            return false;
        };
        if o < part.next {
            // Covered by the checkpoint already, or delivered again after a seek.
            return false;
        }
        // `next` is -1 for a partition with no checkpoint: it starts wherever the consumer is.
        if part.next >= 0 && o > part.next {
            if part
                .seeking_since
                .is_some_and(|since| since.elapsed() < SEEK_PATIENCE)
            {
                return false;
            }
            if part.seeking_since.is_none() {
                // The consumer is ahead of the state: go back to the watermark.
                self.seek_back(consumer, p, o);
                return false;
            }
            self.metrics.emit(InputGap {
                partition: p,
                expected: part.next,
                got: o,
            });
        }
        part.seeking_since = None;
        part.next = o + 1;
        part.first.get_or_insert(o);
        true
    }

    /// Seeks owned partition `p` back to the next input its state needs (the consumer is at
    /// `from`); records past it are passed over until it arrives (see [`Self::admit`]).
    fn seek_back(&mut self, consumer: &KafkaConsumer, p: i32, from: i64) {
        if let Some(part) = self.parts.get_mut(&p) {
            let (topic, to) = (&self.settings.config.topics.events, part.next);
            tracing::info!(
                partition = p,
                from,
                to,
                "seeking back to the checkpoint watermark"
            );
            part.seeking_since = seek(consumer, topic, p, to).then(Instant::now);
        }
    }

    /// Applies one admitted record to its partition's engine: its outputs go to `outputs` with
    /// the record's timestamp, its events' outcomes to `outcomes`. False when the engine
    /// panicked on one of its inputs (that input is dead-lettered, the rest left to the rebuild).
    fn apply(
        &mut self,
        m: &BorrowedMessage<'_>,
        outcomes: &mut [u64; Outcome::ALL.len()],
        outputs: &mut Vec<(Output, Option<i64>)>,
    ) -> bool {
        let (p, o) = (m.partition(), m.offset());
        let Some(part) = self.parts.get_mut(&p) else {
            return true;
        };
        let ts = m.timestamp().to_millis();
        let record = match EventsRecord::decode(m) {
            Ok((record, rejected)) => {
                // Elements of a batch that do not read go to the DLQ alone; the others apply.
                for r in rejected {
                    tracing::warn!(partition = p, offset = o, index = r.index, error = %r.error, "an event of an events record does not read; it goes to the DLQ, the rest of the record is applied");
                    self.metrics.emit(EventDeadLettered {
                        reason: UNDECODABLE_EVENT,
                    });
                    outputs.push((Output::Dlq(undecodable(r.error, r.raw)), ts));
                }
                record
            }
            Err(e) => {
                // Only d2c writes this topic; a foreign record goes to the DLQ, not fatal.
                self.metrics.emit(RecordUndecodable {
                    partition: p,
                    offset: o,
                    error: &e,
                });
                let raw = String::from_utf8_lossy(m.payload().unwrap_or(&[])).into_owned();
                outputs.push((Output::Dlq(undecodable(e.to_string(), raw)), ts));
                return true;
            }
        };
        for (i, input) in record.inputs().into_iter().enumerate() {
            if let Input::Event(ev, _) = &input
                && ev.category == crate::model::Category::Security
            {
                self.metrics
                    .emit(SecurityEventReceived { source: &ev.source });
            }
            let at = (p, o, i);
            let applied = match self
                .poisoned
                .apply(&mut part.engine, &self.metrics, at, input)
            {
                Ok(Some(applied)) => applied,
                Ok(None) => continue,
                Err(dlq) => {
                    outputs.push((Output::Dlq(dlq), ts));
                    return false;
                }
            };
            // Counted once per batch, not with a label lookup per event.
            if let Some(outcome) = applied.outcome {
                outcomes[outcome as usize] += 1;
            }
            if let Some(s) = &applied.suppressed {
                self.metrics.emit(EventSuppressed { reason: s.reason });
            }
            self.metrics.emit(StateEvicted {
                evicted: &applied.evicted,
            });
            outputs.extend(applied.outputs.into_iter().map(|o| (o, ts)));
        }
        true
    }

    /// Publishes the outputs of a batch (incidents, RFCs, and security incidents to their own
    /// topic too) and waits for the broker; then counts them.
    async fn publish(
        &mut self,
        outputs: &[(Output, Option<i64>)],
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let topics = &self.settings.config.topics;
        let mut records: Vec<OutRecord> = outputs
            .iter()
            .map(|(o, _)| output_record(topics, o, self.sender.max_bytes, &self.metrics))
            .collect();
        if let Some(topic) = &self.settings.config.topics.security {
            // Security incidents also go to their own topic: the same bytes, the same key.
            for (o, _) in outputs {
                if let Output::Incident(i) = o
                    && i.security.is_some()
                {
                    let mut r = output_record(topics, o, self.sender.max_bytes, &self.metrics);
                    r.topic.clone_from(topic);
                    records.push(r);
                }
            }
        }
        self.sender.send_all(&records, shutdown).await?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.metrics.emit(OutputsPublished { outputs, now_ms });
        let now = chrono::Utc::now();
        for part in self.parts.values_mut() {
            self.metrics.emit(MilestonesReached {
                milestones: &part.engine.take_milestones(),
                now,
            });
        }
        Ok(())
    }

    /// Forgets the state of partitions revoked since the last batch; their next owner restores
    /// it from the newest checkpoint.
    fn drop_revoked(&mut self, consumer: &KafkaConsumer) {
        let revoked: Vec<i32> = {
            let mut r = consumer
                .context()
                .revoked
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *r)
        };
        for p in revoked {
            if self.parts.remove(&p).is_some() {
                tracing::info!(partition = p, "partition revoked; its state is dropped");
            }
        }
    }

    /// Restores partition `p` from its newest checkpoint. Returns false when `p` is not (or no
    /// longer) assigned to this consumer.
    async fn restore(
        &mut self,
        consumer: &KafkaConsumer,
        p: i32,
        shutdown: &CancellationToken,
    ) -> Result<bool, PipelineError> {
        let topics = &self.settings.config.topics;
        if !assigned(consumer, &topics.events, p) {
            return Ok(false);
        }
        let started = Instant::now();
        let mut backoff = Duration::from_millis(200);
        let restored = loop {
            let restorer = self.restorer.shared();
            let (state_topic, events_topic) = (topics.state.clone(), topics.events.clone());
            let r = tokio::task::spawn_blocking(move || {
                checkpoint::restore(
                    &restorer,
                    &state_topic,
                    &events_topic,
                    p,
                    Duration::from_secs(30),
                )
            })
            .await
            .map_err(|e| PipelineError::Stage("correlate", e.to_string()))?;
            match r {
                Ok(r) => break r,
                // A broken checkpoint will not mend itself: stop rather than guess.
                Err(e @ checkpoint::RestoreError::Corrupt { .. }) => {
                    return Err(PipelineError::Restore(e.to_string()));
                }
                Err(e) => {
                    // The broker is away; the partition's input waits until its state is back.
                    tracing::warn!(partition = p, error = %e, "cannot restore state yet; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Err(PipelineError::Interrupted),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if !assigned(consumer, &topics.events, p) {
                        return Ok(false);
                    }
                }
            }
        };
        let s = &self.settings;
        self.metrics.emit(StateRestored {
            partition: p,
            checkpoint: restored
                .as_ref()
                .map(|cp| (cp.watermark, cp.state.published.len())),
            elapsed: started.elapsed(),
        });
        let (mut engine, next) = match restored {
            Some(cp) => (s.engine_with_state(cp.state), cp.watermark),
            None => (s.engine(), -1),
        };
        let next = self.poisoned.start(p, next);
        engine.set_topology(self.topology.clone());
        self.parts.insert(
            p,
            Part {
                engine,
                next,
                checkpointed: next,
                last_checkpoint: Instant::now(),
                seeking_since: None,
                pending: None,
                first: None,
            },
        );
        // The checkpoint covers its input: the group's offset catches up with it even when no
        // new input follows (a predecessor may have died between checkpoint and commit).
        let mut tpl = TopicPartitionList::new();
        if next >= 0
            && tpl
                .add_partition_offset(&topics.events, p, Offset::Offset(next))
                .is_ok()
        {
            let _ = consumer.store_offsets(&tpl);
        }
        Ok(true)
    }

    /// Checkpoints partitions with unsaved progress whose interval passed (all of them when
    /// `force`). A checkpoint is taken as a copy of the state after the batch's outputs were
    /// acknowledged, then serialised and written in the background so the stage keeps
    /// processing; when the broker acknowledged it, the input offsets it covers are stored.
    /// With `force`, waits for every checkpoint.
    async fn checkpoint(
        &mut self,
        consumer: &KafkaConsumer,
        force: bool,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        self.finish_checkpoints(consumer, force).await?;
        let cfg = &self.settings.config;
        let interval = cfg.state.checkpoint_interval;
        let mut started = false;
        for (&p, part) in self.parts.iter_mut() {
            let progressed = part.next > part.checkpointed && part.next >= 0;
            if part.pending.is_some()
                || !progressed
                || !(force || part.last_checkpoint.elapsed() >= interval)
            {
                continue;
            }
            if !assigned(consumer, &cfg.topics.events, p) {
                // Revoked meanwhile: the new owner writes the checkpoints now.
                continue;
            }
            // The last checkpoint (on shutdown) takes the engine itself: no copy of a state
            // that is dropped next (that copy was the peak of d2c's memory).
            let taken = if force {
                Taken::Engine(Box::new(std::mem::replace(
                    &mut part.engine,
                    self.settings.engine(),
                )))
            } else {
                Taken::Copy(Box::new(part.engine.checkpoint_state().clone()))
            };
            let (sender, shutdown) = (self.checkpoints.clone(), shutdown.clone());
            let (topic, watermark) = (cfg.topics.events.clone(), part.next);
            let (state_topic, chunk_bytes) = (cfg.topics.state.clone(), cfg.state.chunk_bytes);
            let task = tokio::spawn(async move {
                let recs = tokio::task::spawn_blocking(move || {
                    let at = (topic.as_str(), p, watermark);
                    checkpoint::records_of(taken, at, &state_topic, chunk_bytes)
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
            let bytes = match task.await {
                Ok(Ok(bytes)) => bytes,
                // The broker refuses the checkpoint for good (e.g. a chunk over its limit):
                // its offsets stay unstored, the next interval tries again, the stage goes on.
                Ok(Err(PipelineError::Refused { topic, error })) => {
                    tracing::error!(
                        partition = p,
                        topic,
                        error,
                        "the broker refused a checkpoint; its input will be processed again after a restart (lower state.chunk_bytes if the chunks are too large)"
                    );
                    continue;
                }
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(PipelineError::Stage("checkpoint", e.to_string())),
            };
            self.metrics.emit(CheckpointWritten { bytes });
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

    /// Sets the state gauges, the business-impact gauges (adding `elapsed` worth of cost) and
    /// the read API's service model, silences and suppressed alerts.
    fn set_gauges(&mut self, elapsed: Duration) {
        let (mut problems, mut evicted) = (crate::problem::Summary::default(), 0);
        for part in self.parts.values_mut() {
            problems.add(part.engine.problem_summary());
            evicted += part.engine.take_problems_evicted();
        }
        let summary = &problems;
        self.metrics.emit(ProblemsCounted { summary, evicted });
        let engines: Vec<&Engine> = self.parts.values().map(|p| &p.engine).collect();
        super::gauges::set(&self.metrics, &engines, &self.topology, &self.view, elapsed);
    }
}
