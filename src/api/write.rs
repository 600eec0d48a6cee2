//! The write side of the HTTP API: one idempotent `acks=all` Kafka producer shared by HTTP
//! ingest ([`super::ingest`]) and the control endpoints ([`super::control`]), the memory budget
//! for request bodies, the answers they give and the metrics of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::ingest::{Format, IngestError, Limits};
use crate::pipeline::kafka::KafkaProducer;
use crate::telemetry::{Health, Metrics};

/// Longest wait for the broker's acknowledgement (librdkafka `message.timeout.ms` of this
/// producer, unless `kafka.properties` sets it for every client) before answering 503.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for room in librdkafka's local queue before answering 503 (defined beside the
/// one-hop writer, which this module uses and which waits as long).
pub(super) use super::direct::QUEUE_TIMEOUT;

/// `linger.ms` of this producer (the pipeline's waits 5 ms). Every request waits for its own
/// acknowledgement, so batches form from concurrent requests anyway; a shorter linger takes
/// that wait off each request's latency, which bounds a client's throughput.
const LINGER_MS: &str = "1";

/// Request bodies held in memory at once, over all requests (or one record of
/// `ingest.max_record_bytes` if that is larger), counted as their bytes arrive. Requests past
/// it wait their turn (at most `http.body_timeout`, then 503).
const BODY_BUDGET_BYTES: usize = 64 << 20;

/// The endpoint, ready to be merged into the HTTP server's router.
#[derive(Debug, Clone)]
pub struct WriteApi {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) producer: KafkaProducer,
    pub(super) topic: String,
    /// `topics.events`, where acknowledgements go.
    pub(super) events_topic: String,
    pub(super) limits: Limits,
    /// `http.body_timeout`: longest time to receive a body, and to wait for room in the budget.
    pub(super) body_timeout: Duration,
    /// Largest record the producer writes (`message.max.bytes`), key included.
    pub(super) max_message_bytes: usize,
    /// Permits are KiB of request bodies being held (see [`BODY_BUDGET_BYTES`]).
    pub(super) budget: Semaphore,
    pub(super) requests: IntCounterVec,
    pub(super) seconds: HistogramVec,
    /// The service model in use (refreshed from Backstage), for the partition of a problem
    /// opened by hand.
    pub(super) view: Option<crate::pipeline::View>,
    /// The configured suppression rules, so a new silence is refused here when every engine
    /// would refuse it (with the silences in `view`; see [`WriteApi::with_silence_rules`]).
    pub(super) silence_rules: Option<crate::suppress::Suppressor>,
    /// `ingest.http_direct`: HTTP ingest's one-hop path.
    pub(super) direct: Option<super::direct::Direct>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // FutureProducer has no Debug.
        f.debug_struct("WriteApi")
            .field("topic", &self.topic)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WriteApiError {
    #[error(
        "cannot create the Kafka producer of the HTTP ingest endpoint (check kafka.properties): {0}"
    )]
    Producer(#[source] KafkaError),
    #[error("cannot register the HTTP ingest metrics (was the endpoint set up twice?): {0}")]
    Metrics(#[source] prometheus::Error),
}

/// How a request ended, the `result` label of the metrics.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    Accepted,
    Rejected,
    Unavailable,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Accepted, Outcome::Rejected, Outcome::Unavailable];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// The `format` label of acknowledgements.
pub(super) const ACK: &str = "ack";

/// The `format` label of silences.
pub(super) const SILENCE: &str = "silence";

/// The `format` label of change decisions.
pub(super) const DECISION: &str = "decision";

/// The `format` label of problem actions.
pub(super) const PROBLEM: &str = "problem";

/// The `format` label of requests naming no known format; the set stays bounded.
pub(super) const UNKNOWN_FORMAT: &str = "unknown";

