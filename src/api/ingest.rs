//! HTTP ingest, `POST /api/v1/events/{format}`: the front door of `topics.raw` for tools that
//! cannot write to Kafka (an Alertmanager `webhook_config`, a script with curl). A payload is
//! checked with the same parser the ingest stage runs ([`crate::ingest::count_as`]: every check
//! of [`crate::ingest::parse_as`], each event dropped once checked, so a request holds its body
//! and the payload's parse, never all its events), written to
//! `topics.raw` byte for byte, and answered `202 Accepted` only after the broker acknowledged
//! the record; the ingest stage then reads it like any other raw record.
//!
//! Answers (every error body is JSON with a sentence in `error`, most with a `reason` too):
//! - `202 {"accepted": <events in the payload>, "partition": p, "offset": o}`: written;
//! - `400` bad input, `reason` as in the DLQ (`malformed_json`, `missing_field`, …), or
//!   `invalid_header` for a bad `X-Source`; `413` (`oversize`) for a body over
//!   `ingest.max_record_bytes`, refused before more than that is read;
//! - `404` for a format d2c does not read;
//! - `408` (`body_timeout`) for a body not received within `http.body_timeout`;
//! - `413` (`too_large_for_broker`) when the broker refuses the record for its size (its own
//!   `message.max.bytes` below d2c's limits): sending it again would not help;
//! - `503` with `Retry-After: 1` (`broker_unavailable`) when the broker did not acknowledge
//!   within [`DELIVERY_TIMEOUT`](super::DELIVERY_TIMEOUT). The record may still have been
//!   written; sending it again is safe because repeats of an alert change no incident.
//!
//! With `ingest.http_direct` the payload is parsed once and its events go straight to their
//! `topics.events` partitions (see `super::direct`), answered `202 {"accepted": n, "written":
//! [{"partition": p, "offset": o}, …]}` once every events record is acknowledged; a payload with
//! an event too large to go alone still takes the raw topic.
//!
//! **Key.** The record key is the request's `X-Source` header (the sending tool or host), else
//! the format name. Records with one key keep their order in one raw partition, so a sender
//! that wants its payloads spread over partitions names itself in `X-Source`.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde_json::json;

use super::direct::Direct;
use super::write::{
    Answer, BodyError, DELIVERY_TIMEOUT, Outcome, QUEUE_TIMEOUT, UNKNOWN_FORMAT, WriteApi,
    read_body_budgeted, unavailable,
};
use crate::ingest::{Format, IngestError, count_as, parse_as};
use crate::pipeline::send::{Permanence, permanence};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Longest `X-Source` header used as a record key.
const MAX_SOURCE_BYTES: usize = 256;

pub(super) async fn post_events(
    State(api): State<WriteApi>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let start = Instant::now();
    let answer = api.handle(&name, &headers, body).await;
    api.respond(answer, start)
}

