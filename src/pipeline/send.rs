//! Sending a batch of output records until the broker acknowledged every one, and what to do
//! when it never will: errors are classified, transient ones retried with backoff, a record the
//! broker refuses for good (too large, not authorised, an invalid record) is dead-lettered to
//! `topics.dlq` (cut to fit the producer's `message.max.bytes`) or dropped, with an ERROR and a
//! metric, so one record never stalls a stage. A batch that stays unacknowledged for longer than
//! `kafka.stall_timeout` marks its stage not ready, with the reason, until it goes through.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

use crate::telemetry::events::ProduceRetried;
use crate::telemetry::shell::{DeadLetterTruncated, ProduceFailed, StageStalled};
use crate::telemetry::{Health, Metrics};

use super::PipelineError;
use super::kafka::KafkaProducer;

/// One record to publish.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub topic: String,
    /// Explicit partition; `None` lets the producer pick by key.
    pub partition: Option<i32>,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    /// Record timestamp in milliseconds; `None` lets the producer stamp it.
    pub timestamp: Option<i64>,
}

/// Header of a dead letter whose payload was cut to fit: the original size in bytes.
pub const TRUNCATED_HEADER: &str = "d2c.truncated";

/// Longest `d2c.error` header of a dead letter.
const MAX_ERROR_HEADER: usize = 1024;

/// What librdkafka counts per header besides key and value (lengths, framing), rounded up.
const HEADER_OVERHEAD: usize = 16;

/// Room kept for the `d2c.truncated` header and the record's own framing.
const LETTER_MARGIN: usize = 256;

/// What a stage does with a record the broker refuses for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRefused {
    /// Write it to the DLQ instead (and drop it if the DLQ refuses it too).
    DeadLetter,
    /// Fail the send (checkpoints: an undelivered checkpoint is tried again later, its offsets
    /// are not stored).
    Fail,
}

/// How one stage sends: its producer, where refused records go, how long a batch may take.
#[derive(Clone)]
pub struct Sender {
    pub producer: KafkaProducer,
    pub metrics: Metrics,
    pub health: Health,
    /// Stage name, for the readiness condition `<stage>.stalled` and the metrics.
    pub stage: &'static str,
    pub dlq_topic: String,
    /// The producer's `message.max.bytes`.
    pub max_bytes: usize,
    pub stall_timeout: Duration,
    pub on_refused: OnRefused,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("stage", &self.stage)
            .field("dlq_topic", &self.dlq_topic)
            .finish_non_exhaustive()
    }
}

impl Sender {
    pub fn new(
        cfg: &crate::config::Config,
        producer: KafkaProducer,
        metrics: &Metrics,
        health: &Health,
        stage: &'static str,
    ) -> Sender {
        Sender {
            producer,
            metrics: metrics.clone(),
            health: health.clone(),
            stage,
            dlq_topic: cfg.topics.dlq.clone(),
            max_bytes: cfg.kafka.max_message_bytes(),
            stall_timeout: cfg.kafka.stall_timeout,
            on_refused: OnRefused::DeadLetter,
        }
    }
}

/// Whether retrying a failed produce can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permanence {
    /// The broker is away, slow or electing a leader: send again.
    Transient,
    /// Retrying cannot change the answer for this record.
    Permanent,
    /// Usually a passing state (metadata not propagated yet after a topic was created), permanent
    /// once it lasts longer than `kafka.stall_timeout`.
    Lingering,
    /// The producer itself is unusable (an idempotence failure); only a restart helps.
    Fatal,
}

/// The permanence of produce error `e`.
pub fn permanence(e: &KafkaError) -> Permanence {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::InvalidRecord
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::InvalidTopic
            | C::InvalidRequiredAcks
            | C::UnsupportedForMessageFormat
            | C::PolicyViolation
            | C::InvalidTimestamp
            | C::InvalidArgument,
        ) => Permanence::Permanent,
        Some(C::UnknownTopic | C::UnknownPartition) => Permanence::Lingering,
        Some(C::Fatal) => Permanence::Fatal,
        _ => Permanence::Transient,
    }
}