impl WriteApi {
    /// Creates the endpoint's producer (d2c's idempotent `acks=all` producer, with
    /// [`DELIVERY_TIMEOUT`] and [`LINGER_MS`]) and registers its metrics on `metrics`.
    pub fn new(
        cfg: &Config,
        metrics: &Metrics,
        health: &Health,
    ) -> Result<WriteApi, WriteApiError> {
        let mut kafka = cfg.kafka.clone();
        // Inserted as extra properties so they win over the pipeline producer's settings, but
        // not over the user's own `kafka.properties`.
        let timeout_ms = DELIVERY_TIMEOUT.as_millis().to_string();
        kafka
            .properties
            .entry("message.timeout.ms".into())
            .or_insert(timeout_ms);
        kafka
            .properties
            .entry("linger.ms".into())
            .or_insert_with(|| LINGER_MS.into());
        let producer = crate::pipeline::kafka::producer(&kafka, metrics, health)
            .map_err(WriteApiError::Producer)?;

        let requests = IntCounterVec::new(
            Opts::new(
                "d2c_http_ingest_requests_total",
                "Requests to POST /api/v1/events/{format}, by format and result (accepted, rejected, unavailable).",
            ),
            &["format", "result"],
        )
        .map_err(WriteApiError::Metrics)?;
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                "d2c_http_ingest_seconds",
                "Seconds from a request to POST /api/v1/events/{format} arriving to its answer (for accepted ones, including the broker's acknowledgement), by result.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["result"],
        )
        .map_err(WriteApiError::Metrics)?;
        for f in Format::ALL {
            for o in Outcome::ALL {
                requests.with_label_values(&[f.as_str(), o.as_str()]);
            }
        }
        requests.with_label_values(&[UNKNOWN_FORMAT, Outcome::Rejected.as_str()]);
        for o in Outcome::ALL {
            requests.with_label_values(&[ACK, o.as_str()]);
            requests.with_label_values(&[SILENCE, o.as_str()]);
            requests.with_label_values(&[DECISION, o.as_str()]);
            requests.with_label_values(&[PROBLEM, o.as_str()]);
        }
        for o in Outcome::ALL {
            seconds.with_label_values(&[o.as_str()]);
        }
        metrics
            .registry
            .register(Box::new(requests.clone()))
            .map_err(WriteApiError::Metrics)?;
        metrics
            .registry
            .register(Box::new(seconds.clone()))
            .map_err(WriteApiError::Metrics)?;

        let limits = cfg.ingest.limits();
        let budget_kib = kib(BODY_BUDGET_BYTES.max(limits.max_record_bytes));
        Ok(WriteApi {
            inner: Arc::new(Inner {
                producer,
                topic: cfg.topics.raw.clone(),
                events_topic: cfg.topics.events.clone(),
                limits,
                body_timeout: cfg.http.body_timeout,
                max_message_bytes: cfg.kafka.max_message_bytes(),
                budget: Semaphore::new(budget_kib as usize),
                requests,
                seconds,
                view: None,
                silence_rules: None,
                direct: cfg.ingest.http_direct.then(|| {
                    super::direct::Direct::new(
                        cfg.topics.events.clone(),
                        cfg.correlation.clone(),
                        Arc::default(),
                    )
                }),
            }),
        })
    }

    /// Takes the service model from `view` (the partition of a problem opened by hand is that
    /// of its service). Call before the API is shared.
    pub fn with_view(mut self, view: crate::pipeline::View) -> WriteApi {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.view = Some(view);
        }
        self
    }

    /// The service model HTTP ingest's one-hop path routes with when there is no view (the
    /// view's, refreshed with the engines', wins). Call before the API is shared.
    pub fn with_topology(mut self, topology: Arc<crate::topology::Topology>) -> WriteApi {
        if let Some(inner) = Arc::get_mut(&mut self.inner)
            && let Some(d) = &mut inner.direct
        {
            d.topology = topology;
        }
        self
    }

    /// Checks new silences against what the engines hold: the configured `rules` and the
    /// silences in the view (those of this instance's engines; every engine gets every
    /// silence). Call before the API is shared.
    pub fn with_silence_rules(mut self, rules: crate::suppress::Suppressor) -> WriteApi {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.silence_rules = Some(rules);
        }
        self
    }
}

/// KiB, rounded up, as semaphore permits (at least one; at most `u32::MAX`).
pub(super) fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// A finished answer: status, JSON body, and what the metrics record.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: serde_json::Value,
    pub(super) format: &'static str,
    pub(super) outcome: Outcome,
}

