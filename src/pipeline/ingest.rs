//! The ingest stage: raw records → normalised events keyed by correlation domain, or the DLQ.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

use crate::ingest::{self, Limits};
use crate::settings::Settings;
use crate::telemetry::{Health, Metrics};

use super::kafka::{LagContext, OutRecord, send_all};
use super::{ORIGIN_HEADER, PipelineError, commit_on_exit, next_batch, secs, store_offsets};

pub(super) struct Ingest {
    settings: Arc<Settings>,
    producer: FutureProducer,
    metrics: Metrics,
    limits: Limits,
}

impl Ingest {
    pub(super) fn new(
        settings: &Arc<Settings>,
        producer: FutureProducer,
        metrics: Metrics,
    ) -> Self {
        let c = &settings.config.ingest;
        Ingest {
            settings: settings.clone(),
            producer,
            metrics,
            limits: Limits {
                max_record_bytes: c.max_record_bytes,
                max_events_per_record: c.max_events_per_record,
            },
        }
    }

    pub(super) async fn run(
        self,
        consumer: StreamConsumer<LagContext>,
        health: Health,
        shutdown: CancellationToken,
    ) -> Result<(), PipelineError> {
        let k = &self.settings.config.kafka;
        while let Some(batch) = next_batch(
            &consumer,
            k.batch_max_records,
            k.batch_linger,
            &health,
            &shutdown,
        )
        .await
        {
            if batch.is_empty() {
                continue;
            }
            let start = Instant::now();
            let mut out = Vec::with_capacity(batch.len());
            let mut counts = Vec::with_capacity(batch.len());
            for m in &batch {
                counts.push(self.transform(m, &mut out));
            }
            match send_all(&self.producer, &out, &self.metrics, &shutdown).await {
                Ok(()) => {}
                Err(PipelineError::Interrupted) => break,
                Err(e) => return Err(e),
            }
            store_offsets(&consumer, &batch);
            for c in counts {
                self.count(c);
            }
            self.metrics
                .batch_seconds
                .with_label_values(&["ingest"])
                .observe(secs(start));
        }
        commit_on_exit(&consumer, "ingest");
        Ok(())
    }

    /// Turns one raw record into output records; returns what to count once they are acked.
    fn transform(
        &self,
        m: &rdkafka::message::BorrowedMessage<'_>,
        out: &mut Vec<OutRecord>,
    ) -> Count {
        let topics = &self.settings.config.topics;
        let raw = m.payload().unwrap_or(&[]);
        let ts = m.timestamp().to_millis();
        match ingest::parse(raw, &self.limits) {
            Ok((format, events)) => {
                let n = events.len();
                for (i, ev) in events.into_iter().enumerate() {
                    let res = self.settings.topology.resolve(&ev);
                    let domain = self.settings.topology.domain(&ev, &res);
                    out.push(OutRecord {
                        topic: topics.events.clone(),
                        partition: None,
                        key: domain.into_bytes(),
                        payload: serde_json::to_vec(&ev).expect("events always serialise"),
                        headers: vec![
                            ("d2c.format", format.as_str().as_bytes().to_vec()),
                            // Lets the correlate stage skip events it already applied when
                            // this stage reads a raw record again after a restart.
                            (
                                ORIGIN_HEADER,
                                format!("{}/{}/{i}", m.partition(), m.offset()).into_bytes(),
                            ),
                        ],
                        timestamp: ts,
                    });
                }
                Count::Ok(format.as_str(), n)
            }
            Err(e) => {
                let reason = e.reason();
                tracing::debug!(reason, error = %e, partition = m.partition(), offset = m.offset(), "record sent to the DLQ");
                out.push(OutRecord {
                    topic: topics.dlq.clone(),
                    partition: None,
                    key: m.key().unwrap_or(&[]).to_vec(),
                    payload: raw.to_vec(),
                    headers: vec![
                        ("d2c.reason", reason.as_bytes().to_vec()),
                        ("d2c.error", e.to_string().into_bytes()),
                        ("d2c.source.topic", m.topic().as_bytes().to_vec()),
                        (
                            "d2c.source.partition",
                            m.partition().to_string().into_bytes(),
                        ),
                        ("d2c.source.offset", m.offset().to_string().into_bytes()),
                    ],
                    timestamp: ts,
                });
                Count::Dlq(e.format().map_or("unknown", |f| f.as_str()), reason)
            }
        }
    }

    fn count(&self, c: Count) {
        match c {
            Count::Ok(format, n) => {
                self.metrics
                    .records_consumed
                    .with_label_values(&[format, "ok"])
                    .inc();
                self.metrics
                    .events_normalised
                    .with_label_values(&[format])
                    .inc_by(n as u64);
            }
            Count::Dlq(format, reason) => {
                self.metrics
                    .records_consumed
                    .with_label_values(&[format, "dlq"])
                    .inc();
                self.metrics.dlq_records.with_label_values(&[reason]).inc();
            }
        }
    }
}

enum Count {
    Ok(&'static str, usize),
    /// Detected format (or `unknown`) and reason.
    Dlq(&'static str, &'static str),
}
