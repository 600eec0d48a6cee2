//! Ingest: why a record could not become events, as the DLQ record and metric label say it, with
//! the hint for the person who reads it.

use super::Format;
use crate::model::DlqRecord;

/// Why a record could not become events. The message is written for the person reading the
/// DLQ: it names the field, what was expected and what to do.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The bytes are not UTF-8; `offset` is where the first invalid byte is.
    #[error(
        "the record is not UTF-8 text (invalid byte at offset {offset}); \
         d2c reads JSON encoded as UTF-8"
    )]
    NotUtf8 { offset: usize },

    /// The text is not one JSON document (syntax error, trailing text, a key given twice).
    #[error("the record is not valid JSON: {detail}; send exactly one JSON document per record")]
    MalformedJson { detail: String },

    /// The record is longer than [`Limits::max_record_bytes`](super::Limits::max_record_bytes);
    /// nothing of it was read.
    #[error(
        "the record is {size} bytes, over the limit of {limit} bytes; split the payload into \
         smaller records or raise ingest.max_record_bytes"
    )]
    Oversize { size: usize, limit: usize },

    /// A required field is absent, `null` or `""`; `field` is its path, e.g. `[2].time`.
    #[error("{format} payload: {field} is missing; {hint}", hint = missing_hint(*.format, .field))]
    MissingField { format: Format, field: String },

    /// A field has the wrong JSON type or a value outside its set; `detail` says what was
    /// expected and what was found.
    #[error("{format} payload: {field} is invalid: {detail}")]
    InvalidValue {
        format: Format,
        field: String,
        detail: String,
    },

    /// Detection found no format; `found` says what the record is instead.
    #[error(
        "the record is {found}, which is no format d2c reads; send a native event (a JSON object \
         with name and time) or an array of them, an Alertmanager or Grafana webhook payload (an \
         object with alerts and version), a PagerDuty event (event_action), a CloudEvent \
         (specversion) or an array of them, a Zabbix webhook (event_value or event_status), OTLP \
         JSON logs (resourceLogs), an ECS alert (@timestamp), a Falco alert (output_fields), a \
         Suricata EVE record (event_type), a Wazuh alert (rule and manager) or an OCSF \
         Detection Finding (class_uid)"
    )]
    UnknownFormat { found: &'static str },

    /// More events than [`Limits::max_events_per_record`](super::Limits::max_events_per_record) in
    /// one record.
    #[error(
        "{format} payload: the record carries {count} events, over the limit of {limit} per record; \
         {hint}",
        hint = match .format {
            Format::Alertmanager => "set max_alerts in the Alertmanager webhook_config \
                                     or raise ingest.max_events_per_record",
            Format::Otel => "lower the exporter's batch size (send_batch_max_size of the \
                             collector's batch processor) or raise ingest.max_events_per_record",
            Format::Native | Format::CloudEvents => {
                "send smaller batches or raise ingest.max_events_per_record"
            }
            Format::Grafana
            | Format::PagerDuty
            | Format::Zabbix
            | Format::Ecs
            | Format::Falco
            | Format::Suricata
            | Format::Wazuh
            | Format::Ocsf => {
                "raise ingest.max_events_per_record"
            }
        }
    )]
    TooManyEvents {
        format: Format,
        count: usize,
        limit: usize,
    },

    /// An event's time is outside the years d2c accepts (1970 to 9999); `index` counts the
    /// record's events from 0.
    #[error(
        "{format} payload: event {number} of the record has time {time}, outside the years 1970 \
         to 9999 d2c accepts; check the sender's clock and the unit of its timestamps \
         (seconds, milliseconds, nanoseconds)",
        number = .index + 1
    )]
    TimeOutOfRange {
        format: Format,
        index: usize,
        time: String,
    },

    /// An event's time is more than [`Limits::max_ahead`](super::Limits::max_ahead) ahead of
    /// the wall clock of the stage that read it.
    #[error(
        "{format} payload: event {number} of the record has time {time}, more than \
         ingest.max_ahead ({max}) ahead of d2c's clock ({now}); fix the sender's clock, or \
         raise ingest.max_ahead",
        number = .index + 1
    )]
    ClockAhead {
        format: Format,
        index: usize,
        time: String,
        now: String,
        max: String,
    },

    /// Building the record's events would take more memory than
    /// [`Limits::max_expansion`](super::Limits::max_expansion) allows for its size.
    #[error(
        "{format} payload: its events would take more than {budget} bytes, over \
         ingest.max_expansion times the record's size; a part of it is copied into every event \
         (a long group field, a large OTLP resource, deeply nested long keys): send smaller \
         records or raise ingest.max_expansion"
    )]
    ExpansionLimit { format: Format, budget: usize },

    /// A parser panicked on the record (a bug in d2c).
    #[error("d2c failed to read this record (a bug; please report it with the record): {detail}")]
    Internal { detail: String },
}

impl IngestError {
    /// Every value [`IngestError::reason`] can return: the label set of the DLQ metric.
    pub const REASONS: [&'static str; 11] = [
        "not_utf8",
        "malformed_json",
        "oversize",
        "missing_field",
        "invalid_value",
        "unknown_format",
        "too_many_events",
        "time_out_of_range",
        "clock_ahead",
        "expansion_limit",
        "internal_error",
    ];

