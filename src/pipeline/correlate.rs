//! The correlate stage: normalised events → one engine per input partition → incidents and
//! RFCs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, Summary};
use crate::model::{Event, IncidentStatus, Output};
use crate::settings::Settings;
use crate::telemetry::{Health, Metrics};

use super::kafka::{LagContext, OutRecord, send_all};
use super::{PipelineError, commit_on_exit, next_batch, secs, store_offsets};

pub(super) struct Correlate {
    settings: Arc<Settings>,
    producer: FutureProducer,
    metrics: Metrics,
    engines: HashMap<i32, Engine>,
}

impl Correlate {
    pub(super) fn new(
        settings: &Arc<Settings>,
        producer: FutureProducer,
        metrics: Metrics,
    ) -> Self {
        Correlate {
            settings: settings.clone(),
            producer,
            metrics,
            engines: HashMap::new(),
        }
    }

    pub(super) async fn run(
        mut self,
        consumer: StreamConsumer<LagContext>,
        health: Health,
        shutdown: CancellationToken,
    ) -> Result<(), PipelineError> {
        let k = self.settings.config.kafka.clone();
        while let Some(batch) = next_batch(
            &consumer,
            k.batch_max_records,
            k.batch_linger,
            &health,
            &shutdown,
        )
        .await
        {
            let start = Instant::now();
            let mut outputs: Vec<(Output, Option<i64>)> = Vec::new();
            for m in &batch {
                let Some(payload) = m.payload() else { continue };
                let ev: Event = match serde_json::from_slice(payload) {
                    Ok(ev) => ev,
                    Err(e) => {
                        // Only d2c writes this topic; a foreign record is skipped, not fatal.
                        tracing::warn!(partition = m.partition(), offset = m.offset(), error = %e, "record on the events topic is not a d2c event; skipped");
                        self.metrics.records_undecodable.inc();
                        continue;
                    }
                };
                let engine = self.engines.entry(m.partition()).or_insert_with(|| {
                    Engine::new(
                        self.settings.topology.clone(),
                        self.settings.policy.clone(),
                        self.settings.config.correlation.clone(),
                    )
                });
                let applied = engine.apply(&ev);
                self.metrics
                    .events_correlated
                    .with_label_values(&[applied.outcome.as_str()])
                    .inc();
                let ts = m.timestamp().to_millis();
                outputs.extend(applied.outputs.into_iter().map(|o| (o, ts)));
            }
            // Timers run on stream time: each engine's latest event time.
            for engine in self.engines.values_mut() {
                if let Some(now) = engine.state().clock {
                    outputs.extend(engine.tick(now).into_iter().map(|o| (o, None)));
                }
            }
            let records: Vec<OutRecord> = outputs.iter().map(|(o, _)| self.record(o)).collect();
            match send_all(&self.producer, &records, &self.metrics, &shutdown).await {
                Ok(()) => {}
                Err(PipelineError::Interrupted) => break,
                Err(e) => return Err(e),
            }
            store_offsets(&consumer, &batch);
            self.count(&outputs);
            let mut total = Summary::default();
            for e in self.engines.values() {
                let s = e.summary();
                total.active_alerts += s.active_alerts;
                for (p, n) in s.open_by_priority {
                    *total.open_by_priority.entry(p).or_default() += n;
                }
                for (c, n) in s.open_by_capability {
                    *total.open_by_capability.entry(c).or_default() += n;
                }
            }
            self.metrics.set_summary(&total, &self.settings.topology);
            self.metrics
                .batch_seconds
                .with_label_values(&["correlate"])
                .observe(secs(start));
        }
        commit_on_exit(&consumer, "correlate");
        Ok(())
    }

    fn record(&self, o: &Output) -> OutRecord {
        let topics = &self.settings.config.topics;
        let (topic, key) = match o {
            Output::Incident(i) => (&topics.incidents, i.id.as_bytes()),
            Output::Change(r) => (&topics.changes, r.id.as_bytes()),
            // The engine never emits DLQ records; ingest writes raw bytes to the DLQ itself.
            Output::Dlq(_) => (&topics.dlq, &[][..]),
        };
        OutRecord {
            topic: topic.clone(),
            key: key.to_vec(),
            payload: o.to_json().into_bytes(),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Counts acknowledged outputs, and the latency from the raw event entering Kafka to the
    /// incident record acknowledged.
    fn count(&self, outputs: &[(Output, Option<i64>)]) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for (o, ts) in outputs {
            match o {
                Output::Incident(i) => {
                    self.metrics.incident_versions.inc();
                    let p = i.priority.as_str();
                    if i.version == 1 {
                        self.metrics.incidents_opened.with_label_values(&[p]).inc();
                    }
                    if i.status == IncidentStatus::Resolved {
                        self.metrics
                            .incidents_resolved
                            .with_label_values(&[p])
                            .inc();
                    }
                    if let Some(ts) = ts {
                        let secs = (now_ms - ts).max(0) as f64 / 1000.0;
                        self.metrics.event_to_incident.observe(secs);
                    }
                }
                Output::Change(r) => {
                    let category = match r.category {
                        crate::model::RfcCategory::Emergency => "emergency",
                        crate::model::RfcCategory::Standard => "standard",
                        crate::model::RfcCategory::Normal => "normal",
                    };
                    self.metrics
                        .rfcs_published
                        .with_label_values(&[category])
                        .inc();
                }
                Output::Dlq(_) => {}
            }
        }
    }
}