/// `payload` as a dead letter on `dlq_topic`, cut to fit `max_bytes` with key and headers (the
/// original size then goes into [`TRUNCATED_HEADER`]). The `d2c.error` header is cut to 1 KiB.
pub fn dead_letter(
    dlq_topic: &str,
    key: &[u8],
    payload: &[u8],
    mut headers: Vec<(&'static str, Vec<u8>)>,
    timestamp: Option<i64>,
    max_bytes: usize,
    metrics: &Metrics,
) -> OutRecord {
    for (k, v) in &mut headers {
        if *k == "d2c.error" && v.len() > MAX_ERROR_HEADER {
            let mut end = MAX_ERROR_HEADER;
            while end > 0 && (v[end] & 0xC0) == 0x80 {
                end -= 1;
            }
            v.truncate(end);
        }
    }
    let key = &key[..key.len().min(max_bytes / 4)];
    let headers_size: usize = headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + HEADER_OVERHEAD)
        .sum();
    let room = max_bytes.saturating_sub(key.len() + headers_size + LETTER_MARGIN);
    let payload = if payload.len() > room {
        metrics.emit(DeadLetterTruncated {
            original: payload.len(),
            kept: room,
        });
        headers.push((TRUNCATED_HEADER, payload.len().to_string().into_bytes()));
        &payload[..room]
    } else {
        payload
    };
    OutRecord {
        topic: dlq_topic.to_string(),
        partition: None,
        key: key.to_vec(),
        payload: payload.to_vec(),
        headers,
        timestamp,
    }
}