    /// The format the record was detected as, when detection got that far.
    pub fn format(&self) -> Option<Format> {
        match self {
            IngestError::MissingField { format, .. }
            | IngestError::InvalidValue { format, .. }
            | IngestError::TooManyEvents { format, .. }
            | IngestError::TimeOutOfRange { format, .. }
            | IngestError::ClockAhead { format, .. }
            | IngestError::ExpansionLimit { format, .. } => Some(*format),
            _ => None,
        }
    }

    /// The machine-readable reason, stable for DLQ records and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::NotUtf8 { .. } => "not_utf8",
            IngestError::MalformedJson { .. } => "malformed_json",
            IngestError::Oversize { .. } => "oversize",
            IngestError::MissingField { .. } => "missing_field",
            IngestError::InvalidValue { .. } => "invalid_value",
            IngestError::UnknownFormat { .. } => "unknown_format",
            IngestError::TooManyEvents { .. } => "too_many_events",
            IngestError::TimeOutOfRange { .. } => "time_out_of_range",
            IngestError::ClockAhead { .. } => "clock_ahead",
            IngestError::ExpansionLimit { .. } => "expansion_limit",
            IngestError::Internal { .. } => "internal_error",
        }
    }

    /// The DLQ record for the payload `raw` that failed with this error.
    pub fn to_dlq_record(&self, raw: &[u8]) -> DlqRecord {
        DlqRecord {
            reason: self.reason().to_owned(),
            detail: self.to_string(),
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }
}

/// What to do about a missing field, by the field's last path segment.
fn missing_hint(format: Format, field: &str) -> &'static str {
    let last = field.rsplit(['.', ']']).next().unwrap_or(field);
    match (format, last) {
        (Format::Native, "name") => "every native event needs a name, e.g. \"HighErrorRate\"",
        (Format::Native, "time") => {
            "every native event needs a time, an RFC 3339 timestamp such as 2026-11-28T10:00:00Z"
        }
        (Format::Alertmanager | Format::Grafana, "alertname") => {
            "every alert needs an alertname label"
        }
        (Format::Alertmanager | Format::Grafana, "alerts") => {
            "a webhook payload carries its alerts in an array named alerts"
        }
        (Format::Alertmanager | Format::Grafana, "startsAt") => {
            "a firing alert needs startsAt, the RFC 3339 time it started"
        }
        (Format::Alertmanager | Format::Grafana, "endsAt") => {
            "a resolved alert needs endsAt (or startsAt), an RFC 3339 timestamp"
        }
        (Format::PagerDuty, "timestamp") => {
            "d2c orders events by the time they happened and cannot invent one: set \
             payload.timestamp (RFC 3339) on every event, acknowledge and resolve included"
        }
        (Format::PagerDuty, "dedup_key") => {
            "acknowledge and resolve events name the alert they update by its dedup_key"
        }
        (Format::PagerDuty, "event_action") => {
            "set event_action to trigger, acknowledge or resolve"
        }
        (Format::PagerDuty, "summary" | "source" | "severity") => {
            "a trigger event needs payload.summary, payload.source and payload.severity"
        }
        (Format::CloudEvents, "time") => {
            "d2c needs the time of the occurrence: set the CloudEvents attribute time (RFC 3339)"
        }
        (Format::CloudEvents, "id" | "source" | "type" | "specversion") => {
            "id, source, type and specversion are required CloudEvents attributes"
        }
        (Format::Zabbix, "event_id") => "add the webhook parameter event_id = {EVENT.ID}",
        (Format::Zabbix, "event_name") => "add the webhook parameter event_name = {EVENT.NAME}",
        (Format::Zabbix, "event_value") => {
            "add the webhook parameter event_value = {EVENT.VALUE} (1 problem, 0 recovery)"
        }
        (Format::Zabbix, "event_date" | "event_time") => {
            "add the webhook parameters event_date = {EVENT.DATE} and event_time = {EVENT.TIME}"
        }
        (Format::Otel, "timeUnixNano") => {
            "a log record needs timeUnixNano or observedTimeUnixNano, nanoseconds since 1970"
        }
        (Format::Otel, "body") => {
            "name the log record with an event.name attribute, eventName, or a string body"
        }
        (Format::Ecs, "@timestamp") => "every ECS document needs @timestamp, an RFC 3339 time",
        (Format::Ecs, "name") => "an ECS alert is named by rule.name or kibana.alert.rule.name",
        (Format::Ecs, "kind") => {
            "d2c reads ECS alerts: set event.kind to alert (or signal), or send a Kibana alert \
             with its kibana.alert fields"
        }
        (Format::Falco, "rule" | "time") => {
            "Falco's JSON output has rule and time; send the alert as Falco writes it"
        }
        (Format::Suricata, "signature" | "alert") => {
            "an EVE alert record carries alert.signature; send eve.json lines as they are"
        }
        (Format::Suricata | Format::Wazuh, "timestamp") => {
            "every record needs timestamp, e.g. 2026-11-28T10:00:00.000000+0000"
        }
        (Format::Wazuh, "description") => {
            "a Wazuh alert names its rule in rule.description; send alerts.json lines as they are"
        }
        (Format::Ocsf, "title") => {
            "a Detection Finding is named by finding_info.title or finding_info.analytic.name"
        }
        (Format::Ocsf, "time") => "set time, milliseconds since 1970, or time_dt (RFC 3339)",
        (Format::Ocsf, "class_uid") => "a Detection Finding has class_uid 2004",
        _ => "add it to the payload",
    }
}