impl WriteApi {
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
        // Budget is taken as the bytes arrive, not as declared: a client trickling a body it
        // declared large holds only what it sent, for at most `http.body_timeout`.
        let (raw, _permit) = match read_body_budgeted(body, limit, s.body_timeout, &s.budget).await
        {
            Ok(read) => read,
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
            Err(BodyError::Busy) => {
                return unavailable(
                    format,
                    "the server is receiving too many bodies at once; send it again shortly".into(),
                );
            }
            Err(e) => return e.answer(format.as_str(), limit, s.body_timeout),
        };
        let limits = crate::ingest::Limits {
            now: Some(chrono::Utc::now()),
            ..s.limits.clone()
        };
        if let Some(direct) = &s.direct
            && let Some(answer) = self.direct(direct, format, &raw, &limits).await
        {
            return answer;
        }
        let events = match count_as(format, &raw, &limits) {
            Ok(events) => events,
            Err(e) => return Answer::bad_input(format, &e),
        };
        if raw.len() + key.len() > s.max_message_bytes {
            // Cannot be written whatever the broker says: no retry helps.
            return Answer::rejected(
                StatusCode::PAYLOAD_TOO_LARGE,
                format.as_str(),
                format!(
                    "the record would be {} bytes, over the producer's message.max.bytes ({}); \
                     split the payload into smaller requests",
                    raw.len() + key.len(),
                    s.max_message_bytes
                ),
                "oversize",
            );
        }
        let record = FutureRecord::to(&s.topic).key(key).payload(&raw);
        match s.producer.send(record, Timeout::After(QUEUE_TIMEOUT)).await {
            Ok(d) => Answer {
                status: StatusCode::ACCEPTED,
                body: json!({"accepted": events, "partition": d.partition, "offset": d.offset}),
                format: format.as_str(),
                outcome: Outcome::Accepted,
            },
            Err((e, _)) => self.not_written(format, &e, raw.len() + key.len()),
        }
    }

    /// `ingest.http_direct`: parses the payload once and writes its events straight to their
    /// events partitions. `None` when the payload should take the raw topic after all (an event
    /// too large to go alone, which the ingest stage dead-letters).
    async fn direct(
        &self,
        direct: &Direct,
        format: Format,
        raw: &[u8],
        limits: &crate::ingest::Limits,
    ) -> Option<Answer> {
        let s = &self.inner;
        let events = match parse_as(format, raw, limits) {
            Ok(events) => events,
            Err(e) => return Some(Answer::bad_input(format, &e)),
        };
        let n = events.len();
        let partitions = match direct.partitions(&s.producer).await {
            Ok(p) => p,
            Err(e) => {
                return Some(unavailable(
                    format,
                    format!(
                        "cannot read the partitions of the events topic ({e}); send it again shortly"
                    ),
                ));
            }
        };
        let topology = s
            .view
            .as_ref()
            .map_or_else(|| direct.topology.clone(), |v| v.read().topology.clone());
        let fragments = direct.fragments(events, &topology, partitions, s.max_message_bytes)?;
        let largest = fragments.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
        Some(match direct.write(&s.producer, fragments).await {
            Ok(written) => Answer {
                status: StatusCode::ACCEPTED,
                body: json!({"accepted": n, "written": written
                    .iter()
                    .map(|(p, o)| json!({"partition": p, "offset": o}))
                    .collect::<Vec<_>>()}),
                format: format.as_str(),
                outcome: Outcome::Accepted,
            },
            Err(e) => self.not_written(format, &e, largest),
        })
    }

    /// The answer when the broker did not take a record of `size` bytes.
    fn not_written(&self, format: Format, e: &KafkaError, size: usize) -> Answer {
        let s = &self.inner;
        // A refusal no retry can change (a record over the broker's or the producer's size
        // limit, a topic d2c may not write) must not invite the client to retry.
        if permanence(e) != Permanence::Permanent {
            return unavailable(
                format,
                format!(
                    "the broker did not acknowledge the payload within {}s ({e}); it may or may \
                     not have been written, send it again (a repeated alert changes no incident)",
                    DELIVERY_TIMEOUT.as_secs()
                ),
            );
        }
        let too_large = matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                    | RDKafkaErrorCode::InvalidMessageSize
                    | RDKafkaErrorCode::MessageBatchTooLarge
            )
        );
        if too_large {
            Answer::rejected(
                StatusCode::PAYLOAD_TOO_LARGE,
                format.as_str(),
                format!(
                    "the broker refuses a record of {size} bytes ({e}); split the payload into \
                     smaller requests"
                ),
                "too_large_for_broker",
            )
        } else {
            tracing::error!(error = %e, topic = %s.topic, "the broker refuses HTTP ingest records for good");
            Answer {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({"error": format!("the broker refuses the record for good ({e}); \
                            an operator must fix the topic or d2c's permissions"),
                             "reason": "refused_by_broker"}),
                format: format.as_str(),
                outcome: Outcome::Rejected,
            }
        }
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