impl Answer {
    pub(super) fn rejected(
        status: StatusCode,
        format: &'static str,
        error: String,
        reason: &str,
    ) -> Answer {
        Answer {
            status,
            body: json!({"error": error, "reason": reason}),
            format,
            outcome: Outcome::Rejected,
        }
    }

    pub(super) fn bad_input(format: Format, e: &IngestError) -> Answer {
        let status = if matches!(e, IngestError::Oversize { .. }) {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        Answer::rejected(status, format.as_str(), e.to_string(), e.reason())
    }
}

impl WriteApi {
    /// Counts `answer` (by its `format` label and result) and turns it into the response, with
    /// `Retry-After: 1` when the broker was unavailable.
    pub(super) fn respond(&self, answer: Answer, start: Instant) -> Response {
        self.count(&answer, start);
        let mut response = (answer.status, axum::Json(answer.body)).into_response();
        if matches!(answer.outcome, Outcome::Unavailable) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl WriteApi {
    /// Counts `answer` by its `format` label and result, and how long it took since `start`.
    pub(super) fn count(&self, answer: &Answer, start: Instant) {
        let s = &self.inner;
        let result = answer.outcome.as_str();
        s.requests.with_label_values(&[answer.format, result]).inc();
        s.seconds
            .with_label_values(&[result])
            .observe(start.elapsed().as_secs_f64());
        tracing::debug!(format = answer.format, status = answer.status.as_u16(), result, body = %answer.body, "HTTP API request");
    }

    /// Broadcasts control record `value` under header `key` and answers 202 with `accepted`
    /// (plus the partition count), or 503 when the broker did not take it.
    pub(super) async fn control(
        &self,
        format: &'static str,
        key: &'static str,
        value: &impl serde::Serialize,
        accepted: serde_json::Value,
    ) -> Answer {
        self.control_to(format, key, value, None, accepted).await
    }

    /// As [`WriteApi::control`], to the one partition of correlation domain `domain` when
    /// given.
    pub(super) async fn control_to(
        &self,
        format: &'static str,
        key: &'static str,
        value: &impl serde::Serialize,
        domain: Option<&str>,
        mut accepted: serde_json::Value,
    ) -> Answer {
        let value = serde_json::to_vec(value).expect("a control record always serialises");
        match self.broadcast(key, &value, domain).await {
            Ok(partitions) => {
                accepted["partitions"] = json!(partitions);
                Answer {
                    status: StatusCode::ACCEPTED,
                    body: accepted,
                    format,
                    outcome: Outcome::Accepted,
                }
            }
            Err(error) => Answer {
                status: StatusCode::SERVICE_UNAVAILABLE,
                body: json!({"error": error, "reason": "broker_unavailable"}),
                format,
                outcome: Outcome::Unavailable,
            },
        }
    }

    /// Writes a control record (empty payload, `value` in header `key`) to every partition of
    /// `topics.events` (only to that of correlation domain `domain`, when given), waiting for
    /// the broker. Returns the number of partitions written.
    pub(super) async fn broadcast(
        &self,
        key: &'static str,
        value: &[u8],
        domain: Option<&str>,
    ) -> Result<i32, String> {
        let s = &self.inner;
        let (producer, topic) = (s.producer.clone(), s.events_topic.clone());
        let partitions = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer;
            producer
                .client()
                .fetch_metadata(Some(&topic), DELIVERY_TIMEOUT)
                .map(|md| md.topics().first().map_or(0, |t| t.partitions().len()))
        })
        .await;
        let partitions = match partitions {
            Ok(Ok(n)) if n > 0 => n as i32,
            Ok(Ok(_)) => return Err(format!("topic `{}` has no partitions", s.events_topic)),
            Ok(Err(e)) => return Err(format!("cannot read the events topic's partitions: {e}")),
            Err(e) => return Err(e.to_string()),
        };
        let targets = match domain {
            Some(d) => {
                let p = crate::pipeline::partition_of(d, partitions);
                p..p + 1
            }
            None => 0..partitions,
        };
        let written = targets.len() as i32;
        let sends = targets.map(|p| {
            let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                key,
                value: Some(value),
            });
            let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&s.events_topic)
                .partition(p)
                .payload(&b"[]"[..])
                .headers(headers);
            s.producer.send(record, Timeout::After(QUEUE_TIMEOUT))
        });
        for result in futures::future::join_all(sends).await {
            if let Err((e, _)) = result {
                return Err(format!(
                    "the broker did not acknowledge the record ({e}); send it again (a repeat \
                     changes nothing)"
                ));
            }
        }
        Ok(written)
    }
}

