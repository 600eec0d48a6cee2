//! The correlate stage: normalised events → one engine per input partition → incidents and
//! RFCs, with the engine state checkpointed to the state topic.
//!
//! Order of writes: the outputs of each batch (handed to the producer in order; up to
//! `kafka.in_flight_batches` batches go unacknowledged while the next one is processed), then,
//! for partitions whose checkpoint is due, the checkpoint: taken at once, written in the
//! background once every output sent before it is acknowledged; then the input offsets it
//! covers once it is acknowledged. A
//! partition's state is restored from its newest checkpoint before any of its input is
//! applied; input below the checkpoint's watermark is skipped, and if the consumer's position
//! is past the watermark it seeks back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::correlate::Outcome;
use crate::engine::Settings;
use crate::engine::{Engine, Input};
use crate::model::Output;
use crate::pipeline::View;
use crate::telemetry::events::{
    BatchProcessed, Counted, EventSuppressed, EventsCorrelated, InputGap, MemosCounted,
    MilestonesReached, OutputsPublished, ProblemsCounted, RecordUndecodable, SecurityEventReceived,
    StateEvicted, StateRestored, SuppressedEvicted,
};
use crate::telemetry::held::{BatchHeld, HeldSample};
use crate::telemetry::shell::EventDeadLettered;
use crate::telemetry::{Health, Metrics};

use super::PipelineError;
use super::checkpoint;
use super::inflight::InFlight;
use super::kafka::{KafkaConsumer, OffRuntime, OutRecord, Sender, assigned, seek};
use super::poison::{Poisoned, output_record};
use super::records::{EventsRecord, UNDECODABLE_EVENT, undecodable};
use super::restore::{Part, Restorers};
use super::send::OnRefused;
use super::stage::{age_at, close_consumer, next_batch};

mod checkpoints;

/// How long to wait for the consumer to deliver the watermark's record after a seek before
/// accepting that the input in between is gone (deleted by retention).
const SEEK_PATIENCE: Duration = Duration::from_secs(30);

pub(super) struct Correlate {
    settings: Arc<Settings>,
    /// The producer's `message.max.bytes`, which `output_record` cuts dead letters to fit.
    max_bytes: usize,
    /// A producer of its own for checkpoints, so that large checkpoints never queue ahead of
    /// incident records.
    checkpoints: Sender,
    metrics: Metrics,
    parts: HashMap<i32, Part>,
    /// Read checkpoints back when partitions are assigned.
    restorers: Restorers,
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
    /// Sends outputs (dead-letters what the broker refuses for good): the batches whose
    /// outputs were sent and are not yet acknowledged.
    flights: InFlight<Published>,
    /// The batch's outputs, emptied once they are records, so the next batch reuses the space.
    outputs: Vec<(Output, Option<i64>)>,
}

/// What a batch completes with once the broker acknowledged its outputs.
struct Published {
    /// What the metrics count of its outputs (the outputs themselves are freed once sent).
    counted: Vec<Counted>,
    /// Partitions whose first outputs since their restore are in the batch, and when they were
    /// restored.
    first_out: Vec<(i32, Instant)>,
    start: Instant,
}

