//! The ingest stage: raw records → normalised events on the partition of their correlation
//! domain, one record per partition per batch (see [`RoutedEvent`]), or the DLQ.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::Consumer;
use rdkafka::{Message, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::engine::Settings;
use crate::ingest::{self, Limits};
use crate::telemetry::{Health, Metrics};
use crate::topology::Topology;
use tokio::sync::watch;

use super::PipelineError;
use super::inflight::InFlight;
use super::kafka::{KafkaConsumer, KafkaProducer, OffRuntime, OutRecord, Sender};
use super::records::{EVENTS_RECORD_BYTES, RoutedEvent, TICK_HEADER, partition_of};
use super::send::dead_letter;
use super::stage::{age_at, close_consumer, next_batch, next_offsets};
use crate::engine::Origin;
use crate::telemetry::events::{BatchProcessed, RecordDeadLettered, RecordIngested};
use crate::telemetry::held::{BatchHeld, HeldSample};

pub(super) struct Ingest {
    settings: Arc<Settings>,
    producer: KafkaProducer,
    metrics: Metrics,
    /// Sends batches; dead-letters what the broker refuses for good.
    sender: Sender,
    limits: Limits,
    /// Partitions of `topics.events`, read at start-up.
    partitions: i32,
    /// When the last ticks were written.
    ticked: Option<Instant>,
    /// The service model in use, and where a refreshed one arrives.
    topology: Arc<Topology>,
    model: watch::Receiver<Arc<Topology>>,
}

/// The events of one batch bound for one `topics.events` partition, serialised as they come.
struct Outbox {
    /// The JSON array being written: `[` and the events so far, each followed by `,`.
    open: Vec<u8>,
    /// Records already closed (each a complete JSON array), with their timestamps.
    closed: Vec<(Vec<u8>, Option<i64>)>,
    /// Raw record timestamp of the first event of the open record: the events record's own
    /// timestamp, so the correlate stage can tell how long the oldest event waited.
    timestamp: Option<i64>,
}

impl Ingest {
    pub(super) fn new(
        settings: &Arc<Settings>,
        sender: Sender,
        partitions: i32,
        mut model: watch::Receiver<Arc<Topology>>,
    ) -> Self {
        let c = &settings.config.ingest;
        let topology = model.borrow_and_update().clone();
        Ingest {
            settings: settings.clone(),
            producer: sender.producer.clone(),
            metrics: sender.metrics.clone(),
            sender,
            limits: c.limits(),
            partitions,
            ticked: None,
            topology,
            model,
        }
    }

    pub(super) async fn run(
        mut self,
        consumer: OffRuntime<KafkaConsumer>,
        health: Health,
        shutdown: CancellationToken,
    ) -> Result<(), PipelineError> {
        let settings = self.settings.clone();
        let k = &settings.config.kafka;
        // Batches sent and not yet acknowledged; each completes with its input offsets (stored
        // then) and what to count.
        let mut flights: InFlight<Sent> = InFlight::new(self.sender.clone(), k.in_flight_batches);
        let result = loop {
            let Some((batch, received)) = next_batch(
                &consumer,
                k.batch_max_records,
                k.batch_linger,
                flights.idle(),
                &health,
                &shutdown,
            )
            .await
            else {
                break Ok(());
            };
            if self.model.has_changed().unwrap_or(false) {
                self.topology = self.model.borrow_and_update().clone();
            }
            self.tick();
            // `ingest.max_ahead` is measured against the clock the ticks carry.
            self.limits.now = Some(chrono::Utc::now());
            let sent = if batch.is_empty() {
                flights.ready(&shutdown).await
            } else {
                let start = Instant::now();
                let mut out = Vec::new();
                let mut boxes = std::collections::BTreeMap::new();
                let mut counts = Vec::with_capacity(batch.len());
                for m in &batch {
                    counts.push(self.transform(m, &mut boxes, &mut out));
                }
                out.extend(self.seal(boxes));
                let then = Sent {
                    offsets: next_offsets(&batch),
                    counts,
                    start,
                };
                let backlog = batch.len() >= k.batch_max_records;
                self.metrics.emit(BatchHeld(HeldSample {
                    stage: "ingest",
                    records: batch.len(),
                    held: received.elapsed(),
                    age_ms: age_at(&batch, received),
                }));
                drop(batch);
                flights.send(out, then, backlog, &shutdown).await
            };
            match sent {
                Ok(done) => self.acknowledged(&consumer, done),
                Err(PipelineError::Interrupted) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if result.is_ok() && !flights.is_empty() {
            // Stopping: the offsets of what the broker acknowledges before the deadline are
            // stored (and committed on close); the rest is read again by the next owner.
            let never = CancellationToken::new();
            match tokio::time::timeout(k.shutdown_deadline, flights.drain(&never)).await {
                Ok(Ok(done)) => self.acknowledged(&consumer, done),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "batches in flight not acknowledged on shutdown; their input will be read again")
                }
                Err(_) => tracing::warn!(
                    "batches in flight not acknowledged before the shutdown deadline; their input will be read again"
                ),
            }
        }
        close_consumer(consumer, "ingest").await;
        result
    }

    /// Stores the input offsets of acknowledged batches (oldest first) and counts them.
    fn acknowledged(&self, consumer: &KafkaConsumer, done: Vec<Sent>) {
        for sent in done {
            if sent.offsets.count() > 0
                && let Err(e) = consumer.store_offsets(&sent.offsets)
            {
                // The partition was revoked meanwhile: the new owner reads it again.
                tracing::debug!(error = %e, "cannot store offsets");
            }
            for c in sent.counts {
                self.count(c);
            }
            self.metrics.emit(BatchProcessed {
                stage: "ingest",
                elapsed: sent.start.elapsed(),
            });
        }
    }

    /// Turns one raw record into events in `boxes` (by events partition) or a DLQ record in
    /// `out`; returns what to count once they are acked.
    fn transform(
        &self,
        m: &rdkafka::message::BorrowedMessage<'_>,
        boxes: &mut std::collections::BTreeMap<i32, Outbox>,
        out: &mut Vec<OutRecord>,
    ) -> Count {
        let raw = m.payload().unwrap_or(&[]);
        let ts = m.timestamp().to_millis();
        match ingest::parse(raw, &self.limits) {
            Ok((format, events)) => {
                let n = events.len();
                for (i, event) in events.into_iter().enumerate() {
                    let domain = crate::correlate::route::domain(
                        &self.topology,
                        &self.settings.config.correlation,
                        &event,
                    );
                    let routed = RoutedEvent {
                        // Lets the correlate stage skip events it already applied when this
                        // stage reads a raw record again after a restart.
                        origin: Some(Origin {
                            partition: m.partition(),
                            offset: m.offset(),
                            index: i as u32,
                        }),
                        event,
                    };
                    let json = serde_json::to_vec(&routed).expect("events always serialise");
                    if json.len() + crate::config::RECORD_KEY_ROOM > self.sender.max_bytes {
                        // Alone over the producer's limit (escaping can make an event larger
                        // than its raw record): the raw record goes to the DLQ for this event,
                        // the other events of the record go on.
                        let error = format!(
                            "event {i} of the record is {} bytes as JSON, over the producer's message.max.bytes ({})",
                            json.len(),
                            self.sender.max_bytes
                        );
                        out.push(self.letter(m, raw, "event_too_large", &error));
                        self.metrics
                            .emit(crate::telemetry::shell::EventDeadLettered {
                                reason: "event_too_large",
                            });
                        continue;
                    }
                    let outbox = boxes
                        .entry(partition_of(&domain, self.partitions))
                        .or_insert_with(|| Outbox {
                            open: Vec::new(),
                            closed: Vec::new(),
                            timestamp: ts,
                        });
                    if outbox.open.len() > 1 && outbox.open.len() + json.len() > EVENTS_RECORD_BYTES
                    {
                        let full = std::mem::take(&mut outbox.open);
                        outbox.closed.push((close_array(full), outbox.timestamp));
                    }
                    if outbox.open.is_empty() {
                        outbox.open.push(b'[');
                        outbox.timestamp = ts;
                    }
                    outbox.open.extend_from_slice(&json);
                    outbox.open.push(b',');
                }
                Count::Ok(format.as_str(), n)
            }
            Err(e) => {
                let reason = e.reason();
                tracing::debug!(reason, error = %e, partition = m.partition(), offset = m.offset(), "record sent to the DLQ");
                out.push(self.letter(m, raw, reason, &e.to_string()));
                Count::Dlq(e.format().map_or("unknown", |f| f.as_str()), reason)
            }
        }
    }

    /// The dead letter of raw record `m` (cut to fit the producer's limit), with its reason.
    fn letter(
        &self,
        m: &rdkafka::message::BorrowedMessage<'_>,
        raw: &[u8],
        reason: &str,
        error: &str,
    ) -> OutRecord {
        dead_letter(
            &self.settings.config.topics.dlq,
            m.key().unwrap_or(&[]),
            raw,
            vec![
                ("d2c.reason", reason.as_bytes().to_vec()),
                ("d2c.error", error.as_bytes().to_vec()),
                ("d2c.source.topic", m.topic().as_bytes().to_vec()),
                (
                    "d2c.source.partition",
                    m.partition().to_string().into_bytes(),
                ),
                ("d2c.source.offset", m.offset().to_string().into_bytes()),
            ],
            m.timestamp().to_millis(),
            self.sender.max_bytes,
            &self.metrics,
        )
    }

    /// Enqueues a tick for every events partition when `ingest.tick_interval` has passed,
    /// without waiting for the broker: a tick lost to an error is replaced by the next one, and
    /// the idempotent producer keeps it in order with the events around it, so waiting would
    /// only delay the batch behind it.
    fn tick(&mut self) {
        let every = self.settings.config.ingest.tick_interval;
        if every.is_zero() || self.ticked.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.ticked = Some(Instant::now());
        let now = chrono::Utc::now();
        let text = crate::model::format_rfc3339(now);
        for p in 0..self.partitions {
            let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                key: TICK_HEADER,
                value: Some(text.as_str()),
            });
            let record: rdkafka::producer::FutureRecord<'_, [u8], [u8]> =
                rdkafka::producer::FutureRecord::to(&self.settings.config.topics.events)
                    .partition(p)
                    .payload(&b"[]"[..])
                    .timestamp(now.timestamp_millis())
                    .headers(headers);
            if let Err((e, _)) = self.producer.send_result(record) {
                tracing::debug!(partition = p, error = %e, "tick not enqueued; the next one follows");
            }
        }
    }

    /// The events records of one batch, partition by partition.
    fn seal(&self, boxes: std::collections::BTreeMap<i32, Outbox>) -> Vec<OutRecord> {
        let topic = &self.settings.config.topics.events;
        let mut records = Vec::new();
        for (partition, outbox) in boxes {
            let last =
                (!outbox.open.is_empty()).then(|| (close_array(outbox.open), outbox.timestamp));
            for (payload, timestamp) in outbox.closed.into_iter().chain(last) {
                records.push(OutRecord {
                    topic: topic.clone(),
                    partition: Some(partition),
                    key: Vec::new(),
                    payload,
                    headers: Vec::new(),
                    timestamp,
                });
            }
        }
        records
    }

    fn count(&self, c: Count) {
        match c {
            Count::Ok(format, events) => self.metrics.emit(RecordIngested { format, events }),
            Count::Dlq(format, reason) => self.metrics.emit(RecordDeadLettered { format, reason }),
        }
    }
}

/// What a batch completes with once the broker acknowledged its outputs.
struct Sent {
    /// The next offset of every input partition of the batch.
    offsets: TopicPartitionList,
    counts: Vec<Count>,
    start: Instant,
}

enum Count {
    Ok(&'static str, usize),
    /// Detected format (or `unknown`) and reason.
    Dlq(&'static str, &'static str),
}

/// Turns `[e1,e2,` into `[e1,e2]`.
fn close_array(mut open: Vec<u8>) -> Vec<u8> {
    if open.last() == Some(&b',') {
        open.pop();
    }
    open.push(b']');
    open
}
