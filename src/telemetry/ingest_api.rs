//! HTTP ingest, `POST /api/v1/events/{format}`: the front door of `topics.raw` for tools that
//! cannot write to Kafka (an Alertmanager `webhook_config`, a script with curl). A payload is
//! checked with the same parser the ingest stage runs ([`crate::ingest::parse_as`]), written to
//! `topics.raw` byte for byte, and answered `202 Accepted` only after the broker acknowledged
//! the record; the ingest stage then reads it like any other raw record.
//!
//! Answers (every error body is JSON with a sentence in `error`, most with a `reason` too):
//! - `202 {"accepted": <events in the payload>, "partition": p, "offset": o}`: written;
//! - `400` bad input, `reason` as in the DLQ (`malformed_json`, `missing_field`, …), or
//!   `invalid_header` for a bad `X-Source`; `413` (`oversize`) for a body over
//!   `ingest.max_record_bytes`, refused before more than that is read;
//! - `404` for a format d2c does not read;
//! - `503` with `Retry-After: 1` (`broker_unavailable`) when the broker did not acknowledge
//!   within [`DELIVERY_TIMEOUT`]. The record may still have been written; sending it again is
//!   safe because repeats of an alert change no incident.
//!
//! `POST /api/v1/incidents/{id}/ack` with `{"by": "<who>"}` acknowledges an incident: an
//! acknowledgement record goes to every partition of `topics.events` (the one whose engine holds
//! the incident applies it and publishes a new version with `acknowledged_at`/`_by`; the others
//! ignore it). `202 {"incident", "acknowledged_by", "partitions"}` once the broker has them all;
//! `400` for a bad id or body; `503` as above. The answer cannot say whether the incident
//! exists: the engines, not this endpoint, know that.
//!
//! `POST /api/v1/changes/{id}/decision` with `{"decision": "approved"|"rejected", "by":
//! "<who>", "comment": "<optional>"}` records a change authority's decision on an RFC (for
//! example called by the ITSM tool's approval workflow): a decision record goes to every
//! partition of `topics.events`, and the engine that raised the RFC publishes its next version
//! with `decision`. `202 {"change", "decision", "partitions"}`; `400` for a bad id or body;
//! `503` as above. Repeating a decision publishes nothing new.
//!
//! `POST /api/v1/silences` with a silence (`matchers`, `starts_at`, `ends_at`, optional `id`,
//! `created_by`, `comment`, as in `[[suppression.silences]]`) is checked, then written to every
//! partition of `topics.events` the same way; every engine adds it (and keeps it in its
//! checkpoints). `202 {"id", "silence", "partitions"}`; `400` with the problem for a bad one. A
//! silence with the id of an existing one replaces it (end one early by sending it again with
//! an earlier `ends_at`).
//!
//! **Key.** The record key is the request's `X-Source` header (the sending tool or host), else
//! the format name. Records with one key keep their order in one raw partition, so a sender
//! that wants its payloads spread over partitions names itself in `X-Source`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::json;
use tokio::sync::Semaphore;

use super::Metrics;
use crate::config::Config;
use crate::ingest::{Format, IngestError, Limits, parse_as};

/// Longest wait for the broker's acknowledgement (librdkafka `message.timeout.ms` of this
/// producer, unless `kafka.properties` sets it for every client) before answering 503.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for room in librdkafka's local queue before answering 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// `linger.ms` of this producer (the pipeline's waits 5 ms). Every request waits for its own
/// acknowledgement, so batches form from concurrent requests anyway; a shorter linger takes
/// that wait off each request's latency, which bounds a client's throughput.
const LINGER_MS: &str = "1";

/// Request bodies held in memory at once, over all requests (or one record of
/// `ingest.max_record_bytes` if that is larger). Requests past it wait their turn.
const BODY_BUDGET_BYTES: usize = 64 << 20;

/// Longest `X-Source` header used as a record key.
const MAX_SOURCE_BYTES: usize = 256;