impl Sender {
    /// Sends `records` and waits until the broker acknowledged every one. Transient failures
    /// are sent again with backoff (order within a partition is kept by the idempotent producer
    /// for records in flight together); a record refused for good is handled per
    /// [`Sender::on_refused`]. Gives up only when `shutdown` is cancelled (the caller then does
    /// not store the input offsets, and the input is read again), on a fatal producer error, or
    /// with [`OnRefused::Fail`].
    pub async fn send_all(
        &self,
        records: &[OutRecord],
        shutdown: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let condition = self.stall_condition();
        let started = Instant::now();
        let mut stalled = false;
        let mut last_error: Option<String> = None;
        // Records to send again: none before the first round, which sends `records` themselves.
        let mut again: Option<Vec<OutRecord>> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            let failed = {
                let current: Vec<&OutRecord> = match &again {
                    None => records.iter().collect(),
                    Some(a) => a.iter().collect(),
                };
                let sends = join_all(current.iter().map(|r| self.send_one(r)));
                tokio::pin!(sends);
                let results = loop {
                    let stall_at = tokio::time::Instant::from_std(started + self.stall_timeout);
                    tokio::select! {
                        results = &mut sends => break results,
                        _ = tokio::time::sleep_until(stall_at), if !stalled => {
                            stalled = self.stall(&condition, started, last_error.as_deref());
                        }
                    }
                };
                let mut failed: Vec<OutRecord> = Vec::new();
                for (r, res) in current.iter().zip(results) {
                    let Err(e) = res else { continue };
                    last_error = Some(e.to_string());
                    let refused = match permanence(&e) {
                        Permanence::Transient => false,
                        Permanence::Lingering => started.elapsed() >= self.stall_timeout,
                        Permanence::Permanent => true,
                        Permanence::Fatal => return Err(self.fatal(&e)),
                    };
                    if !refused {
                        self.metrics.emit(ProduceRetried {
                            topic: &r.topic,
                            error: &e,
                        });
                        failed.push((*r).clone());
                        continue;
                    }
                    if self.on_refused == OnRefused::Fail {
                        return Err(PipelineError::Refused {
                            topic: r.topic.clone(),
                            error: e.to_string(),
                        });
                    }
                    if r.topic == self.dlq_topic {
                        self.metrics.emit(ProduceFailed {
                            topic: &r.topic,
                            error: &e,
                            action: "dropped",
                            bytes: r.payload.len(),
                        });
                        continue;
                    }
                    self.metrics.emit(ProduceFailed {
                        topic: &r.topic,
                        error: &e,
                        action: "dead_lettered",
                        bytes: r.payload.len(),
                    });
                    failed.push(self.letter_for(r, &e));
                }
                failed
            };
            if failed.is_empty() {
                if stalled {
                    self.unstall(&condition, started);
                }
                return Ok(());
            }
            again = Some(failed);
            if !stalled && started.elapsed() >= self.stall_timeout {
                stalled = self.stall(&condition, started, last_error.as_deref());
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.health.clear_condition(&condition);
                    return Err(PipelineError::Interrupted);
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// The readiness condition `<stage>.stalled`.
    pub(super) fn stall_condition(&self) -> String {
        format!("{}.stalled", self.stage)
    }

    /// Clears the stall marked by [`Sender::stall`] once the broker acknowledged the batch.
    pub(super) fn unstall(&self, condition: &str, started: Instant) {
        if self.health.clear_condition(condition) {
            tracing::info!(stage = self.stage, waited = ?started.elapsed(), "the broker acknowledged the batch; the stage is ready again");
        }
    }

    /// The error that stops the stage when the producer itself failed (`e` is fatal).
    pub(super) fn fatal(&self, e: &KafkaError) -> PipelineError {
        PipelineError::Stage(
            self.stage,
            format!("the producer failed for good ({e}); restart d2c"),
        )
    }

    /// Marks the stage stuck; returns true.
    pub(super) fn stall(
        &self,
        condition: &str,
        started: Instant,
        last_error: Option<&str>,
    ) -> bool {
        let waited = started.elapsed();
        self.metrics.emit(StageStalled {
            stage: self.stage,
            waited,
            last_error,
        });
        self.health.set_condition(
            condition,
            format!(
                "the broker has not acknowledged a batch for over {:?} (kafka.stall_timeout); last error: {}",
                self.stall_timeout,
                last_error.unwrap_or("none yet, still waiting")
            ),
        );
        true
    }

    /// The dead letter of record `r`, which the broker refused with `e`.
    fn letter_for(&self, r: &OutRecord, e: &KafkaError) -> OutRecord {
        let mut headers = vec![
            ("d2c.reason", b"produce_refused".to_vec()),
            ("d2c.error", e.to_string().into_bytes()),
            ("d2c.target.topic", r.topic.as_bytes().to_vec()),
        ];
        headers.extend(r.headers.iter().cloned());
        dead_letter(
            &self.dlq_topic,
            &r.key,
            &r.payload,
            headers,
            r.timestamp,
            self.max_bytes,
            &self.metrics,
        )
    }

    async fn send_one(&self, r: &OutRecord) -> Result<(), KafkaError> {
        self.producer
            .send(future_record(r), Timeout::Never)
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}

/// `r` as the producer takes it.
pub(super) fn future_record(r: &OutRecord) -> FutureRecord<'_, [u8], [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
    for (k, v) in &r.headers {
        headers = headers.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    let mut rec = FutureRecord::to(&r.topic)
        .key(r.key.as_slice())
        .payload(r.payload.as_slice())
        .headers(headers);
    if let Some(ts) = r.timestamp {
        rec = rec.timestamp(ts);
    }
    if let Some(p) = r.partition {
        rec = rec.partition(p);
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_never_exceeds_the_producer_limit_and_says_what_it_cut() {
        let metrics = Metrics::new(&Default::default());
        let raw = vec![b'x'; 1_048_000];
        let long_error = "é".repeat(5000);
        let letter = dead_letter(
            "d2c.dlq",
            b"key",
            &raw,
            vec![
                ("d2c.reason", b"oversize".to_vec()),
                ("d2c.error", long_error.into_bytes()),
            ],
            None,
            1_000_000,
            &metrics,
        );
        let size = letter.key.len()
            + letter.payload.len()
            + letter
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + HEADER_OVERHEAD)
                .sum::<usize>();
        assert!(size <= 1_000_000, "{size}");
        assert!(letter.payload.len() > 990_000);
        let truncated = letter.headers.iter().find(|(k, _)| *k == TRUNCATED_HEADER);
        assert_eq!(truncated.map(|(_, v)| v.as_slice()), Some(&b"1048000"[..]));
        let error = &letter
            .headers
            .iter()
            .find(|(k, _)| *k == "d2c.error")
            .unwrap()
            .1;
        assert!(error.len() <= MAX_ERROR_HEADER);
        assert!(
            std::str::from_utf8(error).is_ok(),
            "cut on a character boundary"
        );

        let small = dead_letter("d2c.dlq", b"", b"{}", Vec::new(), None, 1_000_000, &metrics);
        assert_eq!(small.payload, b"{}");
        assert!(small.headers.is_empty());
    }

    #[test]
    fn refusals_that_retrying_cannot_change_are_permanent() {
        use RDKafkaErrorCode as C;
        let p = |c| permanence(&KafkaError::MessageProduction(c));
        assert_eq!(p(C::MessageSizeTooLarge), Permanence::Permanent);
        assert_eq!(p(C::TopicAuthorizationFailed), Permanence::Permanent);
        assert_eq!(p(C::InvalidRecord), Permanence::Permanent);
        assert_eq!(p(C::UnknownTopic), Permanence::Lingering);
        assert_eq!(p(C::MessageTimedOut), Permanence::Transient);
        assert_eq!(p(C::BrokerTransportFailure), Permanence::Transient);
        assert_eq!(p(C::Fatal), Permanence::Fatal);
    }
}