impl Correlate {
    pub(super) fn new(
        settings: &Arc<Settings>,
        sender: Sender,
        view: View,
        mut model: tokio::sync::watch::Receiver<Arc<crate::topology::Topology>>,
    ) -> Result<Self, PipelineError> {
        let k = &settings.config.kafka;
        let restorers = Restorers::new(k)?;
        let topology = model.borrow_and_update().clone();
        let (metrics, health) = (sender.metrics.clone(), sender.health.clone());
        let producer =
            super::kafka::producer(k, &metrics, &health).map_err(PipelineError::Client)?;
        let mut checkpoints =
            Sender::new(&settings.config, producer, &metrics, &health, "checkpoint");
        checkpoints.on_refused = OnRefused::Fail;
        Ok(Correlate {
            settings: settings.clone(),
            max_bytes: sender.max_bytes,
            checkpoints,
            metrics,
            parts: HashMap::new(),
            restorers,
            gauges_at: None,
            view,
            topology,
            model,
            poisoned: Poisoned::default(),
            flights: InFlight::new(sender, k.in_flight_batches),
            outputs: Vec::new(),
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
            let Some((batch, received)) = next_batch(
                &consumer,
                k.batch_max_records,
                k.batch_linger,
                self.flights.idle(),
                &health,
                &shutdown,
            )
            .await
            else {
                break Ok(());
            };
            match self.process(&consumer, &batch, received, &shutdown).await {
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
        self.restorers.close(Duration::from_secs(2)).await;
        result
    }

    async fn process(
        &mut self,
        consumer: &KafkaConsumer,
        batch: &[BorrowedMessage<'_>],
        received: Instant,
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let start = Instant::now();
        self.drop_revoked(consumer);
        // Every partition assigned since the last batch is restored now, side by side, whether
        // or not this batch has input for it (`restore` skips those revoked again meanwhile).
        let mut fresh = taken(&consumer.context().assigned);
        fresh.retain(|p| !self.parts.contains_key(p));
        fresh.sort_unstable();
        fresh.dedup();
        if !fresh.is_empty() {
            self.restore(consumer, &fresh, shutdown).await?;
        }
        if self.model.has_changed().unwrap_or(false) {
            self.topology = self.model.borrow_and_update().clone();
            for part in self.parts.values_mut() {
                part.engine.set_topology(self.topology.clone());
            }
        }
        let mut outputs = std::mem::take(&mut self.outputs);
        let mut outcomes = [0u64; Outcome::ALL.len()];
        // Partitions whose first outputs since their restore are in this batch.
        let mut first_out = Vec::new();
        for m in batch {
            let p = m.partition();
            if !self.parts.contains_key(&p)
                && self.restore(consumer, &[p], shutdown).await?.is_empty()
            {
                continue;
            }
            if !self.admit(consumer, p, m.offset()) {
                continue;
            }
            let before = outputs.len();
            if !self.apply(m, &mut outcomes, &mut outputs) {
                // The engine panicked (a bug) and may be half changed: restore it from its
                // checkpoint and read the partition again from there (without that input).
                let first = self.parts.remove(&p).and_then(|part| part.first);
                self.poisoned.rebuilding.insert(p, first);
                if !self.restore(consumer, &[p], shutdown).await?.is_empty() {
                    self.seek_back(consumer, p, m.offset());
                }
            } else if outputs.len() > before
                && let Some(at) = self.parts.get_mut(&p).and_then(|x| x.restored_at.take())
            {
                first_out.push((p, at));
            }
        }
        self.metrics.emit(EventsCorrelated { counts: &outcomes });
        let done = if batch.is_empty() {
            self.flights.ready(shutdown).await?
        } else {
            // A backlog: as many events as a full batch of raw records (each events record
            // holds many).
            let events: u64 = outcomes.iter().sum();
            let backlog = events >= self.settings.config.kafka.batch_max_records as u64;
            let records = self.records(&outputs);
            // Freed here, on the held clock: the space is kept for the next batch.
            let counted = outputs
                .drain(..)
                .filter_map(|(o, ts)| Counted::of(o, ts))
                .collect();
            self.metrics.emit(BatchHeld(HeldSample {
                stage: "correlate",
                records: usize::try_from(events).unwrap_or(usize::MAX),
                held: received.elapsed(),
                age_ms: age_at(batch, received),
            }));
            let then = Published {
                counted,
                first_out,
                start,
            };
            self.flights.send(records, then, backlog, shutdown).await?
        };
        self.outputs = outputs;
        self.published(done);
        self.checkpoint(consumer, false, shutdown).await?;
        if self
            .gauges_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            let elapsed = self.gauges_at.map_or(Duration::ZERO, |t| t.elapsed());
            self.set_gauges(elapsed);
            self.gauges_at = Some(Instant::now());
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

    /// The records of a batch's outputs (incidents, RFCs, and security incidents to their own
    /// topic too); counts the milestones the engines reached meanwhile.
    fn records(&mut self, outputs: &[(Output, Option<i64>)]) -> Vec<OutRecord> {
        let topics = &self.settings.config.topics;
        let mut records: Vec<OutRecord> = outputs
            .iter()
            .map(|(o, _)| output_record(topics, o, self.max_bytes, &self.metrics))
            .collect();
        if let Some(topic) = &self.settings.config.topics.security {
            // Security incidents also go to their own topic: the same bytes, the same key.
            for (o, _) in outputs {
                if let Output::Incident(i) = o
                    && i.security.is_some()
                {
                    let mut r = output_record(topics, o, self.max_bytes, &self.metrics);
                    r.topic.clone_from(topic);
                    records.push(r);
                }
            }
        }
        let now = chrono::Utc::now();
        for part in self.parts.values_mut() {
            self.metrics.emit(MilestonesReached {
                milestones: &part.engine.take_milestones(),
                now,
            });
        }
        records
    }

    /// Counts the outputs of acknowledged batches, oldest first.
    fn published(&self, done: Vec<Published>) {
        for p in done {
            let now_ms = crate::telemetry::held::now_ms();
            self.metrics.emit(OutputsPublished {
                outputs: &p.counted,
                now_ms,
            });
            for (partition, at) in p.first_out {
                // The end of a takeover as a user sees it (scripts/bench-failover.py reads it).
                let millis = at.elapsed().as_millis() as u64;
                tracing::info!(
                    partition,
                    millis,
                    "first outputs since the state was restored published"
                );
            }
            self.metrics.emit(BatchProcessed {
                stage: "correlate",
                elapsed: p.start.elapsed(),
            });
        }
    }

    /// Forgets the state of partitions revoked since the last batch; their next owner restores
    /// it from the newest checkpoint. A checkpoint of theirs still waiting to be written is
    /// dropped: written late, after the new owner's first (full) one, a delta would break the
    /// new owner's chain, and the next restore would read its input again from further back.
    fn drop_revoked(&mut self, consumer: &KafkaConsumer) {
        for p in taken(&consumer.context().revoked) {
            if let Some(part) = self.parts.remove(&p) {
                part.revoked.cancel();
                tracing::info!(partition = p, "partition revoked; its state is dropped");
            }
        }
    }

    /// Restores partitions `ps` from their newest checkpoints, side by side (see
    /// [`Restorers::read`]). Returns those restored: the ones still assigned to this consumer.
    async fn restore(
        &mut self,
        consumer: &KafkaConsumer,
        ps: &[i32],
        shutdown: &CancellationToken,
    ) -> Result<Vec<i32>, PipelineError> {
        let topics = &self.settings.config.topics;
        let mine = |p: i32| assigned(consumer, &topics.events, p);
        let ps: Vec<i32> = ps.iter().copied().filter(|&p| mine(p)).collect();
        if ps.is_empty() {
            return Ok(ps);
        }
        let at = (topics.state.as_str(), topics.events.as_str());
        let restored = self.restorers.read(at, &ps, mine, shutdown).await?;
        let done: Vec<i32> = restored.keys().copied().collect();
        for (p, (restored, elapsed)) in restored {
            self.install(consumer, p, restored, elapsed);
        }
        Ok(done)
    }

    /// Makes restored partition `p` owned: its engine with the checkpoint's state.
    fn install(
        &mut self,
        consumer: &KafkaConsumer,
        p: i32,
        restored: Option<checkpoint::Restored>,
        elapsed: Duration,
    ) {
        let s = &self.settings;
        self.metrics.emit(StateRestored {
            partition: p,
            checkpoint: restored.as_ref().map(|r| r.read),
            elapsed,
        });
        let (mut engine, next) = match restored {
            Some(r) => (
                s.engine_with_state(r.checkpoint.state),
                r.checkpoint.watermark,
            ),
            None => (s.engine(), -1),
        };
        let next = self.poisoned.start(p, next);
        engine.set_topology(self.topology.clone());
        self.parts.insert(p, Part::restored(engine, next));
        // The checkpoint covers its input: the group's offset catches up with it even when no
        // new input follows (a predecessor may have died between checkpoint and commit).
        let mut tpl = TopicPartitionList::new();
        if next >= 0
            && tpl
                .add_partition_offset(&s.config.topics.events, p, Offset::Offset(next))
                .is_ok()
        {
            let _ = consumer.store_offsets(&tpl);
        }
    }

    /// Sets the state gauges, the business-impact gauges (adding `elapsed` worth of cost) and
    /// the read API's service model, silences and suppressed alerts.
    fn set_gauges(&mut self, elapsed: Duration) {
        let (mut problems, mut evicted, mut suppressed) =
            (crate::problem::Summary::default(), 0, 0);
        let mut counts = crate::engine::MemoCounts::default();
        for part in self.parts.values_mut() {
            problems.add(part.engine.problem_summary());
            evicted += part.engine.take_problems_evicted();
            suppressed += part.engine.take_suppressed_evicted();
            counts.add(part.engine.take_memo_counts());
        }
        self.metrics.emit(MemosCounted { counts });
        let summary = &problems;
        self.metrics.emit(ProblemsCounted { summary, evicted });
        self.metrics.emit(SuppressedEvicted {
            evicted: suppressed,
        });
        let engines: Vec<&Engine> = self.parts.values().map(|p| &p.engine).collect();
        super::gauges::set(&self.metrics, &engines, &self.topology, &self.view, elapsed);
    }
}

/// What the rebalance callback recorded in `list` since the stage last looked.
fn taken(list: &std::sync::Mutex<Vec<i32>>) -> Vec<i32> {
    std::mem::take(&mut *list.lock().unwrap_or_else(|e| e.into_inner()))
}