/// The endpoint, ready to be merged into the HTTP server's router.
#[derive(Debug, Clone)]
pub struct IngestApi {
    inner: Arc<Inner>,
}

struct Inner {
    producer: FutureProducer,
    topic: String,
    /// `topics.events`, where acknowledgements go.
    events_topic: String,
    limits: Limits,
    /// Permits are KiB of request bodies being held (see [`BODY_BUDGET_BYTES`]).
    budget: Semaphore,
    requests: IntCounterVec,
    seconds: HistogramVec,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // FutureProducer has no Debug.
        f.debug_struct("IngestApi")
            .field("topic", &self.topic)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IngestApiError {
    #[error(
        "cannot create the Kafka producer of the HTTP ingest endpoint (check kafka.properties): {0}"
    )]
    Producer(#[source] KafkaError),
    #[error("cannot register the HTTP ingest metrics (was the endpoint set up twice?): {0}")]
    Metrics(#[source] prometheus::Error),
}

/// How a request ended, the `result` label of the metrics.
#[derive(Debug, Clone, Copy)]
enum Outcome {
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

/// The `format` label of requests naming no known format; the set stays bounded.
const UNKNOWN_FORMAT: &str = "unknown";

/// The `format` label of acknowledgements.
const ACK: &str = "ack";

/// The `format` label of silences.
const SILENCE: &str = "silence";

/// The `format` label of change decisions.
const DECISION: &str = "decision";

/// Longest incident id or `by` accepted by the acknowledgement endpoint.
const MAX_ACK_FIELD: usize = 256;

impl IngestApi {
    /// Creates the endpoint's producer (d2c's idempotent `acks=all` producer, with
    /// [`DELIVERY_TIMEOUT`] and [`LINGER_MS`]) and registers its metrics on `metrics`.
    pub fn new(cfg: &Config, metrics: &Metrics) -> Result<IngestApi, IngestApiError> {
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
        let producer =
            crate::pipeline::kafka::producer(&kafka).map_err(IngestApiError::Producer)?;

        let requests = IntCounterVec::new(
            Opts::new(
                "d2c_http_ingest_requests_total",
                "Requests to POST /api/v1/events/{format}, by format and result (accepted, rejected, unavailable).",
            ),
            &["format", "result"],
        )
        .map_err(IngestApiError::Metrics)?;
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
        .map_err(IngestApiError::Metrics)?;
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
        }
        for o in Outcome::ALL {
            seconds.with_label_values(&[o.as_str()]);
        }
        metrics
            .registry
            .register(Box::new(requests.clone()))
            .map_err(IngestApiError::Metrics)?;
        metrics
            .registry
            .register(Box::new(seconds.clone()))
            .map_err(IngestApiError::Metrics)?;

        let limits = Limits {
            max_record_bytes: cfg.ingest.max_record_bytes,
            max_events_per_record: cfg.ingest.max_events_per_record,
        };
        let budget_kib = kib(BODY_BUDGET_BYTES.max(limits.max_record_bytes));
        Ok(IngestApi {
            inner: Arc::new(Inner {
                producer,
                topic: cfg.topics.raw.clone(),
                events_topic: cfg.topics.events.clone(),
                limits,
                budget: Semaphore::new(budget_kib as usize),
                requests,
                seconds,
            }),
        })
    }

    /// The route `POST /api/v1/events/{format}` with its state.
    pub fn router(self) -> Router {
        Router::new()
            .route("/api/v1/events/{format}", post(post_events))
            .route("/api/v1/incidents/{id}/ack", post(post_ack))
            .route("/api/v1/silences", post(post_silence))
            .route("/api/v1/changes/{id}/decision", post(post_decision))
            .with_state(self)
    }
}

/// KiB, rounded up, as semaphore permits (at least one; at most `u32::MAX`).
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// A finished answer: status, JSON body, and what the metrics record.
struct Answer {
    status: StatusCode,
    body: serde_json::Value,
    format: &'static str,
    outcome: Outcome,
}

impl Answer {
    fn rejected(status: StatusCode, format: &'static str, error: String, reason: &str) -> Answer {
        Answer {
            status,
            body: json!({"error": error, "reason": reason}),
            format,
            outcome: Outcome::Rejected,
        }
    }

    fn bad_input(format: Format, e: &IngestError) -> Answer {
        let status = if matches!(e, IngestError::Oversize { .. }) {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        Answer::rejected(status, format.as_str(), e.to_string(), e.reason())
    }
}

async fn post_events(
    State(api): State<IngestApi>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let start = Instant::now();
    let answer = api.handle(&name, &headers, body).await;
    api.respond(answer, start)
}

impl IngestApi {
    /// Counts `answer` (by its `format` label and result) and turns it into the response, with
    /// `Retry-After: 1` when the broker was unavailable.
    fn respond(&self, answer: Answer, start: Instant) -> Response {
        let s = &self.inner;
        let result = answer.outcome.as_str();
        s.requests.with_label_values(&[answer.format, result]).inc();
        s.seconds
            .with_label_values(&[result])
            .observe(start.elapsed().as_secs_f64());
        tracing::debug!(format = answer.format, status = answer.status.as_u16(), result, body = %answer.body, "HTTP API request");
        let mut response = (answer.status, axum::Json(answer.body)).into_response();
        if matches!(answer.outcome, Outcome::Unavailable) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl IngestApi {
    async fn handle(&self, name: &str, headers: &HeaderMap, body: Body) -> Answer {
        let s = &self.inner;
        let Some(format) = Format::from_name(name) else {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
            return Answer {
                status: StatusCode::NOT_FOUND,
                body: json!({"error": format!("unknown format `{name}`; use one of: {}", names.join(", "))}),
                format: UNKNOWN_FORMAT,
                outcome: Outcome::Rejected,
            };
        };
        let key = match source_key(headers) {
            Ok(Some(source)) => source,
            Ok(None) => format.as_str(),
            Err(error) => {
                return Answer::rejected(
                    StatusCode::BAD_REQUEST,
                    format.as_str(),
                    error,
                    "invalid_header",
                );
            }
        };
        let limit = s.limits.max_record_bytes;
        // A declared length over the limit is refused before a byte of the body is read.
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(size) = declared.filter(|n| *n > limit) {
            return Answer::bad_input(format, &IngestError::Oversize { size, limit });
        }
        // Fails only once the semaphore is closed, which nothing does.
        let Ok(_permit) = s
            .budget
            .acquire_many(kib(declared.unwrap_or(limit).min(limit)))
            .await
        else {
            return unavailable(format, "the server is shutting down".into());
        };
        let raw = match read_body(body, declared, limit).await {
            Ok(raw) => raw,
            Err(BodyError::Oversize) => {
                let error = format!(
                    "the body is over the limit of {limit} bytes; split the payload into smaller \
                     requests or raise ingest.max_record_bytes"
                );
                return Answer::rejected(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format.as_str(),
                    error,
                    "oversize",
                );
            }
            Err(BodyError::Read(e)) => {
                return Answer::rejected(
                    StatusCode::BAD_REQUEST,
                    format.as_str(),
                    format!("cannot read the request body: {e}"),
                    "unreadable_body",
                );
            }
        };
        let events = match parse_as(format, &raw, &s.limits) {
            Ok(events) => events.len(),
            Err(e) => return Answer::bad_input(format, &e),
        };
        let record = FutureRecord::to(&s.topic).key(key).payload(&raw);
        match s.producer.send(record, Timeout::After(QUEUE_TIMEOUT)).await {
            Ok(d) => Answer {
                status: StatusCode::ACCEPTED,
                body: json!({"accepted": events, "partition": d.partition, "offset": d.offset}),
                format: format.as_str(),
                outcome: Outcome::Accepted,
            },
            Err((e, _)) => unavailable(
                format,
                format!(
                    "the broker did not acknowledge the payload within {}s ({e}); it may or may \
                     not have been written, send it again (a repeated alert changes no incident)",
                    DELIVERY_TIMEOUT.as_secs()
                ),
            ),
        }
    }
}

/// The body of an acknowledgement.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: String,
}

async fn post_ack(State(api): State<IngestApi>, Path(id): Path<String>, body: Body) -> Response {
    let start = Instant::now();
    let answer = api.acknowledge(&id, body).await;
    api.respond(answer, start)
}

impl IngestApi {
    async fn acknowledge(&self, id: &str, body: Body) -> Answer {
        let result = async {
            check_id(ACK, id, "an incident id (e.g. INC-46cbeabff822)")?;
            let b: AckBody = json_body(ACK, body, "{\"by\": \"alice\"}").await?;
            let by = b.by.trim();
            if by.is_empty() || by.len() > MAX_ACK_FIELD {
                return Err(bad(
                    ACK,
                    format!("`by` must name who acknowledges, 1 to {MAX_ACK_FIELD} bytes"),
                    "invalid_value",
                ));
            }
            Ok(crate::model::Ack {
                incident: id.to_string(),
                by: by.to_string(),
                time: chrono::Utc::now(),
            })
        };
        let ack = match result.await {
            Ok(a) => a,
            Err(answer) => return answer,
        };
        let accepted = json!({"incident": id, "acknowledged_by": ack.by});
        self.control(ACK, crate::pipeline::records::ACK_HEADER, &ack, accepted)
            .await
    }

    /// Broadcasts control record `value` under header `key` and answers 202 with `accepted`
    /// (plus the partition count), or 503 when the broker did not take it.
    async fn control(
        &self,
        format: &'static str,
        key: &'static str,
        value: &impl serde::Serialize,
        mut accepted: serde_json::Value,
    ) -> Answer {
        let value = serde_json::to_vec(value).expect("a control record always serialises");
        match self.broadcast(key, &value).await {
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
}

/// A 400 answer of endpoint `format`.
fn bad(format: &'static str, error: String, reason: &str) -> Answer {
    Answer::rejected(StatusCode::BAD_REQUEST, format, error, reason)
}

/// Checks an incident or RFC id from the path: letters, digits, `-` and `_`, at most
/// [`MAX_ACK_FIELD`] bytes. `what` describes it in the error.
fn check_id(format: &'static str, id: &str, what: &str) -> Result<(), Answer> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ACK_FIELD
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(bad(format, format!("`{id}` is not {what}"), "invalid_id"))
    }
}

/// Reads a small JSON body (at most 64 KiB) as a `T`; `example` shows the expected shape in the
/// error.
async fn json_body<T: serde::de::DeserializeOwned>(
    format: &'static str,
    body: Body,
    example: &str,
) -> Result<T, Answer> {
    let raw = read_body(body, None, 64 * 1024).await.map_err(|_| {
        bad(
            format,
            "cannot read the request body".into(),
            "unreadable_body",
        )
    })?;
    serde_json::from_slice(&raw).map_err(|e| {
        bad(
            format,
            format!("the body must be JSON like {example}: {e}"),
            "malformed_json",
        )
    })
}

/// The body of a change decision.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: crate::model::DecisionStatus,
    by: String,
    #[serde(default)]
    comment: Option<String>,
}

async fn post_decision(
    State(api): State<IngestApi>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let start = Instant::now();
    let answer = api.decide(&id, body).await;
    api.respond(answer, start)
}

impl IngestApi {
    async fn decide(&self, id: &str, body: Body) -> Answer {
        let result = async {
            check_id(DECISION, id, "an RFC id (e.g. RFC-3f2a9c1b7d4e)")?;
            let body: DecisionBody = json_body(
                DECISION,
                body,
                "{\"decision\": \"approved\", \"by\": \"cab\", \"comment\": \"…\"} (decision `approved` or `rejected`)",
            )
            .await?;
            let by = body.by.trim();
            if by.is_empty() || by.len() > MAX_ACK_FIELD {
                return Err(bad(
                    DECISION,
                    format!("`by` must name who decided, 1 to {MAX_ACK_FIELD} bytes"),
                    "invalid_value",
                ));
            }
            if body.comment.as_ref().is_some_and(|c| c.len() > 4096) {
                return Err(bad(
                    DECISION,
                    "`comment` is over 4096 bytes".into(),
                    "invalid_value",
                ));
            }
            Ok(crate::model::ChangeDecision {
                change: id.to_string(),
                decision: body.decision,
                by: by.to_string(),
                comment: body.comment.filter(|c| !c.trim().is_empty()),
                time: chrono::Utc::now(),
            })
        };
        let decision = match result.await {
            Ok(d) => d,
            Err(answer) => return answer,
        };
        let accepted = json!({"change": id, "decision": decision.decision});
        self.control(
            DECISION,
            crate::pipeline::records::DECISION_HEADER,
            &decision,
            accepted,
        )
        .await
    }
}

impl IngestApi {
    /// Writes a control record (empty payload, `value` in header `key`) to every partition of
    /// `topics.events`, waiting for the broker. Returns the number of partitions.
    async fn broadcast(&self, key: &'static str, value: &[u8]) -> Result<i32, String> {
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
        let sends = (0..partitions).map(|p| {
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
        Ok(partitions)
    }

    async fn add_silence(&self, body: Body) -> Answer {
        let bad = |error: String, reason: &str| bad(SILENCE, error, reason);
        let example = "{\"matchers\": \"{service=\\\"checkout-api\\\"}\", \"starts_at\": \"…\", \
                       \"ends_at\": \"…\", \"created_by\": \"…\", \"comment\": \"…\"}";
        let silence: crate::suppress::Silence = match json_body(SILENCE, body, example).await {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        // Checked (and its id settled) exactly as every engine will.
        let mut check = match crate::suppress::Suppressor::new(Default::default()) {
            Ok(c) => c,
            Err(e) => return bad(e.to_string(), "invalid_value"),
        };
        let id = match check.add_silence(silence) {
            Ok(id) => id,
            Err(e) => return bad(e.to_string(), "invalid_value"),
        };
        let Some(silence) = check.silence(&id).cloned() else {
            return bad("the silence was not kept".into(), "invalid_value");
        };
        let accepted = json!({"id": id, "silence": silence});
        self.control(
            SILENCE,
            crate::pipeline::records::SILENCE_HEADER,
            &silence,
            accepted,
        )
        .await
    }
}

async fn post_silence(State(api): State<IngestApi>, body: Body) -> Response {
    let start = Instant::now();
    let answer = api.add_silence(body).await;
    api.respond(answer, start)
}

fn unavailable(format: Format, error: String) -> Answer {
    Answer {
        status: StatusCode::SERVICE_UNAVAILABLE,
        body: json!({"error": error, "reason": "broker_unavailable"}),
        format: format.as_str(),
        outcome: Outcome::Unavailable,
    }
}

/// The `X-Source` header, if given and not blank: visible ASCII, at most [`MAX_SOURCE_BYTES`].
fn source_key(headers: &HeaderMap) -> Result<Option<&str>, String> {
    let Some(v) = headers.get("x-source") else {
        return Ok(None);
    };
    let Ok(s) = v.to_str() else {
        return Err(
            "the X-Source header is invalid: use visible ASCII characters, e.g. the \
                    sending tool or host name"
                .into(),
        );
    };
    let s = s.trim();
    if s.len() > MAX_SOURCE_BYTES {
        return Err(format!(
            "the X-Source header is {} bytes, over the limit of {MAX_SOURCE_BYTES}; name the \
             sending tool or host",
            s.len()
        ));
    }
    Ok(Some(s).filter(|s| !s.is_empty()))
}

enum BodyError {
    Oversize,
    Read(axum::Error),
}

/// Reads the body, but never more than `limit` bytes of it.
async fn read_body(
    body: Body,
    declared: Option<usize>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
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
}