pub(super) fn unavailable(format: Format, error: String) -> Answer {
    Answer {
        status: StatusCode::SERVICE_UNAVAILABLE,
        body: json!({"error": error, "reason": "broker_unavailable"}),
        format: format.as_str(),
        outcome: Outcome::Unavailable,
    }
}

pub(super) enum BodyError {
    Oversize,
    /// Not all of it arrived within `http.body_timeout`.
    Timeout,
    /// No room in the body budget within `http.body_timeout`: other bodies fill it.
    Busy,
    Read(axum::Error),
}

/// Reads the body as [`read_body`] does, taking room in `budget` (KiB permits) as the bytes
/// arrive; the permits are held as long as the returned guard. A body that cannot get room
/// within `timeout` is [`BodyError::Busy`].
pub(super) async fn read_body_budgeted(
    body: Body,
    limit: usize,
    timeout: Duration,
    budget: &Semaphore,
) -> Result<(Vec<u8>, Option<tokio::sync::SemaphorePermit<'_>>), BodyError> {
    let waiting = std::sync::atomic::AtomicBool::new(false);
    let read = async {
        let mut raw = Vec::new();
        let mut held: Option<tokio::sync::SemaphorePermit<'_>> = None;
        let mut held_kib = 0;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(BodyError::Read)?;
            if raw.len() + chunk.len() > limit {
                return Err(BodyError::Oversize);
            }
            let need = kib(raw.len() + chunk.len());
            if need > held_kib {
                waiting.store(true, std::sync::atomic::Ordering::Relaxed);
                // Fails only once the semaphore is closed, which nothing does.
                let more = budget
                    .acquire_many(need - held_kib)
                    .await
                    .map_err(|_| BodyError::Busy)?;
                waiting.store(false, std::sync::atomic::Ordering::Relaxed);
                match &mut held {
                    Some(h) => h.merge(more),
                    None => held = Some(more),
                }
                held_kib = need;
            }
            raw.extend_from_slice(&chunk);
        }
        Ok((raw, held))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) if waiting.load(std::sync::atomic::Ordering::Relaxed) => Err(BodyError::Busy),
        Err(_) => Err(BodyError::Timeout),
    }
}

/// Reads the body, but never more than `limit` bytes of it, nor for longer than `timeout`
/// (a client trickling its body would otherwise hold its share of the body budget for good).
pub(super) async fn read_body(
    body: Body,
    declared: Option<usize>,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, BodyError> {
    let read = async {
        let mut raw = Vec::with_capacity(declared.unwrap_or(0).min(limit));
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(BodyError::Read)?;
            if raw.len() + chunk.len() > limit {
                return Err(BodyError::Oversize);
            }
            raw.extend_from_slice(&chunk);
        }
        Ok(raw)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

impl BodyError {
    /// The answer for a body that could not be read, for endpoint `format` with `limit`.
    pub(super) fn answer(self, format: &'static str, limit: usize, timeout: Duration) -> Answer {
        match self {
            BodyError::Oversize => Answer::rejected(
                StatusCode::PAYLOAD_TOO_LARGE,
                format,
                format!(
                    "the body is over the limit of {limit} bytes; split the payload into smaller \
                     requests"
                ),
                "oversize",
            ),
            BodyError::Timeout => Answer::rejected(
                StatusCode::REQUEST_TIMEOUT,
                format,
                format!(
                    "the body did not arrive within {timeout:?} (http.body_timeout); send it \
                     again, faster or smaller"
                ),
                "body_timeout",
            ),
            BodyError::Busy => Answer {
                status: StatusCode::SERVICE_UNAVAILABLE,
                body: json!({"error": "the server is receiving too many bodies at once; send it again shortly",
                             "reason": "busy"}),
                format,
                outcome: Outcome::Unavailable,
            },
            BodyError::Read(e) => Answer::rejected(
                StatusCode::BAD_REQUEST,
                format,
                format!("cannot read the request body: {e}"),
                "unreadable_body",
            ),
        }
    }
}
